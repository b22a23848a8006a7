package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// A request carrying claude-code-mux's subagent tag goes where the tag says,
// and the upstream gets the client's bytes with only the tags removed and
// the model rewritten.
func TestSubagentTag(t *testing.T) {
	t.Setenv("API_KEY", "k")
	claude, glm := newUpstream(t), newUpstream(t)
	cfg := mustConfig(t, fmt.Sprintf(`
[router]
default = "claude-sonnet-4-5"
websearch = "claude-opus-4-5"
[[providers]]
name = "claude"
auth_type = "apikey"
api_key = "$API_KEY"
base_url = %q
models = ["claude-*"]
[[providers]]
name = "glm"
auth_type = "apikey"
api_key = "$API_KEY"
base_url = %q
models = ["glm-*"]
`, claude.URL, glm.URL))
	h := startProxy(t, cfg)

	const (
		tag      = `<CCM-SUBAGENT-MODEL>glm-4.6</CCM-SUBAGENT-MODEL>`
		escaped  = `\u003cCCM-SUBAGENT-MODEL\u003eglm-4.5-air\u003c/CCM-SUBAGENT-MODEL\u003e`
		first    = `{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude."}`
		messages = `"messages":[{"role":"user","content":"hi"}]`
	)
	second := func(text string) string {
		return `{"type":"text","text":"` + text + `","cache_control":{"type":"ephemeral"}}`
	}
	body := func(system string) string {
		return `{"model":"claude-sonnet-4-5","max_tokens":64,"system":` + system + `,` + messages + `}`
	}
	tests := []struct {
		name      string
		body      string
		upstream  string // "claude" or "glm"
		wantModel string
		wantBody  string // what the upstream gets
	}{
		{
			name:      "tag in the second block",
			body:      body(`[` + first + `,` + second(`Agent prompt.\n`+tag+`\nDo the task.`) + `]`),
			upstream:  "glm",
			wantModel: "glm-4.6",
			wantBody:  body(`[` + first + `,` + second(`Agent prompt.\n\nDo the task.`) + `]`),
		},
		{
			name:      "escaped tag; other escapes kept as sent",
			body:      body(`[` + first + `,` + second(`caf\u00e9 \"q\" `+escaped+` \ud83d\ude00\/`) + `]`),
			upstream:  "glm",
			wantModel: "glm-4.5-air",
			wantBody:  body(`[` + first + `,` + second(`caf\u00e9 \"q\"  \ud83d\ude00\/`) + `]`),
		},
		{
			name:      "two tags: the first names the model, both go",
			body:      body(`[` + first + `,` + second(`a`+tag+`b<CCM-SUBAGENT-MODEL>other</CCM-SUBAGENT-MODEL>c`) + `]`),
			upstream:  "glm",
			wantModel: "glm-4.6",
			wantBody:  body(`[` + first + `,` + second(`abc`) + `]`),
		},
		{
			name:      "model after system",
			body:      `{"system":[` + first + `,` + second(tag) + `],"model":"claude-sonnet-4-5",` + messages + `}`,
			upstream:  "glm",
			wantModel: "glm-4.6",
			wantBody:  `{"system":[` + first + `,` + second(``) + `],"model":"glm-4.6",` + messages + `}`,
		},
		{
			name:      "unknown name falls back to router.default, tag removed",
			body:      body(`[` + first + `,` + second(`<CCM-SUBAGENT-MODEL>nope-1</CCM-SUBAGENT-MODEL>x`) + `]`),
			upstream:  "claude",
			wantModel: "claude-sonnet-4-5",
			wantBody:  body(`[` + first + `,` + second(`x`) + `]`),
		},
		{
			name:      "tag in the first block is not read (as in claude-code-mux)",
			body:      body(`[{"type":"text","text":"` + tag + `"},` + second(`x`) + `]`),
			upstream:  "claude",
			wantModel: "claude-sonnet-4-5",
		},
		{
			name:      "system as a string is not read",
			body:      body(`"` + tag + `"`),
			upstream:  "claude",
			wantModel: "claude-sonnet-4-5",
		},
		{
			name:      "a name spans one line",
			body:      body(`[` + first + `,` + second(`<CCM-SUBAGENT-MODEL>glm\n4.6</CCM-SUBAGENT-MODEL>`) + `]`),
			upstream:  "claude",
			wantModel: "claude-sonnet-4-5",
		},
		{
			name:      "empty name is ignored",
			body:      body(`[` + first + `,` + second(`<CCM-SUBAGENT-MODEL></CCM-SUBAGENT-MODEL>`) + `]`),
			upstream:  "claude",
			wantModel: "claude-sonnet-4-5",
		},
		{
			name:      "websearch comes first and keeps the tag (as in claude-code-mux)",
			body:      `{"model":"claude-sonnet-4-5","tools":[{"type":"web_search_20250305","name":"web_search"}],"system":[` + first + `,` + second(tag) + `]}`,
			upstream:  "claude",
			wantModel: "claude-opus-4-5",
			wantBody:  `{"model":"claude-opus-4-5","tools":[{"type":"web_search_20250305","name":"web_search"}],"system":[` + first + `,` + second(tag) + `]}`,
		},
	}
	seen := map[string]int{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.body)) {
				t.Fatalf("test body is not JSON: %s", tt.body)
			}
			resp := h.post("/v1/messages", tt.body, nil)
			if got := readAll(t, resp); resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			u := claude
			if tt.upstream == "glm" {
				u = glm
			}
			reqs := u.Requests()
			if len(reqs) != seen[tt.upstream]+1 {
				t.Fatalf("%s got %d requests, want %d", tt.upstream, len(reqs), seen[tt.upstream]+1)
			}
			seen[tt.upstream]++
			got := reqs[len(reqs)-1]
			if got.Model != tt.wantModel {
				t.Errorf("model sent %q, want %q", got.Model, tt.wantModel)
			}
			want := tt.wantBody
			if want == "" { // untouched but for the model
				want = tt.body
			}
			want = strings.Replace(want, `"model":"claude-sonnet-4-5"`, `"model":"`+tt.wantModel+`"`, 1)
			if string(got.Body) != want {
				t.Errorf("upstream body:\n got %s\nwant %s", got.Body, want)
			}
		})
	}
	if n := len(claude.Requests()) + len(glm.Requests()); n != len(tests) {
		t.Errorf("%d upstream requests for %d client requests", n, len(tests))
	}
}

// FuzzDecodeJSONString holds decodeJSONString to encoding/json: the same
// text, or an error for the same tokens, and offsets that point at the
// character or escape each byte came from.
func FuzzDecodeJSONString(f *testing.F) {
	for _, s := range []string{`""`, `"a"`, `"\u003cCCM\u003e"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ude00\ud83d"`,
		`"caf\u00e9\n\t\"\\\/"`, "\"\xff\xfe\"", "\"\xe2\x82\"", `"\x"`, `"\u12"`, "\"a\x01\"", `"a"b"`, `"\`, `"é"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		text, _, ok := decodeJSONString(raw, nil)
		var at []int
		if ok {
			marks := make([]int, len(text)+1)
			for i := range marks {
				marks[i] = i
			}
			_, at, _ = decodeJSONString(raw, marks)
		}
		var want string
		err := json.Unmarshal(raw, &want)
		if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
			return // not one string token (json.Unmarshal also takes other values and spaces around)
		}
		if (err == nil) != ok {
			t.Fatalf("%q: decodeJSONString ok=%v, encoding/json err=%v", raw, ok, err)
		}
		if !ok {
			return
		}
		if string(text) != want {
			t.Fatalf("%q: decoded %q, encoding/json %q", raw, text, want)
		}
		if len(at) != len(text)+1 || at[len(text)] != len(raw)-1 {
			t.Fatalf("%q: %d offsets for %d bytes, last %d", raw, len(at), len(text), at[len(at)-1])
		}
		for i := range text {
			if at[i] < 1 || at[i] >= len(raw)-1 || (i > 0 && at[i] < at[i-1]) {
				t.Fatalf("%q: offset %d of byte %d out of order", raw, at[i], i)
			}
			// A byte from an ASCII character comes from that character or an escape.
			if c := text[i]; c < utf8.RuneSelf && raw[at[i]] != c && raw[at[i]] != '\\' {
				t.Fatalf("%q: byte %d (%q) comes from %q", raw, i, c, raw[at[i]])
			}
		}
	})
}

// subagentPattern is claude-code-mux's expression for the tag (src/router/mod.rs).
var subagentPattern = regexp.MustCompile(`<CCM-SUBAGENT-MODEL>(.*?)</CCM-SUBAGENT-MODEL>`)

// FuzzSubagentStrip checks the whole path on arbitrary system prompt text:
// the stripped body, decoded, equals the client's body decoded with the tags
// removed from system[1].text by claude-code-mux's expression, and nothing
// else changes.
func FuzzSubagentStrip(f *testing.F) {
	for _, s := range []string{"x", "<CCM-SUBAGENT-MODEL>glm-4.6</CCM-SUBAGENT-MODEL>", "a<CCM-SUBAGENT-MODEL>m</CCM-SUBAGENT-MODEL>b<CCM-SUBAGENT-MODEL>n</CCM-SUBAGENT-MODEL>",
		"<CCM-SUBAGENT-MODEL>a\nb</CCM-SUBAGENT-MODEL>", "é<CCM-SUBAGENT-MODEL>é</CCM-SUBAGENT-MODEL>\u2028", "<CCM-SUBAGENT-MODEL></CCM-SUBAGENT-MODEL>",
		"<CCM-SUBAGENT-MODEL>a\n<CCM-SUBAGENT-MODEL>b</CCM-SUBAGENT-MODEL>", "<CCM-SUBAGENT-MODEL><CCM-SUBAGENT-MODEL>x</CCM-SUBAGENT-MODEL></CCM-SUBAGENT-MODEL>",
		"<CCM-SUBAGENT-MODEL>a</CCM-SUBAGENT-MODEL\n>"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, escapeHTML bool) {
		req := map[string]any{
			"model":  "claude-sonnet-4-5",
			"system": []any{map[string]any{"type": "text", "text": "first"}, map[string]any{"type": "text", "text": text}},
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escapeHTML) // true writes '<' and '>' as \u003c and \u003e
		if err := enc.Encode(req); err != nil {
			t.Skip()
		}
		body := bytes.TrimSpace(buf.Bytes())
		orig := append([]byte(nil), body...)
		fields, err := scanRouting(body)
		if err != nil {
			t.Fatalf("scanRouting(%s): %v", body, err)
		}
		tag := findSubagentTag(body, &fields)

		var decoded map[string]any
		if err := json.Unmarshal(orig, &decoded); err != nil {
			t.Fatal(err)
		}
		block := decoded["system"].([]any)[1].(map[string]any)
		want := block["text"].(string)
		wantModel := ""
		if m := subagentPattern.FindStringSubmatch(want); m != nil && m[1] != "" {
			wantModel = m[1]
			block["text"] = subagentPattern.ReplaceAllString(want, "")
		}
		_, spans := findTags([]byte(want))
		var wantSpans [][2]int
		for _, m := range subagentPattern.FindAllStringIndex(want, -1) {
			wantSpans = append(wantSpans, [2]int{m[0], m[1]})
		}
		if !reflect.DeepEqual(spans, wantSpans) {
			t.Fatalf("text %q: tags at %v, claude-code-mux's expression finds %v", want, spans, wantSpans)
		}
		if tag.Model != wantModel {
			t.Fatalf("text %q: model %q, want %q", text, tag.Model, wantModel)
		}
		stripped := tag.strip(body, &fields)
		var got map[string]any
		if err := json.Unmarshal(stripped, &got); err != nil {
			t.Fatalf("stripped body is not JSON: %v\n%s", err, stripped)
		}
		if !reflect.DeepEqual(got, decoded) {
			t.Fatalf("text %q:\n got %v\nwant %v", text, got, decoded)
		}
		if wantModel == "" && !bytes.Equal(stripped, orig) {
			t.Fatalf("a body without a tag changed:\n%s\n%s", orig, stripped)
		}
		// The model is still where fields says, so rewriting it works.
		if string(stripped[fields.modelStart:fields.modelEnd]) != `"claude-sonnet-4-5"` {
			t.Fatalf("model offsets lost: %q", stripped[fields.modelStart:fields.modelEnd])
		}
	})
}
