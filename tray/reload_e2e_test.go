//go:build linux

package tray

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// Reload config, clicked in the real menu: an invalid file is told in a
// notification with what `ccmux config check` prints and the proxy stays;
// a valid one on another port moves the proxy and the "Proxy on" line.
// SIGHUP to the tray does the same.
func TestTrayReloadConfig(t *testing.T) {
	d := newDesktop(t)
	home := t.TempDir()
	port := testsupport.FreePort(t)
	writeConfig(t, home, port, "")
	app, item := d.start(t, home)
	item.waitItem(t, "Proxy on 127.0.0.1:"+strconv.Itoa(port), "the proxy checked", func(m menuItem) bool { return m.Checked })
	if m, ok := item.item(t, "Reload config"); !ok || !m.Enabled {
		t.Fatalf("Reload config = %+v, %v; want an enabled item", m, ok)
	}

	// An invalid file.
	writeConfig(t, home, port, "\n[[providers]]\nname = 7\n")
	item.click(t, "Reload config")
	testsupport.Eventually(t, `the "Config not reloaded" notification`, 10*time.Second, func() bool {
		_, ok := d.notes.find("Config not reloaded")
		return ok
	})
	n, _ := d.notes.find("Config not reloaded")
	check := exec.Command(testsupport.Binary(t), "config", "check")
	check.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "CCMUX_CONFIG=")
	out, _ := check.CombinedOutput()
	first, _, _ := strings.Cut(string(out), "\n")
	if want := strings.TrimPrefix(first, "ccmux: "); n.Body != want || want == "" {
		t.Errorf("notification text %q, want what ccmux config check prints: %q", n.Body, want)
	}
	if !healthy(port) {
		t.Error("the proxy stopped answering after a refused reload")
	}

	// A valid file on another port.
	moved := testsupport.FreePort(t)
	writeConfig(t, home, moved, "")
	item.click(t, "Reload config")
	item.waitItem(t, "Proxy on 127.0.0.1:"+strconv.Itoa(moved), "the Proxy on line to show the new port", func(m menuItem) bool { return m.Checked })
	testsupport.Eventually(t, "the proxy on the new port", 10*time.Second, func() bool { return healthy(moved) })
	testsupport.Eventually(t, "the old port to close", 10*time.Second, func() bool { return closed(port) })
	testsupport.Eventually(t, `the "Config reloaded" notification`, 10*time.Second, func() bool {
		n, ok := d.notes.find("Config reloaded")
		return ok && strings.Contains(n.Body, "moved to 127.0.0.1:"+strconv.Itoa(moved))
	})

	// SIGHUP: the same reload, without a click.
	again := testsupport.FreePort(t)
	writeConfig(t, home, again, "")
	app.cmd.Process.Signal(syscall.SIGHUP)
	item.waitItem(t, "Proxy on 127.0.0.1:"+strconv.Itoa(again), "the Proxy on line after SIGHUP", func(m menuItem) bool { return m.Checked })
	testsupport.Eventually(t, "the proxy on the port SIGHUP moved it to", 10*time.Second, func() bool { return healthy(again) })

	item.click(t, "Quit")
	if code := app.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after Quit, want 0", code)
	}
	logFile := filepath.Join(home, ".local", "state", "ccmux", "ccmux.log")
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(string(data), "config not reloaded"); c != 1 {
		t.Errorf("the log has %d lines about the refused reload, want 1:\n%s", c, data)
	}
}
