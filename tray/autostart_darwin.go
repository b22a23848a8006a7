package tray

import (
	"os"
	"path/filepath"
)

// platformAutostart is the LaunchAgent in ~/Library/LaunchAgents.
func platformAutostart() autostarter {
	home, _ := os.UserHomeDir()
	return launchAgent{dir: filepath.Join(home, "Library", "LaunchAgents")}
}
