package proxy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"ccmux/proxy/internal/fakeanthropic"
)

// toolLoop is a tool loop whose last assistant message holds a tool call
// and no thinking block, as an OpenAI-type provider without reasoning
// answers it; thinking and stream are set by the test.
func toolLoop(thinking string, stream bool) string {
	body := `{"model":"duo","max_tokens":2048,`
	if stream {
		body += `"stream":true,`
	}
	if thinking != "" {
		body += `"thinking":` + thinking + `,`
	}
	return body + `"messages":[{"role":"user","content":"read main.go"},
	  {"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"Read","input":{"file_path":"main.go"}}]},
	  {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"package main"}]}]}`
}

const thinkingOn = `{"type":"enabled","budget_tokens":1024}`

// TestThinkingRefusedRetry: Anthropic's refusal of a tool loop without its
// thinking block is answered by sending the request once more, to the same
// provider, with thinking turned off; nothing else is retried, and the
// resend never more than once.
func TestThinkingRefusedRetry(t *testing.T) {
	refusal := fakeanthropic.ThinkingRefusal(1, "tool_use")
	tests := []struct {
		name     string
		thinking string
		stream   bool
		queue    []fakeanthropic.Behavior
		status   int
		want     int    // requests the first upstream got
		wantMsg  string // the error message the client gets
		retried  bool   // a Warn line says thinking was turned off
	}{
		{name: "refused, resent without thinking", thinking: thinkingOn, status: 200, want: 2, retried: true},
		{name: "adaptive refused, resent without thinking", thinking: `{"type":"adaptive"}`, status: 200, want: 2, retried: true},
		{name: "streaming, resent without thinking", thinking: thinkingOn, stream: true, status: 200, want: 2, retried: true},
		{name: "thinking off is sent once", status: 200, want: 1},
		{name: "another 400 goes back once, unchanged", thinking: thinkingOn, queue: []fakeanthropic.Behavior{{Status: 400}},
			status: 400, want: 1, wantMsg: "Internal server error"},
		{name: "the resend refused too goes back, never a third", thinking: thinkingOn,
			queue:  []fakeanthropic.Behavior{{}, {Status: 400, Message: refusal}},
			status: 400, want: 2, wantMsg: refusal, retried: true},
		{name: "the resend refused too, streaming", thinking: thinkingOn, stream: true,
			queue:  []fakeanthropic.Behavior{{}, {Status: 400, Message: refusal}},
			status: 400, want: 2, wantMsg: refusal, retried: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FIRST_KEY", "key-first")
			t.Setenv("SECOND_KEY", "key-second")
			first, second := newUpstream(t), newUpstream(t)
			first.Queue(tt.queue...)
			h := startProxy(t, mustConfig(t, twoProviders(first.URL, second.URL, "")))
			resp := h.post("/v1/messages", toolLoop(tt.thinking, tt.stream), nil)
			got := readAll(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, got)
			}
			if tt.wantMsg != "" {
				if typ, msg := apiError(t, got); typ != "invalid_request_error" || msg != tt.wantMsg {
					t.Errorf("error %s %q, want invalid_request_error %q", typ, msg, tt.wantMsg)
				}
			}
			if tt.status == 200 && tt.stream {
				if names := eventNames(readEvents(t, strings.NewReader(got))); names[len(names)-1] != "message_stop" {
					t.Errorf("want a whole stream, got %v", names)
				}
			}
			reqs := first.Requests()
			if len(reqs) != tt.want {
				t.Fatalf("the upstream got %d requests, want %d", len(reqs), tt.want)
			}
			if n := len(second.Requests()); n != 0 {
				t.Errorf("the second provider got %d requests, want none", n)
			}
			if tt.thinking != "" && !strings.Contains(string(reqs[0].Body), `"thinking"`) {
				t.Errorf("the first request lost its thinking: %s", reqs[0].Body)
			}
			if tt.want == 2 {
				var again map[string]json.RawMessage
				if err := json.Unmarshal(reqs[1].Body, &again); err != nil {
					t.Fatalf("the resend is not JSON: %v", err)
				}
				if again["thinking"] != nil || reqs[1].Model != "model-a" || reqs[1].Stream != tt.stream ||
					!strings.Contains(string(again["messages"]), `"call_1"`) {
					t.Errorf("the resend should be the request without thinking, for model-a: %s", reqs[1].Body)
				}
			}
			logs := h.logs.String()
			if retried := strings.Contains(logs, "thinking turned off"); retried != tt.retried {
				t.Errorf("a Warn line about thinking turned off: %v, want %v; logs:\n%s", retried, tt.retried, logs)
			}
			if strings.Contains(logs, "key-first") || strings.Contains(logs, "main.go") {
				t.Errorf("the logs hold a key or the body's content:\n%s", logs)
			}
		})
	}
}

// TestThinkingRefusedMatch: only the refusal of a missing thinking block
// matches, gzip-encoded too (the client's Accept-Encoding goes upstream).
func TestThinkingRefusedMatch(t *testing.T) {
	refusal := `{"type":"error","error":{"type":"invalid_request_error","message":` + strconv.Quote(fakeanthropic.ThinkingRefusal(3, "text")) + `},"request_id":"req_1"}`
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte(refusal))
	zw.Close()
	for _, tc := range []struct {
		body, encoding string
		want           bool
	}{
		{refusal, "", true},
		{zipped.String(), "gzip", true},
		{`{"type":"error","error":{"type":"invalid_request_error","message":"When thinking is enabled, a final assistant message must start with a thinking block"}}`, "", true},
		{`{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0.type: Expected ` + "`thinking` or `redacted_thinking`" + `, but found ` + "`text`" + `"}}`, "", true},
		{`{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: must be greater than thinking.budget_tokens"}}`, "", false},
		{`{"type":"error","error":{"type":"api_error","message":"a final assistant message must start with a thinking block"}}`, "", false},
		{zipped.String(), "", false},
		{`not json`, "", false},
	} {
		a := &answer{resp: &http.Response{StatusCode: 400, Header: http.Header{}}, first: []byte(tc.body), buffered: true}
		if tc.encoding != "" {
			a.resp.Header.Set("Content-Encoding", tc.encoding)
		}
		if got := thinkingRefused(a); got != tc.want {
			t.Errorf("thinkingRefused(%.80q, %q) = %v, want %v", tc.body, tc.encoding, got, tc.want)
		}
	}
}
