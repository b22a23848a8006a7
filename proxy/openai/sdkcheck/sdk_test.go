package sdkcheck

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/packages/ssestream"

	"ccmux/proxy/openai"
)

// toolIDPattern is what the Messages API checks tool_use ids against.
var toolIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

var testTarget = openai.Target{Provider: "up", Type: "openai", Model: "the-model"}

// translate feeds the upstream bytes whole and ends cleanly.
func translate(in []byte) []byte {
	s := openai.NewStream(testTarget)
	out := append([]byte(nil), s.Feed(in)...)
	return append(out, s.End(nil)...)
}

// goldenStreams are package openai's recorded upstream streams.
func goldenStreams(t *testing.T) []string {
	files, err := filepath.Glob("../testdata/*.sse")
	if err != nil || len(files) == 0 {
		t.Fatalf("no ../testdata/*.sse: %v", err)
	}
	return files
}

// accumulate parses a translated stream the way the official Go SDK does
// (its SSE decoder and Message.Accumulate): a client nobody here wrote.
func accumulate(t *testing.T, out []byte) (anthropic.Message, error) {
	t.Helper()
	resp := &http.Response{
		Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body:   io.NopCloser(bytes.NewReader(out)),
	}
	stream := ssestream.NewStream[anthropic.MessageStreamEventUnion](ssestream.NewDecoder(resp), nil)
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatalf("Accumulate: %v", err)
		}
	}
	return msg, stream.Err()
}

type toolWant struct {
	name  string
	input map[string]any
}

// TestStreamAccumulator parses every translated golden stream with the
// Anthropic SDK and checks the message it makes.
func TestStreamAccumulator(t *testing.T) {
	tests := map[string]struct {
		stop     anthropic.StopReason
		text     string
		thinking string
		tools    []toolWant
		usage    [3]int64 // input, output, cache read
		err      string   // a stream that must fail
	}{
		"text":      {stop: "end_turn", text: `Hello wörld <"ok">`, usage: [3]int64{19, 4, 0}},
		"tool_call": {stop: "tool_use", tools: []toolWant{{"Read", map[string]any{"file_path": "/tmp/a.txt"}}}, usage: [3]int64{56, 18, 64}},
		"parallel_tools": {stop: "tool_use", text: "Reading both.", tools: []toolWant{
			{"Read", map[string]any{"file_path": "/a"}},
			{"Read", map[string]any{"file_path": "/b"}},
			{"Glob", map[string]any{"pattern": "*.go"}},
			{"LS", map[string]any{}},
		}, usage: [3]int64{300, 60, 0}},
		"reasoning_tool": {stop: "tool_use", thinking: "The user wants the file. I will read it.", text: "Let me look.",
			tools: []toolWant{{"Read", map[string]any{"file_path": "/etc/hosts"}}}, usage: [3]int64{104, 40, 896}},
		"openrouter_reasoning": {stop: "max_tokens", thinking: "Thinking hard.", text: "42", usage: [3]int64{10, 5, 0}},
		"resent_whole":         {stop: "tool_use", tools: []toolWant{{"Bash", map[string]any{"command": "ls"}}}, usage: [3]int64{50, 9, 0}},
		"repeated_id":          {stop: "tool_use", tools: []toolWant{{"Grep", map[string]any{"pattern": "TODO"}}}, usage: [3]int64{70, 12, 0}},
		"empty_args":           {stop: "tool_use", tools: []toolWant{{"LS", map[string]any{}}}},
		"no_done":              {stop: "end_turn", text: "No DONE here."},
		"gemini_tool":          {stop: "tool_use", tools: []toolWant{{"Glob", map[string]any{"pattern": "**/*.md"}}}, usage: [3]int64{200, 12, 0}},
		"ollama_index0": {stop: "tool_use", tools: []toolWant{
			{"Write", map[string]any{"file_path": "hello.py", "content": "print(1)"}},
			{"Write", map[string]any{"file_path": "world.py", "content": "print(2)"}},
		}, usage: [3]int64{120, 40, 0}},
		"vllm_error": {err: "CUDA out of memory"},
		"broken":     {err: "ended the stream"},
		"error":      {err: "Provider disconnected unexpectedly"},
	}
	for _, file := range goldenStreams(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".sse")
		t.Run(name, func(t *testing.T) {
			tt, ok := tests[name]
			if !ok {
				t.Fatalf("no expectation for %s", file)
			}
			in, _ := os.ReadFile(file)
			out := translate(in)
			msg, err := accumulate(t, out)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("stream error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg.StopReason != tt.stop {
				t.Errorf("stop_reason %q, want %q", msg.StopReason, tt.stop)
			}
			var text, thinking string
			var tools []toolWant
			for _, b := range msg.Content {
				switch b.Type {
				case "text":
					text += b.Text
				case "thinking":
					thinking += b.Thinking
					if !strings.HasPrefix(b.Signature, "ccmux-openai:") {
						t.Errorf("thinking signature %q", b.Signature)
					}
				case "tool_use":
					var input map[string]any
					if err := json.Unmarshal(b.Input, &input); err != nil {
						t.Fatalf("tool input %s is not an object: %v", b.Input, err)
					}
					tools = append(tools, toolWant{b.Name, input})
					if !toolIDPattern.MatchString(b.ID) {
						t.Errorf("tool_use id %q: the Messages API wants ^[a-zA-Z0-9_-]+$ when the history goes to Anthropic", b.ID)
					}
				}
			}
			if text != tt.text || thinking != tt.thinking {
				t.Errorf("text %q thinking %q, want %q %q", text, thinking, tt.text, tt.thinking)
			}
			gotTools, _ := json.Marshal(fmtTools(tools))
			wantTools, _ := json.Marshal(fmtTools(tt.tools))
			if !bytes.Equal(gotTools, wantTools) {
				t.Errorf("tools %s, want %s", gotTools, wantTools)
			}
			u := [3]int64{msg.Usage.InputTokens, msg.Usage.OutputTokens, msg.Usage.CacheReadInputTokens}
			if u != tt.usage {
				t.Errorf("usage %v, want %v", u, tt.usage)
			}
		})
	}
}

func fmtTools(ts []toolWant) []any {
	out := []any{}
	for _, t := range ts {
		out = append(out, []any{t.name, t.input})
	}
	return out
}

// TestStreamGeminiSignature: the thought signature Gemini puts on a tool
// call comes back on that call in the next request.
func TestStreamGeminiSignature(t *testing.T) {
	in, _ := os.ReadFile("../testdata/gemini_tool.sse")
	msg, err := accumulate(t, translate(in))
	if err != nil {
		t.Fatal(err)
	}
	id := msg.Content[0].ID
	req := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"},
		{"role":"assistant","content":[{"type":"tool_use","id":"` + id + `","name":"Glob","input":{"pattern":"**/*.md"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + id + `","content":"README.md"}]}]}`
	out, err := openai.Request([]byte(req), openai.Target{Provider: "g", Type: "gemini", Model: "gemini-2.5-pro"})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Messages []struct {
			ToolCalls []struct {
				ID           string `json:"id"`
				ExtraContent struct {
					Google struct {
						ThoughtSignature string `json:"thought_signature"`
					} `json:"google"`
				} `json:"extra_content"`
			} `json:"tool_calls"`
			ToolCallID string `json:"tool_call_id"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	tc := got.Messages[1].ToolCalls[0]
	if tc.ID != "function-call-1" || tc.ExtraContent.Google.ThoughtSignature != "CiQB0e2Kb+/sig==" {
		t.Errorf("tool call %+v, want id function-call-1 with its signature", tc)
	}
	if got.Messages[2].ToolCallID != "function-call-1" {
		t.Errorf("tool_call_id %q", got.Messages[2].ToolCallID)
	}
}

// TestStreamFinishReasons maps each finish_reason, and says tool_use
// whenever a tool block went out.
func TestStreamFinishReasons(t *testing.T) {
	for _, tc := range []struct {
		finish string
		tool   bool
		want   string
	}{
		{"stop", false, "end_turn"},
		{"length", false, "max_tokens"},
		{"tool_calls", true, "tool_use"},
		{"function_call", true, "tool_use"},
		{"content_filter", false, "refusal"},
		{"stop", true, "tool_use"},
		{"", false, "end_turn"},
	} {
		delta := `{"content":"x"}`
		if tc.tool {
			delta = `{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{}"}}]}`
		}
		in := `data: {"id":"x","choices":[{"index":0,"delta":` + delta + `}]}` + "\n\n" +
			`data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":"` + tc.finish + `"}]}` + "\n\n"
		if tc.finish == "" {
			in = in[:strings.LastIndex(in, "data:")]
		}
		msg, err := accumulate(t, translate([]byte(in)))
		if err != nil {
			t.Fatal(err)
		}
		if string(msg.StopReason) != tc.want {
			t.Errorf("finish_reason %q (tool %v): stop_reason %q, want %q", tc.finish, tc.tool, msg.StopReason, tc.want)
		}
	}
}

// TestResponseEvents: a whole answer to a stream request becomes the
// events the SDK's accumulator turns into the same message.
func TestResponseEvents(t *testing.T) {
	in := `{"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi.","tool_calls":[{"id":"","type":"function","function":{"name":"LS","arguments":""}},{"id":"","type":"function","function":{"name":"Read","arguments":"{\"file_path\":\"/a\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`
	out, err := openai.ResponseEvents([]byte(in), testTarget)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := accumulate(t, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 3 || msg.Content[0].Text != "Hi." || msg.Content[1].Name != "LS" || string(msg.Content[1].Input) != "{}" ||
		string(msg.Content[2].Input) != `{"file_path":"/a"}` || msg.StopReason != "tool_use" || msg.Usage.OutputTokens != 2 {
		t.Fatalf("message %+v from:\n%s", msg, out)
	}
}
