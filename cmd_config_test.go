package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ccmux/config"
	"ccmux/internal/testsupport"
)

func TestCLIConfigCheckFirstRun(t *testing.T) {
	home := isolateHome(t)
	r := runCLI(t, "config", "check")
	path := filepath.Join(home, ".claude-code-mux", "config.toml")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "wrote the default config to "+path) {
		t.Errorf("the user is not told where the config was written: %q", r.stderr)
	}
	for _, want := range []string{path + " is valid", "claude-max", "oauth anthropic-max", "Proxy: 127.0.0.1:13456 (http://127.0.0.1:13456)\n", "\nClaude Code: ccmux claude (or eval \"$(ccmux env)\", then claude)\n", filepath.Join(home, ".claude-code-mux", "oauth_tokens.json")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	// A bare ANTHROPIC_BASE_URL leaves Claude Code asking for its own login.
	if strings.Contains(r.stdout, "ANTHROPIC_BASE_URL") {
		t.Errorf("the summary suggests a bare ANTHROPIC_BASE_URL:\n%s", r.stdout)
	}
	testsupport.AssertMode(t, filepath.Dir(path), 0o700)
	testsupport.AssertMode(t, path, 0o600)

	// A second run finds the file and says nothing about writing it.
	r = runCLI(t, "config", "check")
	if r.code != 0 || strings.Contains(r.stderr, "wrote") {
		t.Errorf("second run: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCLIConfigCheckBadFile(t *testing.T) {
	bad, err := filepath.Abs("testdata/bad.toml")
	if err != nil {
		t.Fatal(err)
	}
	isolateHome(t)
	r := runCLI(t, "--config", bad, "config", "check")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) < 10 {
		t.Errorf("want every problem listed, got %d lines:\n%s", len(lines), r.stderr)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "ccmux: "+bad+": line ") {
			t.Errorf("problem without file and line: %q", l)
		}
	}
	for _, want := range []string{"server.port", "server.colour", "providers[0].auth_typ", "providers[1].auth_type", "models[0].mappings[0].provider", "router.background_regex", "router.default"} {
		if !strings.Contains(r.stderr, ": "+want+": ") {
			t.Errorf("no problem names %s", want)
		}
	}
	if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
		t.Errorf("stack trace in output:\n%s", r.stderr)
	}
}

func TestCLIConfigPrecedence(t *testing.T) {
	dir := isolateHome(t)
	flagFile := filepath.Join(dir, "flag.toml")
	envFile := filepath.Join(dir, "env.toml")
	for file, port := range map[string]string{flagFile: "14001", envFile: "14002"} {
		if err := os.WriteFile(file, []byte(strings.Replace(config.DefaultTOML, "port = 13456", "port = "+port, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CCMUX_CONFIG", envFile)
	r := runCLI(t, "--config", flagFile, "config", "check")
	if !strings.Contains(r.stdout, ":14001") {
		t.Errorf("--config does not win over CCMUX_CONFIG:\n%s%s", r.stdout, r.stderr)
	}
	r = runCLI(t, "config", "check")
	if !strings.Contains(r.stdout, ":14002") {
		t.Errorf("CCMUX_CONFIG is not used:\n%s%s", r.stdout, r.stderr)
	}
	t.Setenv("CCMUX_CONFIG", filepath.Join(dir, "missing.toml"))
	r = runCLI(t, "config", "check")
	if r.code != 1 || !strings.Contains(r.stderr, "missing.toml does not exist") {
		t.Errorf("missing CCMUX_CONFIG file: exit %d, %q", r.code, r.stderr)
	}
}

func TestCLIMissingEnvVarIsNamed(t *testing.T) {
	dir := isolateHome(t)
	file := filepath.Join(dir, "c.toml")
	cfg := config.DefaultTOML + "\n[[providers]]\nname = \"api\"\napi_key = \"$CCMUX_NOT_SET_ANYWHERE\"\n"
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "--config", file, "config", "check")
	line := strings.Count(config.DefaultTOML, "\n") + 4
	if !strings.Contains(r.stdout, fmt.Sprintf("%s: line %d: environment variable CCMUX_NOT_SET_ANYWHERE (providers[1].api_key) is not set", file, line)) {
		t.Errorf("missing variable not named:\n%s%s", r.stdout, r.stderr)
	}
}

func TestCLIConfigCheckPrintsEachProvidersURL(t *testing.T) {
	dir := isolateHome(t)
	file := filepath.Join(dir, "c.toml")
	cfg := config.DefaultTOML + `
[[providers]]
name = "zai"
provider_type = "z.ai"
auth_type = "apikey"
api_key = "k"
models = []

[[providers]]
name = "gateway"
provider_type = "anthropic"
auth_type = "apikey"
api_key = "k"
base_url = "https://ccmux-user:hunter2-secret@gw.example/v1?key=sk-in-query"
models = []

[[providers]]
name = "gpt"
provider_type = "openai"
api_key = "k"
models = []

[[providers]]
name = "vertex"
provider_type = "vertex-ai"
api_key = "k"
models = []
`
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "--config", file, "config", "check")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"claude-max: https://api.anthropic.com,",
		"zai: https://api.z.ai/api/anthropic,",
		"gateway: https://xxxxx@gw.example/v1?key=xxxxx,",
		"gpt: https://api.openai.com/v1,",
		`vertex: skipped (ccmux does not serve provider_type "vertex-ai")`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config check lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, secret := range []string{"hunter2", "ccmux-user", "sk-in-query"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("config check prints %q:\n%s%s", secret, r.stdout, r.stderr)
		}
	}
}

// server.api_key = "$VAR" with VAR unset stops the proxy from starting, so
// config check says so as an error, naming the variable and the key.
func TestCLIConfigCheckServerKeyFromMissingVariable(t *testing.T) {
	home := isolateHome(t)
	t.Setenv("CCMUX_TEST_UNSET_KEY", "")
	text := strings.Replace(config.DefaultTOML, "[server]\n", "[server]\napi_key = \"$CCMUX_TEST_UNSET_KEY\"\n", 1)
	path := filepath.Join(home, "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "config", "check", "--config", path)
	// The key's line, like every other problem: [server] is line 4.
	if r.code != 1 || !strings.Contains(r.stderr, path+": line 5: environment variable CCMUX_TEST_UNSET_KEY (server.api_key) is not set") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// config check says which provider each rule's model and each [[models]]
// name reaches, globs included, and what is skipped on the way; a
// provider_type typo is an error with the type it likely meant.
func TestCLIConfigCheckListsWhereModelsGo(t *testing.T) {
	home := isolateHome(t)
	text := strings.Replace(config.DefaultTOML, "[router]\n", "[router]\nthink = \"claude-opus-4-5\"\n", 1) + `
[[providers]]
name = "gpt"
provider_type = "openai"
api_key = "k"
models = []

[[providers]]
name = "vertex"
provider_type = "vertex-ai"
api_key = "k"
models = []

[[models]]
name = "fast"
[[models.mappings]]
actual_model = "gemini-2.5-flash"
priority = 1
provider = "vertex"
[[models.mappings]]
actual_model = "claude-haiku-4-5"
priority = 2
provider = "claude-max"
[[models.mappings]]
actual_model = "gpt-4o-mini"
priority = 3
provider = "gpt"
`
	path := filepath.Join(home, "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "config", "check", "--config", path)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"  fast -> claude-max:claude-haiku-4-5, gpt:gpt-4o-mini (skipped: vertex:gemini-2.5-flash)\n",
		"  router.default claude-sonnet-4-5 -> claude-max:claude-sonnet-4-5\n",
		"  router.think claude-opus-4-5 -> claude-max:claude-opus-4-5\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config check lacks %q:\n%s", want, r.stdout)
		}
	}

	typo := filepath.Join(home, "typo.toml")
	if err := os.WriteFile(typo, []byte(strings.Replace(config.DefaultTOML, `provider_type = "anthropic"`, `provider_type = "antropic"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "config", "check", "--config", typo)
	if r.code != 1 || !strings.Contains(r.stderr, `providers[0].provider_type: unknown provider_type "antropic"; did you mean "anthropic"?`) || strings.Contains(r.stdout, "is valid") {
		t.Errorf("a provider_type typo: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
