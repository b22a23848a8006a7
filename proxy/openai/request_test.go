package openai

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestRequest translates one request with every field the issue lists and
// compares the Chat Completions body as JSON.
func TestRequest(t *testing.T) {
	in := `{
	  "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
	  "system": [{"type":"text","text":"You are Claude Code."},{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
	  "temperature": 0, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
	  "metadata": {"user_id": "user_abc"},
	  "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
	  "tools": [{"name":"Read","description":"Read a file","input_schema":{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"file_path":{"type":"string"}}},"cache_control":{"type":"ephemeral"}}],
	  "messages": [
	    {"role":"user","content":"Read /a"},
	    {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"EqQBCkYIBxgCKkA"}]},
	    {"role":"user","content":"Go on."},
	    {"role":"assistant","content":[
	      {"type":"thinking","thinking":"old reasoning","signature":"ccmux-openai:reasoning_content"},
	      {"type":"text","text":"Reading."},
	      {"type":"tool_use","id":"call_1","name":"Read","input":{"file_path":"/a"}}]},
	    {"role":"user","content":[
	      {"type":"tool_result","tool_use_id":"call_1","content":[{"type":"text","text":"hello"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}}]},
	      {"type":"text","text":"And this picture?"},
	      {"type":"image","source":{"type":"url","url":"https://example.com/x.png"}}]},
	    {"role":"assistant","content":[
	      {"type":"thinking","thinking":"new reasoning","signature":"ccmux-openai:reasoning_content"},
	      {"type":"thinking","thinking":"Claude's","signature":"EqQBCkYIBxgCKkA"},
	      {"type":"tool_use","id":"call_2","name":"Read","input":{}}]},
	    {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_2","is_error":true,"content":"no such file"}]}
	  ]}`
	want := `{
	  "model": "gpt-4.1", "max_tokens": 1024, "stream": true, "stream_options": {"include_usage": true},
	  "temperature": 0, "top_p": 0.9, "stop": ["END"], "user": "user_abc",
	  "tool_choice": "required", "parallel_tool_calls": false,
	  "tools": [{"type":"function","function":{"name":"Read","description":"Read a file","parameters":{"type":"object","properties":{"file_path":{"type":"string"}}}}}],
	  "messages": [
	    {"role":"system","content":"You are Claude Code.\n\nBe brief."},
	    {"role":"user","content":"Read /a"},
	    {"role":"assistant","content":""},
	    {"role":"user","content":"Go on."},
	    {"role":"assistant","content":"Reading.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"Read","arguments":"{\"file_path\":\"/a\"}"}}]},
	    {"role":"tool","tool_call_id":"call_1","content":"hello"},
	    {"role":"user","content":[
	      {"type":"text","text":"The tool call call_1 returned these images:"},
	      {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}},
	      {"type":"text","text":"And this picture?"},
	      {"type":"image_url","image_url":{"url":"https://example.com/x.png"}}]},
	    {"role":"assistant","content":null,"reasoning_content":"new reasoning","tool_calls":[{"id":"call_2","type":"function","function":{"name":"Read","arguments":"{}"}}]},
	    {"role":"tool","tool_call_id":"call_2","content":"Error (the tool call failed): no such file"}
	  ]}`
	// openai-compatible: api.openai.com takes no reasoning_content (TestRequestStrictProviders).
	out, err := Request([]byte(in), Target{Provider: "p", Type: "openai-compatible", Model: "gpt-4.1"})
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, out, want)
}

func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want: %v", err)
	}
	gb, _ := json.MarshalIndent(g, "", " ")
	wb, _ := json.MarshalIndent(w, "", " ")
	if string(gb) != string(wb) {
		t.Fatalf("got\n%s\nwant\n%s", gb, wb)
	}
}

// TestRequestModels: reasoning models get max_completion_tokens (at least
// MinCompletionTokens, for Claude Code's max_tokens 1 probes) and no
// sampling parameters; thinking becomes reasoning_effort where it exists.
func TestRequestModels(t *testing.T) {
	for _, tc := range []struct {
		target Target
		body   string
		want   string
	}{
		{Target{"p", "openai", "gpt-5-mini"}, `{"max_tokens":1,"temperature":1,"messages":[]}`,
			`{"model":"gpt-5-mini","max_completion_tokens":16,"messages":null}`},
		// Claude Code's user_id is longer than the 64 characters OpenAI takes.
		{Target{"p", "openai", "gpt-4o"}, `{"max_tokens":1,"messages":[],"metadata":{"user_id":"user_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef_account__session_fedcba98-7654-3210"}}`,
			`{"model":"gpt-4o","max_tokens":1,"messages":null,"user":"ad8ddf6497340b0fa5a40311c74e7b58056a012b090773e502d6c32259193b78"}`},
		{Target{"p", "openrouter", "openai/o4-mini"}, `{"max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":20000},"messages":[]}`,
			`{"model":"openai/o4-mini","max_completion_tokens":32000,"reasoning":{"max_tokens":20000},"messages":null}`},
		{Target{"p", "openai", "o3"}, `{"max_tokens":100,"thinking":{"type":"enabled","budget_tokens":2000},"messages":[]}`,
			`{"model":"o3","max_completion_tokens":100,"reasoning_effort":"low","messages":null}`},
		{Target{"p", "gemini", "gemini-2.5-flash"}, `{"max_tokens":100,"thinking":{"type":"adaptive"},"messages":[]}`,
			`{"model":"gemini-2.5-flash","max_tokens":100,"reasoning_effort":"medium","messages":null}`},
		{Target{"p", "groq", "llama-3.3-70b"}, `{"max_tokens":100,"thinking":{"type":"enabled","budget_tokens":9000},"messages":[]}`,
			`{"model":"llama-3.3-70b","max_tokens":100,"messages":null}`},
		{Target{"p", "openai", "gpt-4o"}, `{"max_tokens":10,"tool_choice":{"type":"tool","name":"Read"},"tools":[{"name":"Read","input_schema":{"type":"object"}}],"messages":[]}`,
			`{"model":"gpt-4o","max_tokens":10,"messages":null,"tools":[{"type":"function","function":{"name":"Read","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"Read"}}}`},
	} {
		out, err := Request([]byte(tc.body), tc.target)
		if err != nil {
			t.Fatal(err)
		}
		assertJSON(t, out, tc.want)
	}
}

// TestRequestRefused: content the target cannot take is a RequestError
// naming the provider, never dropped.
func TestRequestRefused(t *testing.T) {
	for _, body := range []string{
		`{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}]}]}`,
		`{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`,
		`{"messages":[{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":[{"type":"document","source":{}}]}]}]}`,
	} {
		_, err := Request([]byte(body), Target{Provider: "myrouter", Type: "openrouter", Model: "m"})
		var re *RequestError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), "myrouter") {
			t.Errorf("%s: error %v, want a RequestError naming the provider", body, err)
		}
	}
	if _, err := Request([]byte(`[1]`), testTarget); err == nil {
		t.Error("a body that is not an object was translated")
	}
}

// TestResponse translates a whole Chat Completion.
func TestResponse(t *testing.T) {
	in := `{"id":"chatcmpl-1","object":"chat.completion","model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant",
	  "content":"Let me read it.","reasoning_content":"Need the file.","tool_calls":[{"id":"call_9","type":"function","function":{"name":"Read","arguments":"{\"file_path\":\"/a\"}"}},{"id":"","type":"function","function":{"name":"LS","arguments":""}}]},
	  "finish_reason":"stop"}],"usage":{"prompt_tokens":100,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":60}}}`
	want := `{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"deepseek-chat","content":[
	  {"type":"thinking","thinking":"Need the file.","signature":"ccmux-openai:reasoning_content"},
	  {"type":"text","text":"Let me read it."},
	  {"type":"tool_use","id":"call_9","name":"Read","input":{"file_path":"/a"}},
	  {"type":"tool_use","id":"toolu_ccmux_1","name":"LS","input":{}}],
	  "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":40,"output_tokens":20,"cache_read_input_tokens":60}}`
	out, err := Response([]byte(in), testTarget)
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, out, want)
	if _, err := Response([]byte(`{"choices":[]}`), testTarget); err == nil {
		t.Error("an answer without choices was translated")
	}
}

// TestError maps statuses and upstream error shapes to Anthropic errors.
func TestError(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    string
		typ     string
		message string
	}{
		{400, `{"error":{"message":"Invalid 'messages[1]'","type":"invalid_request_error","param":null,"code":null}}`, "invalid_request_error", "Invalid 'messages[1]'"},
		{401, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`, "authentication_error", "Incorrect API key provided"},
		{403, `{"error":"forbidden"}`, "permission_error", "forbidden"},
		{404, `{"error":{"message":"The model does not exist"}}`, "not_found_error", "The model does not exist"},
		{413, ``, "request_too_large", "status 413 Request Entity Too Large"},
		{429, `[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]`, "rate_limit_error", "Resource has been exhausted"},
		{500, `<html>oops</html>`, "api_error", "status 500 Internal Server Error"},
		{503, `{"message":"busy"}`, "overloaded_error", "busy"},
	} {
		out := Error(tc.status, []byte(tc.body), Target{Provider: "p", Type: "groq"})
		var e struct {
			Type  string `json:"type"`
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type != "error" || e.Error.Type != tc.typ || e.Error.Message != "p (groq): "+tc.message {
			t.Errorf("%d %s: got %s", tc.status, tc.body, out)
		}
	}
}
