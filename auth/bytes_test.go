package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// testdata/ccm_written_oauth_tokens.json is the file exactly as
// claude-code-mux 0.6.3 writes it (serde_json::to_string_pretty of its
// HashMap<String, OAuthToken>: 2-space indent, fields in struct order,
// optional ones left out, records in hash order, no final newline).

// After ccmux refreshes or logs out of its own login, every other record
// is back byte for byte: its keys in their order, its indentation, its
// timestamps as written.
func TestForeignRecordsKeepTheirBytes(t *testing.T) {
	e := newEnv(t, withFakeClock())
	clock := e.c.clock.(*fakeClock)
	// The fake must know the refresh token: sign in once, then put the
	// live token into claude-code-mux's file.
	e.signIn("anthropic-max")
	live := e.records()["anthropic-max"]
	fixture := e.installStore("ccm_written_oauth_tokens.json")
	data := []byte(strings.Replace(string(fixture), "fake-claude-refresh-token", live.RefreshToken, 1))
	if err := os.WriteFile(e.path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(fixture, &raw); err != nil {
		t.Fatal(err)
	}
	foreign := []string{"gemini", "github-copilot", "openai-codex"}
	check := func(when string) {
		t.Helper()
		after, err := os.ReadFile(e.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range foreign {
			want := append([]byte(`  "`+id+`": `), raw[id]...)
			// The file holds tokens: say what differs, never print it.
			if !bytes.Contains(after, want) {
				t.Errorf("%s: %s's record (%d bytes, keys in claude-code-mux's order, 2-space indent) is not in the file byte for byte", when, id, len(raw[id]))
			}
		}
		if !json.Valid(after) {
			t.Errorf("%s: the file is not JSON", when)
		}
	}

	clock.Set(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)) // anthropic-max has < 5 min left
	if _, err := e.c.Credential(context.Background(), "anthropic-max"); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	check("after a refresh")
	if err := e.c.Logout("anthropic-max"); err != nil {
		t.Fatal(err)
	}
	check("after logout")
}
