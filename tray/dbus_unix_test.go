//go:build !darwin && !windows

package tray

import (
	"path/filepath"
	"strings"
	"testing"
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
