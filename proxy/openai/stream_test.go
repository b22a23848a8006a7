package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/packages/ssestream"
)

var update = flag.Bool("update", false, "rewrite the golden files from the translator's output")

var testTarget = Target{Provider: "up", Type: "openai", Model: "the-model"}

// translate feeds the upstream bytes in the given pieces and ends cleanly.
func translate(pieces ...[]byte) []byte {
	s := NewStream(testTarget)
	var out []byte
	for _, p := range pieces {
		out = append(out, s.Feed(p)...)
	}
	return append(out, s.End(nil)...)
}

func goldenStreams(t *testing.T) []string {
	files, err := filepath.Glob("testdata/*.sse")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.sse: %v", err)
	}
	return files
}

// TestStreamGolden translates each recorded upstream stream whole, cut at
// every byte boundary, and byte by byte, and wants the golden events each time.
func TestStreamGolden(t *testing.T) {
	for _, file := range goldenStreams(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".sse")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := translate(in)
			golden := strings.TrimSuffix(file, ".sse") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("translated stream differs from %s:\n%s", golden, got)
			}
			for i := 1; i < len(in); i++ {
				if got := translate(in[:i], in[i:]); !bytes.Equal(got, want) {
					t.Fatalf("cut at byte %d:\n%s", i, got)
				}
			}
			pieces := make([][]byte, len(in))
			for i := range in {
				pieces[i] = in[i : i+1]
			}
			if got := translate(pieces...); !bytes.Equal(got, want) {
				t.Fatalf("byte by byte:\n%s", got)
			}
		})
	}
}

// FuzzRechunk: any chunking of the same upstream bytes gives the same
// Anthropic events; cuts says where the bytes are cut.
func FuzzRechunk(f *testing.F) {
	for _, file := range goldenStreamsF(f) {
		in, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(in, []byte{1, 7, 30, 2, 200})
	}
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		want := translate(in)
		var pieces [][]byte
		rest := in
		for _, c := range cuts {
			n := int(c)
			if n > len(rest) {
				break
			}
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		pieces = append(pieces, rest)
		if got := translate(pieces...); !bytes.Equal(got, want) {
			t.Fatalf("chunked %v:\n%s\nwhole:\n%s", cuts, got, want)
		}
		checkGrammar(t, want)
	})
}

func goldenStreamsF(f *testing.F) []string {
	files, _ := filepath.Glob("testdata/*.sse")
	return files
}

// checkGrammar checks what any translated stream must hold: message_start
// first, then blocks that start once, stop once, and get deltas only
// while open, and an end that is message_delta + message_stop or one error.
func checkGrammar(t *testing.T, out []byte) {
	t.Helper()
	events := splitEvents(t, out)
	if len(events) == 0 {
		t.Fatal("no events")
	}
	last := events[len(events)-1]
	if last.name == "error" {
		events = events[:len(events)-1]
		for _, e := range events {
			if e.name == "message_stop" || e.name == "error" {
				t.Fatalf("%s before the final error", e.name)
			}
		}
		if len(events) == 0 {
			return
		}
	} else if last.name != "message_stop" || len(events) < 3 || events[len(events)-2].name != "message_delta" {
		t.Fatalf("the stream does not end with message_delta, message_stop:\n%s", out)
	}
	if events[0].name != "message_start" {
		t.Fatalf("first event %s", events[0].name)
	}
	open := map[int]bool{}
	started := 0
	for _, e := range events[1:] {
		var v struct {
			Index int `json:"index"`
		}
		if err := json.Unmarshal(e.data, &v); err != nil {
			t.Fatalf("event %s: %v: %s", e.name, err, e.data)
		}
		switch e.name {
		case "content_block_start":
			if v.Index != started {
				t.Fatalf("block %d started, want %d", v.Index, started)
			}
			open[v.Index] = true
			started++
		case "content_block_delta":
			if !open[v.Index] {
				t.Fatalf("delta for block %d, which is not open", v.Index)
			}
		case "content_block_stop":
			if !open[v.Index] {
				t.Fatalf("stop for block %d, which is not open", v.Index)
			}
			open[v.Index] = false
		case "message_delta", "message_stop":
			for i, o := range open {
				if o {
					t.Fatalf("%s while block %d is open", e.name, i)
				}
			}
		}
	}
}

type sseEvent struct {
	name string
	data []byte
}

func splitEvents(t *testing.T, out []byte) []sseEvent {
	t.Helper()
	var events []sseEvent
	for _, raw := range bytes.Split(bytes.TrimSuffix(out, []byte("\n\n")), []byte("\n\n")) {
		if len(raw) == 0 {
			continue
		}
		lines := bytes.Split(raw, []byte("\n"))
		if len(lines) != 2 || !bytes.HasPrefix(lines[0], []byte("event: ")) || !bytes.HasPrefix(lines[1], []byte("data: ")) {
			t.Fatalf("malformed event %q", raw)
		}
		events = append(events, sseEvent{string(lines[0][7:]), lines[1][6:]})
	}
	return events
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
		"empty_args":           {stop: "tool_use", tools: []toolWant{{"LS", map[string]any{}}}},
		"no_done":              {stop: "end_turn", text: "No DONE here."},
		"gemini_tool":          {stop: "tool_use", tools: []toolWant{{"Glob", map[string]any{"pattern": "**/*.md"}}}, usage: [3]int64{200, 12, 0}},
		"broken":               {err: "ended the stream"},
		"error":                {err: "Provider disconnected unexpectedly"},
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
			checkGrammar(t, out)
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
					if b.ID == "" {
						t.Error("tool_use without an id")
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
	in, _ := os.ReadFile("testdata/gemini_tool.sse")
	msg, err := accumulate(t, translate(in))
	if err != nil {
		t.Fatal(err)
	}
	id := msg.Content[0].ID
	req := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"},
		{"role":"assistant","content":[{"type":"tool_use","id":"` + id + `","name":"Glob","input":{"pattern":"**/*.md"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + id + `","content":"README.md"}]}]}`
	out, err := Request([]byte(req), Target{Provider: "g", Type: "gemini", Model: "gemini-2.5-pro"})
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

// TestStreamEnd: a stream that breaks (a read error, or bytes cut in the
// middle of an event) ends with an error event and never message_stop,
// even with everything else in place.
func TestStreamEnd(t *testing.T) {
	in, _ := os.ReadFile("testdata/text.sse")
	upTo := bytes.Index(in, []byte("data: [DONE]")) // finish_reason and usage arrived
	for _, tc := range []struct {
		name string
		in   []byte
		err  error
		want string // the last event
	}{
		{"clean end without [DONE]", in[:upTo], nil, "message_stop"},
		{"read error", in[:upTo-40], errors.New("connection reset"), "error"},
		{"cut mid-event", in[:upTo-40], nil, "error"},
		{"nothing at all", nil, nil, "error"},
		{"only [DONE]", []byte("data: [DONE]\n\n"), nil, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStream(testTarget)
			out := append(bytes.Clone(s.Feed(tc.in)), s.End(tc.err)...)
			events := splitEvents(t, out)
			last := events[len(events)-1].name
			if last != tc.want {
				t.Fatalf("last event %s, want %s:\n%s", last, tc.want, out)
			}
			if tc.want == "error" && bytes.Contains(out, []byte("message_stop")) {
				t.Fatal("a broken stream said message_stop")
			}
		})
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
