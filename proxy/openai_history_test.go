package proxy

import (
	"strings"
	"testing"
)

// TestOpenAIHistoryToAnthropic: a conversation whose tool loop an
// OpenAI-type provider answered with reasoning (thinking blocks signed by
// ccmux) goes on at an Anthropic provider, which would refuse those
// signatures: they do not reach it, nor does thinking, which the last turn
// no longer starts with. The model is still the Anthropic provider's.
func TestOpenAIHistoryToAnthropic(t *testing.T) {
	ant := newUpstream(t)
	h := startProxy(t, mustConfig(t, openaiConfig("anthropic", ant.URL, "openrouter", closedURL(t))))
	body := `{"model":"duo","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[
	  {"role":"user","content":"read /a"},
	  {"role":"assistant","content":[{"type":"thinking","thinking":"I should read it.","signature":"ccmux-openai:reasoning_content"},{"type":"tool_use","id":"call_1","name":"Read","input":{"file_path":"/a"}}]},
	  {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"hello"}]}]}`
	resp := h.post("/v1/messages", body, nil)
	got := readAll(t, resp)
	if resp.StatusCode != 200 || len(ant.Requests()) != 1 {
		t.Fatalf("status %d, anthropic requests %d: %s", resp.StatusCode, len(ant.Requests()), got)
	}
	r := ant.Requests()[0]
	sent := string(r.Body)
	if strings.Contains(sent, "ccmux-openai:") || strings.Contains(sent, `"thinking":{`) || r.Model != "model-a" || !strings.Contains(sent, `"tool_use_id":"call_1"`) {
		t.Fatalf("sent to Anthropic: %s", sent)
	}
}
