//go:build linux

package tray

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// desktopExec is the command line a desktop entry's Exec key runs.
func desktopExec(t *testing.T, entry []byte) []string {
	t.Helper()
	for _, line := range strings.Split(string(entry), "\n") {
		if v, ok := strings.CutPrefix(line, "Exec="); ok {
			return execArgs(t, v)
		}
	}
	t.Fatalf("the entry has no Exec key:\n%s", entry)
	return nil
}

// A tray running on a config file other than the default one (here through
// CCMUX_CONFIG, which a login session does not have) writes an entry that
// starts it on that file, and reads that entry back as on.
func TestTrayStartAtLoginRecordsTheConfig(t *testing.T) {
	d := newDesktop(t)
	home := t.TempDir()
	port := testsupport.FreePort(t)
	cfg := filepath.Join(home, "My Configs", "work $HOME 100%.toml")
	os.MkdirAll(filepath.Dir(cfg), 0o700)
	if err := os.Rename(writeConfig(t, home, port, ""), cfg); err != nil {
		t.Fatal(err)
	}
	app, item := d.start(t, home, "CCMUX_CONFIG="+cfg)
	item.waitItem(t, "Start at login", "Start at login unchecked", func(m menuItem) bool { return !m.Checked && m.Enabled })

	item.click(t, "Start at login")
	item.waitItem(t, "Start at login", "Start at login checked", func(m menuItem) bool { return m.Checked && m.Enabled })
	entry, err := os.ReadFile(filepath.Join(home, ".config", "autostart", "ccmux.desktop"))
	if err != nil {
		t.Fatalf("no autostart entry after checking Start at login: %v", err)
	}
	args := desktopExec(t, entry)
	if want := []string{testsupport.Binary(t), "--config", cfg}; !slices.Equal(args, want) {
		t.Fatalf("the entry runs %q, want %q", args, want)
	}

	// What the entry runs finds that config without CCMUX_CONFIG.
	check := exec.Command(args[0], append(args[1:], "config", "check")...)
	check.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	out, err := check.CombinedOutput()
	if err != nil || !strings.Contains(string(out), cfg+" is valid") {
		t.Errorf("the entry's command line with `config check`: %v\n%s", err, out)
	}

	// A second tray on the same files sees the entry as its own.
	app.cmd.Process.Kill()
	app.wait(t, 15*time.Second)
	_, item = d.start(t, home, "CCMUX_CONFIG="+cfg)
	item.waitItem(t, "Start at login", "Start at login checked at start", func(m menuItem) bool { return m.Checked && m.Enabled })
}

// The refusal is real in the built binary: run from the temp dir it was
// built in, the click is told why in a notification and the box stays off.
func TestTrayStartAtLoginRefusesATempBinary(t *testing.T) {
	d := newDesktop(t)
	home := t.TempDir()
	writeConfig(t, home, testsupport.FreePort(t), "")
	// The binary was built in this process's temp dir; the app now sees it as its own.
	_, item := d.start(t, home, "TMPDIR="+os.TempDir())
	item.waitItem(t, "Start at login", "Start at login unchecked", func(m menuItem) bool { return !m.Checked && m.Enabled })
	item.click(t, "Start at login")
	testsupport.Eventually(t, "the refusal notification", 10*time.Second, func() bool {
		_, ok := d.notes.find("Start at login")
		return ok
	})
	n, _ := d.notes.find("Start at login")
	for _, want := range []string{testsupport.Binary(t), "temporary directory", "go build", "go install"} {
		if !strings.Contains(n.Body, want) {
			t.Errorf("notification %q lacks %q", n.Body, want)
		}
	}
	item.waitItem(t, "Start at login", "Start at login still unchecked", func(m menuItem) bool { return !m.Checked && m.Enabled })
	if _, err := os.Stat(filepath.Join(home, ".config", "autostart", "ccmux.desktop")); !os.IsNotExist(err) {
		t.Errorf("an entry was written: %v", err)
	}
}
