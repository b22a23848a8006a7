package proxy

import (
	"encoding/json"
	"testing"

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
