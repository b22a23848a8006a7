package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/config"
)

// GET /v1/models/{id} answers for every id the router would serve, not only
// the names /v1/models lists: the SDKs' models.retrieve on a dated Claude
// name works with the default config, whose provider takes "claude-*".
func TestModelRetrieveServedIDs(t *testing.T) {
	h := testHandler(t, mustConfig(t, config.DefaultTOML), nil)
	tests := []struct {
		id     string
		status int
	}{
		{"claude-sonnet-4-5", 200},          // a [[models]] name
		{"claude-sonnet-4-5-20250929", 200}, // through the provider's "claude-*"
		{"CLAUDE-OPUS-4-5", 200},            // globs match whatever the case
		{"gpt-4o", 404},                     // nothing serves it (router.default is not a match)
		{"claude-*", 404},                   // a pattern is not a model
	}
	for _, tt := range tests {
		w := do(h, "GET", "/v1/models/"+tt.id, "localhost:13456", local, nil, "")
		if w.Code != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.id, w.Code, tt.status, w.Body)
			continue
		}
		var m struct{ Type, ID, DisplayName, CreatedAt string }
		var e struct{ Error struct{ Type string } }
		if tt.status == 200 {
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m.Type != "model" || m.ID != tt.id {
				t.Errorf("%s: %s (%v), want a model object with this id", tt.id, w.Body, err)
			}
		} else if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Type != "not_found_error" {
			t.Errorf("%s: %s, want not_found_error", tt.id, w.Body)
		}
	}
}

// GET /api/oauth/tokens says when refreshing a login fails, in words, so
// that `ccmux status` can tell a failing login from one the next request
// renews; a healthy login carries no such field.
func TestTokenJSONSaysRefreshFails(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	failing, _ := json.Marshal(newTokenJSON(auth.Account{ProviderID: "anthropic-max", ExpiresAt: now.Add(-time.Hour), LastError: "the token endpoint answered 503"}, now))
	if !strings.Contains(string(failing), `"last_refresh_error":"the token endpoint answered 503"`) {
		t.Errorf("a failing login: %s", failing)
	}
	fine, _ := json.Marshal(newTokenJSON(auth.Account{ProviderID: "anthropic-max", ExpiresAt: now.Add(time.Hour)}, now))
	if strings.Contains(string(fine), "last_refresh_error") {
		t.Errorf("a healthy login: %s", fine)
	}
}

// A non-streaming answer goes back as the upstream wrote it: its model is
// the name the upstream was sent (after a [[models]] mapping), not the one
// the client asked for (claude-code-mux writes that one back; the README's
// differences table says so).
func TestAnswerKeepsTheUpstreamsModel(t *testing.T) {
	t.Setenv("API_KEY", "k")
	answer := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer up.Close()
	h := startProxy(t, mustConfig(t, rewriteTOML(up.URL)))
	resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if got := readAll(t, resp); resp.StatusCode != 200 || got != answer {
		t.Errorf("status %d, body %s\nwant the upstream's answer unchanged: %s", resp.StatusCode, got, answer)
	}
}
