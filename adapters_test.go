package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/auth/authtest"
	"ccmux/config"
)

// The admin API, wired to the real auth client as `ccmux start` wires it,
// signs in, lists, refreshes and signs out the way claude-code-mux's web UI
// calls it, and no answer carries a token value: neither the ones ccmux got
// from the OAuth server nor another app's in the shared store.
func TestAdminAPIAnswersNoTokenValue(t *testing.T) {
	srv := authtest.NewServer()
	defer srv.Close()
	dir := t.TempDir()
	store := filepath.Join(dir, "oauth_tokens.json")
	// claude-code-mux's Gemini login, in its format, shares the file.
	other := []string{"ya29.gemini-access-SECRET", "1//gemini-refresh-SECRET"}
	gemini := `{"gemini":{"provider_id":"gemini","access_token":"` + other[0] + `","refresh_token":"` + other[1] +
		`","expires_at":"2030-01-01T00:00:00Z","enterprise_url":null,"project_id":"proj-1"}}`
	if err := os.WriteFile(store, []byte(gemini), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("t.toml", []byte(config.DefaultTOML+srv.OAuthTOML("anthropic-max", "claude")))
	if err != nil {
		t.Fatal(err)
	}
	client := auth.NewClient(cfg, auth.NewStore(store), auth.Options{Logger: slog.New(slog.DiscardHandler)})
	h, err := newProxy(cfg, client, slog.New(slog.DiscardHandler)).Handler()
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	call := func(method, path, body string, want int) string {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Host, r.RemoteAddr = "127.0.0.1:13456", "127.0.0.1:50000"
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got, _ := io.ReadAll(w.Result().Body)
		answers = append(answers, string(got))
		if w.Code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, w.Code, got, want)
		}
		return string(got)
	}
	type token struct {
		ProviderID   string `json:"provider_id"`
		ExpiresAt    string `json:"expires_at"`
		IsExpired    bool   `json:"is_expired"`
		NeedsRefresh bool   `json:"needs_refresh"`
	}
	tokens := func() map[string]token {
		t.Helper()
		var list []token // a bare array, as claude-code-mux's web UI reads it
		if err := json.Unmarshal([]byte(call(http.MethodGet, "/api/oauth/tokens", "", 200)), &list); err != nil {
			t.Fatal(err)
		}
		out := map[string]token{}
		for _, tok := range list {
			out[tok.ProviderID] = tok
		}
		return out
	}

	var start struct{ URL, State string }
	if err := json.Unmarshal([]byte(call(http.MethodPost, "/api/oauth/authorize", `{"provider_id":"anthropic-max"}`, 200)), &start); err != nil {
		t.Fatal(err)
	}
	loc, err := srv.Approve(start.URL)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := json.Marshal(loc.Query().Get("code") + "#" + start.State)
	call(http.MethodPost, "/api/oauth/exchange", `{"provider_id":"anthropic-max","code":`+string(code)+`}`, 200)
	if tok, ok := tokens()["anthropic-max"]; !ok || tok.IsExpired || tok.NeedsRefresh || tok.ExpiresAt == "" {
		t.Fatalf("after sign-in: %+v %v", tok, ok)
	}

	call(http.MethodPost, "/api/oauth/tokens/refresh", `{"provider_id":"anthropic-max"}`, 200)
	if n := srv.RefreshCount(); n != 1 {
		t.Errorf("refresh made %d token requests, want 1", n)
	}
	call(http.MethodPost, "/api/oauth/tokens/delete", `{"provider_id":"anthropic-max"}`, 200)
	if _, ok := tokens()["anthropic-max"]; ok {
		t.Error("the login is still listed after delete")
	}
	if _, ok := tokens()["gemini"]; ok {
		t.Error("claude-code-mux's gemini login is listed as a login of ccmux's")
	}
	// Another app's login can be neither refreshed nor deleted from here.
	for _, path := range []string{"/api/oauth/tokens/refresh", "/api/oauth/tokens/delete"} {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"provider_id":"gemini"}`))
		r.Host, r.RemoteAddr = "127.0.0.1:13456", "127.0.0.1:50000"
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		answers = append(answers, w.Body.String())
		if w.Code == http.StatusOK {
			t.Errorf("%s for gemini answered 200", path)
		}
	}
	if data, err := os.ReadFile(store); err != nil || !strings.Contains(string(data), other[1]) {
		t.Errorf("the gemini record did not survive: %v", err)
	}

	secrets := append(srv.Secrets(), other...)
	if len(secrets) < 5 {
		t.Fatalf("only %d secrets issued; the test did not exercise a login and a refresh", len(secrets))
	}
	for _, a := range answers {
		for _, s := range secrets {
			if strings.Contains(a, s) {
				t.Errorf("an admin answer contains a token value: %s", a)
			}
		}
	}
}

// The tray hears of its listed logins only, as the running config lists
// them at the time of the event: a reload can switch them.
func TestTrayAuthEventsAreTheTraysLogin(t *testing.T) {
	srv := authtest.NewServer()
	defer srv.Close()
	store := filepath.Join(t.TempDir(), "oauth_tokens.json")
	rec := func(id string) string {
		return `"` + id + `":{"provider_id":"` + id + `","access_token":"a-` + id + `","refresh_token":"r-` + id +
			`","expires_at":"2030-01-01T00:00:00Z","enterprise_url":null,"project_id":null,"managed_by":"ccmux"}`
	}
	data := "{" + rec("claude-max") + "," + rec("claude-work") + "," + rec("claude-spare") + "}"
	if err := os.WriteFile(store, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("t.toml", []byte(config.DefaultTOML+srv.OAuthTOML("claude-max", "claude")))
	if err != nil {
		t.Fatal(err)
	}
	client := auth.NewClient(cfg, auth.NewStore(store), auth.Options{Logger: slog.New(slog.DiscardHandler)})
	var mu sync.Mutex
	login := "claude-max"
	ta := &trayAuth{client: client, logins: func() ([]string, string) { mu.Lock(); defer mu.Unlock(); return []string{login}, login }}
	events, stop := ta.Events()
	next := func() auth.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return auth.Event{}
		}
	}
	for _, id := range []string{"claude-work", "claude-max"} { // another login first: not the tray's
		if err := client.Logout(id); err != nil {
			t.Fatal(err)
		}
	}
	if ev := next(); ev.Kind != auth.SignedOut || ev.ProviderID != "claude-max" {
		t.Fatalf("first event %+v, want claude-max signed out", ev)
	}
	mu.Lock()
	login = "claude-spare" // a reload named another login
	mu.Unlock()
	if err := client.Logout("claude-spare"); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.ProviderID != "claude-spare" {
		t.Fatalf("after the switch: event %+v, want claude-spare's", ev)
	}
	stop()
	stop() // twice is harmless
	// The channel is closed once stopped.
	for range events {
	}
}
