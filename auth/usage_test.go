package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/config"
)

func rfc(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func sameWindows(t *testing.T, got, want []UsageWindow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d windows %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		sameTime := (g.ResetsAt == nil) == (w.ResetsAt == nil) && (g.ResetsAt == nil || g.ResetsAt.Equal(*w.ResetsAt))
		if g.Name != w.Name || g.Utilization != w.Utilization || g.Status != w.Status || !sameTime {
			t.Errorf("window %d: got %+v (resets %v), want %+v (resets %v)", i, g, g.ResetsAt, w, w.ResetsAt)
		}
	}
}

func TestParseUsageWindowObjects(t *testing.T) {
	// The shape the endpoint has answered with: percent, RFC 3339 with
	// fractions and an offset, null windows and the extra_usage object.
	ws, err := ParseUsage([]byte(`{
	  "five_hour": {"utilization": 42.0, "resets_at": "2026-01-02T18:00:00.600956+00:00"},
	  "seven_day": {"utilization": 13, "resets_at": "2026-01-05T09:00:00+00:00"},
	  "seven_day_sonnet": {"utilization": 100.0, "resets_at": "2026-01-05T09:00:00Z"},
	  "seven_day_opus": null,
	  "seven_day_oauth_apps": null,
	  "iguana_necktie": null,
	  "extra_usage": {"is_enabled": false, "monthly_limit": null, "used_credits": null, "utilization": null},
	  "new_window": {"utilization": 5, "resets_at": null}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	sameWindows(t, ws, []UsageWindow{
		{Name: "five_hour", Utilization: 0.42, ResetsAt: rfc("2026-01-02T18:00:00.600956Z"), Status: "allowed"},
		{Name: "seven_day", Utilization: 0.13, ResetsAt: rfc("2026-01-05T09:00:00Z"), Status: "allowed"},
		{Name: "new_window", Utilization: 0.05, Status: "allowed"},
		{Name: "seven_day_sonnet", Utilization: 1, ResetsAt: rfc("2026-01-05T09:00:00Z"), Status: "rejected"},
	})
}

func TestParseUsageLimitsArray(t *testing.T) {
	ws, err := ParseUsage([]byte(`{"limits": [
	  {"kind": "five_hour", "percent": 61, "resets_at": "2026-01-02T18:00:00Z", "scope": "all"},
	  {"kind": "seven_day", "percent": 22.5, "resets_at": "2026-01-05T09:00:00Z"},
	  {"kind": "seven_day", "percent": 80, "resets_at": "2026-01-05T09:00:00Z", "scope": "opus"},
	  {"kind": "weekly", "percent": 3, "resets_at": "2026-01-05T09:00:00Z", "scope": "Sonnet"},
	  {"kind": "", "percent": 10},
	  {"kind": "five_hour"},
	  "garbage", 7, {"kind": 5, "percent": 1}
	], "five_hour": {"utilization": 1, "resets_at": "2026-01-02T18:00:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	sameWindows(t, ws, []UsageWindow{
		{Name: "five_hour", Utilization: 0.61, ResetsAt: rfc("2026-01-02T18:00:00Z"), Status: "allowed"},
		{Name: "seven_day", Utilization: 0.225, ResetsAt: rfc("2026-01-05T09:00:00Z"), Status: "allowed"},
		{Name: "seven_day_opus", Utilization: 0.8, ResetsAt: rfc("2026-01-05T09:00:00Z"), Status: "allowed"},
		{Name: "seven_day_sonnet", Utilization: 0.03, ResetsAt: rfc("2026-01-05T09:00:00Z"), Status: "allowed"},
	})
}

func TestParseUsageGarbage(t *testing.T) {
	for _, body := range []string{``, `null`, `[]`, `"x"`, `{"five_hour":`} {
		if ws, err := ParseUsage([]byte(body)); err == nil {
			t.Errorf("ParseUsage(%q) = %v, want an error", body, ws)
		}
	}
	ws, err := ParseUsage([]byte(`{"five_hour": {"utilization": "lots", "resets_at": "soon"}, "seven_day": 7, "limits": {"x": 1}}`))
	if err != nil || len(ws) != 0 {
		t.Errorf("garbage values: got %v, %v; want no windows and no error", ws, err)
	}
}

func TestWindowName(t *testing.T) {
	for short, want := range map[string]string{
		"5h": "five_hour", "7d": "seven_day", "7d_opus": "seven_day_opus", "7D_Sonnet": "seven_day_sonnet",
		"7d_oi": "seven_day_oi", "5hx": "5hx", "overage": "overage", "1m": "1m",
	} {
		if got := WindowName(short); got != want {
			t.Errorf("WindowName(%q) = %q, want %q", short, got, want)
		}
	}
}

func TestUsageSendsBearerAndBeta(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	ws, err := e.c.Usage(context.Background(), "anthropic-max", true)
	e.note(err)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 || ws[0].Name != "five_hour" || ws[0].Utilization != 0.42 {
		t.Errorf("windows: %+v", ws)
	}
	reqs := e.srv.UsageRequests()
	if len(reqs) != 1 || !reqs[0].ValidToken || reqs[0].Beta != "oauth-2025-04-20" {
		t.Errorf("usage requests: %+v", reqs)
	}
}

func TestUsage401RefreshesOnce(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	e.srv.RevokeAccessTokens()
	if _, err := e.c.Usage(context.Background(), "anthropic-max", true); err != nil {
		e.note(err)
		t.Fatalf("after a refresh the usage request should work: %v", err)
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Errorf("refreshes: %d, want 1", n)
	}
	if reqs := e.srv.UsageRequests(); len(reqs) != 2 || reqs[0].ValidToken || !reqs[1].ValidToken {
		t.Errorf("usage requests: %+v", reqs)
	}

	// Read-only callers (ccmux status) never refresh: the 401 is reported.
	e.srv.RevokeAccessTokens()
	if _, err := e.c.Usage(context.Background(), "anthropic-max", false); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without refresh: %v, want the 401 reported", err)
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Errorf("refreshes without refresh allowed: %d, want still 1", n)
	}

	// Within 30 s of that forced refresh, another 401 is reported without
	// rotating the token again (at most one forced refresh per 30 s).
	e.srv.RevokeAccessTokens()
	_, err := e.c.Usage(context.Background(), "anthropic-max", true)
	e.note(err)
	if !errors.Is(err, ErrRefreshedRecently) {
		t.Errorf("a second 401 within 30 s: %v, want ErrRefreshedRecently", err)
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Errorf("refreshes after the second 401: %d, want still 1", n)
	}

	// A 401 that a refresh does not cure is reported, after one refresh.
	e = newEnv(t)
	e.signIn("anthropic-max")
	e.srv.RevokeAccessTokens()
	e.srv.FailRefresh(authtest.Failure{Status: 503})
	_, err = e.c.Usage(context.Background(), "anthropic-max", true)
	e.note(err)
	if err == nil {
		t.Fatal("want an error")
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Errorf("refreshes after a 401 whose refresh fails: %d, want 1", n)
	}
}

func TestUsageOtherErrorsNeverRotate(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	for _, status := range []int{429, 403, 500} {
		e.srv.FailUsage(status, 1, "120")
		_, err := e.c.Usage(context.Background(), "anthropic-max", true)
		e.note(err)
		if err == nil {
			t.Fatalf("status %d: want an error", status)
		}
		var busy *UsageBusyError
		if got := errors.As(err, &busy); got != (status == 429) {
			t.Errorf("status %d: UsageBusyError = %v", status, got)
		} else if got && busy.RetryAfter != 2*time.Minute {
			t.Errorf("Retry-After: %v", busy.RetryAfter)
		}
	}
	// A token inside the 5-minute refresh window is used as it is: asking
	// for usage is never what rotates it.
	e.expire("anthropic-max", e.now().Add(2*time.Minute))
	if _, err := e.c.Usage(context.Background(), "anthropic-max", true); err != nil {
		e.note(err)
		t.Fatal(err)
	}
	if n := e.srv.RefreshCount(); n != 0 {
		t.Errorf("refreshes: %d, want 0", n)
	}
	if _, err := e.c.Usage(context.Background(), "console-id", true); err == nil {
		t.Error("a login that is not signed in: want an error")
	}
}

func TestUsagePollerSchedule(t *testing.T) {
	e := newEnv(t, withFakeClock())
	e.cfg.OAuth["anthropic-max"] = withPoll(e.cfg.OAuth["anthropic-max"], 60)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []UsageWindow, 16)
	done := make(chan struct{})
	go func() {
		e.c.RunUsagePoller(ctx, []string{"anthropic-max"}, func(id string, ws []UsageWindow) { got <- ws })
		close(done)
	}()
	// Not signed in at start: nothing is asked, the poller sleeps.
	e.clock.waitArmed(t)
	if n := len(e.srv.UsageRequests()); n != 0 {
		t.Fatalf("requests before sign-in: %d", n)
	}
	// A sign-in polls at once.
	e.signIn("anthropic-max")
	receive(t, got)
	e.clock.waitArmed(t)
	// Then every 60 s.
	e.clock.Advance(59 * time.Second)
	if n := len(e.srv.UsageRequests()); n != 1 {
		t.Fatalf("requests after 59 s: %d, want 1", n)
	}
	e.clock.Advance(time.Second)
	receive(t, got)
	e.clock.waitArmed(t)
	// A 429 backs off: the next try waits twice the interval (or Retry-After when longer).
	e.srv.FailUsage(429, 1, "")
	e.clock.Advance(60 * time.Second)
	e.clock.waitArmed(t)
	if n := len(e.srv.UsageRequests()); n != 3 {
		t.Fatalf("requests: %d, want 3", n)
	}
	e.clock.Advance(119 * time.Second)
	if n := len(e.srv.UsageRequests()); n != 3 {
		t.Fatalf("asked again %d s after a 429; want a backoff of 120 s", 119)
	}
	e.clock.Advance(time.Second)
	receive(t, got)
	e.clock.waitArmed(t)
	// Other failures (a token without user:profile gets 403) back off too.
	e.srv.FailUsage(403, 1, "")
	e.clock.Advance(60 * time.Second)
	e.clock.waitArmed(t)
	e.clock.Advance(119 * time.Second)
	if n := len(e.srv.UsageRequests()); n != 5 {
		t.Fatalf("requests: %d, want 5 (no retry within 120 s of a 403)", n)
	}
	e.clock.Advance(time.Second)
	receive(t, got)
	cancel()
	<-done
	if n := e.srv.RefreshCount(); n != 0 {
		t.Errorf("the poller refreshed the token %d times", n)
	}
}

func TestUsagePollerOff(t *testing.T) {
	e := newEnv(t, withFakeClock())
	e.cfg.OAuth["anthropic-max"] = withPoll(e.cfg.OAuth["anthropic-max"], 0)
	e.signIn("anthropic-max")
	done := make(chan struct{})
	go func() {
		e.c.RunUsagePoller(context.Background(), []string{"anthropic-max"}, func(string, []UsageWindow) {})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("with usage_poll_seconds = 0 the poller should return at once")
	}
	if n := len(e.srv.UsageRequests()); n != 0 {
		t.Errorf("requests: %d", n)
	}
}

func withPoll(o config.OAuth, secs int) config.OAuth {
	o.UsagePollSeconds = &secs
	return o
}

func receive(t *testing.T, ch <-chan []UsageWindow) []UsageWindow {
	t.Helper()
	select {
	case ws := <-ch:
		return ws
	case <-time.After(10 * time.Second):
		t.Fatal("no usage report")
		return nil
	}
}

func TestUsageSnapshotFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".claude-code-mux")
	s := NewStore(filepath.Join(dir, "oauth_tokens.json"))
	if data, err := s.LoadUsage(); err != nil || data != nil {
		t.Fatalf("no file: got %q, %v", data, err)
	}
	if err := s.SaveUsage([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	data, err := s.LoadUsage()
	if err != nil || string(data) != `{"a":1}` {
		t.Fatalf("got %q, %v", data, err)
	}
	fi, err := os.Stat(filepath.Join(dir, UsageFileName))
	if err != nil {
		t.Fatal(err)
	}
	if checkPerms && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
