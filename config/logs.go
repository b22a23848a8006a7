package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// LogPath is where the tray (and a start at login, which has no terminal)
// writes its log: $XDG_STATE_HOME/ccmux/ccmux.log (default
// ~/.local/state/ccmux) on Linux, ~/Library/Logs/ccmux/ccmux.log on macOS,
// %LOCALAPPDATA%\ccmux\ccmux.log on Windows.
func LogPath() (string, error) {
	return logPath(runtime.GOOS, os.Getenv, os.UserHomeDir)
}

func logPath(goos string, getenv func(string) string, home func() (string, error)) (string, error) {
	if goos == "windows" {
		if dir := getenv("LOCALAPPDATA"); dir != "" {
			return filepath.Join(dir, "ccmux", "ccmux.log"), nil
		}
	}
	if goos == "linux" || goos == "freebsd" || goos == "openbsd" || goos == "netbsd" {
		// The spec ignores a relative value.
		if dir := getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
			return filepath.Join(dir, "ccmux", "ccmux.log"), nil
		}
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("finding the home directory for the log file: %w", err)
	}
	switch goos {
	case "darwin":
		return filepath.Join(h, "Library", "Logs", "ccmux", "ccmux.log"), nil
	case "windows":
		return filepath.Join(h, "AppData", "Local", "ccmux", "ccmux.log"), nil
	}
	return filepath.Join(h, ".local", "state", "ccmux", "ccmux.log"), nil
}

// ParseLogLevel reads server.log_level (or --log-level): error, warn, info
// or debug, case-insensitive; claude-code-mux's trace is debug, "" is info.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "error":
		return slog.LevelError, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "debug", "trace":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("want error, warn, info, debug or trace, got %q", s)
}
