package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// TestMain removes the binary the end-to-end tests build.
func TestMain(m *testing.M) {
	if os.Getenv(inPlaceWriterEnv) != "" {
		inPlaceWriter()
		return
	}
	code := m.Run()
	testsupport.Cleanup()
	os.Exit(code)
}

// e2eHome makes a HOME for the real binary whose ~/.claude-code-mux holds
// config and, unless tokens is "", oauth_tokens.json. It returns that
// directory and the environment to run ccmux with (extra added to it).
func e2eHome(t *testing.T, config, tokens string, extra ...string) (dir string, env []string) {
	t.Helper()
	home := t.TempDir()
	dir = filepath.Join(home, ".claude-code-mux")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if tokens != "" {
		if err := os.WriteFile(filepath.Join(dir, "oauth_tokens.json"), []byte(tokens), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "CCMUX_CONFIG=")
	return dir, append(env, extra...)
}

// startCcmux runs `ccmux start` with env until the test ends (then
// SIGTERM) and waits for it to answer on port. It returns its stderr, a
// client and the proxy's URL.
func startCcmux(t *testing.T, bin string, env []string, port int) (stderr *testsupport.Buffer, client *http.Client, base string) {
	t.Helper()
	_, stderr, client, base = startCcmuxCmd(t, bin, env, port)
	return stderr, client, base
}

// startCcmuxCmd is startCcmux that also returns the process, to signal it.
func startCcmuxCmd(t *testing.T, bin string, env []string, port int) (cmd *exec.Cmd, stderr *testsupport.Buffer, client *http.Client, base string) {
	t.Helper()
	stderr = &testsupport.Buffer{}
	cmd = exec.Command(bin, "start")
	cmd.Env, cmd.Stderr = env, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	client = &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	base = fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHealthy(t, client, base)
	return cmd, stderr, client, base
}

// waitHealthy waits until the ccmux at base answers /health.
func waitHealthy(t *testing.T, client *http.Client, base string) {
	t.Helper()
	testsupport.Eventually(t, "ccmux start to answer /health", 20*time.Second, func() bool {
		resp, err := client.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// e2eTokens is a token store with a made-up, long-lived anthropic-max login.
var e2eTokens = fmt.Sprintf(`{"anthropic-max": {"provider_id": "anthropic-max", "access_token": %q, "refresh_token": %q,
  "expires_at": "2099-11-18T15:30:00Z", "enterprise_url": null}}`, e2eAccessToken, e2eRefreshToken)

const (
	e2eAccessToken  = "sk-ant-oat01-e2e-access-token-value"
	e2eRefreshToken = "sk-ant-ort01-e2e-refresh-token-value"
	e2eAPIKey       = "sk-ant-api03-e2e-provider-key"
)

// TestCcmuxStart runs the real binary headless against fake upstreams: one
// OAuth provider with a stored token, one API-key provider reading $ENV.
func TestCcmuxStart(t *testing.T) {
	bin := testsupport.Binary(t)
	max, api := newUpstream(t), newUpstream(t)
	port := testsupport.FreePort(t)
	cfg := fmt.Sprintf(`
[server]
host = "127.0.0.1"
port = %d

[router]
default = "claude-sonnet-4-5"

[[providers]]
name = "claude-max"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-max"
base_url = %q
models = ["claude-*"]

[[providers]]
name = "anthropic-api"
provider_type = "anthropic"
auth_type = "api_key"
api_key = "$E2E_ANTHROPIC_KEY"
base_url = %q
models = []

[[models]]
name = "fallback"
[[models.mappings]]
actual_model = "claude-haiku-4-5-20251001"
priority = 1
provider = "anthropic-api"

# The stored token is made up: never ask the real usage endpoint with it.
[oauth.anthropic-max]
usage_poll_seconds = 0
`, port, max.URL, api.URL)
	_, env := e2eHome(t, cfg, e2eTokens, "E2E_ANTHROPIC_KEY="+e2eAPIKey)

	stderr := &testsupport.Buffer{}
	cmd := exec.Command(bin, "start")
	cmd.Env = env
	cmd.Stderr = stderr
	cmd.Stdout = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	testsupport.Eventually(t, "ccmux start to answer /health", 20*time.Second, func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("ccmux start exited early: %v\n%s", err, stderr)
		default:
		}
		resp, err := client.Get(base + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	send := func(body string) *http.Response {
		req, _ := http.NewRequest("POST", base+"/v1/messages?beta=true", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
		req.Header.Set("User-Agent", "claude-cli/2.0.14 (external, cli)")
		req.Header.Set("X-Api-Key", "client-placeholder-key")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// Non-streaming, to the subscription with the stored OAuth token.
	resp := send(`{"model":"claude-sonnet-4-5","max_tokens":32,"messages":[{"role":"user","content":"hello"}]}`)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `"type":"message"`) {
		t.Fatalf("non-streaming: %d %s\nccmux log:\n%s", resp.StatusCode, body, stderr)
	}
	reqs := max.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the OAuth upstream got %d requests", len(reqs))
	}
	got := reqs[0]
	for k, want := range map[string]string{
		"Authorization":     "Bearer " + e2eAccessToken,
		"Anthropic-Beta":    "claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20",
		"Anthropic-Version": "2023-06-01",
		"User-Agent":        "claude-cli/2.0.14 (external, cli)",
		"X-Api-Key":         "",
	} {
		if v := got.Header.Get(k); v != want {
			t.Errorf("OAuth upstream header %s = %q, want %q", k, v, want)
		}
	}
	if got.Path != "/v1/messages" || got.RawQuery != "beta=true" || got.Model != "claude-sonnet-4-5" {
		t.Errorf("OAuth upstream got %s?%s model %q", got.Path, got.RawQuery, got.Model)
	}

	// Streaming, through a [[models]] mapping to the API-key provider.
	resp = send(`{"model":"fallback","stream":true,"max_tokens":32,"messages":[{"role":"user","content":"hello"}]}`)
	evs := readEvents(t, resp.Body)
	resp.Body.Close()
	want := "message_start,content_block_start,ping,content_block_delta,content_block_delta,content_block_delta,content_block_stop,message_delta,message_stop"
	if strings.Join(eventNames(evs), ",") != want {
		t.Fatalf("stream events %v\nccmux log:\n%s", eventNames(evs), stderr)
	}
	areqs := api.Requests()
	if len(areqs) != 1 {
		t.Fatalf("the API-key upstream got %d requests", len(areqs))
	}
	if a := areqs[0]; a.Model != "claude-haiku-4-5-20251001" || a.Header.Get("X-Api-Key") != e2eAPIKey ||
		a.Header.Get("Authorization") != "" || a.Header.Get("User-Agent") != "claude-cli/2.0.14 (external, cli)" ||
		!bytes.Contains(a.Body, []byte(`"model":"claude-haiku-4-5-20251001","stream":true,"max_tokens":32`)) {
		t.Errorf("API-key upstream got model %q headers %v body %s", a.Model, a.Header, a.Body)
	}

	// A second `ccmux start` on the same port fails with one clear sentence.
	second := exec.Command(bin, "start")
	second.Env = env
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("second ccmux start: %v, want exit status 1\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if !strings.Contains(string(out), addr) || !strings.Contains(string(out), "already in use") || strings.Contains(string(out), "goroutine") {
		t.Errorf("second ccmux start said %q, want one sentence naming %s in use", out, addr)
	}

	// SIGTERM stops it cleanly.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("ccmux start after SIGTERM: %v\n%s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("ccmux start did not stop on SIGTERM\n%s", stderr)
	}

	log := stderr.String()
	t.Logf("ccmux start log:\n%s", log)
	for _, want := range []string{
		"method=POST path=/v1/messages model=claude-sonnet-4-5 provider=claude-max model_sent=claude-sonnet-4-5 status=200",
		"model=fallback provider=anthropic-api model_sent=claude-haiku-4-5-20251001 status=200",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("ccmux log lacks %q:\n%s", want, log)
		}
	}
	for _, secret := range []string{e2eAccessToken, e2eRefreshToken, e2eAPIKey} {
		if strings.Contains(log, secret) || strings.Contains(string(out), secret) {
			t.Errorf("a secret appears in ccmux's output")
		}
	}
}

// Without a stored login the client is told to sign in, in Anthropic's
// error shape, and no request goes upstream.
func TestCcmuxStartNotSignedIn(t *testing.T) {
	bin := testsupport.Binary(t)
	up := newUpstream(t)
	port := testsupport.FreePort(t)
	_, env := e2eHome(t, subscriptionTOML(port, up.URL), "")
	stderr, client, base := startCcmux(t, bin, env, port)
	resp, err := client.Post(base+"/v1/messages", "application/json", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	typ, msg := apiError(t, body)
	if resp.StatusCode != 401 || typ != "authentication_error" || !strings.Contains(msg, "ccmux login") {
		t.Fatalf("got %d %s %q\n%s", resp.StatusCode, typ, msg, stderr)
	}
	t.Logf("client sees: %s", msg)
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests went upstream without a login", n)
	}
}
