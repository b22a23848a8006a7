package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"ccmux/config"
)

// cliResult is what one in-process `ccmux ARGS…` printed and returned.
type cliResult struct {
	stdout, stderr string
	code           int
}

// isolateHome points the home directory (and so the default config and
// token store) at a fresh temporary directory, so no test touches the
// real one.
func isolateHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("CCMUX_CONFIG", "")
	return home
}

func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(""), &stdout, &stderr)
	return cliResult{stdout.String(), stderr.String(), code}
}

// unusedPort is a loopback port nothing listens on (it was free a moment ago).
func unusedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// writeConfig writes the default config with the proxy on port to dir.
func writeConfig(t *testing.T, dir string, port int, extra string) string {
	t.Helper()
	text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1)
	if text == config.DefaultTOML {
		t.Fatal("the default config no longer has port = 13456")
	}
	path := filepath.Join(dir, "custom.toml")
	if err := os.WriteFile(path, []byte(text+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLIGlobalFlagsBeforeOrAfterTheCommand(t *testing.T) {
	home := isolateHome(t)
	port := unusedPort(t)
	file := writeConfig(t, t.TempDir(), port, "")
	baseURL := "http://127.0.0.1:" + strconv.Itoa(port)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"config", "check", "--config", file}, file + " is valid"},
		{[]string{"config", "check", "--config=" + file}, file + " is valid"},
		{[]string{"config", "--config", file, "check"}, file + " is valid"},
		{[]string{"--config", file, "config", "check"}, file + " is valid"},
		{[]string{"-config", file, "config", "check"}, file + " is valid"},
		{[]string{"status", "--config", file}, baseURL},
		{[]string{"--config", file, "status"}, baseURL},
	}
	for _, tt := range tests {
		r := runCLI(t, tt.args...)
		if r.code == 2 || r.code == 1 || !strings.Contains(r.stdout, tt.want) {
			t.Errorf("ccmux %v: exit %d, want output with %q\nstdout: %s\nstderr: %s", tt.args, r.code, tt.want, r.stdout, r.stderr)
		}
	}
	// The default config was never used, so never written.
	if _, err := os.Stat(filepath.Join(home, ".claude-code-mux", "config.toml")); err == nil {
		t.Error("a command given --config after its name wrote the default config")
	}
	for _, args := range [][]string{{"status", "--config"}, {"config", "check", "--config="}} {
		r := runCLI(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--config needs a value") {
			t.Errorf("ccmux %v: exit %d, stderr %q; want exit 2 naming --config", args, r.code, r.stderr)
		}
	}
}
