package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"ccmux/proxy/internal/fakeanthropic"
)

// subscriptionTOML is a config whose one provider is the Claude
// subscription claude-max (login anthropic-max) at url for every claude-*
// model; a port other than 0 adds the [server] table.
func subscriptionTOML(port int, url string) string {
	server := ""
	if port != 0 {
		server = fmt.Sprintf("[server]\nport = %d\n", port)
	}
	return server + fmt.Sprintf(`[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "claude-max"
auth_type = "oauth"
oauth_provider = "anthropic-max"
base_url = %q
models = ["claude-*"]
`, url)
}

// subscriptionThenKey is a config with a Claude subscription first and,
// when keyURL is not "", an API-key provider after it, both for claude-*.
func subscriptionThenKey(subURL, keyURL string) string {
	cfg := subscriptionTOML(0, subURL)
	if keyURL != "" {
		cfg += fmt.Sprintf(`
[[providers]]
name = "api"
auth_type = "api_key"
api_key = "$API_KEY"
base_url = %q
models = ["claude-*"]
`, keyURL)
	}
	return cfg
}

const sonnetBody = `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`

// withTracker gives the proxy a usage tracker on the fake clock c.
func withTracker(c *clock) (func(*Server), *UsageTracker) {
	tr := NewUsageTracker(nil, nil)
	tr.now = c.now
	return func(s *Server) { tr.log, s.Usage = s.Logger, tr }, tr
}

func spentHeaders(reset time.Time) http.Header {
	return fakeanthropic.Unified("rejected", reset,
		fakeanthropic.Window{Name: "5h", Utilization: 1, Reset: reset, Status: "rejected"},
		fakeanthropic.Window{Name: "7d", Utilization: 0.4, Reset: reset.Add(72 * time.Hour), Status: "allowed"})
}

// A spent subscription receives no request until its reset while the
// API-key provider answers; at the reset it is used again.
func TestSpentSubscriptionSkippedUntilReset(t *testing.T) {
	t.Setenv("API_KEY", "k")
	sub, key := newUpstream(t), newUpstream(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	setup, tr := withTracker(c)
	h := startProxy(t, mustConfig(t, subscriptionThenKey(sub.URL, key.URL)), setup)
	h.tokens.set("anthropic-max", "sub-token")

	reset := c.now().Add(2 * time.Hour)
	sub.Queue(fakeanthropic.Behavior{Status: 429, Header: spentHeaders(reset)})
	resp := h.post("/v1/messages", sonnetBody, nil)
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("the first request should fail over to the API-key provider: %d %s", resp.StatusCode, body)
	}
	if sub.Served() != 1 || key.Served() != 1 {
		t.Fatalf("served: subscription %d, api key %d", sub.Served(), key.Served())
	}
	for i := 0; i < 5; i++ {
		c.add(20 * time.Minute)
		resp := h.post("/v1/messages", sonnetBody, nil)
		if body := readAll(t, resp); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if sub.Served() != 1 {
		t.Fatalf("the spent subscription received %d requests before its reset", sub.Served()-1)
	}
	if key.Served() != 6 {
		t.Fatalf("the API-key provider served %d, want 6", key.Served())
	}
	for _, r := range key.Requests() {
		if r.Header.Get("X-Api-Key") != "k" || r.Header.Get("Authorization") != "" {
			t.Fatalf("the API-key provider got the wrong credential")
		}
	}
	c.add(20 * time.Minute) // 2 h after the 429: the reset
	resp = h.post("/v1/messages", sonnetBody, nil)
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("after the reset: %d %s", resp.StatusCode, body)
	}
	if sub.Served() != 2 || key.Served() != 6 {
		t.Fatalf("after the reset the subscription should serve again: subscription %d, api key %d", sub.Served(), key.Served())
	}
	if _, spent := tr.SpentUntil("anthropic-max"); spent {
		t.Error("still marked spent")
	}
}

// With no other candidate the client gets 429 with retry-after = seconds
// until the reset, and nothing is sent upstream.
func TestSpentSubscriptionAlone(t *testing.T) {
	sub := newUpstream(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	setup, _ := withTracker(c)
	h := startProxy(t, mustConfig(t, subscriptionThenKey(sub.URL, "")), setup)
	h.tokens.set("anthropic-max", "sub-token")

	reset := c.now().Add(90 * time.Minute)
	sub.Queue(fakeanthropic.Behavior{Status: 429, RetryAfter: "5", Header: spentHeaders(reset)})
	resp := h.post("/v1/messages", sonnetBody, nil)
	body := readAll(t, resp)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "5400" {
		t.Fatalf("the upstream's own 429: %d retry-after %q, want 429 and 5400: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp.Header.Get("Anthropic-Ratelimit-Unified-Status") != "rejected" {
		t.Error("the upstream's rate-limit headers should reach the client")
	}
	c.add(30 * time.Minute)
	resp = h.post("/v1/messages", sonnetBody, nil)
	body = readAll(t, resp)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3600" {
		t.Fatalf("while spent: %d retry-after %q, want 429 and 3600: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if typ, msg := apiError(t, body); typ != "rate_limit_error" || !strings.Contains(msg, "claude-max") {
		t.Errorf("error: %s %s", typ, msg)
	}
	if sub.Served() != 1 {
		t.Fatalf("the spent subscription received %d more requests", sub.Served()-1)
	}
	if !strings.Contains(h.logs.String(), "usage limit reached") {
		t.Error("the log should say why the subscription is skipped")
	}
}

// A plain 429 (no unified headers) fails over for that request only.
func TestPlain429FailsOverOnce(t *testing.T) {
	t.Setenv("API_KEY", "k")
	sub, key := newUpstream(t), newUpstream(t)
	c := &clock{t: time.Now().UTC()}
	setup, tr := withTracker(c)
	h := startProxy(t, mustConfig(t, subscriptionThenKey(sub.URL, key.URL)), setup)
	h.tokens.set("anthropic-max", "sub-token")
	sub.Queue(fakeanthropic.Behavior{Status: 429, RetryAfter: "30"})
	for i := 0; i < 2; i++ {
		resp := h.post("/v1/messages", sonnetBody, nil)
		if body := readAll(t, resp); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if sub.Served() != 2 || key.Served() != 1 {
		t.Fatalf("served: subscription %d (want 2), api key %d (want 1)", sub.Served(), key.Served())
	}
	// An allowed_warning 429 (not rejected) does not mark it either.
	sub.Queue(fakeanthropic.Behavior{Status: 429, Header: fakeanthropic.Unified("allowed_warning", c.now().Add(time.Hour))})
	readAll(t, h.post("/v1/messages", sonnetBody, nil))
	if _, spent := tr.SpentUntil("anthropic-max"); spent {
		t.Error("an allowed_warning 429 marked the subscription spent")
	}
}

// GET /api/usage answers DESIGN's shape from the headers of real answers.
func TestUsageAPI(t *testing.T) {
	t.Setenv("API_KEY", "k")
	sub, key := newUpstream(t), newUpstream(t)
	c := &clock{t: time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)}
	setup, _ := withTracker(c)
	h := startProxy(t, mustConfig(t, subscriptionThenKey(sub.URL, key.URL)), setup, func(s *Server) { s.Admin = &fakeAdmin{} })
	h.tokens.set("anthropic-max", "sub-token")

	get := func() (int, string) {
		req, _ := http.NewRequest("GET", h.base+"/api/usage", nil)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp)
	}
	status, body := get()
	if status != 200 || body != `{"providers":[{"provider":"claude-max","login":"anthropic-max","updated_at":null,"source":"","limited_until":null,"windows":[]}]}` {
		t.Fatalf("before any answer: %d %s", status, body)
	}
	r5, r7 := c.now().Add(3*time.Hour), c.now().Add(4*24*time.Hour)
	sub.Queue(fakeanthropic.Behavior{Header: fakeanthropic.Unified("allowed", r5,
		fakeanthropic.Window{Name: "5h", Utilization: 0.42, Reset: r5, Status: "allowed"},
		fakeanthropic.Window{Name: "7d", Utilization: 0.13, Reset: r7, Status: "allowed"},
		fakeanthropic.Window{Name: "7d_opus", Utilization: 0.8, Reset: r7, Status: "allowed_warning"})})
	readAll(t, h.post("/v1/messages", sonnetBody, nil))
	_, body = get()
	var got any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	var want any
	json.Unmarshal([]byte(`{"providers":[{"provider":"claude-max","login":"anthropic-max","updated_at":"2026-01-02T15:00:00Z","source":"headers","limited_until":null,"windows":[
		{"name":"five_hour","utilization":0.42,"resets_at":"2026-01-02T18:00:00Z","status":"allowed"},
		{"name":"seven_day","utilization":0.13,"resets_at":"2026-01-06T15:00:00Z","status":"allowed"},
		{"name":"seven_day_opus","utilization":0.8,"resets_at":"2026-01-06T15:00:00Z","status":"allowed_warning"}]}]}`), &want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GET /api/usage:\n got %s", body)
	}
	// Spent: limited_until is the reset.
	sub.Queue(fakeanthropic.Behavior{Status: 429, Header: spentHeaders(r5)})
	readAll(t, h.post("/v1/messages", sonnetBody, nil))
	_, body = get()
	if !strings.Contains(body, `"limited_until":"2026-01-02T18:00:00Z"`) {
		t.Errorf("spent: %s", body)
	}
	// The admin rules hold: a non-loopback peer, a foreign Host.
	hh, err := h.srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	if w := do(hh, "GET", "/api/usage", "127.0.0.1", "192.168.1.5:4000", nil, ""); w.Code != 403 {
		t.Errorf("non-loopback peer: %d", w.Code)
	}
	if w := do(hh, "GET", "/api/usage", "evil.example", local, nil, ""); w.Code != 403 {
		t.Errorf("foreign Host: %d", w.Code)
	}
	if w := do(hh, "GET", "/api/usage", "localhost", local, map[string]string{"Origin": "https://evil.example"}, ""); w.Code != 403 {
		t.Errorf("foreign Origin: %d", w.Code)
	}
	if w := do(hh, "POST", "/api/usage", "localhost", local, jsonCT, "{}"); w.Code != 405 {
		t.Errorf("POST: %d", w.Code)
	}
	t.Setenv("CCMUX_KEY", "s3cret")
	keyed := mustConfig(t, subscriptionThenKey(sub.URL, key.URL))
	keyed.Server.APIKey = "$CCMUX_KEY"
	hk, err := (&Server{Config: keyed, Tokens: newFakeTokens(), Admin: &fakeAdmin{}, Usage: h.srv.Usage}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	if w := do(hk, "GET", "/api/usage", "localhost", local, nil, ""); w.Code != 401 {
		t.Errorf("without server.api_key: %d", w.Code)
	}
	if w := do(hk, "GET", "/api/usage", "localhost", local, map[string]string{"X-Api-Key": "s3cret"}, ""); w.Code != 200 {
		t.Errorf("with server.api_key: %d", w.Code)
	}
}

// Fallback names who serves while the subscription is spent.
func TestFallback(t *testing.T) {
	t.Setenv("API_KEY", "k")
	withKey := &Server{Config: mustConfig(t, subscriptionThenKey("http://127.0.0.1:9", "http://127.0.0.1:9"))}
	if got := withKey.Fallback("anthropic-max"); got != "api" {
		t.Errorf("with an API-key provider after it: %q, want api", got)
	}
	alone := &Server{Config: mustConfig(t, subscriptionThenKey("http://127.0.0.1:9", ""))}
	if got := alone.Fallback("anthropic-max"); got != "" {
		t.Errorf("alone: %q, want none", got)
	}
}
