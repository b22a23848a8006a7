package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// With no browser to open, a login with a terminal says at once, and once,
// that --manual signs in without one; the log does not repeat it. Without
// a terminal (the tray) the log is where it is said.
func TestLoginWithoutABrowserSaysManualAtOnce(t *testing.T) {
	noBrowser := func(string) error {
		return errors.New(`exec: "xdg-open,x-www-browser,www-browser": executable file not found in $PATH`)
	}
	t.Run("terminal", func(t *testing.T) {
		e := newEnv(t, withOpener(noBrowser), withLoginTimeout(time.Hour))
		ctx, cancel := context.WithCancel(context.Background())
		var out testsupport.Buffer
		done := make(chan error, 1)
		go func() {
			_, err := e.c.Login(ctx, "anthropic-max", LoginOptions{Out: &out})
			done <- err
		}()
		// Long before the hour-long login timeout.
		testsupport.Eventually(t, "the --manual hint", 10*time.Second, func() bool { return strings.Contains(out.String(), "--manual") })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) || err.Error() != "sign-in cancelled" {
			t.Errorf("login = %v, want \"sign-in cancelled\" (wrapping context.Canceled)", err)
		}
		// Said in the user's words, the launcher's error left out, and the
		// URL shown again under it so that it is still on screen.
		said := out.String()
		const hint = "No browser could be opened; open this URL yourself, or use --manual"
		if n := strings.Count(said, hint); n != 1 || strings.Contains(said, "xdg-open") {
			t.Errorf("the failure is said %d times, want once as %q, without the launcher's error:\n%s", n, hint, said)
		}
		if i := strings.Index(said, hint); i < 0 || !strings.Contains(said[i:], "/oauth/authorize?") {
			t.Errorf("the URL is not shown after the hint:\n%s", said)
		}
		if logs := e.logs.String(); strings.Contains(logs, "browser") {
			t.Errorf("the log repeats what the terminal was told:\n%s", logs)
		}
	})
	t.Run("no terminal", func(t *testing.T) {
		e := newEnv(t, withOpener(noBrowser), withLoginTimeout(time.Hour))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := e.c.Login(ctx, "anthropic-max", LoginOptions{})
			done <- err
		}()
		testsupport.Eventually(t, "the log line", 10*time.Second, func() bool { return strings.Contains(e.logs.String(), "could not open a browser") })
		cancel()
		<-done
		if n := strings.Count(e.logs.String(), "could not open a browser"); n != 1 {
			t.Errorf("logged %d times, want once:\n%s", n, e.logs.String())
		}
	})
}

// A manual login whose input ends ends the "Code: " prompt's line, so the
// error printed after it is a line of its own.
func TestManualLoginEndsThePromptLine(t *testing.T) {
	e := newEnv(t)
	var out testsupport.Buffer
	_, err := e.c.Login(context.Background(), "anthropic-max", LoginOptions{Manual: true, Out: &out, In: strings.NewReader("")})
	if err == nil || !strings.Contains(err.Error(), "no code was pasted") {
		t.Fatalf("login = %v, want no code was pasted", err)
	}
	if said := out.String(); !strings.HasSuffix(said, "Code: \n") {
		t.Errorf("the output does not end the prompt line: %q", said[max(0, len(said)-40):])
	}
}

// A manual login takes only what the page shows, code#state (or the
// callback URL with both): a paste without the state is refused on the
// spot, without asking the token endpoint, and the prompt asks again.
func TestManualLoginWantsCodeAndState(t *testing.T) {
	e := newEnv(t)
	var out testsupport.Buffer
	_, err := e.c.Login(context.Background(), "anthropic-max", LoginOptions{Manual: true, Out: &out, In: strings.NewReader("not-a-code\n")})
	if n := len(e.srv.TokenRequests()); n != 0 {
		t.Errorf("%d token requests for a paste without #state, want none", n)
	}
	if said := out.String(); !strings.Contains(said, "not the code#state") {
		t.Errorf("the paste is not said to lack the state:\n%s", said)
	}
	if err == nil || !strings.Contains(err.Error(), "no code#state was pasted") {
		t.Errorf("login = %v, want no code#state was pasted", err)
	}
}
