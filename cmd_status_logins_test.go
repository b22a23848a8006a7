package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/config"
)

// With two Claude subscriptions `ccmux status` lists both: the signed-in
// one with its expiry and usage, the other with the command that signs it in.
func TestCLIStatusListsEachLogin(t *testing.T) {
	first, second := authtest.NewServer(), authtest.NewServer()
	defer first.Close()
	defer second.Close()
	home := isolateHome(t)
	port := fakeProxy(t)
	secondProvider := `
[[providers]]
name = "claude-work"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "claude-work"
enabled = true
models = []
`
	text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1) + secondProvider +
		first.OAuthTOML("anthropic-max", "claude") + second.OAuthTOML("claude-work", "claude")
	dir := filepath.Join(home, ".claude-code-mux")
	os.MkdirAll(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(8 * time.Hour).UTC().Format(time.RFC3339)
	tokens := `{"anthropic-max":{"provider_id":"anthropic-max","access_token":"at-SECRET","refresh_token":"rt-SECRET","expires_at":"` + future + `","enterprise_url":null}}`
	if err := os.WriteFile(filepath.Join(dir, "oauth_tokens.json"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "status")
	if r.code != 4 {
		t.Errorf("exit %d, want 4 (a configured login is not signed in)", r.code)
	}
	for _, want := range []string{`(?m)^anthropic-max: signed in, expires in `, `(?m)^claude-work: not signed in \(run ccmux login --provider claude-work\)$`} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("status lacks %s:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "anthropic-max: not signed in") || strings.Contains(r.stdout+r.stderr, "SECRET") {
		t.Errorf("status:\n%s%s", r.stdout, r.stderr)
	}

	// Neither signed in: each is listed.
	os.Remove(filepath.Join(dir, "oauth_tokens.json"))
	r = runCLI(t, "status")
	for _, id := range []string{"anthropic-max", "claude-work"} {
		if !strings.Contains(r.stdout, id+": not signed in (run ccmux login --provider "+id+")") {
			t.Errorf("status signed out lacks %s:\n%s", id, r.stdout)
		}
	}
}
