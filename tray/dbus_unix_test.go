//go:build !darwin && !windows

package tray

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAvailableExplainsMissingBus(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, addr, runtimeDir, want string
	}{
		{"unset", "", "", "DBUS_SESSION_BUS_ADDRESS is not set"},
		{"unset, no socket in XDG_RUNTIME_DIR", "", dir, "DBUS_SESSION_BUS_ADDRESS is not set"},
		{"nothing listening", "unix:path=" + filepath.Join(dir, "bus"), "", "cannot reach the D-Bus session bus at unix:path=" + filepath.Join(dir, "bus")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", tt.addr)
			t.Setenv("XDG_RUNTIME_DIR", tt.runtimeDir)
			err := Available()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Available() = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// A bus without a StatusNotifierWatcher (GNOME without the AppIndicator
// extension) has no tray host: waitForHost says what is missing after its
// wait, and sees a panel that comes up during the wait or was already there.
func TestWaitForHost(t *testing.T) {
	bus := privateBus(t)
	conn := connect(t, bus)

	err := waitForHost(conn, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "org.kde.StatusNotifierWatcher") || !strings.Contains(err.Error(), "GNOME") {
		t.Fatalf("no watcher: %v, want an error naming the watcher and the GNOME extension", err)
	}

	done := make(chan error, 1)
	go func() { done <- waitForHost(conn, 20*time.Second) }()
	startWatcher(t, bus)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("a watcher that appeared during the wait: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a watcher that appeared during the wait was not seen")
	}

	if err := waitForHost(conn, time.Millisecond); err != nil {
		t.Errorf("a watcher already there: %v", err)
	}
}
