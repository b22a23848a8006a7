package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
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
