package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startKeyedDashboard is a proxy with server.api_key = "s3cret", the admin
// API and history on.
func startKeyedDashboard(t *testing.T) *harness {
	t.Helper()
	t.Setenv("CCMUX_KEY", "s3cret")
	up := newUpstream(t)
	return startProxy(t, mustConfig(t, "[server]\napi_key = \"$CCMUX_KEY\"\n"+subscriptionTOML(0, up.URL)),
		func(s *Server) { s.Admin, s.History = &fakeAdmin{}, openHistory(t) })
}

// noRedirect is a client that shows redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// dashCode asks for a one-time code the way `ccmux dashboard` does.
func dashCode(t *testing.T, h *harness, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.base+"/api/dashboard/session", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Code string `json:"code"`
	}
	json.Unmarshal([]byte(readAll(t, resp)), &out)
	return resp.StatusCode, out.Code
}

// openCode is the browser's GET /?code=…: the answer and its session cookie.
func openCode(t *testing.T, h *harness, code string) (*http.Response, *http.Cookie) {
	t.Helper()
	resp, err := noRedirect().Get(h.base + "/?code=" + code)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == dashCookie {
			return resp, c
		}
	}
	return resp, nil
}

// dashGet is a GET with the session cookie (nil for none) and the page's token.
func dashGet(t *testing.T, h *harness, path string, c *http.Cookie) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.base+path, nil)
	req.Header.Set(csrfHeader, csrf())
	if c != nil {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(t, resp)
}

// dashSignOut is the page's POST sign-out with the session cookie and token.
func dashSignOut(t *testing.T, h *harness, c *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.base+"/api/dashboard/signout", strings.NewReader(`{"provider_id":"anthropic-max"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(csrfHeader, csrf())
	if c != nil {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	return resp.StatusCode
}

var pageAPIs = []string{"/api/dashboard", "/api/requests", "/api/stats", "/api/usage/history"}

func TestDashboardKeyLockedWithoutSession(t *testing.T) {
	h := startKeyedDashboard(t)
	status, body := dashGet(t, h, "/", nil)
	if status != http.StatusForbidden || !strings.Contains(body, "ccmux dashboard") || !strings.Contains(body, "tray") {
		t.Errorf("GET / without a session: %d %q, want 403 and how to open it", status, body)
	}
	if strings.Contains(body, csrf()) || strings.Contains(body, "dashboard.js") || strings.Contains(body, "s3cret") {
		t.Error("the locked page holds the token, the script or the key")
	}
	for _, p := range pageAPIs {
		if got, _ := dashGet(t, h, p, nil); got != http.StatusUnauthorized {
			t.Errorf("GET %s with only the page's token: %d, want 401", p, got)
		}
	}
	if got := dashSignOut(t, h, nil); got != http.StatusUnauthorized {
		t.Errorf("sign-out with only the page's token: %d, want 401", got)
	}
	// A made-up cookie opens nothing either.
	fake := &http.Cookie{Name: dashCookie, Value: strings.Repeat("ab", 32)}
	if got, _ := dashGet(t, h, "/api/requests", fake); got != http.StatusUnauthorized {
		t.Errorf("GET /api/requests with a made-up cookie: %d, want 401", got)
	}
	if got, body := dashGet(t, h, "/", fake); got != http.StatusForbidden || strings.Contains(body, csrf()) {
		t.Errorf("GET / with a made-up cookie: %d, want the locked page", got)
	}
}

func TestDashboardKeyCodeFlow(t *testing.T) {
	h := startKeyedDashboard(t)
	if status, _ := dashCode(t, h, ""); status != http.StatusUnauthorized {
		t.Errorf("a code without the key: %d, want 401", status)
	}
	if status, _ := dashCode(t, h, "wrong"); status != http.StatusUnauthorized {
		t.Errorf("a code with a wrong key: %d, want 401", status)
	}
	status, code := dashCode(t, h, "s3cret")
	if status != http.StatusOK || len(code) != 64 {
		t.Fatalf("a code with the key: %d, %d characters", status, len(code))
	}
	resp, c := openCode(t, h, code)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("GET /?code=: %d Location %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 || c.Value == code || len(c.Value) != 64 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, expiring, not the code", c)
	}
	status, body := dashGet(t, h, "/", c)
	if status != http.StatusOK || !strings.Contains(body, csrf()) || !strings.Contains(body, "dashboard.js") {
		t.Errorf("GET / with the session: %d, want the page", status)
	}
	for _, p := range pageAPIs {
		if got, _ := dashGet(t, h, p, c); got != http.StatusOK {
			t.Errorf("GET %s with the session: %d, want 200", p, got)
		}
	}
	if got := dashSignOut(t, h, c); got != http.StatusOK {
		t.Errorf("sign-out with the session and token: %d, want 200", got)
	}
	// The session opens the page's endpoints only, not the key's others.
	if got, _ := dashGet(t, h, "/api/oauth/tokens", c); got != http.StatusUnauthorized {
		t.Errorf("GET /api/oauth/tokens with the session: %d, want 401", got)
	}
	// The code was used once; a second use finds nothing.
	resp, c2 := openCode(t, h, code)
	if resp.StatusCode != http.StatusForbidden || c2 != nil {
		t.Errorf("the code's second use: %d, cookie %v; want 403 and none", resp.StatusCode, c2 != nil)
	}
	if strings.Contains(h.logs.String(), code) || strings.Contains(h.logs.String(), c.Value) {
		t.Error("the log holds the code or the session")
	}
}

func TestDashboardKeyCodeExpires(t *testing.T) {
	h := startKeyedDashboard(t)
	code := h.srv.DashboardCode() // the tray's way
	if len(code) != 64 {
		t.Fatalf("DashboardCode: %d characters", len(code))
	}
	h.srv.dashCodes.mu.Lock()
	for i := range h.srv.dashCodes.live {
		h.srv.dashCodes.live[i].expires = time.Now().Add(-time.Second)
	}
	h.srv.dashCodes.mu.Unlock()
	if resp, c := openCode(t, h, code); resp.StatusCode != http.StatusForbidden || c != nil {
		t.Errorf("an expired code: %d, cookie %v; want 403 and none", resp.StatusCode, c != nil)
	}
	// An expired session is refused as well.
	_, c := openCode(t, h, h.srv.DashboardCode())
	if c == nil {
		t.Fatal("no session from a fresh code")
	}
	h.srv.dashSessions.mu.Lock()
	for i := range h.srv.dashSessions.live {
		h.srv.dashSessions.live[i].expires = time.Now().Add(-time.Second)
	}
	h.srv.dashSessions.mu.Unlock()
	if got, _ := dashGet(t, h, "/api/requests", c); got != http.StatusUnauthorized {
		t.Errorf("an expired session: %d, want 401", got)
	}
}

// Without server.api_key nothing changes: the page and its endpoints need
// no session, a code is "" and /?code= only leads to /.
func TestDashboardNoKeyNeedsNoSession(t *testing.T) {
	up := newUpstream(t)
	h := startProxy(t, mustConfig(t, subscriptionTOML(0, up.URL)), func(s *Server) { s.Admin, s.History = &fakeAdmin{}, openHistory(t) })
	if code := h.srv.DashboardCode(); code != "" {
		t.Errorf("DashboardCode without a key: %q, want \"\"", code)
	}
	if status, body := dashGet(t, h, "/", nil); status != http.StatusOK || !strings.Contains(body, csrf()) {
		t.Errorf("GET /: %d, want the page", status)
	}
	for _, p := range pageAPIs {
		if got, _ := dashGet(t, h, p, nil); got != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p, got)
		}
	}
	if resp, c := openCode(t, h, "anything"); resp.StatusCode != http.StatusSeeOther || c != nil {
		t.Errorf("GET /?code= without a key: %d, cookie %v; want 303 to / and none", resp.StatusCode, c != nil)
	}
}

// A reload that changes server.api_key ends the sessions and codes made
// with the old key; one that keeps it keeps them.
func TestDashboardKeyReloadEndsSessions(t *testing.T) {
	h := startKeyedDashboard(t)
	_, c := openCode(t, h, h.srv.DashboardCode())
	code := h.srv.DashboardCode()
	reload := func(key string) {
		t.Setenv("CCMUX_KEY", key)
		cfg := h.srv.CurrentConfig()
		if _, err := h.srv.Reload(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	reload("s3cret")
	if got, _ := dashGet(t, h, "/api/requests", c); got != http.StatusOK {
		t.Errorf("after a reload with the same key: %d, want 200", got)
	}
	reload("n3w")
	if got, _ := dashGet(t, h, "/api/requests", c); got != http.StatusUnauthorized {
		t.Errorf("after the key changed: %d, want 401", got)
	}
	if resp, c2 := openCode(t, h, code); resp.StatusCode != http.StatusForbidden || c2 != nil {
		t.Errorf("a code from before the key changed: %d", resp.StatusCode)
	}
}
