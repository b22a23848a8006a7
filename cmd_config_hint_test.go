package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"ccmux/config"
)

// TestCLIConfigCheckHintNamesTheConfig: with --config, the commands config
// check suggests for Claude Code name that file, or they would reach the
// default config's proxy (or none).
func TestCLIConfigCheckHintNamesTheConfig(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sh quoting")
	}
	isolateHome(t)
	path := filepath.Join(t.TempDir(), "my ccmux.toml")
	if err := os.WriteFile(path, []byte(config.DefaultTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "config", "check", "--config", path)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	q := "'" + path + "'"
	want := "\nClaude Code: ccmux --config " + q + " claude (or eval \"$(ccmux --config " + q + " env)\", then claude)\n"
	if !strings.Contains(r.stdout, want) {
		t.Errorf("summary lacks %q:\n%s", want, r.stdout)
	}
}
