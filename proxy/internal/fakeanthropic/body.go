package fakeanthropic

import (
	"encoding/json"
	"fmt"
	"strings"
)

// RequestBody returns a Messages API request shaped like Claude Code's: a
// system prompt, tool definitions, and a conversation of user text, tool
// calls and tool results (file contents with quotes and newlines to escape),
// grown to about size bytes. model and stream come first, as Claude Code
// sends them.
func RequestBody(size int, model string, stream bool) []byte {
	type text struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type tool struct {
		Name        string         `json:"name"`
		Description string         `json:"description"`
		InputSchema map[string]any `json:"input_schema"`
	}
	type body struct {
		Model     string            `json:"model"`
		Stream    bool              `json:"stream"`
		MaxTokens int               `json:"max_tokens"`
		System    []text            `json:"system"`
		Messages  []map[string]any  `json:"messages"`
		Tools     []tool            `json:"tools,omitempty"`
		Metadata  map[string]string `json:"metadata"`
	}
	b := body{
		Model: model, Stream: stream, MaxTokens: 32000,
		System:   []text{{"text", "You are Claude Code, Anthropic's official CLI for Claude."}},
		Metadata: map[string]string{"user_id": "user_0123456789abcdef_account__session_fedcba98-7654-3210"},
	}
	if size > 4096 {
		b.System = append(b.System, text{"text", strings.Repeat("You are an interactive CLI tool that helps users with software engineering tasks. ", 40)})
		for _, name := range []string{"Bash", "Read", "Edit", "Write", "Grep", "Glob", "WebFetch", "TodoWrite"} {
			b.Tools = append(b.Tools, tool{Name: name, Description: strings.Repeat("Executes the "+name+" operation with the given parameters. ", 12),
				InputSchema: map[string]any{"type": "object", "properties": map[string]any{"command": map[string]string{"type": "string", "description": "The command to run"}}, "required": []string{"command"}}})
		}
	}
	if size <= 4096 {
		msg := map[string]any{"role": "user", "content": []text{{"text", ""}}}
		b.Messages = []map[string]any{msg}
		out, _ := json.Marshal(b)
		pad := strings.Repeat("Please refactor the request handler so it streams its answer. ", size/60+1)
		if n := size - len(out); n > 0 {
			msg["content"] = []text{{"text", pad[:n]}}
		}
		out, _ = json.Marshal(b)
		return out
	}
	file := strings.Repeat("func handle(w http.ResponseWriter, r *http.Request) {\n\tfmt.Fprintf(w, \"hello %s\\n\", r.URL.Path)\n}\n", 40)
	out, _ := json.Marshal(b)
	for i := 0; len(out) < size; i++ {
		id := fmt.Sprintf("toolu_01Bench%08d", i/3)
		switch i % 3 {
		case 0:
			b.Messages = append(b.Messages, map[string]any{"role": "user", "content": []text{{"text", "Please look at main.go and fix the handler."}}})
		case 1:
			b.Messages = append(b.Messages, map[string]any{"role": "assistant", "content": []map[string]any{{"type": "tool_use", "id": id, "name": "Read", "input": map[string]string{"file_path": "/src/main.go"}}}})
		case 2:
			b.Messages = append(b.Messages, map[string]any{"role": "user", "content": []map[string]any{{"type": "tool_result", "tool_use_id": id, "content": file}}})
		}
		out, _ = json.Marshal(b)
	}
	return out
}
