package openai

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// anthropicToolID is the pattern the Messages API checks tool_use ids
// against; Claude Code sends the ids back, maybe to an Anthropic provider.
var anthropicToolID = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// TestToolIDAnthropicSafe: Kimi K2 (Moonshot, and through OpenRouter or
// Groq) names its calls "functions.Read:0". The tool_use id the client gets
// must pass Anthropic's pattern (the history may fail over to an Anthropic
// provider), and go back upstream as the id the provider gave.
func TestToolIDAnthropicSafe(t *testing.T) {
	const raw = "functions.Read:0"
	sse := `data: {"id":"c1","model":"kimi-k2","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"functions.Read:0","type":"function","function":{"name":"Read","arguments":"{}"}}]}}]}` + "\n\n" +
		`data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":3}}` + "\n\n"
	var ids []string
	for _, e := range splitEvents(t, translate([]byte(sse))) {
		var v struct {
			ContentBlock struct {
				Type, ID string
			} `json:"content_block"`
		}
		json.Unmarshal(e.data, &v)
		if v.ContentBlock.Type == "tool_use" {
			ids = append(ids, v.ContentBlock.ID)
		}
	}
	whole := `{"id":"c1","model":"kimi-k2","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"functions.Read:0","type":"function","function":{"name":"Read","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`
	resp, err := Response([]byte(whole), testTarget)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Content []struct{ Type, ID string }
	}
	json.Unmarshal(resp, &m)
	for _, b := range m.Content {
		ids = append(ids, b.ID)
	}
	// A Gemini thought signature rides along with such an id too.
	ids = append(ids, toolID(raw, "sig\x00nature"))
	if len(ids) != 3 {
		t.Fatalf("want 3 tool_use ids, got %q", ids)
	}
	for _, id := range ids {
		if !anthropicToolID.MatchString(id) {
			t.Errorf("tool_use id %q does not match ^[a-zA-Z0-9_-]+$", id)
		}
		req := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"go"},
		  {"role":"assistant","content":[{"type":"tool_use","id":` + quote(id) + `,"name":"Read","input":{}}]},
		  {"role":"user","content":[{"type":"tool_result","tool_use_id":` + quote(id) + `,"content":"ok"}]}]}`
		out, err := Request([]byte(req), testTarget)
		if err != nil {
			t.Fatal(err)
		}
		var cr struct {
			Messages []struct {
				ToolCallID string `json:"tool_call_id"`
				ToolCalls  []struct {
					ID string `json:"id"`
				} `json:"tool_calls"`
			} `json:"messages"`
		}
		json.Unmarshal(out, &cr)
		if len(cr.Messages) != 3 || len(cr.Messages[1].ToolCalls) != 1 || cr.Messages[1].ToolCalls[0].ID != raw || cr.Messages[2].ToolCallID != raw {
			t.Errorf("tool_use id %q went back upstream as %s, want %q in both", id, out, raw)
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestRequestStrictProviders: OpenAI, Groq and Cerebras refuse a message
// property they do not know with a 400 ("Unknown parameter",
// "property 'reasoning_content' is unsupported"). The history may hold
// DeepSeek's reasoning or a Gemini thought signature from an earlier
// provider (failover, a route change); neither goes to them, nor the
// reasoning to Gemini.
func TestRequestStrictProviders(t *testing.T) {
	id := toolID("call_1", "gemini-signature")
	body := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"go"},
	  {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"ccmux-openai:reasoning_content"},{"type":"tool_use","id":` + quote(id) + `,"name":"Read","input":{}}]},
	  {"role":"user","content":[{"type":"tool_result","tool_use_id":` + quote(id) + `,"content":"ok"}]}]}`
	for _, typ := range []string{"openai", "groq", "cerebras"} {
		out, err := Request([]byte(body), Target{Provider: "p", Type: typ, Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		assertJSON(t, out, `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"go"},
		  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"Read","arguments":"{}"}}]},
		  {"role":"tool","tool_call_id":"call_1","content":"ok"}]}`)
	}
	// The others still get them back (DeepSeek and Gemini need them).
	out, err := Request([]byte(body), Target{Provider: "p", Type: "gemini", Model: "m"})
	if err != nil || !strings.Contains(string(out), `"thought_signature":"gemini-signature"`) || strings.Contains(string(out), "reasoning_content") {
		t.Errorf("gemini lost the thought signature or got reasoning_content: %s %v", out, err)
	}
	out, err = Request([]byte(body), Target{Provider: "p", Type: "openai-compatible", Model: "deepseek-reasoner"})
	if err != nil || !strings.Contains(string(out), `"reasoning_content":"hm"`) {
		t.Errorf("an openai-compatible server lost the reasoning: %s %v", out, err)
	}
}

// TestStreamErrorShapes: vLLM reports a failure mid-stream as a top-level
// {"object":"error",…}, some servers (LM Studio) as {"error":"text"}: each
// ends the stream with an error event saying the message, never with an
// empty answer that looks whole or a complaint about the chunk's shape.
func TestStreamErrorShapes(t *testing.T) {
	first := `data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}` + "\n\n"
	for _, tc := range []struct{ chunk, typ string }{
		{`data: {"object":"error","message":"CUDA out of memory","type":"InternalServerError","param":null,"code":500}`, "api_error"},
		{`data: {"object":"error","message":"CUDA out of memory","type":"BadRequestError","param":null,"code":400}`, "invalid_request_error"},
		{`event: error` + "\n" + `data: {"error":"CUDA out of memory"}`, "api_error"},
	} {
		out := translate([]byte(first + tc.chunk + "\n\n"))
		events := splitEvents(t, out)
		last := events[len(events)-1]
		var e struct {
			Error struct{ Type, Message string }
		}
		json.Unmarshal(last.data, &e)
		if last.name != "error" || e.Error.Type != tc.typ || !strings.Contains(e.Error.Message, "CUDA out of memory") {
			t.Errorf("%s: ends with %s %s, want an %s error saying the message", tc.chunk, last.name, last.data, tc.typ)
		}
		checkGrammar(t, out)
	}
}

// TestStreamReusedIndex: Ollama gives every tool call of an answer index 0
// (ollama/ollama#15457), each with its own id; each is its own tool_use
// block with its own arguments, not one block with the arguments of both.
func TestStreamReusedIndex(t *testing.T) {
	chunk := func(delta string) string {
		return `data: {"id":"c1","model":"qwen3","choices":[{"index":0,"delta":` + delta + `}]}` + "\n\n"
	}
	sse := chunk(`{"role":"assistant","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"Write","arguments":"{\"path\":"}}]}`) +
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"a.py\"}"}}]}`) +
		chunk(`{"tool_calls":[{"index":0,"id":"call_b","type":"function","function":{"name":"Write","arguments":"{\"path\":"}}]}`) +
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"b.py\"}"}}]}`) +
		`data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":9}}` + "\n\ndata: [DONE]\n\n"
	out := translate([]byte(sse))
	checkGrammar(t, out)
	ids := map[int]string{}
	args := map[int]string{}
	for _, e := range splitEvents(t, out) {
		var v struct {
			Index        int
			ContentBlock struct{ Type, ID string } `json:"content_block"`
			Delta        struct {
				PartialJSON string `json:"partial_json"`
			}
		}
		json.Unmarshal(e.data, &v)
		if v.ContentBlock.Type == "tool_use" {
			ids[v.Index] = v.ContentBlock.ID
		}
		args[v.Index] += v.Delta.PartialJSON
	}
	if ids[0] != "call_a" || ids[1] != "call_b" || args[0] != `{"path":"a.py"}` || args[1] != `{"path":"b.py"}` {
		t.Fatalf("tool blocks %v with arguments %v:\n%s", ids, args, out)
	}
}

// TestErrorBillingTimeout: OpenRouter's 402 (no credits left) and a 504
// get the Anthropic types of those statuses, billing_error and
// timeout_error, which a client tells the user apart from a permission
// problem or a server fault.
func TestErrorBillingTimeout(t *testing.T) {
	for status, want := range map[int]string{402: "billing_error", 504: "timeout_error"} {
		out := Error(status, []byte(`{"error":{"message":"Insufficient credits","code":402}}`), testTarget)
		var e struct{ Error struct{ Type string } }
		json.Unmarshal(out, &e)
		if e.Error.Type != want {
			t.Errorf("%d: got %s, want %s", status, out, want)
		}
	}
}

// TestRequestGeminiUnsignedCalls: Gemini 3 refuses a tool call without a
// thought signature ("Function call is missing a thought_signature"); the
// calls of a history another provider answered (failover, a route change)
// have none, and go with the dummy Google documents for them. A call
// Gemini made keeps its own; Gemini 2.5 validates none and gets none.
func TestRequestGeminiUnsignedCalls(t *testing.T) {
	signed := toolID("call_g", "real-signature")
	body := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"go"},
	  {"role":"assistant","content":[{"type":"tool_use","id":"toolu_01abc","name":"Read","input":{}},{"type":"tool_use","id":` + quote(signed) + `,"name":"Read","input":{}}]},
	  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01abc","content":"a"},{"type":"tool_result","tool_use_id":` + quote(signed) + `,"content":"b"}]}]}`
	sigs := func(model string) []string {
		out, err := Request([]byte(body), Target{Provider: "p", Type: "gemini", Model: model})
		if err != nil {
			t.Fatal(err)
		}
		var cr struct {
			Messages []struct {
				ToolCalls []toolCall `json:"tool_calls"`
			} `json:"messages"`
		}
		json.Unmarshal(out, &cr)
		var s []string
		for _, tc := range cr.Messages[1].ToolCalls {
			s = append(s, thoughtSignature(tc.ExtraContent))
		}
		return s
	}
	if got := sigs("gemini-3-pro-preview"); len(got) != 2 || got[0] != "skip_thought_signature_validator" || got[1] != "real-signature" {
		t.Errorf("gemini-3: thought signatures %q", got)
	}
	if got := sigs("gemini-2.5-flash"); len(got) != 2 || got[0] != "" || got[1] != "real-signature" {
		t.Errorf("gemini-2.5: thought signatures %q", got)
	}
}
