package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/internal/testsupport"
)

// Every failure of the real binary is one line on stderr — one sentence,
// no log line repeating it — with the exit status the help promises:
// 1 for a failure, 2 for a command-line mistake.
func TestCLIFailuresPrintOneLine(t *testing.T) {
	testsupport.Binary(t)
	home, env := autostartHome(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("this is = not toml [\n"), 0o600)
	missing := filepath.Join(dir, "missing.toml")
	typo := filepath.Join(dir, "typo.toml")
	os.WriteFile(typo, []byte(strings.Replace(readDefaultConfig(t, testsupport.FreePort(t)), `auth_type = "oauth"`, `auth_type = "oath"`, 1)), 0o600)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	taken := writeConfigIn(t, dir, "taken.toml", busyPort)
	good := writeConfigIn(t, dir, "good.toml", testsupport.FreePort(t))
	unsetKey := filepath.Join(dir, "unset-key.toml")
	os.WriteFile(unsetKey, []byte(strings.Replace(readDefaultConfig(t, testsupport.FreePort(t)), "[server]\n", "[server]\napi_key = \"$CCMUX_TEST_UNSET\"\n", 1)), 0o600)
	oauth := authtest.NewServer()
	defer oauth.Close()
	fakeOAuth := filepath.Join(dir, "fake-oauth.toml")
	os.WriteFile(fakeOAuth, []byte(readDefaultConfig(t, testsupport.FreePort(t))+oauth.OAuthTOML("anthropic-max", "claude")), 0o600)

	// A token store that is not JSON, next to a valid config.
	corruptHome := t.TempDir()
	corruptEnv := append(append([]string{}, env...), "HOME="+corruptHome)
	os.MkdirAll(filepath.Join(corruptHome, ".claude-code-mux"), 0o700)
	os.WriteFile(filepath.Join(corruptHome, ".claude-code-mux", "oauth_tokens.json"), []byte(`{"anthropic-max": {broken`), 0o600)
	writeConfigIn(t, filepath.Join(corruptHome, ".claude-code-mux"), "config.toml", testsupport.FreePort(t))
	noPath := append(append([]string{}, env...), "PATH="+t.TempDir())
	// A `claude` that is there, so that the config is what fails.
	stubs := t.TempDir()
	os.WriteFile(filepath.Join(stubs, "claude"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
	withClaude := append(append([]string{}, env...), "PATH="+stubs)

	tests := []struct {
		name   string
		env    []string // nil: env
		args   []string
		code   int
		stderr string // the line says this
		stdin  string
	}{
		{"syntax error, status", nil, []string{"--config", bad, "status"}, 1, bad + ": line 1", ""},
		{"syntax error, start", nil, []string{"start", "--config", bad}, 1, bad + ": line 1", ""},
		{"syntax error, tray", nil, []string{"--config", bad}, 1, bad + ": line 1", ""},
		{"syntax error, login", nil, []string{"login", "--config", bad}, 1, bad + ": line 1", ""},
		{"syntax error, logout", nil, []string{"logout", "--config", bad}, 1, bad + ": line 1", ""},
		{"syntax error, config check", nil, []string{"config", "check", "--config", bad}, 1, bad + ": line 1", ""},
		{"syntax error, env", nil, []string{"env", "--config", bad}, 1, bad + ": line 1", ""},
		{"syntax error, claude", withClaude, []string{"--config", bad, "claude"}, 1, bad + ": line 1", ""},
		{"syntax error, autostart on", nil, []string{"autostart", "on", "--config", bad}, 1, bad + ": line 1", ""},
		{"wrong value", nil, []string{"config", "check", "--config", typo}, 1, `providers[0].auth_type`, ""},
		{"missing config, status", nil, []string{"status", "--config", missing}, 1, missing + " does not exist", ""},
		{"missing config, start", nil, []string{"start", "--config", missing}, 1, missing + " does not exist", ""},
		{"missing config, login", nil, []string{"login", "--config", missing}, 1, missing + " does not exist", ""},
		{"port in use", nil, []string{"start", "--config", taken}, 1, "127.0.0.1:" + strconv.Itoa(busyPort) + ": the address is already in use", ""},
		{"corrupt token store, status", corruptEnv, []string{"status"}, 1, "token store is not valid JSON", ""},
		{"corrupt token store, logout", corruptEnv, []string{"logout"}, 1, "token store is not valid JSON", ""},
		{"unknown provider, login", nil, []string{"login", "--provider", "nope", "--config", good}, 2, "--provider nope: not an oauth_provider", ""},
		{"unknown provider, logout", nil, []string{"logout", "--provider", "nope", "--config", good}, 2, "--provider nope: no login is stored under that id", ""},
		{"port in use, claude", withClaude, []string{"--config", taken, "claude"}, 1, "127.0.0.1:" + strconv.Itoa(busyPort) + ": the address is already in use", ""},
		{"unset api_key variable, env", nil, []string{"env", "--config", unsetKey}, 1, unsetKey + ": line 5: environment variable CCMUX_TEST_UNSET (server.api_key) is not set", ""},
		{"unset api_key variable, claude", withClaude, []string{"--config", unsetKey, "claude"}, 1, unsetKey + ": line 5: environment variable CCMUX_TEST_UNSET (server.api_key) is not set", ""},
		{"unset api_key variable, start", nil, []string{"start", "--config", unsetKey}, 1, unsetKey + ": line 5: environment variable CCMUX_TEST_UNSET (server.api_key) is not set", ""},
		{"no claude on PATH", noPath, []string{"claude", "--config", good}, 1, "cannot find Claude Code", ""},
		{"unknown command", nil, []string{"stop"}, 2, `unknown command "stop"`, ""},
		{"unknown flag", nil, []string{"status", "--verbose"}, 2, "unknown flag --verbose", ""},
		{"unknown shell", nil, []string{"env", "--shell", "tcsh", "--config", good}, 2, "tcsh", ""},
		{"autostart without a word", nil, []string{"autostart"}, 2, "on|off|status", ""},
		{"pasted code without state", nil, []string{"login", "--manual", "--config", fakeOAuth}, 1, "no code#state was pasted", "not-a-code\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.env
			if e == nil {
				e = env
			}
			r := runBinaryIn(t, home, e, tt.stdin, tt.args...)
			if tt.stdin != "" {
				// The lines up to the last prompt say what to do; after
				// it (and the end of its line) comes the failure.
				r.stderr = strings.TrimPrefix(r.stderr[strings.LastIndex(r.stderr, "Code: ")+len("Code: "):], "\n")
			}
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstderr: %s", r.code, tt.code, r.stderr)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.HasPrefix(r.stderr, "ccmux") {
				t.Errorf("stderr is not one ccmux line:\n%s", r.stderr)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr %q does not say %q", r.stderr, tt.stderr)
			}
			if strings.Contains(r.stderr, "level=") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stderr has a log line or a panic:\n%s", r.stderr)
			}
		})
	}
}

// readDefaultConfig is the default config with the proxy on port.
func readDefaultConfig(t *testing.T, port int) string {
	t.Helper()
	data, err := os.ReadFile(writeConfig(t, t.TempDir(), port, ""))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// writeConfigIn writes the default config with the proxy on port to dir/name.
func writeConfigIn(t *testing.T, dir, name string, port int) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(readDefaultConfig(t, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// `ccmux login` on a machine with no browser to open (no xdg-open,
// x-www-browser or www-browser on PATH) says at once, once, to use
// --manual, logs nothing more, and Ctrl-C ends it with one line.
func TestCLILoginWithoutABrowser(t *testing.T) {
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		t.Skip("pkg/browser's openers are checked on Linux")
	}
	oauth := authtest.NewServer()
	defer oauth.Close()
	home, env := autostartHome(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ccmux.toml")
	os.WriteFile(cfg, []byte(readDefaultConfig(t, testsupport.FreePort(t))+oauth.OAuthTOML("anthropic-max", "claude")), 0o600)
	cmd := exec.Command(testsupport.Binary(t), "login", "--config", cfg)
	cmd.Dir = home
	cmd.Env = append(env, "PATH="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Read until the hint, in a goroutine, against a deadline far below
	// the five-minute login timeout.
	var said strings.Builder
	hint := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		hinted := false
		for {
			n, err := stderr.Read(buf)
			said.Write(buf[:n])
			if !hinted && strings.Contains(said.String(), "ccmux login --manual") {
				hinted = true
				close(hint)
			}
			if err == io.EOF || err != nil {
				return
			}
		}
	}()
	select {
	case <-hint:
	case <-readDone:
		t.Fatalf("ccmux login ended without the --manual hint:\n%s", said.String())
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-readDone
		t.Fatalf("no --manual hint within 20 s:\n%s", said.String())
	}
	cmd.Process.Signal(syscall.SIGINT)
	<-readDone
	err = cmd.Wait()
	out := said.String()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d after Ctrl-C (%v), want 1", code, err)
	}
	if n := strings.Count(out, "No browser could be opened"); n != 1 || strings.Contains(out, "executable file not found") {
		t.Errorf("the browser failure is said %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "level=") {
		t.Errorf("a log line repeats what was said:\n%s", out)
	}
	var errLines []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "ccmux:") {
			errLines = append(errLines, line)
		}
	}
	if len(errLines) != 1 || !strings.HasSuffix(errLines[0], ": sign-in cancelled") {
		t.Errorf("error lines after Ctrl-C = %q, want one saying the sign-in was cancelled", errLines)
	}
	if len(oauth.TokenRequests()) != 0 {
		t.Error("a token was requested although no browser signed in")
	}
}
