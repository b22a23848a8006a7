//go:build !darwin && !windows

package tray

import "os"

// platformAutostart is the XDG autostart entry.
func platformAutostart() autostarter {
	home, _ := os.UserHomeDir()
	return newXDGAutostart(os.Getenv, home)
}
