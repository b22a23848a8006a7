package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/config"
	"ccmux/internal/testsupport"
)

// TestMain lets the test binary also play the programs ccmux starts: the
// browser (xdg-open) and Claude Code. It builds ccmux only for the tests
// that need a process of its own (signals).
func TestMain(m *testing.M) {
	testsupport.ActAsBrowser()
	if os.Getenv(stubClaudeEnv) == "1" {
		os.Exit(stubClaude(os.Args[1:]))
	}
	code := m.Run()
	testsupport.Cleanup()
	os.Exit(code)
}

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
	port := testsupport.FreePort(t)
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

func TestCLIHelpVersionAndUnknownFlags(t *testing.T) {
	home := isolateHome(t)
	var version bytes.Buffer
	if code := run([]string{"version"}, strings.NewReader(""), &version, &bytes.Buffer{}); code != 0 || version.Len() == 0 {
		t.Fatalf("ccmux version: exit %d, %q", code, version.String())
	}
	loginHelp := []string{
		"Usage: ccmux login [--provider ID] [--manual] [--console]",
		"--provider ID  sign in to the token-store ID",
		"--manual ", "print the URL and read the code#state you paste",
		"--console ", "create an Anthropic Console API key",
		"--config PATH", "-h, --help",
	}
	tests := []struct {
		args     []string
		code     int
		stdout   []string // each appears on stdout
		inStderr string
	}{
		{[]string{"help", "login"}, 0, loginHelp, ""},
		{[]string{"login", "--help"}, 0, loginHelp, ""},
		{[]string{"login", "-h"}, 0, loginHelp, ""},
		{[]string{"--config", "x.toml", "login", "-help"}, 0, loginHelp, ""},
		{[]string{"logout", "-h"}, 0, []string{"Usage: ccmux logout [--provider ID]", "--provider ID  sign out of the token-store ID"}, ""},
		{[]string{"start", "--help"}, 0, []string{"Usage: ccmux start", "Run the proxy only", "--config PATH"}, ""},
		{[]string{"tray", "-h"}, 0, []string{"Usage: ccmux tray", "--config PATH"}, ""},
		{[]string{"config", "--help"}, 0, []string{"Usage: ccmux config check", "Validate the config file"}, ""},
		{[]string{"config", "check", "-h"}, 0, []string{"Usage: ccmux config check"}, ""},
		{[]string{"autostart", "--help"}, 0, []string{"Usage: ccmux autostart on|off|status"}, ""},
		{[]string{"help", "status"}, 0, []string{"Usage: ccmux status"}, ""},
		{[]string{"help", "help"}, 0, []string{"Usage: ccmux help [COMMAND]"}, ""},
		{[]string{"help", "autostart"}, 0, []string{"Usage: ccmux autostart on|off|status", "--config PATH when a config", "go build, go install"}, ""},
		{[]string{"version", "--help"}, 0, []string{"Usage: ccmux version"}, ""},
		{[]string{"--help"}, 0, []string{"Usage: ccmux [--config PATH] [COMMAND]", "ccmux COMMAND --help"}, ""},
		{[]string{"-h"}, 0, []string{"Usage: ccmux [--config PATH] [COMMAND]"}, ""},
		{[]string{"--version"}, 0, []string{version.String()}, ""},
		{[]string{"-v"}, 0, []string{version.String()}, ""},
		{[]string{"--port", "1"}, 2, nil, "ccmux: unknown flag --port (see ccmux --help)"},
		{[]string{"start", "--port", "1"}, 2, nil, "ccmux start: unknown flag --port (see ccmux help start)"},
		{[]string{"start", "-port=1"}, 2, nil, "ccmux start: unknown flag -port (see"},
		{[]string{"login", "--manual", "--providr=x"}, 2, nil, "ccmux login: unknown flag --providr (see"},
		{[]string{"config", "check", "--verbose"}, 2, nil, "ccmux config: unknown flag --verbose (see"},
		{[]string{"login", "--provider"}, 2, nil, "ccmux login: --provider needs a value (see"},
		{[]string{"help", "nope"}, 2, nil, `unknown command "nope"`},
	}
	for _, tt := range tests {
		r := runCLI(t, tt.args...)
		ok := r.code == tt.code && strings.Contains(r.stderr, tt.inStderr)
		for _, want := range tt.stdout {
			ok = ok && strings.Contains(r.stdout, want)
		}
		if tt.code == 0 && r.stderr != "" || tt.code != 0 && strings.Count(r.stderr, "\n") != 1 {
			ok = false
		}
		if !ok {
			t.Errorf("ccmux %v: exit %d, want %d with %q on stdout and %q on stderr\nstdout: %s\nstderr: %s",
				tt.args, r.code, tt.code, tt.stdout, tt.inStderr, r.stdout, r.stderr)
		}
	}
	// Help does nothing else: no default config written, no login started.
	if _, err := os.Stat(filepath.Join(home, ".claude-code-mux")); err == nil {
		t.Error("asking for help wrote to ~/.claude-code-mux")
	}
}

// --log-level (anywhere on the line) wins over server.log_level; a bad
// value is a usage error naming the flag.
func TestCLILogLevel(t *testing.T) {
	home := isolateHome(t)
	path := writeConfig(t, home, testsupport.FreePort(t), "")
	if r := runCLI(t, "config", "check", "--config", path, "--log-level", "verbose"); r.code != 2 || !strings.Contains(r.stderr, "--log-level") {
		t.Errorf("bad --log-level: exit %d, %q", r.code, r.stderr)
	}
	var e env
	e.stderr = io.Discard
	if _, err := e.takeGlobalFlags([]string{"status", "--log-level=debug", "--config", path}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.loadConfig(); err != nil || e.level.Level() != slog.LevelDebug {
		t.Errorf("--log-level=debug: level %v, %v", e.level.Level(), err)
	}
	if !e.logger().Enabled(context.Background(), slog.LevelDebug) {
		t.Error("the logger drops debug lines at --log-level=debug")
	}
}

func TestCLIUsage(t *testing.T) {
	isolateHome(t)
	tests := []struct {
		args       []string
		code       int
		out, inErr string
	}{
		{[]string{"--help"}, 0, "Usage: ccmux [--config PATH] [COMMAND]", ""},
		{[]string{"help", "login"}, 0, "ccmux login [--provider ID] [--manual] [--console] [--config PATH]", ""},
		{[]string{"version"}, 0, "ccmux ", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"--bogus"}, 2, "", "unknown flag --bogus"},
		{[]string{"login", "--providr", "x"}, 2, "", "ccmux login: unknown flag --providr"},
		{[]string{"config"}, 2, "", "want: ccmux config check"},
		{[]string{"autostart", "maybe"}, 2, "", `want on, off or status, got "maybe"`},
		{[]string{"help", "nope"}, 2, "", `unknown command "nope"`},
	}
	for _, tt := range tests {
		r := runCLI(t, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.out) || !strings.Contains(r.stderr, tt.inErr) {
			t.Errorf("ccmux %v: exit %d\nstdout: %s\nstderr: %s", tt.args, r.code, r.stdout, r.stderr)
		}
		if tt.code != 0 && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("ccmux %v: want one line on stderr, got %q", tt.args, r.stderr)
		}
	}
}

// ccmux --help names every command and every flag, and so does the
// README's command table: a command or flag added without them fails here.
func TestHelpAndREADMEShowEveryCommandAndFlag(t *testing.T) {
	isolateHome(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	usage := runCLI(t, "--help").stdout
	for _, c := range commands {
		if !strings.Contains(usage, "\n  "+c.name+" ") {
			t.Errorf("ccmux --help lacks the command %s", c.name)
		}
		if !strings.Contains(string(readme), "`ccmux "+c.name) {
			t.Errorf("README.md lacks the command `ccmux %s`", c.name)
		}
		help := runCLI(t, "help", c.name)
		if help.code != 0 {
			t.Fatalf("ccmux help %s: exit %d, %s", c.name, help.code, help.stderr)
		}
		for _, line := range strings.Split(help.stdout, "\n") {
			f, ok := strings.CutPrefix(line, "  --")
			if !ok {
				continue
			}
			flag := "--" + strings.Fields(f)[0]
			if !strings.Contains(usage, flag) {
				t.Errorf("ccmux --help lacks %s's flag %s", c.name, flag)
			}
			if !strings.Contains(string(readme), flag) {
				t.Errorf("README.md lacks %s's flag %s", c.name, flag)
			}
		}
	}
}

// runBinary runs the built ccmux in dir with exactly env (nothing inherited).
func runBinary(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	return runBinaryIn(t, dir, env, "", args...)
}

// runBinaryIn is runBinary with stdin.
func runBinaryIn(t *testing.T, dir string, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	// A command that waits for something that never comes fails the test
	// instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testsupport.Binary(t), args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{stdout.String(), stderr.String(), code}
}
