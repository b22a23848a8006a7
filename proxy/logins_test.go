package proxy

import (
	"fmt"
	"testing"
	"time"

	"ccmux/proxy/internal/fakeanthropic"
)

// twoSubscriptions is a config with two Claude subscriptions for every
// claude-* model, claude-max (login anthropic-max) first, claude-work
// (login claude-work) second.
func twoSubscriptions(firstURL, secondURL string) string {
	return subscriptionTOML(0, firstURL) + fmt.Sprintf(`
[[providers]]
name = "claude-work"
auth_type = "oauth"
oauth_provider = "claude-work"
base_url = %q
models = ["claude-*"]
`, secondURL)
}

// Two subscriptions fill first: the first serves until it is spent, then
// the second, with its own token, until the first's reset.
func TestTwoSubscriptionsFillFirst(t *testing.T) {
	first, second := newUpstream(t), newUpstream(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	setup, _ := withTracker(c)
	h := startProxy(t, mustConfig(t, twoSubscriptions(first.URL, second.URL)), setup)
	h.tokens.set("anthropic-max", "max-token")
	h.tokens.set("claude-work", "work-token")
	if got := h.srv.DefaultLogin(); got != "anthropic-max" {
		t.Errorf("DefaultLogin = %q, want anthropic-max", got)
	}
	send := func() {
		t.Helper()
		if resp := h.post("/v1/messages", sonnetBody, nil); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, readAll(t, resp))
		} else {
			readAll(t, resp)
		}
	}
	send()
	send()
	if first.Served() != 2 || second.Served() != 0 {
		t.Fatalf("before the first is spent: first %d, second %d; want 2, 0", first.Served(), second.Served())
	}
	reset := c.now().Add(2 * time.Hour)
	first.Queue(fakeanthropic.Behavior{Status: 429, Header: spentHeaders(reset)})
	send()
	send()
	c.add(90 * time.Minute)
	send()
	if first.Served() != 3 || second.Served() != 3 {
		t.Fatalf("while the first is spent: first %d, second %d; want 3 (the 429), 3", first.Served(), second.Served())
	}
	for _, r := range second.Requests() {
		if r.Header.Get("Authorization") != "Bearer work-token" {
			t.Fatal("the second subscription got another login's token")
		}
	}
	c.add(30 * time.Minute) // the reset
	send()
	if first.Served() != 4 || second.Served() != 3 {
		t.Fatalf("after the reset: first %d, second %d; want 4, 3", first.Served(), second.Served())
	}
}

// DefaultLogin follows router.default's first candidate that is a Claude
// login, skipping others; "" when none is.
func TestDefaultLogin(t *testing.T) {
	t.Setenv("API_KEY", "k")
	for _, tt := range []struct {
		name, toml, want string
	}{
		{"the first subscription", twoSubscriptions("http://127.0.0.1:1", "http://127.0.0.1:2"), "anthropic-max"},
		{"an API key first, then a subscription", `[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "api"
auth_type = "api_key"
api_key = "$API_KEY"
models = ["claude-*"]
[[providers]]
name = "claude-work"
auth_type = "oauth"
oauth_provider = "claude-work"
models = ["claude-*"]
`, "claude-work"},
		{"no subscription", `[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "api"
auth_type = "api_key"
api_key = "$API_KEY"
models = ["claude-*"]
`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{Config: mustConfig(t, tt.toml)}
			if got := s.DefaultLogin(); got != tt.want {
				t.Errorf("DefaultLogin = %q, want %q", got, tt.want)
			}
		})
	}
}
