package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestClaudeCodeThroughOpenAI runs the real Claude Code (skipped when
// `claude` is not on PATH) through ccmux to a fake Chat Completions
// upstream: the upstream asks for the Read tool, Claude Code runs it, the
// next request carries a role "tool" message with the file's content, and
// Claude Code prints the final answer made from it.
func TestClaudeCodeThroughOpenAI(t *testing.T) {
	claude, err := exec.LookPath("claude")
	if err != nil {
		t.Skip("Claude Code is not installed (npm install -g @anthropic-ai/claude-code)")
	}
	dir := t.TempDir()
	const marker = "ccmux-e2e-marker-7f3a"
	file := filepath.Join(dir, "note.txt")
	if err := os.WriteFile(file, []byte(marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var toolContents []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream   bool `json:"stream"`
			Messages []struct {
				Role    string `json:"role"`
				Content any    `json:"content"`
			} `json:"messages"`
			Tools []struct {
				Function struct{ Name string } `json:"function"`
			} `json:"tools"`
		}
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/chat/completions" || json.Unmarshal(b, &req) != nil || len(req.Messages) == 0 {
			http.Error(w, `{"error":{"message":"bad request"}}`, 400)
			return
		}
		hasRead := false
		for _, tool := range req.Tools {
			hasRead = hasRead || tool.Function.Name == "Read"
		}
		last := req.Messages[len(req.Messages)-1]
		var delta string
		finish := "stop"
		switch {
		case last.Role == "tool":
			content, _ := last.Content.(string)
			mu.Lock()
			toolContents = append(toolContents, content)
			mu.Unlock()
			answer := "The file says nothing I know."
			if strings.Contains(content, marker) {
				answer = "FINAL ANSWER: the file holds " + marker
			}
			delta = fmt.Sprintf(`{"content":%q}`, answer)
		case hasRead:
			args, _ := json.Marshal(map[string]string{"file_path": file})
			delta = fmt.Sprintf(`{"tool_calls":[{"index":0,"id":"call_read1","type":"function","function":{"name":"Read","arguments":%q}}]}`, args)
			finish = "tool_calls"
		default:
			delta = `{"content":"Reading a file"}`
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			var msg map[string]any
			json.Unmarshal([]byte(delta), &msg)
			msg["role"] = "assistant"
			json.NewEncoder(w).Encode(map[string]any{"id": "c1", "model": "local", "choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}},
				"usage": map[string]int{"prompt_tokens": 10, "completion_tokens": 5}})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"model\":\"local\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n")
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"model\":\"local\",\"choices\":[{\"index\":0,\"delta\":%s}]}\n\n", delta)
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"model\":\"local\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":%q}]}\n\n", finish)
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"model\":\"local\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5}}\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)

	h := startProxy(t, mustConfig(t, fmt.Sprintf(`
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "local"
provider_type = "openai-compatible"
auth_type = "apikey"
api_key = "unused"
base_url = %q
models = ["*"]
`, up.URL+"/v1")))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, claude, "-p", "What does note.txt say? Read it.", "--allowedTools", "Read", "--model", "claude-sonnet-4-5")
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"ANTHROPIC_BASE_URL="+h.base, "ANTHROPIC_API_KEY=sk-ant-test-unused",
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1", "DISABLE_TELEMETRY=1",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("claude: %v\n%s\nproxy log:\n%s", err, out, h.logs.String())
	}
	if !strings.Contains(string(out), "FINAL ANSWER: the file holds "+marker) {
		t.Fatalf("Claude Code printed:\n%s\nproxy log:\n%s", out, h.logs.String())
	}
	t.Logf("Claude Code printed: %s", out)
	mu.Lock()
	defer mu.Unlock()
	if len(toolContents) == 0 || !strings.Contains(toolContents[0], marker) {
		t.Fatalf("no role tool message with the file's content reached the upstream: %q", toolContents)
	}
}
