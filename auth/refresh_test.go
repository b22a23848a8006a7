package auth

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/internal/testsupport"
)

func TestNoTokenError(t *testing.T) {
	e := newEnv(t)
	_, err := e.c.Credential(context.Background(), "work")
	if !errors.Is(err, ErrNoToken) || err.Error() != "No token found for provider work — run `ccmux login --provider work`" {
		t.Fatalf("err = %v", err)
	}
	if _, err := e.c.ForceRefresh(context.Background(), "work"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("ForceRefresh: %v", err)
	}
}

func TestRefreshBodyAndRotation(t *testing.T) {
	for _, rotate := range []bool{true, false} {
		name := map[bool]string{true: "rotated", false: "omitted"}[rotate]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			e.signIn("anthropic-max")
			old := e.records()["anthropic-max"]
			e.srv.SetRotate(rotate)
			e.srv.SetEmail("other@example.com")
			e.expire("anthropic-max", time.Now().Add(4*time.Minute)) // inside the 5-minute window
			cred, err := e.c.Credential(context.Background(), "anthropic-max")
			e.note(err)
			if err != nil {
				t.Fatal(err)
			}
			reqs := e.srv.TokenRequests()
			body := reqs[len(reqs)-1].Body
			if len(body) != 4 || body["grant_type"] != "refresh_token" || body["refresh_token"] != old.RefreshToken || body["client_id"] != ClientID {
				t.Errorf("refresh body fields %v", keys(body))
			}
			// The scopes Claude Code sends with a refresh: the preset's.
			if body["scope"] != strings.Join(Claude().Scopes, " ") {
				t.Errorf("refresh scope = %v, want %q", body["scope"], strings.Join(Claude().Scopes, " "))
			}
			if reqs[len(reqs)-1].ContentType != "application/json" {
				t.Errorf("Content-Type = %q", reqs[len(reqs)-1].ContentType)
			}
			r := e.records()["anthropic-max"]
			if cred.Value != r.AccessToken || cred.Value == old.AccessToken || r.Email != "other@example.com" {
				t.Error("the new access token or email was not stored")
			}
			if rotate && (r.RefreshToken == old.RefreshToken || !e.srv.ValidRefreshToken(r.RefreshToken)) {
				t.Error("the rotated refresh token was not stored")
			}
			if !rotate && r.RefreshToken != old.RefreshToken {
				t.Error("the old refresh token was not kept when the response omitted one")
			}
			if time.Until(r.ExpiresAt) < 55*time.Minute {
				t.Errorf("expires_at %s not moved forward", r.ExpiresAt)
			}
		})
	}
}

func TestFreshTokenIsNotRefreshed(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	e.expire("anthropic-max", time.Now().Add(6*time.Minute))
	if _, err := e.c.Credential(context.Background(), "anthropic-max"); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.RefreshCount(); n != 0 {
		t.Fatalf("%d refreshes for a token with 6 minutes left", n)
	}
}

func TestSingleFlight50(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	e.expire("anthropic-max", time.Now().Add(-time.Hour))
	release := e.srv.HoldTokens()
	const n = 50
	var wg sync.WaitGroup
	creds := make([]Credential, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			creds[i], errs[i] = e.c.Credential(context.Background(), "anthropic-max")
		}()
	}
	close(start)
	testsupport.Eventually(t, "the token request", 10*time.Second, func() bool { return e.srv.RefreshCount() >= 1 })
	release()
	wg.Wait()
	for i := range n {
		e.note(errs[i])
		if errs[i] != nil || creds[i] != creds[0] {
			t.Fatalf("caller %d: err %v, same token %v", i, errs[i], creds[i] == creds[0])
		}
	}
	if got := e.srv.RefreshCount(); got != 1 {
		t.Fatalf("%d token requests for %d concurrent callers, want 1", got, n)
	}
	if !e.srv.ValidAccessToken(creds[0].Value) {
		t.Error("callers got a token the server did not issue")
	}
}

func TestForceRefresh(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	before := e.records()["anthropic-max"].AccessToken
	cred, err := e.c.ForceRefresh(context.Background(), "anthropic-max")
	if err != nil || cred.Value == before || cred.APIKey || e.srv.RefreshCount() != 1 {
		t.Fatalf("ForceRefresh: new %v, refreshes %d, err %v", cred.Value != before, e.srv.RefreshCount(), err)
	}
	// The refreshed token is served afterwards without another request.
	if again, _ := e.c.Credential(context.Background(), "anthropic-max"); again != cred || e.srv.RefreshCount() != 1 {
		t.Error("Credential after ForceRefresh did not return the new token")
	}
}

func TestInvalidGrantSignsOut(t *testing.T) {
	e := newEnv(t)
	events, stop := e.c.Subscribe()
	defer stop()
	e.signIn("anthropic-max")
	nextEvent(t, events, SignedIn)
	e.expire("anthropic-max", time.Now().Add(-time.Minute))
	e.srv.FailRefresh(authtest.InvalidGrant)
	_, err := e.c.Credential(context.Background(), "anthropic-max")
	e.note(err)
	if !errors.Is(err, ErrSessionEnded) || !strings.Contains(err.Error(), "sign in again") || !strings.Contains(err.Error(), "ccmux login --provider anthropic-max") {
		t.Fatalf("err = %v", err)
	}
	ev := nextEvent(t, events, SignedOut)
	if ev.ProviderID != "anthropic-max" || !strings.Contains(ev.Reason, "session ended") {
		t.Errorf("event = %+v", ev)
	}
	if _, ok := e.records()["anthropic-max"]; ok {
		t.Error("the dead login is still stored")
	}
	if _, err := e.c.Credential(context.Background(), "anthropic-max"); !errors.Is(err, ErrNoToken) {
		t.Errorf("after sign-out: %v", err)
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Errorf("%d refresh requests, want 1", n)
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	e := newEnv(t, withFakeClock())
	events, stop := e.c.Subscribe()
	defer stop()
	e.signIn("anthropic-max")
	e.expire("anthropic-max", e.now().Add(-time.Minute))
	e.srv.FailRefresh(authtest.Failure{Status: 429, Error: "rate_limit_error", RetryAfter: "120"})
	_, err := e.c.Credential(context.Background(), "anthropic-max")
	e.note(err)
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("err = %v", err)
	}
	ev := nextEvent(t, events, RefreshFailed)
	if !strings.Contains(ev.Reason, "429") || !strings.Contains(ev.Reason, "2m0s") {
		t.Errorf("reason = %q", ev.Reason)
	}
	// Inside Retry-After: callers get an error, the server no request.
	for range 20 {
		_, err := e.c.Credential(context.Background(), "anthropic-max")
		e.note(err)
		if err == nil || !strings.Contains(err.Error(), "next try in") {
			t.Fatalf("during Retry-After: %v", err)
		}
	}
	e.c.clock.(*fakeClock).Advance(119 * time.Second)
	e.c.Credential(context.Background(), "anthropic-max")
	if n := e.srv.RefreshCount(); n != 1 {
		t.Fatalf("%d requests before Retry-After passed, want 1", n)
	}
	accts, _ := e.c.Accounts()
	if len(accts) != 1 || !strings.Contains(accts[0].LastError, "429") {
		t.Errorf("accounts = %+v", accts)
	}
	e.srv.FailRefresh(authtest.Failure{})
	e.c.clock.(*fakeClock).Advance(time.Second)
	if _, err := e.c.Credential(context.Background(), "anthropic-max"); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
	if n := e.srv.RefreshCount(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	if accts, _ := e.c.Accounts(); accts[0].LastError != "" {
		t.Errorf("LastError after success = %q", accts[0].LastError)
	}
}

func TestServerErrorsRetriedThenReported(t *testing.T) {
	e := newEnv(t, withFakeClock())
	e.c.retryDelays = []time.Duration{0, 0}
	events, stop := e.c.Subscribe()
	defer stop()
	e.signIn("anthropic-max")
	e.expire("anthropic-max", e.now().Add(time.Minute))

	e.srv.FailRefresh(authtest.Failure{Status: 503, Times: 2})
	if _, err := e.c.Credential(context.Background(), "anthropic-max"); err != nil {
		t.Fatalf("two 503s then success: %v", err)
	}
	if n := e.srv.RefreshCount(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	nextEvent(t, events, Refreshed)

	e.expire("anthropic-max", e.now().Add(time.Minute))
	e.srv.FailRefresh(authtest.Failure{Status: 502})
	cred, err := e.c.Credential(context.Background(), "anthropic-max")
	e.note(err)
	if err == nil || cred.Value != "" {
		t.Fatal("a failing refresh returned a token")
	}
	if n := e.srv.RefreshCount(); n != 6 {
		t.Fatalf("%d requests, want 6", n)
	}
	ev := nextEvent(t, events, RefreshFailed)
	if !strings.Contains(ev.Reason, "502") {
		t.Errorf("reason = %q", ev.Reason)
	}
	// One minute left and failing: ExpiringSoon, once.
	nextEvent(t, events, ExpiringSoon)
	// During the backoff the still-valid token is served without a request.
	e.expire("anthropic-max", e.now().Add(4*time.Minute))
	if cred, err := e.c.Credential(context.Background(), "anthropic-max"); err != nil || cred.Value == "" || e.srv.RefreshCount() != 6 {
		t.Errorf("during backoff: err %v, requests %d", err, e.srv.RefreshCount())
	}
	noEvent(t, events)
	// A network error is a refresh failure too, in words.
	e.srv.Close()
	e.c.clock.(*fakeClock).Advance(time.Hour)
	_, err = e.c.Credential(context.Background(), "anthropic-max")
	e.note(err)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("network error: %v", err)
	}
}

func TestBackgroundRefreshBeforeExpiry(t *testing.T) {
	e := newEnv(t, withFakeClock())
	clock := e.c.clock.(*fakeClock)
	events, stop := e.c.Subscribe()
	defer stop()
	acct := e.signIn("anthropic-max")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	clock.drainArmed()
	go func() { e.c.RunRefresher(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	clock.waitArmed(t)

	// Walk up to just before the earliest jittered moment: no refresh.
	early := acct.ExpiresAt.Add(-refreshWindow - maxJitter - time.Second)
	for next := clock.NextTimer(); !next.IsZero() && !next.After(early); next = clock.NextTimer() {
		clock.AdvanceToNext()
		clock.waitArmed(t)
	}
	clock.Set(early)
	if n := e.srv.RefreshCount(); n != 0 {
		t.Fatalf("%d refreshes %s before expiry", n, acct.ExpiresAt.Sub(clock.Now()))
	}
	// At the 5-minute mark it has refreshed.
	clock.Set(acct.ExpiresAt.Add(-refreshWindow))
	ev := nextEvent(t, events, Refreshed)
	if n := e.srv.RefreshCount(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	if !ev.ExpiresAt.After(acct.ExpiresAt) || ev.Email != "user@example.com" {
		t.Errorf("event = %+v", ev)
	}
	// The proxy then gets the new token without another request.
	cred, err := e.c.Credential(context.Background(), "anthropic-max")
	if err != nil || !e.srv.ValidAccessToken(cred.Value) || e.srv.RefreshCount() != 1 {
		t.Errorf("after background refresh: %v, %d requests", err, e.srv.RefreshCount())
	}
}

func TestBackgroundFailuresExpiringSoonThenExpired(t *testing.T) {
	e := newEnv(t, withFakeClock())
	clock := e.c.clock.(*fakeClock)
	events, stop := e.c.Subscribe()
	defer stop()
	acct := e.signIn("anthropic-max")
	e.srv.FailRefresh(authtest.Failure{Status: 503})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	clock.drainArmed()
	go func() { e.c.RunRefresher(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	clock.waitArmed(t)

	clock.Set(acct.ExpiresAt.Add(-refreshWindow))
	if ev := nextEvent(t, events, RefreshFailed); !strings.Contains(ev.Reason, "503") {
		t.Errorf("reason = %q", ev.Reason)
	}
	if ev := nextEvent(t, events, ExpiringSoon); !ev.ExpiresAt.Equal(acct.ExpiresAt) {
		t.Errorf("ExpiringSoon for %s, want %s", ev.ExpiresAt, acct.ExpiresAt)
	}
	// Backoff: retries are spaced out, never a storm. Step from timer to
	// timer until the token has expired.
	for clock.Now().Before(acct.ExpiresAt) {
		clock.waitArmed(t)
		clock.AdvanceToNext()
	}
	nextEvent(t, events, Expired)
	// Attempts at 0, 30 s, 90 s, 210 s (backoff doubling from 30 s), and
	// at expiry.
	if n := e.srv.RefreshCount(); n < 4 || n > 5 {
		t.Errorf("%d requests over 5 minutes of failures, want 4 or 5", n)
	}
}

func TestLogoutAndAccounts(t *testing.T) {
	e := newEnv(t)
	events, stop := e.c.Subscribe()
	defer stop()
	e.signIn("anthropic-max")
	e.signIn("console-id")
	accts, err := e.c.Accounts()
	if err != nil || len(accts) != 2 || accts[0].ProviderID != "anthropic-max" || accts[0].Email != "user@example.com" || accts[0].APIKey || !accts[1].APIKey {
		t.Fatalf("accounts = %+v, %v", accts, err)
	}
	if err := e.c.Logout("anthropic-max"); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, SignedOut)
	if err := e.c.Logout("anthropic-max"); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	noEvent(t, events)
	if accts, _ := e.c.Accounts(); len(accts) != 1 || accts[0].ProviderID != "console-id" {
		t.Fatalf("accounts after logout = %+v", accts)
	}
}

func TestSubscribeCancelClosesChannel(t *testing.T) {
	e := newEnv(t)
	ch, cancel := e.c.Subscribe()
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	e.signIn("anthropic-max") // publishing to no subscriber is fine
}

// claude-code-mux writes the file without our lock: when it rotated the
// token while our refresh was refused, its token is used, not deleted.
func TestRefusedRefreshUsesTokenWrittenMeanwhile(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	e.expire("anthropic-max", time.Now().Add(-time.Minute))
	e.srv.FailRefresh(authtest.InvalidGrant)
	release := e.srv.HoldTokens()
	got := make(chan error, 1)
	var cred Credential
	go func() {
		var err error
		cred, err = e.c.Credential(context.Background(), "anthropic-max")
		got <- err
	}()
	testsupport.Eventually(t, "the refresh request", 10*time.Second, func() bool { return e.srv.RefreshCount() == 1 })
	// The other program's in-place write, while our request is in flight.
	data := `{"anthropic-max":{"provider_id":"anthropic-max","access_token":"other-access","refresh_token":"other-refresh","expires_at":"2099-01-01T00:00:00Z"}}`
	if err := os.WriteFile(e.path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-got; err != nil || cred.Value != "other-access" {
		t.Fatalf("got %q, %v", cred.Value, err)
	}
	if r, ok := e.records()["anthropic-max"]; !ok || r.RefreshToken != "other-refresh" {
		t.Fatal("the other program's token was deleted or overwritten")
	}
}
