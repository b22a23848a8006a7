package proxy

// The proxy with the real auth client behind it (auth/authtest's token
// endpoint, fakeanthropic's API): what a client sees when the login's
// token endpoint is unreachable, or the API keeps refusing the token.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/auth/authtest"
	"ccmux/proxy/internal/fakeanthropic"
)

// startAuthProxy starts a Server whose OAuth provider uses a real auth
// client on a token store in a temp dir, with [oauth.anthropic-max] at srv.
func startAuthProxy(t *testing.T, srv *authtest.Server, up *fakeanthropic.Upstream) (h *harness, client *auth.Client, store string) {
	t.Helper()
	cfg := mustConfig(t, fmt.Sprintf(`
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "claude-max"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-max"
base_url = %q
models = ["claude-*"]
`, up.URL)+srv.OAuthTOML("anthropic-max", "claude"))
	store = filepath.Join(t.TempDir(), "oauth_tokens.json")
	client = auth.NewClient(cfg, auth.NewStore(store), auth.Options{Logger: slog.New(slog.DiscardHandler)})
	h = startProxy(t, cfg)
	h.srv.Tokens = client
	return h, client, store
}

// A login whose token expired while the token endpoint is unreachable is
// reported as an unreachable endpoint, not as "not signed in".
func TestUnreachableTokenEndpointIsNotSignIn(t *testing.T) {
	srv := authtest.NewServer()
	up := newUpstream(t)
	h, _, path := startAuthProxy(t, srv, up)
	expired := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	os.WriteFile(path, []byte(`{"anthropic-max":{"provider_id":"anthropic-max","access_token":"old-access","refresh_token":"old-refresh","expires_at":"`+expired+`"}}`), 0o600)
	srv.Close() // the token endpoint is gone

	resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}`, nil)
	body := readAll(t, resp)
	_, msg := apiError(t, body)
	if resp.StatusCode == 401 || strings.Contains(msg, "not signed in") || !strings.Contains(msg, "unreachable") {
		t.Fatalf("got %d %q, want the unreachable token endpoint named", resp.StatusCode, msg)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests went upstream with an expired token", n)
	}
}

// Twenty 401s in a row from the API force one token refresh, not twenty;
// every 401 reaches the client as the API sent it.
func TestRepeated401sForceOneRefresh(t *testing.T) {
	srv := authtest.NewServer()
	defer srv.Close()
	up := newUpstream(t)
	up.SetBehavior(fakeanthropic.Behavior{Status: 401})
	h, client, _ := startAuthProxy(t, srv, up)
	u, state, err := client.Authorize("anthropic-max", "")
	if err != nil {
		t.Fatal(err)
	}
	loc, err := srv.Approve(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Exchange(context.Background(), "anthropic-max", loc.Query().Get("code"), state); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}`, nil)
		body := readAll(t, resp)
		if typ, _ := apiError(t, body); resp.StatusCode != 401 || typ != "authentication_error" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if n := srv.RefreshCount(); n != 1 {
		t.Fatalf("20 requests answered 401 caused %d token refreshes, want 1", n)
	}
	if n := len(up.Requests()); n != 21 {
		t.Errorf("%d upstream requests, want 21 (one retry after the refresh)", n)
	}
}
