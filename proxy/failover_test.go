package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// twoProviders is a config with two API-key providers serving "duo",
// first and second in priority, each pointing at its own base URL.
func twoProviders(first, second string, extra string) string {
	return fmt.Sprintf(`
[server]
%s
[router]
default = "duo"
[[providers]]
name = "first"
auth_type = "api_key"
api_key = "$FIRST_KEY"
base_url = %q
[[providers]]
name = "second"
auth_type = "api_key"
api_key = "$SECOND_KEY"
base_url = %q
[[models]]
name = "duo"
[[models.mappings]]
actual_model = "model-a"
priority = 1
provider = "first"
[[models.mappings]]
actual_model = "model-b"
priority = 2
provider = "second"
`, extra, first, second)
}

// closedURL is a loopback address where nothing listens.
func closedURL(t *testing.T) string {
	return "http://127.0.0.1:" + strconv.Itoa(testsupport.FreePort(t))
}

func TestFailover(t *testing.T) {
	const body = `{"model":"duo","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	const streamBody = `{"model":"duo","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name       string
		first      *fakeanthropic.Behavior // nil: nothing listens
		second     fakeanthropic.Behavior
		stream     bool
		timeouts   string
		status     int
		errType    string
		wantFirst  int // requests the first upstream got
		wantSecond int
		check      func(t *testing.T, resp *http.Response, body string)
	}{
		{name: "connection refused", first: nil, status: 200, wantSecond: 1},
		{name: "429", first: &fakeanthropic.Behavior{Status: 429}, status: 200, wantFirst: 1, wantSecond: 1},
		{name: "500", first: &fakeanthropic.Behavior{Status: 500}, status: 200, wantFirst: 1, wantSecond: 1},
		{name: "503", first: &fakeanthropic.Behavior{Status: 503}, status: 200, wantFirst: 1, wantSecond: 1},
		{name: "529 overloaded", first: &fakeanthropic.Behavior{Status: 529}, status: 200, wantFirst: 1, wantSecond: 1},
		{name: "timeout before first byte", first: &fakeanthropic.Behavior{Stall: true}, timeouts: "[server.timeouts]\napi_timeout_ms = 200",
			status: 200, wantFirst: 1, wantSecond: 1},
		{name: "stream dies before first event", first: &fakeanthropic.Behavior{DieAtStart: true}, stream: true, status: 200, wantFirst: 1, wantSecond: 1,
			check: func(t *testing.T, _ *http.Response, body string) {
				if names := eventNames(readEvents(t, strings.NewReader(body))); names[len(names)-1] != "message_stop" {
					t.Errorf("want the second provider's complete stream, got %v", names)
				}
			}},
		{name: "400 goes back unchanged", first: &fakeanthropic.Behavior{Status: 400}, status: 400, errType: "invalid_request_error", wantFirst: 1,
			check: func(t *testing.T, resp *http.Response, _ string) {
				if !strings.HasPrefix(resp.Header.Get("request-id"), "req_011CUfake") {
					t.Errorf("request-id not passed through: %q", resp.Header.Get("request-id"))
				}
			}},
		{name: "401 of an api key provider goes back", first: &fakeanthropic.Behavior{Status: 401}, status: 401, errType: "authentication_error", wantFirst: 1},
		{name: "404 goes back", first: &fakeanthropic.Behavior{Status: 404}, status: 404, errType: "not_found_error", wantFirst: 1},
		{name: "all fail: last upstream error as received", first: &fakeanthropic.Behavior{Status: 500},
			second: fakeanthropic.Behavior{Status: 529, RetryAfter: "17"}, status: 529, errType: "overloaded_error", wantFirst: 1, wantSecond: 1,
			check: func(t *testing.T, resp *http.Response, body string) {
				if resp.Header.Get("retry-after") != "17" || resp.Header.Get("x-should-retry") != "true" || resp.Header.Get("request-id") == "" {
					t.Errorf("upstream headers not kept: %v", resp.Header)
				}
				if _, msg := apiError(t, body); msg != "Overloaded" {
					t.Errorf("want the upstream's own message, got %q", msg)
				}
			}},
		{name: "all 429 keeps rate-limit headers", first: &fakeanthropic.Behavior{Status: 429}, second: fakeanthropic.Behavior{Status: 429, RetryAfter: "3"},
			status: 429, errType: "rate_limit_error", wantFirst: 1, wantSecond: 1,
			check: func(t *testing.T, resp *http.Response, _ string) {
				if resp.Header.Get("anthropic-ratelimit-requests-remaining") != "0" || resp.Header.Get("retry-after") != "3" {
					t.Errorf("rate-limit headers not kept: %v", resp.Header)
				}
			}},
		{name: "no failover after the first byte of a stream", first: &fakeanthropic.Behavior{DieAfterEvents: 4}, stream: true,
			status: 200, wantFirst: 1, wantSecond: 0,
			check: func(t *testing.T, _ *http.Response, body string) {
				evs := readEvents(t, strings.NewReader(body))
				last := evs[len(evs)-1]
				if last.name != "error" || len(evs) != 5 {
					t.Fatalf("want 4 relayed events then an error event, got %v", eventNames(evs))
				}
				if typ, msg := apiError(t, last.data); typ != "api_error" || !strings.Contains(msg, "first") {
					t.Errorf("error event = %s %q", typ, msg)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FIRST_KEY", "key-first")
			t.Setenv("SECOND_KEY", "key-second")
			firstURL := closedURL(t)
			var first *fakeanthropic.Upstream
			if tt.first != nil {
				first = newUpstream(t)
				first.SetBehavior(*tt.first)
				firstURL = first.URL
			}
			second := newUpstream(t)
			second.SetBehavior(tt.second)
			h := startProxy(t, mustConfig(t, twoProviders(firstURL, second.URL, tt.timeouts)))
			b := body
			if tt.stream {
				b = streamBody
			}
			resp := h.post("/v1/messages", b, nil)
			got := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, got)
			}
			if tt.errType != "" {
				if typ, _ := apiError(t, got); typ != tt.errType {
					t.Errorf("error type %q, want %q", typ, tt.errType)
				}
			}
			if first != nil && len(first.Requests()) != tt.wantFirst {
				t.Errorf("first upstream got %d requests, want %d", len(first.Requests()), tt.wantFirst)
			}
			if n := len(second.Requests()); n != tt.wantSecond {
				t.Errorf("second upstream got %d requests, want %d", n, tt.wantSecond)
			}
			if tt.wantSecond > 0 {
				r := second.Requests()[0]
				if r.Model != "model-b" || r.Header.Get("X-Api-Key") != "key-second" {
					t.Errorf("second upstream got model %q key %q", r.Model, r.Header.Get("X-Api-Key"))
				}
			}
			if tt.check != nil {
				tt.check(t, resp, got)
			}
		})
	}
}

func TestAllUnreachable(t *testing.T) {
	t.Setenv("FIRST_KEY", "key-first")
	// SECOND_KEY is unset: that provider's failure names the variable.
	h := startProxy(t, mustConfig(t, twoProviders(closedURL(t), closedURL(t), "")))
	resp := h.post("/v1/messages", `{"model":"duo","messages":[]}`, nil)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502: %s", resp.StatusCode, body)
	}
	typ, msg := apiError(t, body)
	if typ != "api_error" || !strings.Contains(msg, "first:") || !strings.Contains(msg, "connect") ||
		!strings.Contains(msg, "second: environment variable SECOND_KEY (providers[1].api_key) is not set") {
		t.Errorf("want each attempt named, got %s %q", typ, msg)
	}
	if strings.Contains(msg, "key-first") || strings.Contains(h.logs.String(), "key-first") {
		t.Error("a provider key leaked into the answer or the log")
	}
}

const oauthTOML = `
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "max"
auth_type = "oauth"
oauth_provider = "anthropic-max"
base_url = %q
models = ["claude-*"]
`

func TestOAuthRefreshOn401(t *testing.T) {
	tests := []struct {
		name       string
		replies    []fakeanthropic.Behavior
		refreshTo  string
		status     int
		requests   int
		refreshes  int
		lastBearer string
	}{
		{"refresh then success", []fakeanthropic.Behavior{{Status: 401}}, "fresh-token", 200, 2, 1, "Bearer fresh-token"},
		{"still 401 after one retry", []fakeanthropic.Behavior{{Status: 401}, {Status: 401}, {Status: 401}}, "fresh-token", 401, 2, 1, "Bearer fresh-token"},
		{"refresh fails: the 401 goes back", []fakeanthropic.Behavior{{Status: 401}}, "", 401, 1, 1, "Bearer stale-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t)
			up.Queue(tt.replies...)
			h := startProxy(t, mustConfig(t, fmt.Sprintf(oauthTOML, up.URL)))
			h.tokens.set("anthropic-max", "stale-token")
			h.tokens.refreshTo = tt.refreshTo
			resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","messages":[]}`, nil)
			body := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			reqs := up.Requests()
			if len(reqs) != tt.requests {
				t.Fatalf("upstream got %d requests, want %d", len(reqs), tt.requests)
			}
			if got := h.tokens.refreshCount("anthropic-max"); got != tt.refreshes {
				t.Errorf("ForceRefresh called %d times, want %d", got, tt.refreshes)
			}
			if got := reqs[len(reqs)-1].Header.Get("Authorization"); got != tt.lastBearer {
				t.Errorf("last upstream Authorization %q, want %q", got, tt.lastBearer)
			}
			for _, secret := range []string{"stale-token", "fresh-token"} {
				if strings.Contains(h.logs.String(), secret) || strings.Contains(body, secret) {
					t.Errorf("token %q leaked into the log or the answer", secret)
				}
			}
		})
	}
}

func TestNotSignedIn(t *testing.T) {
	up := newUpstream(t)
	h := startProxy(t, mustConfig(t, fmt.Sprintf(oauthTOML, up.URL)))
	resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","messages":[]}`, nil)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
	}
	if typ, msg := apiError(t, body); typ != "authentication_error" || !strings.Contains(msg, "ccmux login") || !strings.Contains(msg, "anthropic-max") {
		t.Errorf("want a sign-in hint, got %s %q", typ, msg)
	}
	if len(up.Requests()) != 0 {
		t.Error("a request went upstream without a token")
	}
}

// A missing token is a candidate failure: the next provider answers.
func TestNotSignedInFailsOver(t *testing.T) {
	t.Setenv("API_KEY", "k")
	max, api := newUpstream(t), newUpstream(t)
	h := startProxy(t, mustConfig(t, fmt.Sprintf(`
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "max"
auth_type = "oauth"
oauth_provider = "anthropic-max"
base_url = %q
models = ["claude-*"]
[[providers]]
name = "api"
auth_type = "api_key"
api_key = "$API_KEY"
base_url = %q
models = ["claude-*"]
`, max.URL, api.URL)))
	resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","messages":[]}`, nil)
	if body := readAll(t, resp); resp.StatusCode != 200 || len(api.Requests()) != 1 || len(max.Requests()) != 0 {
		t.Fatalf("status %d, max %d, api %d requests: %s", resp.StatusCode, len(max.Requests()), len(api.Requests()), body)
	}
	if !strings.Contains(h.logs.String(), "not signed in to anthropic-max") {
		t.Errorf("the skipped provider is not logged:\n%s", h.logs.String())
	}
}

func TestXProviderPin(t *testing.T) {
	t.Setenv("FIRST_KEY", "key-first")
	t.Setenv("SECOND_KEY", "key-second")
	first, second := newUpstream(t), newUpstream(t)
	h := startProxy(t, mustConfig(t, twoProviders(first.URL, second.URL, "")))
	resp := h.post("/v1/messages", `{"model":"duo","messages":[]}`, map[string]string{"X-Provider": "second"})
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("pinned request: %d %s", resp.StatusCode, body)
	}
	if len(first.Requests()) != 0 || len(second.Requests()) != 1 || second.Requests()[0].Model != "model-b" {
		t.Fatalf("first got %d, second got %d requests", len(first.Requests()), len(second.Requests()))
	}
	if second.Requests()[0].Header.Get("X-Provider") != "" {
		t.Error("X-Provider was forwarded upstream")
	}
	resp = h.post("/v1/messages", `{"model":"duo","messages":[]}`, map[string]string{"X-Provider": "nope"})
	body := readAll(t, resp)
	if typ, msg := apiError(t, body); resp.StatusCode != 400 || typ != "invalid_request_error" || !strings.Contains(msg, `"nope"`) {
		t.Errorf("unknown pin: %d %s %q", resp.StatusCode, typ, msg)
	}
}
