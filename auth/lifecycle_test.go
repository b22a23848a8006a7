package auth

import (
	"ccmux/internal/testsupport"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func (f *fakeClock) afterCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.afters
}

// With no login of its own the refresher sets no timer and never wakes, a
// store of other apps' logins included; a login written by another process
// wakes it at the first read that sees it, and it then sleeps, on one
// timer, until that token needs refreshing.
func TestRefresherIdleWithoutLogin(t *testing.T) {
	e := newEnv(t, withFakeClock(), withConfig(ccmConfig(t)))
	clock := e.c.clock.(*fakeClock)
	e.installStore("ccm_oauth_tokens.json")
	// Only claude-code-mux's gemini, codex and copilot logins are left.
	other := e.newClient()
	if err := other.Logout("anthropic-max"); err != nil {
		t.Fatal(err)
	}
	slept := make(chan time.Time, 100)
	e.c.onSleep = func(next time.Time) { slept <- next }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.c.RunRefresher(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if next := <-slept; !next.IsZero() {
		t.Fatalf("with no login of its own the refresher means to wake at %s", next)
	}
	clock.Advance(24 * time.Hour)
	select {
	case next := <-slept:
		t.Fatalf("the idle refresher woke (next %s)", next)
	default:
	}
	if n := clock.afterCalls(); n != 0 {
		t.Fatalf("the idle refresher set %d timers", n)
	}

	// Another process signs in (a second client on the same file).
	u, state, _ := other.Authorize("anthropic-max", "")
	loc, err := e.srv.Approve(u)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := other.Exchange(context.Background(), "anthropic-max", loc.Query().Get("code"), state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Credential(context.Background(), "anthropic-max"); err != nil {
		t.Fatal(err)
	}
	next := <-slept
	earliest, latest := acct.ExpiresAt.Add(-refreshWindow-maxJitter), acct.ExpiresAt.Add(-refreshWindow)
	if next.Before(earliest) || next.After(latest) {
		t.Fatalf("after another process's login it sleeps until %s, want between %s and %s", next, earliest, latest)
	}
	clock.waitArmed(t)
	if n := clock.afterCalls(); n != 1 {
		t.Errorf("%d timers while waiting for one token, want 1", n)
	}
}

// Twenty 401s in a row cause one forced refresh, not twenty: a second
// forced refresh within 30 seconds fails with ErrRefreshedRecently (the
// proxy then relays the 401), and one is allowed again after 30 seconds.
func TestForcedRefreshAtMostEvery30s(t *testing.T) {
	e := newEnv(t, withFakeClock())
	clock := e.c.clock.(*fakeClock)
	e.signIn("anthropic-max")
	if _, err := e.c.ForceRefresh(context.Background(), "anthropic-max"); err != nil {
		t.Fatal(err)
	}
	for range 19 {
		_, err := e.c.ForceRefresh(context.Background(), "anthropic-max")
		e.note(err)
		if !errors.Is(err, ErrRefreshedRecently) || !strings.Contains(err.Error(), "anthropic-max") {
			t.Fatalf("second forced refresh: %v", err)
		}
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Fatalf("%d token requests for 20 forced refreshes in a row, want 1", n)
	}
	clock.Advance(forcedRefreshEvery)
	if _, err := e.c.ForceRefresh(context.Background(), "anthropic-max"); err != nil || e.srv.RefreshCount() != 2 {
		t.Fatalf("forced refresh 30 s later: %v, %d requests", err, e.srv.RefreshCount())
	}
}

// A caller that gives up (shutdown cancels it) does not cancel the token
// request; Drain waits for it, and the rotated token is stored.
func TestDrainWaitsForRefreshInFlight(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	e.expire("anthropic-max", time.Now().Add(-time.Minute))
	release := e.srv.HoldTokens()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { _, err := e.c.Credential(ctx, "anthropic-max"); got <- err }()
	testsupport.Eventually(t, "the token request", 10*time.Second, func() bool { return e.srv.RefreshCount() == 1 })
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller got %v", err)
	}
	short, scancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer scancel()
	if err := e.c.Drain(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain returned %v while the token request was held", err)
	}
	release()
	wait, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := e.c.Drain(wait); err != nil {
		t.Fatal(err)
	}
	if r := e.records()["anthropic-max"]; !e.srv.ValidRefreshToken(r.RefreshToken) {
		t.Fatal("the rotated refresh token was not stored")
	}
}

// A token endpoint that cannot be reached is reported as unreachable, and
// never as a missing or ended login.
func TestUnreachableIsNotSignedOut(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	e.expire("anthropic-max", time.Now().Add(-time.Minute))
	e.srv.Close()
	_, err := e.c.Credential(context.Background(), "anthropic-max")
	e.note(err)
	if err == nil || !strings.Contains(err.Error(), "unreachable") || errors.Is(err, ErrNoToken) || errors.Is(err, ErrSessionEnded) {
		t.Fatalf("credential with the endpoint down: %v", err)
	}
	if _, ok := e.records()["anthropic-max"]; !ok {
		t.Fatal("the login was removed")
	}
}
