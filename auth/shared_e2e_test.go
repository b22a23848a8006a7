package auth

// End-to-end tests of the real ccmux binary beside claude-code-mux's files.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// useConfig replaces the CLI's config with text (its port kept) plus
// [oauth.ID] tables pointing ids at the fake.
func (c *cli) useConfig(text string, oauthIDs ...string) {
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

func (c *cli) installStore(name string) []byte {
	c.t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
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
	c := newCLI(t)
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
	c := newCLI(t)
	// [oauth.gemini] only keeps a wrong choice on the fake, off the internet.
	c.useConfig(ccmConfigText(t), "anthropic-max", "gemini")
	stdout, stderr, code := c.run(nil, "login")
	if code != 0 || stdout != "Signed in to anthropic-max as user@example.com.\n" {
		t.Fatalf("login: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

func ccmConfigText(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("testdata", "ccm_config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// `ccmux status` lists claude-code-mux's logins as another app's, and
// never moves or rewrites the file, even a corrupt one or a named pipe.
func TestCLIStatusBesideClaudeCodeMux(t *testing.T) {
	c := newCLI(t)
	c.useConfig(ccmConfigText(t), "anthropic-max")
	data := c.installStore("ccm_oauth_tokens.json")
	stdout, stderr, code := c.run(nil, "status")
	if code != 3 { // signed in, no proxy running
		t.Fatalf("status: exit %d, want 3\n%s", code, stderr)
	}
	for _, id := range []string{"gemini", "openai-codex", "github-copilot"} {
		if !strings.Contains(stdout, id+": managed by another app") {
			t.Errorf("status does not list %s as another app's:\n%s", id, stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^anthropic-max: signed in, token expired .*; it is refreshed on the next request$`).MatchString(stdout) {
		t.Errorf("status:\n%s", stdout)
	}
	if after, _ := os.ReadFile(c.tokenFile()); string(after) != string(data) {
		t.Error("status rewrote the token file")
	}

	garbage := []byte(`{"anthropic-max": {"access_token": "half-writ`)
	os.WriteFile(c.tokenFile(), garbage, 0o600)
	_, stderr, code = c.run(nil, "status")
	if code != 1 || !strings.Contains(stderr, c.tokenFile()) || !strings.Contains(stderr, "not valid JSON") {
		t.Errorf("status on a corrupt file: exit %d\n%s", code, stderr)
	}
	aside, _ := filepath.Glob(c.tokenFile() + ".corrupt-*")
	if after, _ := os.ReadFile(c.tokenFile()); string(after) != string(garbage) || len(aside) != 0 {
		t.Errorf("status moved or changed the corrupt file (aside: %v)", aside)
	}

	if runtime.GOOS == "windows" {
		return
	}
	os.Remove(c.tokenFile())
	if err := mkfifo(c.tokenFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, stderr, code = c.run(nil, "status")
	if code != 1 || !strings.Contains(stderr, c.tokenFile()+" is a named pipe") || time.Since(start) > 20*time.Second {
		t.Errorf("status on a named pipe: exit %d after %s\n%s", code, time.Since(start), stderr)
	}
}

// A clean stop (SIGTERM) while the background refresher's token request is
// in flight keeps the rotated token: the endpoint rotates the refresh token
// at once and answers late, the signal lands in between. 20 tries, 0 lost.
func TestCLISIGTERMDuringRefreshKeepsLogin(t *testing.T) {
	c := newCLI(t)
	if _, stderr, code := c.run(nil, "login"); code != 0 {
		t.Fatalf("login: %s", stderr)
	}
	const tries = 20
	lost := 0
	for i := range tries {
		// Make the stored login due for a refresh at once (2 minutes left).
		var recs map[string]map[string]any
		data, _ := os.ReadFile(c.tokenFile())
		if err := json.Unmarshal(data, &recs); err != nil {
			t.Fatal(err)
		}
		recs["anthropic-max"]["expires_at"] = time.Now().Add(2 * time.Minute).UTC().Format(time.RFC3339)
		data, _ = json.Marshal(recs)
		os.WriteFile(c.tokenFile(), data, 0o600)

		before := c.srv.RefreshCount()
		release := c.srv.HoldTokenAnswers()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, testsupport.Binary(t), "--config", c.config, "start")
		stderr := &testsupport.Buffer{}
		cmd.Env, cmd.Stdout, cmd.Stderr, cmd.WaitDelay = c.env, stderr, stderr, 5*time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		testsupport.Eventually(t, "the background refresh request", 10*time.Second, func() bool { return c.srv.RefreshCount() > before })
		cmd.Process.Signal(syscall.SIGTERM)
		testsupport.Eventually(t, "ccmux to act on SIGTERM", 10*time.Second, func() bool {
			select {
			case err := <-exited:
				exited <- err
				return true
			default:
				return strings.Contains(stderr.String(), "stopping")
			}
		})
		release()
		err := <-exited
		cancel()
		c.said.WriteString(stderr.String())
		if err != nil {
			t.Errorf("try %d: ccmux start exited with %v\n%s", i, err, stderr)
		}
		if r := c.stored()["anthropic-max"]; !c.srv.ValidRefreshToken(r.RefreshToken) {
			lost++
			if _, out, code := c.run(nil, "login"); code != 0 { // sign in again for the next try
				t.Fatalf("login: %s", out)
			}
		}
	}
	if lost != 0 {
		t.Fatalf("%d of %d stops during a refresh lost the login", lost, tries)
	}
	t.Logf("%d of %d stops during a refresh lost the login", lost, tries)
}
