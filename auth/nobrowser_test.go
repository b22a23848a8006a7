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
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("login = %v, want cancelled", err)
		}
		said := out.String()
		if n := strings.Count(said, "Could not open a browser"); n != 1 || !strings.Contains(said, "xdg-open") {
			t.Errorf("the failure is said %d times, want once with the reason:\n%s", n, said)
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
