package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
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

// cli runs the real ccmux with HOME in a temp dir, a config pointing
// [oauth.anthropic-max] at the fake, and a stub xdg-open first on PATH.
type cli struct {
	t      *testing.T
	srv    *authtest.Server
	home   string
	config string
	env    []string
	said   bytes.Buffer // every byte the binary printed
}

func newCLI(t *testing.T) *cli {
	if runtime.GOOS != "linux" {
		t.Skip("the stub browser is an xdg-open")
	}
	testsupport.Binary(t)
	srv := authtest.NewServer()
	t.Cleanup(srv.Close)
	home := t.TempDir()
	browser := testsupport.StubBrowser(t, filepath.Join(home, "bin"))
	// A port nothing listens on, so `status` reports the proxy not running.
	port := testsupport.FreePort(t)
	cfg := strings.Replace(config.DefaultTOML, "port = 13456", fmt.Sprintf("port = %d", port), 1) + srv.OAuthTOML("anthropic-max", "claude") + srv.OAuthTOML("console-key", "console")
	cfgPath := filepath.Join(home, "ccmux.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, srv: srv, home: home, config: cfgPath}
	c.env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "CCMUX_CONFIG=")
	c.env = append(c.env, browser...)
	c.env = append(c.env, "DISPLAY=", "BROWSER=")
	t.Cleanup(func() {
		for _, s := range srv.Secrets() {
			if strings.Contains(c.said.String(), s) {
				t.Errorf("a token value appears in ccmux's output:\n%s", c.said.String())
			}
		}
	})
	return c
}

// run runs ccmux --config CONFIG args... with stdin and returns stdout,
// stderr and the exit code.
func (c *cli) run(stdin io.Reader, args ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testsupport.Binary(c.t), append([]string{"--config", c.config}, args...)...)
	cmd.Env, cmd.Stdin, cmd.WaitDelay = c.env, stdin, 5*time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	c.said.WriteString(stdout.String() + stderr.String())
	return stdout.String(), stderr.String(), code
}

func (c *cli) tokenFile() string {
	return filepath.Join(c.home, ".claude-code-mux", "oauth_tokens.json")
}

func (c *cli) stored() map[string]record {
	c.t.Helper()
	data, err := os.ReadFile(c.tokenFile())
	if err != nil {
		c.t.Fatal(err)
	}
	var recs map[string]record
	if err := json.Unmarshal(data, &recs); err != nil {
		c.t.Fatal(err)
	}
	return recs
}

func TestCLILoginStatusLogout(t *testing.T) {
	c := newCLI(t)
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
	c := newCLI(t)
	// Manual: the user opens the printed URL, and pastes the page's code#state.
	pr, pw := io.Pipe()
	type res struct {
		stdout, stderr string
		code           int
	}
	done := make(chan res, 1)
	errR, errW := io.Pipe()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, testsupport.Binary(t), "--config", c.config, "login", "--manual")
		var stdout, stderr bytes.Buffer
		cmd.WaitDelay = 5 * time.Second
		cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = c.env, pr, &stdout, io.MultiWriter(&stderr, errW)
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		errW.Close()
		done <- res{stdout.String(), stderr.String(), code}
	}()
	var seen strings.Builder
	buf := make([]byte, 4096)
	var authURL string
	for authURL == "" {
		n, err := errR.Read(buf)
		if err != nil {
			pw.Close()
			t.Fatalf("manual login output: %v\n%s", err, seen.String())
		}
		seen.Write(buf[:n])
		authURL = regexp.MustCompile(`http://\S+/oauth/authorize\?\S+`).FindString(seen.String())
	}
	go io.Copy(io.Discard, errR)
	loc, err := c.srv.Approve(authURL)
	if err != nil {
		t.Fatal(err)
	}
	_, shown, _ := testsupport.Follow(loc.String())
	fmt.Fprintln(pw, strings.TrimSpace(shown))
	pw.Close() // exec copies stdin until EOF, and Run waits for that copy
	r := <-done
	c.said.WriteString(r.stdout + r.stderr)
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
	c := newCLI(t)
	c.srv.SetDeny(true)
	stdout, stderr, code := c.run(nil, "login")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "ccmux: signing in to anthropic-max: access was declined on the sign-in page") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "goroutine") {
		t.Errorf("stack trace in stderr: %s", stderr)
	}
}
