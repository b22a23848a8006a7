//go:build linux

package tray

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/internal/testsupport"
)

// TestTrayEndToEnd drives the real binary the way a panel and a user do:
// sign in through the browser, toggle the proxy and start at login, see the
// notifications, survive a panel restart after notifications, and quit.
func TestTrayEndToEnd(t *testing.T) {
	d := newDesktop(t)

	oauth := authtest.NewServer()
	defer oauth.Close()
	// A short-lived token and a failing token endpoint: right after sign-in
	// the background refresher tries, fails, and the tray must say so once.
	oauth.SetExpiresIn(4 * time.Minute)
	oauth.FailRefresh(authtest.Failure{Status: 503, Error: "temporarily_unavailable"})

	home := t.TempDir()
	port := testsupport.FreePort(t)
	writeConfig(t, home, port, oauth.OAuthTOML("anthropic-max", "claude"))
	app, item := d.start(t, home)
	var appName string
	if err := d.conn.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, item.service).Store(&appName); err != nil {
		t.Fatal(err)
	}
	select {
	case sender := <-d.watcher.regs:
		if sender != appName {
			t.Errorf("RegisterStatusNotifierItem came from %s, want the app %s", sender, appName)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the app never registered its item with the watcher")
	}

	// The signed-out menu, exactly as DESIGN.md lists it.
	addr := "127.0.0.1:" + strconv.Itoa(port)
	item.waitItem(t, "Proxy on", "the proxy checked", func(m menuItem) bool { return m.Checked })
	var labels []string
	for _, m := range item.layout(t) {
		labels = append(labels, m.Label)
	}
	want := []string{"Not signed in", "Sign in with Claude", "Proxy on " + addr, "Start at login", "Open dashboard", "Open config file", "Reload config", "Open log", "Show proxy address", "Quit"}
	if strings.Join(labels, "|") != strings.Join(want, "|") {
		t.Fatalf("menu = %q, want %q", labels, want)
	}
	if status, _ := item.item(t, "Not signed in"); status.Enabled {
		t.Error("the status line is clickable")
	}
	if m, _ := item.item(t, "Start at login"); m.Toggle != "checkmark" || m.Checked {
		t.Errorf("Start at login = %+v, want an unchecked checkbox", m)
	}
	if !healthy(port) {
		t.Fatal("the proxy does not answer /health although its box is checked")
	}
	// A tray has no terminal: it logs to the OS's place, 0600 in a 0700 directory.
	logFile := filepath.Join(home, ".local", "state", "ccmux", "ccmux.log")
	testsupport.Eventually(t, "the tray's log file", 5*time.Second, func() bool {
		data, err := os.ReadFile(logFile)
		return err == nil && strings.Contains(string(data), "starting the tray")
	})
	for path, want := range map[string]os.FileMode{logFile: 0o600, filepath.Dir(logFile): 0o700} {
		if fi, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}

	// Sign in: the stub xdg-open follows the login URL to the fake server.
	item.click(t, "Sign in with Claude")
	status := item.waitItem(t, "Signed in", "the status line to say signed in", func(menuItem) bool { return true })
	if !strings.HasPrefix(status.Label, "Signed in as user@example.com") {
		t.Errorf("status line = %q, want Signed in as user@example.com…", status.Label)
	}
	if _, ok := item.item(t, "Sign out"); !ok {
		t.Error("no Sign out item after signing in")
	}
	tokens := filepath.Join(home, ".claude-code-mux", "oauth_tokens.json")
	fi, err := os.Stat(tokens)
	if err != nil {
		t.Fatalf("no token file after sign-in: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	testsupport.Eventually(t, `the "Signed in to Claude" notification`, 10*time.Second, func() bool {
		_, ok := d.notes.find("Signed in to Claude")
		return ok
	})
	n, _ := d.notes.find("Signed in to Claude")
	if n.App != "ccmux" {
		t.Errorf("notification app name %q, want ccmux", n.App)
	}
	if _, ok := n.Hints["image-data"]; !ok {
		t.Error("the notification carries no icon (image-data hint)")
	}

	// Proxy off: the port closes; on: it answers again.
	item.click(t, "Proxy on")
	item.waitItem(t, "Proxy on", "the proxy unchecked", func(m menuItem) bool { return !m.Checked && m.Enabled })
	testsupport.Eventually(t, "the proxy port to close", 10*time.Second, func() bool { return closed(port) })
	item.click(t, "Proxy on")
	item.waitItem(t, "Proxy on", "the proxy checked", func(m menuItem) bool { return m.Checked && m.Enabled })
	testsupport.Eventually(t, "the proxy to answer", 10*time.Second, func() bool { return healthy(port) })

	// Start at login writes and removes the XDG autostart entry.
	desktop := filepath.Join(home, ".config", "autostart", "ccmux.desktop")
	item.click(t, "Start at login")
	item.waitItem(t, "Start at login", "Start at login checked", func(m menuItem) bool { return m.Checked && m.Enabled })
	entry, err := os.ReadFile(desktop)
	if err != nil {
		t.Fatalf("no autostart entry after checking Start at login: %v", err)
	}
	// The default config file: the entry needs no --config.
	if args := desktopExec(t, entry); len(args) != 1 || args[0] != testsupport.Binary(t) {
		t.Errorf("autostart entry runs %q, want [%q]", args, testsupport.Binary(t))
	}
	item.click(t, "Start at login")
	item.waitItem(t, "Start at login", "Start at login unchecked", func(m menuItem) bool { return !m.Checked && m.Enabled })
	if _, err := os.Stat(desktop); !os.IsNotExist(err) {
		t.Errorf("the autostart entry is still there after unchecking: %v", err)
	}

	// The failing refresh is told once, however often the refresher retries.
	testsupport.Eventually(t, "a refresh-failure notification", 20*time.Second, func() bool {
		_, ok := d.notes.find("Claude sign-in could not be refreshed")
		return ok
	})
	item.waitItem(t, "Signed in as", "still signed in", func(menuItem) bool { return true })

	// The panel restarts after notifications went through the shared
	// connection: the item must register with the new watcher.
	d.watcher.conn.Close()
	restarted := startWatcher(t, d.bus)
	select {
	case sender := <-restarted.regs:
		if sender != appName {
			t.Errorf("re-registration came from %s, want the app %s", sender, appName)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the item did not register with the restarted panel")
	}

	// Nothing the user sees or the app prints holds a token.
	var seen []string
	for _, m := range item.layout(t) {
		seen = append(seen, m.Label)
	}
	for _, m := range d.notes.all() {
		seen = append(seen, m.Summary, m.Body)
	}
	seen = append(seen, app.out.String())
	for _, secret := range oauth.Secrets() {
		for _, s := range seen {
			if strings.Contains(s, secret) {
				t.Fatalf("a token value appears in the tray, a notification or the output")
			}
		}
	}
	if oauth.RefreshCount() == 0 {
		t.Error("the refresher never tried to refresh")
	}
	var summaries []string
	for _, m := range d.notes.all() {
		summaries = append(summaries, m.Summary)
	}
	t.Logf("%d refresh attempts; notifications: %q", oauth.RefreshCount(), summaries)
	if n := countSummary(d.notes.all(), "Claude sign-in could not be refreshed"); n != 1 {
		t.Errorf("%d refresh-failure notifications for one failure streak (%d refresh attempts), want 1", n, oauth.RefreshCount())
	}

	// Quit stops the proxy and exits 0.
	item.click(t, "Quit")
	if code := app.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after Quit, want 0", code)
	}
	if !closed(port) {
		t.Error("the proxy port is still open after Quit")
	}
	if out := app.out.String(); strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("output has a panic:\n%s", out)
	}
}

func countSummary(ns []notification, summary string) int {
	n := 0
	for _, m := range ns {
		if m.Summary == summary {
			n++
		}
	}
	return n
}

// TestTraySIGTERM: SIGTERM quits like the Quit item: proxy stopped, exit 0.
func TestTraySIGTERM(t *testing.T) {
	d := newDesktop(t)
	home := t.TempDir()
	port := testsupport.FreePort(t)
	writeConfig(t, home, port, "")
	app, item := d.start(t, home)
	item.waitItem(t, "Proxy on", "the proxy checked", func(m menuItem) bool { return m.Checked })
	testsupport.Eventually(t, "the proxy to answer", 10*time.Second, func() bool { return healthy(port) })

	app.cmd.Process.Signal(syscall.SIGTERM)
	if code := app.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
	if !closed(port) {
		t.Error("the proxy port is still open after SIGTERM")
	}
}

// TestNoSessionBus: without a session bus the app says so in one line and
// runs headless; it never panics.
func TestNoSessionBus(t *testing.T) {
	home := t.TempDir()
	port := testsupport.FreePort(t)
	writeConfig(t, home, port, "")
	app := startApp(t, home, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(home, "no-bus-here"))
	testsupport.Eventually(t, "the proxy to answer", 20*time.Second, func() bool { return healthy(port) })
	out := app.out.String()
	if !strings.Contains(out, "no system tray available") || !strings.Contains(out, "running headless") || !strings.Contains(out, "D-Bus session bus") {
		t.Errorf("output does not explain the missing tray:\n%s", out)
	}
	app.cmd.Process.Signal(syscall.SIGTERM)
	if code := app.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\n%s", code, app.out.String())
	}
	if out := app.out.String(); strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("output has a panic:\n%s", out)
	}
}
