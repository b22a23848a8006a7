package authtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"ccmux/config"
)

func post(t *testing.T, u string, body map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func authorizeURL(s *Server, redirect, state, verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"code": {"true"}, "client_id": {ClientID}, "response_type": {"code"},
		"redirect_uri": {redirect}, "scope": {"user:inference"}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	return s.AuthorizeURL() + "?" + q.Encode()
}

// TestCodeExchangeAndRotation walks the fake through what a client does:
// authorize, exchange with the verifier, refresh with rotation, reuse fails.
func TestCodeExchangeAndRotation(t *testing.T) {
	s := NewServer()
	defer s.Close()
	loc, err := s.Approve(authorizeURL(s, "http://localhost:1234/callback", "st", "verifier-1"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Host != "localhost:1234" || loc.Query().Get("state") != "st" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect = %s", loc)
	}
	code := loc.Query().Get("code")
	exchange := map[string]any{"grant_type": "authorization_code", "code": code, "state": "st", "client_id": ClientID,
		"redirect_uri": "http://localhost:1234/callback", "code_verifier": "wrong"}
	if st, out := post(t, s.TokenURL(), exchange); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", st, out)
	}
	// The code was burnt by the failed attempt, like single-use codes are.
	loc, _ = s.Approve(authorizeURL(s, "http://localhost:1234/callback", "st", "verifier-1"))
	exchange["code"], exchange["code_verifier"] = loc.Query().Get("code"), "verifier-1"
	st, out := post(t, s.TokenURL(), exchange)
	if st != 200 || out["access_token"] == nil || out["refresh_token"] == nil || out["expires_in"] != float64(3600) {
		t.Fatalf("exchange: %d %v", st, out)
	}
	if email := out["account"].(map[string]any)["email_address"]; email != "user@example.com" {
		t.Fatalf("email = %v", email)
	}
	rt := out["refresh_token"].(string)
	refresh := map[string]any{"grant_type": "refresh_token", "refresh_token": rt, "client_id": ClientID}
	st, out = post(t, s.TokenURL(), refresh)
	if st != 200 || out["refresh_token"] == rt || !s.ValidAccessToken(out["access_token"].(string)) {
		t.Fatalf("refresh: %d %v", st, out)
	}
	if st, out = post(t, s.TokenURL(), refresh); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %v", st, out)
	}
	if s.RefreshCount() != 2 {
		t.Fatalf("RefreshCount = %d", s.RefreshCount())
	}
}

func TestFailuresAndForm(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.FailRefresh(Failure{Status: 429, Error: "rate_limit_error", RetryAfter: "7", Times: 1})
	b, _ := json.Marshal(map[string]any{"grant_type": "refresh_token", "refresh_token": "x", "client_id": ClientID})
	resp, err := http.Post(s.TokenURL(), "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("got %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st, out := post(t, s.TokenURL(), map[string]any{"grant_type": "refresh_token", "refresh_token": "x", "client_id": ClientID}); st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("after Times ran out: %d %v", st, out)
	}
	resp, err = http.Post(s.TokenURL(), "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("form body: %d", resp.StatusCode)
	}
	s.SetDeny(true)
	loc, err := s.Approve(authorizeURL(s, s.ManualRedirectURI(), "st", "v"))
	if err != nil || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st" {
		t.Fatalf("deny: %v %v", loc, err)
	}
}

func TestOAuthTOML(t *testing.T) {
	s := NewServer()
	defer s.Close()
	got := s.OAuthTOML("anthropic-max", "console")
	for _, want := range []string{"[oauth.anthropic-max]", `preset = "console"`, `token_url = "` + s.TokenURL() + `"`, `api_key_url = "` + s.APIKeyURL() + `"`} {
		if !strings.Contains(got, want) {
			t.Errorf("OAuthTOML lacks %s:\n%s", want, got)
		}
	}
	cfg, err := config.Parse("config.toml", []byte(config.DefaultTOML+got))
	if err != nil {
		t.Fatalf("config rejects the block: %v", err)
	}
	if o := cfg.OAuth["anthropic-max"]; o.TokenURL != s.TokenURL() || o.Preset != "console" || o.RedirectURI != s.ManualRedirectURI() {
		t.Fatalf("parsed [oauth.anthropic-max] = %+v", o)
	}
	if got := s.OAuthTOML("a b", "claude"); !strings.Contains(got, `[oauth."a b"]`) {
		t.Errorf("id with a space not quoted:\n%s", got)
	}
}
