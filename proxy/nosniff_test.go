package proxy

import (
	"testing"
)

// Every answer ccmux writes itself under /api/ and every /v1/ error carries
// X-Content-Type-Options: nosniff, so no browser reads one as a script or
// a page.
func TestNosniff(t *testing.T) {
	t.Setenv("API_KEY", "k")
	h := testHandler(t, mustConfig(t, apiKeyTOML("http://127.0.0.1:9")), &fakeAdmin{})
	for _, tt := range []struct {
		name, method, path string
		header             map[string]string
		body               string
		status             int
	}{
		{"usage", "GET", "/api/usage", nil, "", 200},
		{"tokens", "GET", "/api/oauth/tokens", nil, "", 200},
		{"admin error", "GET", "/api/oauth/nope", nil, "", 404},
		{"v1 not JSON", "POST", "/v1/messages", nil, "x", 415},
		{"v1 bad body", "POST", "/v1/messages", jsonCT, "{", 400},
		{"v1 unknown model", "GET", "/v1/models/nope", nil, "", 404},
		{"v1 wrong method", "GET", "/v1/messages", nil, "", 405},
		{"v1 models", "GET", "/v1/models", nil, "", 200},
		{"health", "GET", "/health", nil, "", 200},
		{"root page (found in review)", "GET", "/", nil, "", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, tt.method, tt.path, "localhost", local, tt.header, tt.body)
			if w.Code != tt.status || w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s: %d with X-Content-Type-Options %q, want %d with nosniff", tt.method, tt.path, w.Code, w.Header().Get("X-Content-Type-Options"), tt.status)
			}
		})
	}
}

// The admin API refuses a browser request from another site or another
// port of this machine (same-site) that carries no Origin, as it refuses
// cross-site ones; an allowed Origin, ccmux's own page, the address bar
// and programs (no Sec-Fetch-Site) get in.
func TestAdminRefusesSameSiteWithoutOrigin(t *testing.T) {
	cfg := mustConfig(t, apiKeyTOML("http://127.0.0.1:9"))
	cfg.Server.AllowedOrigins = []string{"http://localhost:3000"}
	h := testHandler(t, cfg, &fakeAdmin{})
	for _, tt := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"same-site without an origin", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"cross-site without an origin", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site from an allowed origin", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"}, 200},
		{"same-site from another origin", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:4000"}, 403},
		{"same-origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"typed in the address bar", map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"a program", nil, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/api/usage", "/api/oauth/tokens"} {
				if w := do(h, "GET", path, "localhost", local, tt.header, ""); w.Code != tt.status {
					t.Errorf("GET %s: %d, want %d: %s", path, w.Code, tt.status, w.Body)
				}
			}
		})
	}
}
