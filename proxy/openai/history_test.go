package openai

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestForAnthropic: thinking blocks made from an OpenAI-type provider's
// reasoning carry a ccmux signature Anthropic refuses ("Invalid
// `signature` in `thinking` block", for every turn), so a history that
// goes to an Anthropic provider (failover, a route change) loses them. The
// last assistant turn of a tool loop then starts without thinking, which
// Anthropic takes only with thinking off: thinking goes too.
func TestForAnthropic(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"tool loop",
			`{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[
			  {"role":"user","content":"hi"},
			  {"role":"assistant","content":[{"type":"thinking","thinking":"a","signature":"ccmux-openai:reasoning"},{"type":"text","text":"Hello <b>"}]},
			  {"role":"user","content":"read"},
			  {"role":"assistant","content":[{"type":"thinking","thinking":"b","signature":"ccmux-openai:reasoning_content"},{"type":"tool_use","id":"call_1","name":"Read","input":{}}]},
			  {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"ok"}]}]}`,
			`{"max_tokens":2000,"messages":[{"content":"hi","role":"user"},{"content":[{"type":"text","text":"Hello <b>"}],"role":"assistant"},{"content":"read","role":"user"},{"content":[{"type":"tool_use","id":"call_1","name":"Read","input":{}}],"role":"assistant"},{"content":[{"type":"tool_result","tool_use_id":"call_1","content":"ok"}],"role":"user"}],"model":"m"}`},
		{"finished turn keeps thinking on; a turn of only reasoning goes",
			`{"model":"m","thinking":{"type":"enabled","budget_tokens":1024},"messages":[
			  {"role":"user","content":"hi"},
			  {"role":"assistant","content":[{"type":"thinking","thinking":"a","signature":"ccmux-openai:reasoning"}]},
			  {"role":"user","content":"more"},
			  {"role":"assistant","content":[{"type":"thinking","thinking":"c","signature":"ccmux-openai:reasoning"},{"type":"text","text":"done"}]},
			  {"role":"user","content":"thanks"}]}`,
			`{"messages":[{"content":"hi","role":"user"},{"content":"more","role":"user"},{"content":[{"type":"text","text":"done"}],"role":"assistant"},{"content":"thanks","role":"user"}],"model":"m","thinking":{"type":"enabled","budget_tokens":1024}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ForAnthropic([]byte(tc.in))
			if !ok {
				t.Fatal("not rewritten")
			}
			assertJSON(t, got, tc.want)
		})
	}
	// Anthropic's own thinking, and a body without ccmux's, stay as they are.
	in := []byte(`{"model":"m","messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":"EqQBCkYIBxgCKkA"},{"type":"text","text":"ccmux-openai:reasoning"}]}]}`)
	if got, ok := ForAnthropic(in); ok || !bytes.Equal(got, in) {
		t.Fatalf("rewrote a body without ccmux thinking: %s", got)
	}
}

// TestForAnthropicLastTurn: only the last assistant message decides about
// thinking, even when it is a plain string.
func TestForAnthropicLastTurn(t *testing.T) {
	in := `{"model":"m","thinking":{"type":"enabled","budget_tokens":1024},"messages":[
	  {"role":"user","content":"read"},
	  {"role":"assistant","content":[{"type":"thinking","thinking":"b","signature":"ccmux-openai:reasoning_content"},{"type":"tool_use","id":"call_1","name":"Read","input":{}}]},
	  {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"<ok>"}]},
	  {"role":"assistant","content":"Done."},
	  {"role":"user","content":"thanks"}]}`
	got, ok := ForAnthropic([]byte(in))
	if !ok || !bytes.Contains(got, []byte(`"thinking":{"type":"enabled"`)) || !bytes.Contains(got, []byte(`"<ok>"`)) {
		t.Fatalf("%v %s", ok, got)
	}
}

// TestForAnthropicContextManagement: a clear_thinking edit needs thinking
// on; when thinking goes, so does that edit (and context_management when
// nothing is left of it).
func TestForAnthropicContextManagement(t *testing.T) {
	msgs := `"messages":[{"role":"user","content":"read"},
	  {"role":"assistant","content":[{"type":"thinking","thinking":"b","signature":"ccmux-openai:reasoning_content"},{"type":"tool_use","id":"call_1","name":"Read","input":{}}]},
	  {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"ok"}]}]`
	for _, tc := range []struct{ cm, want string }{
		{`{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]}`, ``},
		{`{"edits":[{"type":"clear_thinking_20251015"},{"type":"clear_tool_uses_20250919"}]}`, `{"edits":[{"type":"clear_tool_uses_20250919"}]}`},
	} {
		got, ok := ForAnthropic([]byte(`{"model":"m","thinking":{"type":"enabled","budget_tokens":1024},"context_management":` + tc.cm + `,` + msgs + `}`))
		var v map[string]json.RawMessage
		if !ok || json.Unmarshal(got, &v) != nil {
			t.Fatalf("%v %s", ok, got)
		}
		if string(v["context_management"]) != tc.want || v["thinking"] != nil {
			t.Errorf("context_management %s: got %s", tc.cm, got)
		}
	}
}

// TestWithoutThinking: thinking goes with its clear_thinking edits, the
// rest stays; a body without thinking is left alone.
func TestWithoutThinking(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"model":"m","thinking":{"type":"enabled","budget_tokens":1024},"messages":[]}`, `{"messages":[],"model":"m"}`},
		{`{"model":"m","thinking":{"type":"adaptive"},"context_management":{"edits":[{"type":"clear_thinking_20251015"}]}}`, `{"model":"m"}`},
		{`{"model":"m","thinking":{"type":"adaptive"},"context_management":{"edits":[{"type":"clear_thinking_20251015"},{"type":"clear_tool_uses_20250919"}]}}`,
			`{"context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]},"model":"m"}`},
	} {
		got, ok := WithoutThinking([]byte(tc.in))
		if !ok || string(got) != tc.want {
			t.Errorf("WithoutThinking(%s) = %v %s, want %s", tc.in, ok, got, tc.want)
		}
	}
	for _, in := range []string{`{"model":"m","messages":[]}`, `not json`} {
		if got, ok := WithoutThinking([]byte(in)); ok || string(got) != in {
			t.Errorf("WithoutThinking(%s) = %v %s, want it unchanged", in, ok, got)
		}
	}
}
