package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ccmux/internal/testsupport"
)

// stubClaudeEnv makes the test binary act as Claude Code: it prints its
// arguments and environment, asks the proxy's /health, and exits with the
// status its first argument names.
const stubClaudeEnv = "CCMUX_TEST_STUB_CLAUDE"

func stubClaude(args []string) int {
	fmt.Printf("args=%q\n", args)
	fmt.Printf("base=%s\ntoken=%s\n", os.Getenv("ANTHROPIC_BASE_URL"), os.Getenv("ANTHROPIC_AUTH_TOKEN"))
	if v, ok := os.LookupEnv("ANTHROPIC_API_KEY"); ok {
		fmt.Printf("api key set (%d bytes)\n", len(v))
	}
	resp, err := http.Get(os.Getenv("ANTHROPIC_BASE_URL") + "/health")
	if err != nil {
		fmt.Println("health: no answer")
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("health: %d %v\n", resp.StatusCode, strings.Contains(string(body), `"status"`))
	}
	code := 0
	if len(args) > 0 {
		fmt.Sscanf(args[0], "exit=%d", &code)
	}
	return code
}

// installStubClaude puts the test binary, as "claude", first on PATH and
// makes it act as Claude Code (stubClaude) when run.
func installStubClaude(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "claude")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(stubClaudeEnv, "1")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

// `ccmux claude` runs a proxy only when none answers, hands Claude Code its
// arguments untouched (--config and --help included) and exits with its
// exit status.
func TestCLIClaude(t *testing.T) {
	home := isolateHome(t)
	port := testsupport.FreePort(t)
	cfgPath := writeConfig(t, home, port, "")
	stubDir := installStubClaude(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	// The built binary: Claude Code's exit status must be the process's.
	r := runBinary(t, home, os.Environ(), "--config", cfgPath, "claude", "exit=7", "--config", "theirs", "--help")
	if r.code != 7 {
		t.Fatalf("ccmux claude: exit %d, want Claude Code's 7\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`args=["exit=7" "--config" "theirs" "--help"]`,
		"base=" + base,
		"token=ccmux",
		"health: 200 true", // the proxy ccmux started for it answered
	} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("Claude Code saw no %q:\n%s", want, r.stdout)
		}
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "no proxy was running on "+base) {
		t.Errorf("stderr: want one line saying a proxy runs for the duration, got %q", r.stderr)
	}
	// The proxy ended with Claude Code.
	if _, err := http.Get(base + "/health"); err == nil {
		t.Error("the proxy still answers after Claude Code exited")
	}

	// --claude picks another binary; a missing one is one sentence.
	r = runCLI(t, "--config", cfgPath, "claude", "--claude", filepath.Join(stubDir, "nope"))
	if r.code != 1 || !strings.Contains(r.stderr, "cannot find Claude Code") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("missing Claude Code: exit %d, %q", r.code, r.stderr)
	}
	if r := runCLI(t, "help", "claude"); r.code != 0 || !strings.Contains(r.stdout, "--claude PATH") {
		t.Errorf("help claude: exit %d, %q", r.code, r.stdout)
	}
}

// A stray ANTHROPIC_API_KEY in the user's shell would make Claude Code send
// it instead of the proxy's key, and get 401: the child never sees one.
func TestCLIClaudeDropsStrayAPIKey(t *testing.T) {
	home := isolateHome(t)
	port := testsupport.FreePort(t)
	cfgPath := writeConfig(t, home, port, "")
	installStubClaude(t)
	env := append(os.Environ(), "ANTHROPIC_API_KEY=wrong", "ANTHROPIC_AUTH_TOKEN=stale")
	r := runBinary(t, home, env, "--config", cfgPath, "claude")
	if r.code != 0 {
		t.Fatalf("ccmux claude: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "api key set") {
		t.Errorf("Claude Code got the shell's ANTHROPIC_API_KEY:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "token=ccmux\n") {
		t.Errorf("Claude Code did not get ccmux's ANTHROPIC_AUTH_TOKEN:\n%s", r.stdout)
	}
	help := runCLI(t, "help", "claude")
	if !strings.Contains(help.stdout, "ANTHROPIC_API_KEY") {
		t.Errorf("help claude does not say ANTHROPIC_API_KEY is removed:\n%s", help.stdout)
	}
}

// A missing Claude Code comes with the command that installs it; the
// commands' help ends with a newline, so the shell prompt starts on a line
// of its own.
func TestCLIClaudeMissingAndHelpEndings(t *testing.T) {
	home := isolateHome(t)
	cfgPath := writeConfig(t, home, testsupport.FreePort(t), "")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CCMUX_CLAUDE", "")
	r := runCLI(t, "--config", cfgPath, "claude")
	if r.code != 1 || !strings.Contains(r.stderr, "npm install -g @anthropic-ai/claude-code") {
		t.Errorf("missing Claude Code: exit %d, %q", r.code, r.stderr)
	}
	for _, c := range commands {
		h := runCLI(t, "help", c.name)
		if !strings.HasSuffix(h.stdout, "\n") || strings.HasSuffix(h.stdout, "\n\n") {
			t.Errorf("help %s does not end with exactly one newline: %q", c.name, tail(h.stdout))
		}
	}
}

func tail(s string) string {
	if len(s) > 40 {
		return "…" + s[len(s)-40:]
	}
	return s
}
