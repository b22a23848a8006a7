package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ccmux/internal/testsupport"
)

// stubClaudeEnv makes the test binary act as Claude Code: it prints its
// arguments and environment, asks the proxy's /health, and exits with the
// status its first argument names.
const stubClaudeEnv = "CCMUX_TEST_STUB_CLAUDE"

func TestMain(m *testing.M) {
	if os.Getenv(stubClaudeEnv) == "1" {
		os.Exit(stubClaude(os.Args[1:]))
	}
	code := m.Run()
	testsupport.Cleanup()
	os.Exit(code)
}

func stubClaude(args []string) int {
	fmt.Printf("args=%q\n", args)
	fmt.Printf("base=%s\ntoken=%s\n", os.Getenv("ANTHROPIC_BASE_URL"), os.Getenv("ANTHROPIC_AUTH_TOKEN"))
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

// `ccmux claude` runs the real binary's proxy only when none answers, hands
// Claude Code its arguments untouched (--config and --help included) and
// returns its exit status.
func TestCLIClaude(t *testing.T) {
	bin := testsupport.Binary(t)
	home := isolateHome(t)
	port := testsupport.FreePort(t)
	cfgPath := writeConfig(t, home, port, "")
	stubDir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stub := filepath.Join(stubDir, "claude")
	if err := os.Symlink(self, stub); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+home, "CCMUX_CONFIG=", stubClaudeEnv+"=1", "PATH="+stubDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	cmd := exec.Command(bin, "--config", cfgPath, "claude", "exit=7", "--config", "theirs", "--help")
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Fatalf("ccmux claude: %v, want exit status 7\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{
		`args=["exit=7" "--config" "theirs" "--help"]`,
		"base=" + base,
		"token=ccmux",
		"health: 200 true", // the proxy ccmux started for it answered
	} {
		if !strings.Contains(stdout.String(), want+"\n") {
			t.Errorf("Claude Code saw no %q:\n%s", want, stdout.String())
		}
	}
	if got := stderr.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "no proxy was running on "+base) {
		t.Errorf("stderr: want one line saying a proxy runs for the duration, got %q", got)
	}
	// The proxy ended with Claude Code.
	if _, err := http.Get(base + "/health"); err == nil {
		t.Error("the proxy still answers after Claude Code exited")
	}

	// --claude picks another binary; a missing one is one sentence.
	r := runCLI(t, "--config", cfgPath, "claude", "--claude", filepath.Join(stubDir, "nope"))
	if r.code != 1 || !strings.Contains(r.stderr, "cannot find Claude Code") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("missing Claude Code: exit %d, %q", r.code, r.stderr)
	}
	if r := runCLI(t, "help", "claude"); r.code != 0 || !strings.Contains(r.stdout, "--claude PATH") {
		t.Errorf("help claude: exit %d, %q", r.code, r.stdout)
	}
}
