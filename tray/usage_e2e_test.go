//go:build linux

package tray

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/internal/testsupport"
)

// TestTrayUsageEndToEnd: after sign-in the real binary asks the (fake)
// usage endpoint, the menu shows one disabled line per window under the
// status line, and the window at 95 % is told in a notification.
func TestTrayUsageEndToEnd(t *testing.T) {
	d := newDesktop(t)

	oauth := authtest.NewServer()
	defer oauth.Close()
	r5 := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Minute)
	r7 := time.Now().Add(4 * 24 * time.Hour).UTC().Truncate(time.Minute)
	oauth.SetUsage(fmt.Sprintf(`{"five_hour":{"utilization":95.0,"resets_at":%q},"seven_day":{"utilization":13.0,"resets_at":%q},"seven_day_opus":null}`,
		r5.Format(time.RFC3339Nano), r7.Format(time.RFC3339Nano)))

	home := t.TempDir()
	port := testsupport.FreePort(t)
	writeConfig(t, home, port, oauth.OAuthTOML("anthropic-max", "claude"))
	app, item := d.start(t, home, "TZ=UTC")
	item.waitItem(t, "Proxy on", "the proxy checked", func(m menuItem) bool { return m.Checked })
	for _, m := range item.layout(t) {
		if strings.Contains(m.Label, "limit") || strings.HasPrefix(m.Label, "Usage") {
			t.Errorf("signed out, the menu shows usage line %q", m.Label)
		}
	}

	item.click(t, "Sign in with Claude")
	when := func(at time.Time) string {
		if at.YearDay() == time.Now().UTC().YearDay() {
			return at.Format("15:04")
		}
		return at.Format("Mon 15:04")
	}
	five := item.waitItem(t, "5-hour limit", "the 5-hour line", func(menuItem) bool { return true })
	if want := "5-hour limit: 95% · resets " + when(r5); five.Label != want || five.Enabled {
		t.Errorf("5-hour line %+v, want a disabled %q", five, want)
	}
	var labels []string
	for _, m := range item.layout(t) {
		labels = append(labels, m.Label)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	want := []string{"Signed in as user@example.com", "5-hour limit: 95% · resets " + when(r5), "Weekly limit: 13% · resets " + when(r7),
		"Sign out", "Proxy on " + addr, "Start at login", "Open dashboard", "Open config file", "Reload config", "Open log", "Show proxy address", "Quit"}
	if len(labels) != len(want) || !strings.HasPrefix(labels[0], want[0]) || strings.Join(labels[1:], "|") != strings.Join(want[1:], "|") {
		t.Errorf("menu = %q, want %q", labels, want)
	}
	testsupport.Eventually(t, "the 95% notification", 10*time.Second, func() bool {
		_, ok := d.notes.find("Claude usage limit")
		return ok
	})
	n, _ := d.notes.find("Claude usage limit")
	if wantBody := "Claude 5-hour limit at 95% — resets " + when(r5); n.Body != wantBody {
		t.Errorf("notification %q, want %q", n.Body, wantBody)
	}
	if reqs := oauth.UsageRequests(); len(reqs) != 1 || !reqs[0].ValidToken || reqs[0].Beta != "oauth-2025-04-20" {
		t.Errorf("usage endpoint requests: %+v", reqs)
	}
	item.click(t, "Quit")
	if code := app.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after Quit, want 0", code)
	}
}
