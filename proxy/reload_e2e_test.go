//go:build unix

package proxy

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// SIGHUP makes a running `ccmux start` read its config again: new requests
// go to the new provider, a port change moves the listener, and an invalid
// file is logged once, with its path, while the running config stays.
func TestCcmuxStartReloadsOnSIGHUP(t *testing.T) {
	bin := testsupport.Binary(t)
	first, second := newUpstream(t), newUpstream(t)
	port := testsupport.FreePort(t)
	configAt := func(port int, name, url string) string {
		return fmt.Sprintf(`
[server]
host = "127.0.0.1"
port = %d

[router]
default = "claude-sonnet-4-5"

[[providers]]
name = %q
provider_type = "anthropic"
auth_type = "api_key"
api_key = "$E2E_ANTHROPIC_KEY"
base_url = %q
models = ["claude-*"]
`, port, name, url)
	}
	dir, env := e2eHome(t, configAt(port, "first", first.URL), "", "E2E_ANTHROPIC_KEY="+e2eAPIKey)
	path := filepath.Join(dir, "config.toml")
	rewrite := func(text string) {
		t.Helper()
		// As an editor saves: a new file renamed over the old one.
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	cmd, stderr, client, base := startCcmuxCmd(t, bin, env, port)
	ask := func(base string) int {
		t.Helper()
		resp, err := client.Post(base+"/v1/messages", "application/json",
			strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		return resp.StatusCode
	}
	hangUp := func(wantLines int, line string) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testsupport.Eventually(t, fmt.Sprintf("%d log lines %q", wantLines, line), 10*time.Second, func() bool {
			return strings.Count(stderr.String(), line) == wantLines
		})
	}

	if status := ask(base); status != 200 || len(first.Requests()) != 1 {
		t.Fatalf("before the reload: status %d, first got %d requests", status, len(first.Requests()))
	}

	rewrite(configAt(port, "second", second.URL))
	hangUp(1, "config reloaded")
	if status := ask(base); status != 200 || len(second.Requests()) != 1 || len(first.Requests()) != 1 {
		t.Fatalf("after the reload: status %d, first got %d, second %d requests; want the second provider",
			status, len(first.Requests()), len(second.Requests()))
	}
	for _, want := range []string{"providers=1", "added=[second]", "removed=[first]"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the reload log line does not say %s:\n%s", want, stderr.String())
		}
	}

	// An invalid file: one log line with the path; the running config stays.
	rewrite(configAt(port, "second", second.URL) + "\n[[providers]]\nname = 7\n")
	hangUp(1, "config not reloaded")
	if !strings.Contains(stderr.String(), "path="+path) {
		t.Errorf("the refused reload's log line does not name %s:\n%s", path, stderr.String())
	}
	if status := ask(base); status != 200 || len(second.Requests()) != 2 {
		t.Fatalf("after the refused reload: status %d, second got %d requests; want the running config", status, len(second.Requests()))
	}

	// A new port: the proxy moves there and the old port closes.
	newPort := testsupport.FreePort(t)
	rewrite(configAt(newPort, "second", second.URL))
	hangUp(2, "config reloaded")
	newBase := fmt.Sprintf("http://127.0.0.1:%d", newPort)
	if status := ask(newBase); status != 200 || len(second.Requests()) != 3 {
		t.Fatalf("on the new port: status %d, second got %d requests", status, len(second.Requests()))
	}
	client.CloseIdleConnections()
	testsupport.Eventually(t, "the old port to close", 10*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	if out := stderr.String(); strings.Contains(out, "panic") || strings.Contains(out, e2eAPIKey) {
		t.Errorf("the output has a panic or the API key:\n%s", out)
	}
}
