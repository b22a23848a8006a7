package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/internal/testsupport"
)

// fakeAdmin records admin calls.
type fakeAdmin struct {
	mu       sync.Mutex
	calls    []string
	tokens   []auth.Account
	failWith error
}

func (a *fakeAdmin) record(s string) {
	a.mu.Lock()
	a.calls = append(a.calls, s)
	a.mu.Unlock()
}

func (a *fakeAdmin) Authorize(id, preset string) (string, string, error) {
	a.record("authorize " + id + " " + preset)
	if a.failWith != nil {
		return "", "", a.failWith
	}
	return "https://claude.ai/oauth/authorize?state=st4te", "st4te", nil
}

func (a *fakeAdmin) Exchange(_ context.Context, id, code, state string) error {
	a.record("exchange " + id + " " + code + " " + state)
	return a.failWith
}

func (a *fakeAdmin) Tokens() ([]auth.Account, error) {
	a.record("tokens")
	return a.tokens, a.failWith
}

func (a *fakeAdmin) Delete(id string) error {
	a.record("delete " + id)
	return a.failWith
}

func (a *fakeAdmin) Refresh(_ context.Context, id string) (auth.Account, error) {
	a.record("refresh " + id)
	if a.failWith != nil {
		return auth.Account{}, a.failWith
	}
	return auth.Account{ProviderID: id, ExpiresAt: time.Date(2030, 2, 3, 4, 5, 6, 0, time.UTC)}, nil
}

func (a *fakeAdmin) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

// testHandler returns the proxy handler for cfg with a fake admin.
func testHandler(t *testing.T, cfg *config.Config, admin OAuthAdmin) http.Handler {
	t.Helper()
	s := &Server{Config: cfg, Tokens: newFakeTokens(), Admin: admin, Version: "1.2.3"}
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// do runs one request through h; remote is the peer address.
func do(h http.Handler, method, target, host, remote string, header map[string]string, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Host = host
	r.RemoteAddr = remote
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const local = "127.0.0.1:50000"

var jsonCT = map[string]string{"Content-Type": "application/json"}

func TestAdminAPI(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	admin := &fakeAdmin{tokens: []auth.Account{{ProviderID: "anthropic-max", ExpiresAt: exp, Email: "a@example.com"}}}
	h := testHandler(t, mustConfig(t, apiKeyTOML("http://127.0.0.1:9")), admin)
	tests := []struct {
		name, method, path, remote string
		header                     map[string]string
		body                       string
		status                     int
		want                       string // substring of the body
		call                       string // the admin call made, "" for none
	}{
		{"authorize", "POST", "/api/oauth/authorize", local, jsonCT, `{"provider_id":"anthropic-max","preset":"claude"}`, 200,
			`{"state":"st4te","url":"https://claude.ai/oauth/authorize?state=st4te"}`, "authorize anthropic-max claude"},
		{"authorize defaults", "POST", "/api/oauth/authorize", "[::1]:4000", map[string]string{"Content-Type": "application/json; charset=utf-8"}, `{}`, 200,
			`"state":"st4te"`, "authorize anthropic-max claude"},
		{"exchange code#state", "POST", "/api/oauth/exchange", local, jsonCT, `{"provider_id":"anthropic-max","code":"c0de#st4te"}`, 200,
			`"success":true`, "exchange anthropic-max c0de st4te"},
		{"exchange with state", "POST", "/api/oauth/exchange", local, jsonCT, `{"provider_id":"p","code":"c","state":"s"}`, 200,
			`"success":true`, "exchange p c s"},
		{"exchange without code", "POST", "/api/oauth/exchange", local, jsonCT, `{"provider_id":"p"}`, 400, "invalid_request_error", ""},
		// claude-code-mux's shape: a bare array its web UI reads with .length and .map.
		{"tokens", "GET", "/api/oauth/tokens", local, nil, "", 200,
			`[{"provider_id":"anthropic-max","expires_at":"2030-01-02T03:04:05Z","is_expired":false,"needs_refresh":false,"email":"a@example.com","kind":"oauth"}]`, "tokens"},
		{"delete", "DELETE", "/api/oauth/tokens/anthropic-max", local, nil, "", 200, `"success":true`, "delete anthropic-max"},
		{"delete as claude-code-mux", "POST", "/api/oauth/tokens/delete", local, jsonCT, `{"provider_id":"anthropic-max"}`, 200,
			`{"message":"Token for 'anthropic-max' deleted","provider_id":"anthropic-max","success":true}`, "delete anthropic-max"},
		{"refresh as claude-code-mux", "POST", "/api/oauth/tokens/refresh", local, jsonCT, `{"provider_id":"gem"}`, 200,
			`{"expires_at":"2030-02-03T04:05:06Z","message":"Token refreshed successfully","provider_id":"gem","success":true}`, "refresh gem"},
		{"delete without provider_id", "POST", "/api/oauth/tokens/delete", local, jsonCT, `{}`, 400, "provider_id", ""},
		{"refresh without provider_id", "POST", "/api/oauth/tokens/refresh", local, jsonCT, `{"provider":"x"}`, 400, "provider_id", ""},
		{"delete POST as a form", "POST", "/api/oauth/tokens/delete", local, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `provider_id=x`, 415, "application/json", ""},
		{"refresh from another machine", "POST", "/api/oauth/tokens/refresh", "192.168.1.20:5000", jsonCT, `{"provider_id":"x"}`, 403, "permission_error", ""},
		{"refresh with GET", "GET", "/api/oauth/tokens/refresh", local, nil, "", 405, "invalid_request_error", ""},
		{"non-loopback peer", "GET", "/api/oauth/tokens", "192.168.1.20:5000", nil, "", 403, "permission_error", ""},
		{"non-loopback peer POST", "POST", "/api/oauth/authorize", "10.0.0.2:5000", jsonCT, `{}`, 403, "permission_error", ""},
		{"non-JSON POST (form)", "POST", "/api/oauth/authorize", local, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, `provider_id=x`, 415, "application/json", ""},
		{"POST without content type", "POST", "/api/oauth/exchange", local, nil, `{"code":"c"}`, 415, "application/json", ""},
		{"text/plain POST", "POST", "/api/oauth/exchange", local, map[string]string{"Content-Type": "text/plain"}, `{"code":"c"}`, 415, "application/json", ""},
		{"malformed JSON", "POST", "/api/oauth/authorize", local, jsonCT, `{`, 400, "invalid_request_error", ""},
		{"wrong method", "GET", "/api/oauth/authorize", local, nil, "", 405, "invalid_request_error", ""},
		{"unknown admin path", "GET", "/api/oauth/nope", local, nil, "", 404, "not_found_error", ""},
		{"delete without id", "DELETE", "/api/oauth/tokens/", local, nil, "", 404, "not_found_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(admin.Calls())
			w := do(h, tt.method, tt.path, "127.0.0.1:13456", tt.remote, tt.header, tt.body)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("got %d %s, want %d containing %s", w.Code, w.Body, tt.status, tt.want)
			}
			calls := admin.Calls()[before:]
			if tt.call == "" && len(calls) != 0 || tt.call != "" && (len(calls) != 1 || calls[0] != tt.call) {
				t.Errorf("admin calls %v, want %q", calls, tt.call)
			}
		})
	}
}

func TestAdminErrorsAndDisabled(t *testing.T) {
	admin := &fakeAdmin{failWith: errors.New("unknown preset")}
	h := testHandler(t, mustConfig(t, apiKeyTOML("http://127.0.0.1:9")), admin)
	w := do(h, "POST", "/api/oauth/authorize", "localhost", local, jsonCT, `{"preset":"bogus"}`)
	if typ, msg := apiError(t, w.Body.String()); w.Code != 400 || typ != "invalid_request_error" || !strings.Contains(msg, "unknown preset") {
		t.Errorf("got %d %s %q", w.Code, typ, msg)
	}
	off := testHandler(t, mustConfig(t, apiKeyTOML("http://127.0.0.1:9")), nil)
	w = do(off, "GET", "/api/oauth/tokens", "localhost", local, nil, "")
	if w.Code != 404 {
		t.Errorf("admin API with Admin nil: %d, want 404", w.Code)
	}
}

func TestHostAllowList(t *testing.T) {
	cfg := mustConfig(t, apiKeyTOML("http://127.0.0.1:9"))
	cfg.Server.Host = "ccmux.lan"
	h := testHandler(t, cfg, &fakeAdmin{})
	for host, ok := range map[string]bool{
		"localhost": true, "localhost:13456": true, "LOCALHOST:1": true, "127.0.0.1": true, "127.0.0.1:13456": true,
		"[::1]:13456": true, "[::1]": true, "ccmux.lan": true, "ccmux.lan:13456": true,
		"evil.example": false, "evil.example:13456": false, "127.0.0.1.nip.io": false, "localhost.evil.example": false,
		"192.168.1.5:13456": false, "": false,
	} {
		for _, path := range []string{"/health", "/v1/models", "/api/oauth/tokens"} {
			w := do(h, "GET", path, host, local, nil, "")
			if got := w.Code != http.StatusForbidden; got != ok {
				t.Errorf("Host %q %s: status %d, allowed = %v, want %v", host, path, w.Code, got, ok)
			}
			if !ok {
				if typ, _ := apiError(t, w.Body.String()); typ != "permission_error" {
					t.Errorf("Host %q: error type %q", host, typ)
				}
			}
		}
	}
}

func TestOrigin(t *testing.T) {
	cfg := mustConfig(t, apiKeyTOML("http://127.0.0.1:9"))
	cfg.Server.AllowedOrigins = []string{"http://localhost:3000"}
	h := testHandler(t, cfg, &fakeAdmin{})
	tests := []struct {
		origin string
		status int
		cors   string
	}{
		{"", 200, ""},
		{"http://localhost:3000", 200, "http://localhost:3000"},
		{"https://evil.example", 403, ""},
		{"http://localhost:3001", 403, ""},
		{"null", 403, ""},
	}
	for _, tt := range tests {
		hdr := map[string]string{}
		if tt.origin != "" {
			hdr["Origin"] = tt.origin
		}
		w := do(h, "GET", "/health", "localhost", local, hdr, "")
		if w.Code != tt.status || w.Header().Get("Access-Control-Allow-Origin") != tt.cors {
			t.Errorf("Origin %q: %d ACAO %q, want %d %q", tt.origin, w.Code, w.Header().Get("Access-Control-Allow-Origin"), tt.status, tt.cors)
		}
	}
	// Admin endpoints too, even from loopback with JSON.
	for _, path := range []string{"/api/oauth/authorize", "/api/oauth/tokens/delete", "/api/oauth/tokens/refresh"} {
		w := do(h, "POST", path, "localhost", local, map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, `{"provider_id":"anthropic-max"}`)
		if w.Code != 403 {
			t.Errorf("admin POST %s from a foreign origin: %d", path, w.Code)
		}
		w = do(h, "POST", path, "evil.example", local, jsonCT, `{"provider_id":"anthropic-max"}`)
		if w.Code != 403 {
			t.Errorf("admin POST %s with a foreign Host: %d", path, w.Code)
		}
	}
	var w *httptest.ResponseRecorder
	// No CORS headers by default.
	w = do(testHandler(t, mustConfig(t, apiKeyTOML("http://127.0.0.1:9")), nil), "GET", "/health", "localhost", local, nil, "")
	for k := range w.Header() {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("CORS header %s sent by default", k)
		}
	}
}

func TestServerAPIKey(t *testing.T) {
	t.Setenv("API_KEY", "k")
	t.Setenv("CCMUX_KEY", "s3cret-key")
	up := newUpstream(t)
	cfg := mustConfig(t, apiKeyTOML(up.URL))
	cfg.Server.APIKey = "$CCMUX_KEY"
	h := startProxy(t, cfg)
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"missing", nil, 401},
		{"wrong x-api-key", map[string]string{"X-Api-Key": "s3cret-kez"}, 401},
		{"prefix only", map[string]string{"X-Api-Key": "s3cret"}, 401},
		{"wrong bearer", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"x-api-key", map[string]string{"X-Api-Key": "s3cret-key"}, 200},
		{"bearer", map[string]string{"Authorization": "Bearer s3cret-key"}, 200},
		{"bearer in lower case", map[string]string{"Authorization": "bearer s3cret-key"}, 200},
		{"bearer in upper case", map[string]string{"Authorization": "BEARER s3cret-key"}, 200},
		{"another scheme", map[string]string{"Authorization": "Basic s3cret-key"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","messages":[]}`, tt.header)
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == 401 {
				if typ, msg := apiError(t, body); typ != "authentication_error" || strings.Contains(msg, "s3cret") {
					t.Errorf("got %s %q", typ, msg)
				}
			}
		})
	}
	// The client's key for ccmux never reaches the upstream.
	for _, r := range up.Requests() {
		if r.Header.Get("X-Api-Key") != "k" || r.Header.Get("Authorization") != "" {
			t.Errorf("upstream got x-api-key %q authorization %q", r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
		}
	}
	// /health stays open for `ccmux status`.
	resp, err := h.client.Get(h.base + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health with server.api_key: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestServerAPIKeyMissingEnv(t *testing.T) {
	cfg := mustConfig(t, apiKeyTOML("http://127.0.0.1:9"))
	cfg.Server.APIKey = "$CCMUX_TEST_UNSET_KEY"
	cfg.Server.Port = 0
	err := (&Server{Config: cfg}).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "CCMUX_TEST_UNSET_KEY (server.api_key) is not set") {
		t.Fatalf("want the missing variable named, got %v", err)
	}
}

func TestBodyLimitsAndMalformed(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	big := `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"` + strings.Repeat("a", MaxBodyBytes) + `"}]}`
	tests := []struct {
		name    string
		body    io.Reader
		length  int64 // -1: chunked
		status  int
		errType string
	}{
		{"over 32 MiB with Content-Length", strings.NewReader(big), int64(len(big)), 413, "request_too_large"},
		{"over 32 MiB chunked", strings.NewReader(big), -1, 413, "request_too_large"},
		{"malformed JSON", strings.NewReader(`{"model":"claude-sonnet-4-5",`), 29, 400, "invalid_request_error"},
		{"not an object", strings.NewReader(`[1]`), 3, 400, "invalid_request_error"},
		{"empty", strings.NewReader(``), 0, 400, "invalid_request_error"},
		{"unknown model goes to the default", strings.NewReader(`{"model":"gpt-4"}`), 17, 200, ""},
		{"just under the limit is read", io.MultiReader(strings.NewReader(`{"model":"claude-sonnet-4-5","x":"`), strings.NewReader(strings.Repeat("b", 1<<20)), strings.NewReader(`"}`)), -1, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", h.base+"/v1/messages", tt.body)
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = tt.length
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, tt.status, body)
			}
			if tt.errType != "" {
				if typ, _ := apiError(t, body); typ != tt.errType {
					t.Errorf("error type %q, want %q", typ, tt.errType)
				}
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	cfg := mustConfig(t, apiKeyTOML(up.URL)+`
[[providers]]
name = "zai"
auth_type = "api_key"
api_key = "k"
base_url = "http://127.0.0.1:9"
models = ["glm-4.6", "glm-*"]
[[models]]
name = "sonnet"
[[models.mappings]]
actual_model = "claude-sonnet-4-5"
priority = 1
provider = "api"
`)
	admin := &fakeAdmin{tokens: []auth.Account{{ProviderID: "anthropic-max", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Email: "secret@example.com"}}}
	h := testHandler(t, cfg, admin)
	absTestConfig, err := filepath.Abs("test.toml") // /health names the config absolute
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path string
		status             int
		want               string
	}{
		{"models", "GET", "/v1/models", 200, `"data":[{"type":"model","id":"sonnet","display_name":"sonnet","created_at":"1970-01-01T00:00:00Z"},{"type":"model","id":"glm-4.6","display_name":"glm-4.6","created_at":"1970-01-01T00:00:00Z"}]`},
		{"models query ignored", "GET", "/v1/models?beta=true", 200, `"first_id":"sonnet"`},
		{"health", "GET", "/health", 200, `{"config":` + strconv.Quote(absTestConfig) + `,"providers":[{"provider_id":"anthropic-max","expires_at":"2030-01-01T00:00:00Z"}],"service":"ccmux","status":"ok","version":"1.2.3"}`},
		{"head root", "HEAD", "/", 200, ""},
		{"unknown path", "GET", "/v2/whatever", 404, `"type":"not_found_error"`},
		{"one model", "GET", "/v1/models/sonnet", 200, `{"type":"model","id":"sonnet","display_name":"sonnet","created_at":"1970-01-01T00:00:00Z"}`},
		{"one provider model", "GET", "/v1/models/glm-4.6", 200, `"id":"glm-4.6"`},
		{"a glob is not a model", "GET", "/v1/models/glm-*", 404, `"type":"not_found_error"`},
		{"unknown model", "GET", "/v1/models/gpt-4", 404, `"type":"not_found_error"`},
		{"messages with GET", "GET", "/v1/messages", 405, `"type":"invalid_request_error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, tt.method, tt.path, "localhost:13456", local, nil, "")
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Fatalf("got %d %s, want %d containing %s", w.Code, w.Body, tt.status, tt.want)
			}
			if strings.Contains(w.Body.String(), "secret@example.com") {
				t.Error("health exposes the account email")
			}
		})
	}
}

func TestCountTokens(t *testing.T) {
	t.Setenv("API_KEY", "k")
	body := `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"` + strings.Repeat("x", 396) + `"}]}`
	tests := []struct {
		name     string
		status   int // the upstream's answer; 0 answers normally
		want     int // input_tokens
		wantCode int
	}{
		{"forwarded", 0, 4242, 200},
		{"upstream lacks count_tokens: local estimate", 404, estimateTokens(len(body)), 200},
		{"405: local estimate", 405, estimateTokens(len(body)), 200},
		{"other errors go back", 400, 0, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				if r.URL.Path != "/v1/messages/count_tokens" {
					http.Error(w, "wrong path", 500)
					return
				}
				if tt.status != 0 {
					w.WriteHeader(tt.status)
					fmt.Fprintf(w, `{"type":"error","error":{"type":"x","message":"m"}}`)
					return
				}
				if !strings.Contains(string(b), `"model":"claude-sonnet-4-5"`) {
					http.Error(w, "wrong body", 500)
					return
				}
				fmt.Fprint(w, `{"input_tokens":4242}`)
			}))
			defer up.Close()
			h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
			resp := h.post("/v1/messages/count_tokens", body, nil)
			got := readAll(t, resp)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			if tt.wantCode == 200 {
				var v struct {
					InputTokens int `json:"input_tokens"`
				}
				if err := json.Unmarshal([]byte(got), &v); err != nil || v.InputTokens != tt.want {
					t.Errorf("got %s, want input_tokens %d", got, tt.want)
				}
			}
		})
	}
}

// No browser "simple request" reaches an upstream: POST /v1/* must be JSON,
// and a cross-site request is refused unless its Origin is allowed.
func TestCSRF(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	cfg := mustConfig(t, apiKeyTOML(up.URL))
	cfg.Server.AllowedOrigins = []string{"http://localhost:3000"}
	h := testHandler(t, cfg, nil)
	body := `{"model":"claude-sonnet-4-5","messages":[]}`
	tests := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"text/plain", map[string]string{"Content-Type": "text/plain"}, 415},
		{"a form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"no content type", map[string]string{}, 415},
		{"json with a charset", map[string]string{"Content-Type": "application/json; charset=utf-8"}, 200},
		{"cross-site without an origin", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-site from an allowed origin", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Origin": "http://localhost:3000"}, 200},
		{"cross-site from another origin", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, 403},
		{"same-origin", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, "POST", "/v1/messages", "localhost", local, tt.header, body)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
		})
	}
	if n := len(up.Requests()); n != 3 {
		t.Errorf("the upstream received %d requests, want the 3 allowed ones", n)
	}
}

// A model name is bounded: a long one is refused before routing, and
// neither the route cache nor the log line carries it.
func TestLongModelName(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	name := "claude-" + strings.Repeat("x", 1<<20)
	resp := h.post("/v1/messages", `{"model":"`+name+`","messages":[]}`, nil)
	body := readAll(t, resp)
	if resp.StatusCode != 400 {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if typ, msg := apiError(t, body); typ != "invalid_request_error" || len(msg) > 1000 {
		t.Errorf("got %s, %d-byte message", typ, len(msg))
	}
	if len(up.Requests()) != 0 {
		t.Error("the long name reached the upstream")
	}
	testsupport.Eventually(t, "the request log line", 5*time.Second, func() bool { return strings.Contains(h.logs.String(), "status=400") })
	if n := len(h.logs.String()); n > 4096 {
		t.Errorf("the logs hold %d bytes for one request", n)
	}
	if n := h.srv.held.Load(); n != 0 {
		t.Errorf("%d body bytes still held after the request", n)
	}
}

// A request body is read as it arrives: a client that declares 32 MiB and
// sends one byte costs a small buffer, not 32 MiB, and its connection is
// closed when the body stops making progress.
func TestSlowBodyIsBoundedAndClosed(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	h := startProxyWith(t, mustConfig(t, apiKeyTOML(up.URL)), func(s *Server) { s.ClientBodyTimeout = 300 * time.Millisecond })
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const conns = 8
	var open []net.Conn
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", h.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", 32<<20)
		open = append(open, c)
	}
	testsupport.Eventually(t, "the bodies to be read", 5*time.Second, func() bool { return h.srv.held.Load() > 0 })
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	if grown := int64(during.HeapAlloc) - int64(before.HeapAlloc); grown > 16<<20 {
		t.Errorf("%d connections declaring 32 MiB grew the heap by %d MiB", conns, grown>>20)
	}
	for i, c := range open {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection %d was still open 10 s after its body stalled", i)
		}
	}
	testsupport.Eventually(t, "the held bytes to be released", 5*time.Second, func() bool { return h.srv.held.Load() == 0 })
}

// The bytes held for failover have a budget: a body past it gets a 529 that
// Claude Code retries, and smaller ones still pass.
func TestBodyBudget(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	h := startProxyWith(t, mustConfig(t, apiKeyTOML(up.URL)), func(s *Server) { s.BodyBudget = 1 << 20 })
	big := `{"model":"claude-sonnet-4-5","x":"` + strings.Repeat("a", 2<<20) + `"}`
	resp := h.post("/v1/messages", big, nil)
	body := readAll(t, resp)
	if resp.StatusCode != 529 {
		t.Fatalf("a body past the budget: status %d, want 529", resp.StatusCode)
	}
	if typ, _ := apiError(t, body); typ != "overloaded_error" {
		t.Errorf("error type %q", typ)
	}
	resp = h.post("/v1/messages", `{"model":"claude-sonnet-4-5","x":"`+strings.Repeat("a", 100<<10)+`"}`, nil)
	if readAll(t, resp); resp.StatusCode != 200 {
		t.Errorf("a body within the budget: status %d", resp.StatusCode)
	}
	if n := h.srv.held.Load(); n != 0 {
		t.Errorf("%d bytes still held", n)
	}
}

// A password in a base URL is never printed: not in the 502 body, not in the logs.
func TestUpstreamPasswordRedacted(t *testing.T) {
	t.Setenv("API_KEY", "k")
	closed := strings.TrimPrefix(closedURL(t), "http://")
	h := startProxy(t, mustConfig(t, apiKeyTOML("http://user:hunter2secret@"+closed)))
	resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","messages":[]}`, nil)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	testsupport.Eventually(t, "the request log line", 5*time.Second, func() bool { return strings.Contains(h.logs.String(), "status=502") })
	if strings.Contains(body, "hunter2secret") || strings.Contains(h.logs.String(), "hunter2secret") {
		t.Errorf("the password was printed:\n%s\n%s", body, h.logs.String())
	}
}

// router.think fires on the thinking types that think: "enabled" and
// "adaptive" (Claude Code's main turns), not "disabled".
func TestThinkRule(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	cfg := mustConfig(t, apiKeyTOML(up.URL))
	cfg.Router.Think = "claude-think"
	h := startProxy(t, cfg)
	for typ, want := range map[string]string{"enabled": "claude-think", "adaptive": "claude-think", "disabled": "claude-sonnet-4-5"} {
		resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","thinking":{"type":"`+typ+`"},"messages":[]}`, nil)
		readAll(t, resp)
		reqs := up.Requests()
		if got := reqs[len(reqs)-1].Model; got != want {
			t.Errorf("thinking.type %q: the upstream got model %q, want %q", typ, got, want)
		}
	}
}

func TestTokenJSONStates(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name             string
		info             auth.Account
		expired, refresh bool
		kind             string
	}{
		{"fresh", auth.Account{ExpiresAt: now.Add(time.Hour)}, false, false, "oauth"},
		{"within five minutes", auth.Account{ExpiresAt: now.Add(5 * time.Minute)}, false, true, "oauth"},
		{"just outside", auth.Account{ExpiresAt: now.Add(5*time.Minute + time.Second)}, false, false, "oauth"},
		{"expiring now", auth.Account{ExpiresAt: now}, true, true, "oauth"},
		{"expired", auth.Account{ExpiresAt: now.Add(-time.Hour)}, true, true, "oauth"},
		{"console API key", auth.Account{APIKey: true}, false, false, "api_key"},
	}
	for _, tt := range tests {
		j := newTokenJSON(tt.info, now)
		if j.IsExpired != tt.expired || j.NeedsRefresh != tt.refresh || j.Kind != tt.kind {
			t.Errorf("%s: is_expired %v needs_refresh %v kind %q, want %v %v %q", tt.name, j.IsExpired, j.NeedsRefresh, j.Kind, tt.expired, tt.refresh, tt.kind)
		}
	}
}
