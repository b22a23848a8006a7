//go:build linux

package tray

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// TestNoTrayHostRunsHeadless: a session bus with nothing that shows tray
// icons (GNOME without the AppIndicator extension). After waiting for a
// late panel the real binary says in one sentence what is missing and how
// to get it, then serves the proxy headless and says where; SIGTERM stops
// it cleanly.
func TestNoTrayHostRunsHeadless(t *testing.T) {
	bus := privateBus(t) // no StatusNotifierWatcher on it, none activatable
	home := t.TempDir()
	port := testsupport.FreePort(t)
	writeConfig(t, home, port, "")
	app := startApp(t, home, "DBUS_SESSION_BUS_ADDRESS="+bus)
	testsupport.Eventually(t, "the headless proxy", 30*time.Second, func() bool { return healthy(port) })
	out := app.out.String()
	var told []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "org.kde.StatusNotifierWatcher") {
			told = append(told, line)
		}
	}
	if len(told) != 1 || !strings.Contains(told[0], "AppIndicator and KStatusNotifierItem Support") || !strings.Contains(told[0], "headless") {
		t.Errorf("want one line naming the missing watcher, the GNOME extension and headless; got %q", told)
	}
	if !strings.Contains(out, "proxy listening") || !strings.Contains(out, "127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("the headless proxy did not say where it listens:\n%s", out)
	}
	if err := app.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := app.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0", code)
	}
}
