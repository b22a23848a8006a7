package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"ccmux/internal/testsupport"
)

func TestCLIEnv(t *testing.T) {
	home := isolateHome(t)
	port := testsupport.FreePort(t)
	plain := writeConfig(t, home, port, "")
	keyed := filepath.Join(home, "keyed.toml")
	data, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	// A key with a quote and a space in it must survive the shell's eval.
	t.Setenv("CCMUX_TEST_KEY", `it's a key`)
	keyedText := strings.Replace(string(data), "[server]\n", "[server]\napi_key = \"$CCMUX_TEST_KEY\"\n", 1)
	if err := os.WriteFile(keyed, []byte(keyedText), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"sh", []string{"env", "--config", plain, "--shell", "sh"}, []string{"export ANTHROPIC_BASE_URL=" + url, "export ANTHROPIC_AUTH_TOKEN=ccmux", "unset ANTHROPIC_API_KEY"}},
		{"fish", []string{"env", "--shell", "fish", "--config", plain}, []string{"set -gx ANTHROPIC_BASE_URL " + url + ";", "set -gx ANTHROPIC_AUTH_TOKEN ccmux;", "set -e ANTHROPIC_API_KEY;"}},
		{"powershell", []string{"--config", plain, "env", "--shell", "powershell"}, []string{"$env:ANTHROPIC_BASE_URL = '" + url + "'", "$env:ANTHROPIC_AUTH_TOKEN = 'ccmux'", "Remove-Item Env:ANTHROPIC_API_KEY -ErrorAction SilentlyContinue"}},
		{"server.api_key", []string{"env", "--config", keyed, "--shell", "powershell"}, []string{"$env:ANTHROPIC_AUTH_TOKEN = 'it''s a key'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w+"\n") {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	if r := runCLI(t, "env", "--config", plain, "--shell", "tcsh"); r.code != 2 || !strings.Contains(r.stderr, "--shell") {
		t.Errorf("an unknown shell: exit %d, %q", r.code, r.stderr)
	}

	// What sh evaluates is exactly the values, quote included.
	r := runCLI(t, "env", "--config", keyed, "--shell", "sh")
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to evaluate the output with")
	}
	// A stray ANTHROPIC_API_KEY, which Claude Code would send instead of
	// the token, is unset.
	cmd := exec.Command(sh, "-c", r.stdout+`printf '%s|%s|%s' "$ANTHROPIC_BASE_URL" "$ANTHROPIC_AUTH_TOKEN" "${ANTHROPIC_API_KEY-unset}"`)
	cmd.Env = append(os.Environ(), "ANTHROPIC_API_KEY=wrong")
	out, err := cmd.CombinedOutput()
	if want := url + "|it's a key|unset"; err != nil || string(out) != want {
		t.Errorf("sh evaluated %q (%v), want %q", out, err, want)
	}
}
