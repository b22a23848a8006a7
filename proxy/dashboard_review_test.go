package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// The Proxy section shows where clients reach the proxy: the bound
// address, not the config's port (0 there means "the OS picks one").
func TestDashboardBaseURLIsTheBoundAddress(t *testing.T) {
	d := startDashboard(t)
	_, body := d.get(t, "/api/dashboard", nil)
	var st struct {
		Address string `json:"address"`
		BaseURL string `json:"base_url"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.BaseURL != d.base || st.Address != d.srv.Addr() {
		t.Errorf("base_url %q, address %q; want %q, %q", st.BaseURL, st.Address, d.base, d.srv.Addr())
	}
}

func TestBoundBaseURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:3456": "http://127.0.0.1:3456",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:3456":      "http://[::1]:3456",
		"[::1]:3456":     "http://[::1]:3456",
		"localhost:1":    "http://localhost:1",
	} {
		if got := boundBaseURL(addr); got != want {
			t.Errorf("boundBaseURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// The Origin gate accepts the proxy's own origin only: a page on another
// loopback port or name, a rebound DNS name, or an opaque origin ("null":
// a sandboxed frame, a file) reads and changes nothing, even with the token.
func TestDashboardOwnOriginOnly(t *testing.T) {
	d := startDashboard(t)
	_, port, _ := net.SplitHostPort(d.srv.Addr())
	do := func(method, path, host, origin, site string) int {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"provider_id":"anthropic-max"}`)
		}
		req, _ := http.NewRequest(method, d.base+path, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(csrfHeader, csrf())
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		return resp.StatusCode
	}
	for _, c := range []struct{ host, origin, site string }{
		{"", "null", "cross-site"},
		{"", "null", ""},
		{"", "http://127.0.0.1:1", ""},          // another port, a browser without Sec-Fetch-Site
		{"", "http://127.0.0.1:1", "same-site"}, // another port
		{"", "http://localhost:" + port, "cross-site"},
		{"", "https://127.0.0.1:" + port, "cross-site"},
		{"evil.example:" + port, "http://evil.example:" + port, "same-origin"}, // DNS rebinding
		{"localhost:" + port, "http://127.0.0.1:" + port, "cross-site"},
	} {
		for _, r := range [][2]string{{http.MethodGet, "/"}, {http.MethodGet, "/api/dashboard"}, {http.MethodGet, "/api/requests"}, {http.MethodPost, "/api/dashboard/signout"}} {
			if got := do(r[0], r[1], c.host, c.origin, c.site); got != http.StatusForbidden {
				t.Errorf("%s %s Host %q Origin %q Sec-Fetch-Site %q: %d, want 403", r[0], r[1], c.host, c.origin, c.site, got)
			}
		}
	}
	if !d.admin.signedIn("anthropic-max") {
		t.Fatal("signed out by another origin")
	}
	// The page itself, on either loopback name.
	for _, host := range []string{"", "localhost:" + port} {
		origin := "http://" + host
		if host == "" {
			origin = d.base
		}
		if got := do(http.MethodGet, "/api/dashboard", host, origin, "same-origin"); got != http.StatusOK {
			t.Errorf("the page's own GET on %q: %d", origin, got)
		}
	}
	if got := do(http.MethodPost, "/api/dashboard/signout", "", d.base, "same-origin"); got != http.StatusOK || d.admin.signedIn("anthropic-max") {
		t.Errorf("the page's own sign out: %d", got)
	}
}

// Neither the history database nor the dashboard's answers hold a prompt,
// an answer, a header or a credential.
func TestHistoryAndDashboardHoldNoSecrets(t *testing.T) {
	d := startDashboard(t)
	t.Setenv("API_KEY", "key-VALUE-7f3a9")
	d.tokens.set("anthropic-max", "oauth-VALUE-51c2e")
	d.sub.SetBehavior(fakeanthropic.Behavior{Header: usageHeaders()})
	readAll(t, d.post("/v1/messages", `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"PROMPT-b81d"}]}`, map[string]string{"X-Secret-Header": "HEADER-c09e"}))
	d.sub.Queue(fakeanthropic.Behavior{Status: 529})
	readAll(t, d.post("/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"PROMPT-b81d"}]}`, nil))
	d.srv.RecordUsage("anthropic-max")
	// A request is recorded just after its answer went out: wait for it.
	testsupport.Eventually(t, "the second request recorded", 10*time.Second, func() bool {
		d.srv.History.Flush()
		_, body := d.get(t, "/api/requests?limit=10", nil)
		return strings.Contains(body, `"model":"claude-haiku-4-5"`)
	})
	if len(d.key.Requests()) == 0 {
		t.Fatal("the API-key provider was not reached")
	}

	secrets := []string{"key-VALUE-7f3a9", "oauth-VALUE-51c2e", "PROMPT-b81d", "HEADER-c09e", "X-Secret-Header"}
	var answers strings.Builder
	for _, p := range []string{"/api/dashboard", "/api/requests", "/api/stats", "/api/usage/history"} {
		resp, body := d.get(t, p, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		answers.WriteString(body)
	}
	files, _ := filepath.Glob(d.srv.History.Path() + "*") // the database, its -wal and -shm
	var db []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		db = append(db, b...)
	}
	if !bytes.Contains(db, []byte("claude-haiku-4-5")) {
		t.Fatalf("the database files %v do not hold the requests", files)
	}
	for _, s := range secrets {
		if strings.Contains(answers.String(), s) {
			t.Errorf("an /api answer holds %q", s)
		}
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("the history database holds %q", s)
		}
	}
}

// The Proxy section shows the files under the home directory as ~/…: the
// screenshot and a user's screen read ~/.claude-code-mux/ccmux.db.
func TestDashboardPathsUnderHome(t *testing.T) {
	d := startDashboard(t)
	_, body := d.get(t, "/api/dashboard", nil)
	var st struct {
		Config  string `json:"config_path"`
		History string `json:"history_path"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	sep := string(filepath.Separator)
	if want := "~" + sep + filepath.Join(".claude-code-mux", "ccmux.db"); st.History != want {
		t.Errorf("history_path %q, want %q", st.History, want)
	}
	if want := "~" + sep + filepath.Join(".claude-code-mux", "config.toml"); st.Config != want {
		t.Errorf("config_path %q, want %q", st.Config, want)
	}
	for in, want := range map[string]string{"": "", "test.toml": "test.toml", sep + "elsewhere" + sep + "x.toml": sep + "elsewhere" + sep + "x.toml"} {
		if got := homeShort(in); got != want {
			t.Errorf("homeShort(%q) = %q, want %q", in, got, want)
		}
	}
}

// With server.api_key set, the page's token (which any local program can
// read from the page) opens only what the page uses, never the OAuth admin
// endpoints: signing a login in to another account, refreshing, listing or
// deleting logins still need the key.
func TestDashboardTokenOpensOnlyThePagesEndpoints(t *testing.T) {
	t.Setenv("CCMUX_KEY", "s3cret")
	up := newUpstream(t)
	admin := &fakeAdmin{}
	h := startProxy(t, mustConfig(t, "[server]\napi_key = \"$CCMUX_KEY\"\n"+subscriptionTOML(0, up.URL)), func(s *Server) { s.Admin, s.History = admin, openHistory(t) })
	_, session := openCode(t, h, h.srv.DashboardCode()) // the dashboard's session, as the page has it
	do := func(method, path string) int {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"provider_id":"anthropic-max","code":"c#s"}`)
		}
		req, _ := http.NewRequest(method, h.base+path, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(csrfHeader, csrf())
		req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		return resp.StatusCode
	}
	for _, r := range [][2]string{
		{http.MethodGet, "/api/oauth/tokens"}, {http.MethodPost, "/api/oauth/tokens/delete"}, {http.MethodPost, "/api/oauth/tokens/refresh"},
		{http.MethodPost, "/api/oauth/authorize"}, {http.MethodPost, "/api/oauth/exchange"}, {http.MethodDelete, "/api/oauth/tokens/anthropic-max"},
		{http.MethodGet, "/api/usage"},
	} {
		if got := do(r[0], r[1]); got != http.StatusUnauthorized {
			t.Errorf("%s %s with the page's session and token: %d, want 401", r[0], r[1], got)
		}
	}
	for _, p := range []string{"/api/dashboard", "/api/requests", "/api/stats", "/api/usage/history"} {
		if got := do(http.MethodGet, p); got != http.StatusOK {
			t.Errorf("GET %s with the page's session and token: %d, want 200", p, got)
		}
	}
}
