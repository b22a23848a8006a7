package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ccmux/config"
)

// newReloader loads the config at path and wires a reloader to a proxy
// (not listening) and an auth client for it, as start does.
func newReloader(t *testing.T, path string) (*reloader, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	client, err := (&env{}).newAuth(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := newProxy(cfg, client, log)
	if _, err := srv.Handler(); err != nil {
		t.Fatal(err)
	}
	return &reloader{path: path, srv: srv, client: client, log: log}, logs
}

// An invalid file keeps the running config; the reload's error is what
// `ccmux config check` prints for the file, and it is logged once, with
// the file's path.
func TestReloadRefusesWhatConfigCheckRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(text string) string
	}{
		{"syntax error", func(s string) string { return s + "\n[server\n" }},
		{"type errors", func(s string) string {
			return strings.Replace(strings.Replace(s, `name = "claude-max"`, "name = 7", 1), `default = "claude-sonnet-4-5"`, "default = true", 1)
		}},
		{"server key from an unset variable", func(s string) string {
			return strings.Replace(s, `# api_key = "$CCMUX_API_KEY"`, `api_key = "$CCMUX_RELOAD_TEST_UNSET"`, 1)
		}},
		{"non-loopback host without a key", func(s string) string {
			return strings.Replace(s, `host = "127.0.0.1"`, `host = "0.0.0.0"`, 1)
		}},
		{"port 0", func(s string) string { return strings.Replace(s, "port = 13456", "port = 0", 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateHome(t)
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, []byte(config.DefaultTOML), 0o600); err != nil {
				t.Fatal(err)
			}
			r, logs := newReloader(t, path)
			running := r.srv.CurrentConfig()
			if err := os.WriteFile(path, []byte(tt.edit(config.DefaultTOML)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := r.Reload(context.Background())
			if err == nil {
				t.Fatal("Reload accepted the file")
			}
			if r.srv.CurrentConfig() != running {
				t.Error("the refused file became the running config")
			}
			check := runCLI(t, "config", "check", "--config", path)
			var want []string
			for _, line := range strings.Split(strings.TrimSpace(check.stderr), "\n") {
				want = append(want, strings.TrimPrefix(line, "ccmux: "))
			}
			if check.code != 1 || err.Error() != strings.Join(want, "\n") {
				t.Errorf("Reload error:\n%s\nconfig check (exit %d):\n%s", err, check.code, check.stderr)
			}
			if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "config not reloaded") || !strings.Contains(logs.String(), "path="+path) {
				t.Errorf("want one log line naming %s, got %d:\n%s", path, n, logs.String())
			}
		})
	}
}

// A valid file becomes the running config and the log says what changed.
func TestReloadAppliesAValidFile(t *testing.T) {
	isolateHome(t)
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(config.DefaultTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	r, logs := newReloader(t, path)
	running := r.srv.CurrentConfig()
	added := config.DefaultTOML + `
[[providers]]
name = "backup"
provider_type = "anthropic"
auth_type = "apikey"
api_key = "sk-ant-api03-reload-test"
base_url = "http://127.0.0.1:9"
models = ["claude-*"]
`
	if err := os.WriteFile(path, []byte(strings.Replace(added, `default = "claude-sonnet-4-5"`, `default = "claude-opus-4-5"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := r.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.srv.CurrentConfig() == running || len(r.srv.CurrentConfig().Providers) != 2 {
		t.Fatal("the reloaded file is not the running config")
	}
	if want := "2 providers (added backup); default model claude-opus-4-5"; changed != want {
		t.Errorf("changed = %q, want %q", changed, want)
	}
	if !strings.Contains(logs.String(), `msg="config reloaded"`) || !strings.Contains(logs.String(), "added=[backup]") || strings.Contains(logs.String(), "sk-ant-api03") {
		t.Errorf("reload log:\n%s", logs.String())
	}
}

// server.log_level follows a reload, unless --log-level set the level.
func TestReloadFollowsTheLogLevel(t *testing.T) {
	for _, fixed := range []bool{false, true} {
		isolateHome(t)
		path := filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(path, []byte(config.DefaultTOML), 0o600); err != nil {
			t.Fatal(err)
		}
		r, _ := newReloader(t, path)
		var level slog.LevelVar // info, as loadConfig leaves it for the default file
		r.level, r.levelFixed = &level, fixed
		debug := strings.Replace(config.DefaultTOML, "[server]\n", "[server]\nlog_level = \"debug\"\n", 1)
		if err := os.WriteFile(path, []byte(debug), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]slog.Level{false: slog.LevelDebug, true: slog.LevelInfo}[fixed]; level.Level() != want {
			t.Errorf("--log-level given: %v; level after the reload %v, want %v", fixed, level.Level(), want)
		}
	}
}
