package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ccmux/config"
)

// `ccmux config check` names an out-of-range duration with its line, and
// refuses a config nested thousands deep at once.
func TestCLIConfigCheckRangesAndDepth(t *testing.T) {
	isolateHome(t)
	dir := t.TempDir()
	for _, tt := range []struct{ name, toml, want string }{
		{"overflowing timeout", "[server.timeouts]\napi_timeout_ms = 18446744073710\n" + config.DefaultTOML,
			": line 2: server.timeouts.api_timeout_ms: want milliseconds from 1 to 86400000 (24 hours)"},
		{"deep", "x = " + strings.Repeat("{a=", 5000) + "1" + strings.Repeat("}", 5000) + "\n" + config.DefaultTOML,
			": line 1: x: nested deeper than 32 levels"},
	} {
		path := filepath.Join(dir, tt.name+".toml")
		if err := os.WriteFile(path, []byte(tt.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, "--config", path, "config", "check")
		if r.code != 1 || !strings.HasPrefix(r.stderr, "ccmux: "+path+tt.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, want 1 and one line starting %q; stderr:\n%s", tt.name, r.code, path+tt.want, r.stderr)
		}
	}
}
