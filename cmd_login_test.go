package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/config"
	"ccmux/internal/testsupport"
)

// loginCLI is ccmux's command line run in process with HOME in a temp
// dir, a config pointing [oauth.anthropic-max] and [oauth.console-key] at a
// fake OAuth server, and the stub browser first on PATH.
type loginCLI struct {
	t      *testing.T
	srv    *authtest.Server
	home   string
	config string
	said   testsupport.Buffer // every byte ccmux printed
}

func newLoginCLI(t *testing.T) *loginCLI {
	if runtime.GOOS != "linux" {
		t.Skip("the stub browser is an xdg-open")
	}
	srv := authtest.NewServer()
	t.Cleanup(srv.Close)
	home := isolateHome(t)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("DISPLAY", "")
	t.Setenv("BROWSER", "")
	for _, kv := range testsupport.StubBrowser(t, filepath.Join(home, "bin")) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	// A port nothing listens on, so `status` reports the proxy not running.
	port := testsupport.FreePort(t)
	cfg := strings.Replace(config.DefaultTOML, "port = 13456", fmt.Sprintf("port = %d", port), 1) + srv.OAuthTOML("anthropic-max", "claude") + srv.OAuthTOML("console-key", "console")
	cfgPath := filepath.Join(home, "ccmux.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &loginCLI{t: t, srv: srv, home: home, config: cfgPath}
	t.Cleanup(func() {
		for _, s := range srv.Secrets() {
			if strings.Contains(c.said.String(), s) {
				t.Errorf("a token value appears in ccmux's output:\n%s", c.said.String())
			}
		}
	})
	return c
}

// run runs ccmux --config CONFIG args... in process with stdin (nil: an
// empty one) and returns stdout, stderr and the exit status.
func (c *loginCLI) run(stdin io.Reader, args ...string) (string, string, int) {
	c.t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	done := make(chan cliResult, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"--config", c.config}, args...), stdin, &stdout, &stderr)
		done <- cliResult{stdout.String(), stderr.String(), code}
	}()
	select {
	case r := <-done:
		c.said.Write([]byte(r.stdout + r.stderr))
		return r.stdout, r.stderr, r.code
	case <-time.After(60 * time.Second):
		c.t.Fatalf("ccmux %v did not return within 60 s", args)
		return "", "", -1
	}
}

func (c *loginCLI) tokenFile() string {
	return filepath.Join(c.home, ".claude-code-mux", "oauth_tokens.json")
}

// storedLogin is the part of a token-store record the tests look at.
type storedLogin struct {
	ProviderID   string `json:"provider_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	APIKey       string `json:"api_key"`
}

func (c *loginCLI) stored() map[string]storedLogin {
	c.t.Helper()
	data, err := os.ReadFile(c.tokenFile())
	if err != nil {
		c.t.Fatal(err)
	}
	var recs map[string]storedLogin
	if err := json.Unmarshal(data, &recs); err != nil {
		c.t.Fatal(err)
	}
	return recs
}

func TestCLILoginStatusLogout(t *testing.T) {
	c := newLoginCLI(t)
	stdout, stderr, code := c.run(nil, "login")
	if code != 0 || stdout != "Signed in to anthropic-max as user@example.com.\n" {
		t.Fatalf("login: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "Opening your browser") {
		t.Errorf("login stderr: %s", stderr)
	}
	if len(c.srv.AuthorizeRequests()) != 1 {
		t.Errorf("%d authorize requests, want 1", len(c.srv.AuthorizeRequests()))
	}
	fi, err := os.Stat(c.tokenFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if di, _ := os.Stat(filepath.Dir(c.tokenFile())); di.Mode().Perm() != 0o700 {
		t.Errorf("token dir mode %v", di.Mode().Perm())
	}
	r := c.stored()["anthropic-max"]
	if !c.srv.ValidAccessToken(r.AccessToken) || !c.srv.ValidRefreshToken(r.RefreshToken) || r.ProviderID != "anthropic-max" {
		t.Fatal("the stored token is not the one the fake issued")
	}

	stdout, stderr, code = c.run(nil, "status")
	if code != 3 || !regexp.MustCompile(`(?m)^anthropic-max: signed in as user@example\.com, expires in (59 min|1 h)$`).MatchString(stdout) ||
		!strings.Contains(stdout, "not running") {
		t.Fatalf("status: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	// With no proxy running, the limits come from the usage endpoint.
	if !strings.Contains(stdout, "\n  5-hour limit: 42% used, resets ") || !strings.Contains(stdout, "\n  Weekly (Opus): 80% used, resets ") ||
		len(c.srv.UsageRequests()) != 1 {
		t.Errorf("status should print the usage endpoint's limits (%d requests):\n%s", len(c.srv.UsageRequests()), stdout)
	}

	stdout, stderr, code = c.run(nil, "logout")
	if code != 0 || stdout != "Signed out of anthropic-max.\n" {
		t.Fatalf("logout: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if _, ok := c.stored()["anthropic-max"]; ok {
		t.Fatal("logout left the token in the file")
	}
	if stdout, _, _ = c.run(nil, "status"); !strings.Contains(stdout, "Not signed in") {
		t.Fatalf("status after logout: %s", stdout)
	}
}

func TestCLIManualAndConsoleLogin(t *testing.T) {
	c := newLoginCLI(t)
	// Manual: the user opens the printed URL, and pastes the page's code#state.
	pr, pw := io.Pipe()
	done := make(chan cliResult, 1)
	errR, errW := io.Pipe()
	go func() {
		var stdout, stderr bytes.Buffer
		code := run([]string{"--config", c.config, "login", "--manual"}, pr, &stdout, io.MultiWriter(&stderr, errW))
		errW.Close()
		done <- cliResult{stdout.String(), stderr.String(), code}
	}()
	// The sign-in URL, read off stderr as it is printed.
	urls := make(chan string, 1)
	go func() {
		var seen strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := errR.Read(buf)
			if err != nil {
				return
			}
			seen.Write(buf[:n])
			if u := regexp.MustCompile(`http://\S+/oauth/authorize\?\S+`).FindString(seen.String()); u != "" {
				urls <- u
				io.Copy(io.Discard, errR)
				return
			}
		}
	}()
	var authURL string
	select {
	case authURL = <-urls:
	case r := <-done:
		pw.Close()
		t.Fatalf("manual login ended before printing a sign-in URL: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	case <-time.After(60 * time.Second):
		pw.Close()
		t.Fatal("manual login printed no sign-in URL within 60 s")
	}
	loc, err := c.srv.Approve(authURL)
	if err != nil {
		t.Fatal(err)
	}
	_, shown, _ := testsupport.Follow(loc.String())
	// Pasted as a terminal would: ccmux may not read it (a pipe write
	// waits for a reader).
	go func() {
		fmt.Fprintln(pw, strings.TrimSpace(shown))
		pw.Close()
	}()
	var r cliResult
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("ccmux login --manual did not return within 60 s of the pasted code")
	}
	c.said.Write([]byte(r.stdout + r.stderr))
	if r.code != 0 || r.stdout != "Signed in to anthropic-max as user@example.com.\n" {
		t.Fatalf("manual login: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	// Console: the browser flow, then an API key is created and stored.
	stdout, stderr, code := c.run(nil, "login", "--console", "--provider", "console-key")
	if code != 0 || !strings.Contains(stdout, "Signed in to console-key") || c.srv.APIKeyCalls() != 1 {
		t.Fatalf("console login: exit %d, keys %d\nstdout: %s\nstderr: %s", code, c.srv.APIKeyCalls(), stdout, stderr)
	}
	if rec := c.stored()["console-key"]; !strings.HasPrefix(rec.APIKey, "sk-ant-api03-fake-") {
		t.Fatal("console login stored no API key")
	}
	stdout, _, _ = c.run(nil, "status")
	if !strings.Contains(stdout, "console-key: signed in as user@example.com, API key") || !strings.Contains(stdout, "anthropic-max: signed in") {
		t.Fatalf("status: %s", stdout)
	}
}

func TestCLILoginDenied(t *testing.T) {
	c := newLoginCLI(t)
	c.srv.SetDeny(true)
	stdout, stderr, code := c.run(nil, "login")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "ccmux: signing in to anthropic-max: access was declined on the sign-in page") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "goroutine") {
		t.Errorf("stack trace in stderr: %s", stderr)
	}
}

// useConfig replaces the CLI's config with text (its port kept) plus
// [oauth.ID] tables pointing ids at the fake.
func (c *loginCLI) useConfig(text string, oauthIDs ...string) {
	c.t.Helper()
	old, err := os.ReadFile(c.config)
	if err != nil {
		c.t.Fatal(err)
	}
	port := regexp.MustCompile(`(?m)^port = \d+`).FindString(string(old))
	text = regexp.MustCompile(`(?m)^port = \d+`).ReplaceAllString(text, port)
	for _, id := range oauthIDs {
		preset := "claude"
		if strings.Contains(id, "console") {
			preset = "console"
		}
		text += c.srv.OAuthTOML(id, preset)
	}
	if err := os.WriteFile(c.config, []byte(text), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

func (c *loginCLI) installStore(name string) []byte {
	c.t.Helper()
	data, err := os.ReadFile(filepath.Join("auth", "testdata", name))
	if err != nil {
		c.t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(c.tokenFile()), 0o700)
	if err := os.WriteFile(c.tokenFile(), data, 0o600); err != nil {
		c.t.Fatal(err)
	}
	return data
}

// `ccmux login --console` stores its API key under anthropic-console and
// says so; the subscription login is untouched.
func TestCLIConsoleLoginHasItsOwnID(t *testing.T) {
	c := newLoginCLI(t)
	cfg, _ := os.ReadFile(c.config)
	c.useConfig(string(cfg), "anthropic-console")
	if _, stderr, code := c.run(nil, "login"); code != 0 {
		t.Fatalf("login: %s", stderr)
	}
	sub := c.stored()["anthropic-max"]
	stdout, stderr, code := c.run(nil, "login", "--console")
	if code != 0 || !strings.Contains(stdout, "an API key is stored under the id anthropic-console") ||
		!strings.Contains(stdout, `set oauth_provider = "anthropic-console"`) {
		t.Fatalf("console login: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	recs := c.stored()
	if r := recs["anthropic-max"]; r.APIKey != "" || r.RefreshToken != sub.RefreshToken || !c.srv.ValidRefreshToken(r.RefreshToken) {
		t.Fatal("the console login replaced the subscription login")
	}
	if r := recs["anthropic-console"]; !strings.HasPrefix(r.APIKey, "sk-ant-api03-fake-") {
		t.Fatal("no API key stored under anthropic-console")
	}
}

// With claude-code-mux's providers (Gemini and Codex OAuth listed before
// Claude), `ccmux login` signs in to the Claude provider's id.
func TestCLILoginDefaultIsTheClaudeProvider(t *testing.T) {
	c := newLoginCLI(t)
	// [oauth.gemini] only keeps a wrong choice on the fake, off the internet.
	c.useConfig(ccmConfigText(t), "anthropic-max", "gemini")
	stdout, stderr, code := c.run(nil, "login")
	if code != 0 || stdout != "Signed in to anthropic-max as user@example.com.\n" {
		t.Fatalf("login: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

func ccmConfigText(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("auth", "testdata", "ccm_config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCLIManualLoginFollowsClaudeCode: with the built-in preset (no
// [oauth.ID] table), `ccmux login --manual` prints Claude Code 2.1.332's
// sign-in URL and scopes. Nothing is pasted, so nothing goes out.
func TestCLIManualLoginFollowsClaudeCode(t *testing.T) {
	c := newLoginCLI(t)
	c.useConfig(config.DefaultTOML)
	stdout, stderr, code := c.run(nil, "login", "--manual")
	if code != 1 || !strings.Contains(stderr, "no code was pasted") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	printed := regexp.MustCompile(`https://\S+`).FindString(stderr)
	u, err := url.Parse(printed)
	if err != nil {
		t.Fatalf("printed URL %q: %v", printed, err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != "https://claude.com/cai/oauth/authorize" {
		t.Errorf("authorize endpoint = %s, want https://claude.com/cai/oauth/authorize", got)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"scope":        "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload",
		"redirect_uri": "https://platform.claude.com/oauth/code/callback",
		"client_id":    "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
		"code":         "true",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}
