package config

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
)

func TestLogPath(t *testing.T) {
	home := func() (string, error) { return "/home/u", nil }
	tests := []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", nil, "/home/u/.local/state/ccmux/ccmux.log"},
		{"linux", map[string]string{"XDG_STATE_HOME": "/var/st"}, "/var/st/ccmux/ccmux.log"},
		{"linux", map[string]string{"XDG_STATE_HOME": "relative"}, "/home/u/.local/state/ccmux/ccmux.log"},
		{"darwin", map[string]string{"XDG_STATE_HOME": "/var/st"}, "/home/u/Library/Logs/ccmux/ccmux.log"},
		{"windows", map[string]string{"LOCALAPPDATA": "/c/Users/u/AppData/Local"}, "/c/Users/u/AppData/Local/ccmux/ccmux.log"},
	}
	for _, tt := range tests {
		got, err := logPath(tt.goos, func(k string) string { return tt.env[k] }, home)
		if err != nil || got != filepath.FromSlash(tt.want) {
			t.Errorf("%s %v: %q, %v; want %q", tt.goos, tt.env, got, err, tt.want)
		}
	}
	if _, err := logPath("linux", func(string) string { return "" }, func() (string, error) { return "", errors.New("no home") }); err == nil {
		t.Error("no home: want an error")
	}
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"": slog.LevelInfo, "info": slog.LevelInfo, "ERROR": slog.LevelError, "warn": slog.LevelWarn, "debug": slog.LevelDebug, "trace": slog.LevelDebug} {
		if got, err := ParseLogLevel(in); err != nil || got != want {
			t.Errorf("ParseLogLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLogLevel("verbose"); err == nil {
		t.Error(`"verbose": want an error`)
	}
	if _, err := Parse("c.toml", []byte("[server]\nlog_level = \"verbose\"\n"+base)); err == nil {
		t.Error(`server.log_level = "verbose": want a config error`)
	}
}
