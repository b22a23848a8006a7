package proxy

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"ccmux/proxy/internal/fakeanthropic"
)

// fakeOpenAI is a Chat Completions upstream on loopback that answers each
// request with the next queued answer and records what it got.
type fakeOpenAI struct {
	*httptest.Server
	mu      sync.Mutex
	answers []fakeChat
	got     []*http.Request
	bodies  []string
}

type fakeChat struct {
	status int
	header map[string]string
	body   string
	// chunks, when set, are written one at a time, each flushed; before
	// chunk i (i > 0) the fake waits on gate, when gate is set.
	chunks []string
	gate   chan struct{}
}

func newFakeOpenAI(t *testing.T, answers ...fakeChat) *fakeOpenAI {
	f := &fakeOpenAI{answers: answers}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.got = append(f.got, r)
		f.bodies = append(f.bodies, string(b))
		a := f.answers[0]
		if len(f.answers) > 1 {
			f.answers = f.answers[1:]
		}
		f.mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.chunks != nil {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		if a.status == 0 {
			a.status = 200
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
		for i, c := range a.chunks {
			if i > 0 && a.gate != nil {
				select {
				case <-a.gate:
				case <-r.Context().Done():
					return
				}
			}
			io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeOpenAI) requests() ([]*http.Request, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got, f.bodies
}

func recorded(t *testing.T, name string) string {
	b, err := os.ReadFile("openai/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openaiConfig has a model "duo" on two providers: first (of firstType)
// and second (of secondType); "anthropic" is the Anthropic path.
func openaiConfig(firstType, firstURL, secondType, secondURL string) string {
	return fmt.Sprintf(`
[router]
default = "duo"
[[providers]]
name = "first"
provider_type = %q
auth_type = "api_key"
api_key = "key-first"
base_url = %q
[[providers]]
name = "second"
provider_type = %q
auth_type = "api_key"
api_key = "key-second"
base_url = %q
[[models]]
name = "duo"
[[models.mappings]]
actual_model = "model-a"
priority = 1
provider = "first"
[[models.mappings]]
actual_model = "model-b"
priority = 2
provider = "second"
`, firstType, firstURL, secondType, secondURL)
}

const openaiStreamBody = `{"model":"duo","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"read /tmp/a.txt"}],
 "tools":[{"name":"Read","input_schema":{"type":"object"}}]}`

// TestOpenAIStream: a streaming request to an OpenAI-type provider goes to
// base_url/chat/completions with the provider's key as a bearer token, no
// Anthropic headers and the client's User-Agent, and comes back as the
// translated events.
func TestOpenAIStream(t *testing.T) {
	up := newFakeOpenAI(t, fakeChat{chunks: []string{recorded(t, "tool_call.sse")}})
	h := startProxy(t, mustConfig(t, openaiConfig("openai-compatible", up.URL+"/v1", "anthropic", closedURL(t))))
	resp := h.post("/v1/messages", openaiStreamBody, map[string]string{
		"User-Agent": "claude-cli/2.1.0 (external, cli)", "anthropic-beta": "x", "x-api-key": "client-key", "Accept-Encoding": "gzip",
	})
	got := readAll(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}
	if want := recorded(t, "tool_call.golden"); got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
	reqs, bodies := up.requests()
	r := reqs[0]
	if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer key-first" ||
		r.Header.Get("User-Agent") != "claude-cli/2.1.0 (external, cli)" || r.Header.Get("Accept-Encoding") != "" {
		t.Errorf("upstream request %s %v", r.URL.Path, r.Header)
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "anthropic") || k == "X-Api-Key" {
			t.Errorf("header %s went to the OpenAI upstream", k)
		}
	}
	var sent struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &sent); err != nil || sent.Model != "model-a" || !sent.Stream || !sent.StreamOptions.IncludeUsage {
		t.Errorf("upstream body %s", bodies[0])
	}
}

// TestOpenAIStreamFlushesEachEvent: the first text delta reaches the
// client while the upstream still holds the rest of its answer.
func TestOpenAIStreamFlushesEachEvent(t *testing.T) {
	gate := make(chan struct{})
	up := newFakeOpenAI(t, fakeChat{gate: gate, chunks: []string{
		`data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}` + "\n\n",
		`data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n",
	}})
	h := startProxy(t, mustConfig(t, openaiConfig("openai", up.URL+"/v1", "anthropic", closedURL(t))))
	resp := h.post("/v1/messages", openaiStreamBody, nil)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var seen []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the first text delta: %v (%q)", err, seen)
		}
		seen = append(seen, line)
		if strings.Contains(line, `"text_delta","text":"Hel"`) {
			break
		}
	}
	close(gate)
	names := eventNames(readEvents(t, br))
	if names[len(names)-1] != "message_stop" {
		t.Errorf("the stream ended with %v", names)
	}
}

// TestOpenAINonStream: a whole Chat Completion comes back as an Anthropic message.
func TestOpenAINonStream(t *testing.T) {
	up := newFakeOpenAI(t, fakeChat{body: `{"id":"chatcmpl-1","model":"model-a","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`})
	h := startProxy(t, mustConfig(t, openaiConfig("groq", up.URL+"/openai/v1", "anthropic", closedURL(t))))
	resp := h.post("/v1/messages", `{"model":"duo","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, nil)
	got := readAll(t, resp)
	var msg struct {
		Type       string `json:"type"`
		StopReason string `json:"stop_reason"`
		Content    []struct{ Type, Text string }
		Usage      struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		}
	}
	if err := json.Unmarshal([]byte(got), &msg); err != nil || resp.StatusCode != 200 || msg.Type != "message" ||
		msg.StopReason != "end_turn" || len(msg.Content) != 1 || msg.Content[0].Text != "Hi." || msg.Usage.InputTokens != 5 {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	if reqs, _ := up.requests(); reqs[0].URL.Path != "/openai/v1/chat/completions" {
		t.Errorf("path %s", reqs[0].URL.Path)
	}
}

// TestOpenAIJSONToStreamRequest: a server that answers a stream request
// with one JSON body still gives the client an event stream.
func TestOpenAIJSONToStreamRequest(t *testing.T) {
	up := newFakeOpenAI(t, fakeChat{body: `{"id":"chatcmpl-1","model":"model-a","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}]}`})
	h := startProxy(t, mustConfig(t, openaiConfig("openai-compatible", up.URL+"/v1", "anthropic", closedURL(t))))
	resp := h.post("/v1/messages", openaiStreamBody, nil)
	evs := readEvents(t, resp.Body)
	resp.Body.Close()
	names := eventNames(evs)
	if resp.Header.Get("Content-Type") != "text/event-stream" || names[0] != "message_start" || names[len(names)-1] != "message_stop" {
		t.Fatalf("%q: %v", resp.Header.Get("Content-Type"), names)
	}
}

// TestOpenAIFailoverAcrossProtocols: a 429 or 5xx from an OpenAI-type
// provider fails over to an Anthropic one, and the other way round; when
// the OpenAI one answers last, its error reaches the client in Anthropic's
// shape with retry-after kept.
func TestOpenAIFailoverAcrossProtocols(t *testing.T) {
	t.Run("openrouter then anthropic", func(t *testing.T) {
		or := newFakeOpenAI(t, fakeChat{status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"error":{"message":"Rate limit exceeded","code":429}}`})
		ant := newUpstream(t)
		h := startProxy(t, mustConfig(t, openaiConfig("openrouter", or.URL+"/api/v1", "anthropic", ant.URL)))
		resp := h.post("/v1/messages", openaiStreamBody, nil)
		got := readAll(t, resp)
		if resp.StatusCode != 200 || len(ant.Requests()) != 1 || ant.Requests()[0].Model != "model-b" {
			t.Fatalf("status %d, anthropic requests %d: %s", resp.StatusCode, len(ant.Requests()), got)
		}
	})
	t.Run("anthropic then openrouter", func(t *testing.T) {
		ant := newUpstream(t)
		ant.SetBehavior(fakeanthropic.Behavior{Status: 529})
		or := newFakeOpenAI(t, fakeChat{chunks: []string{recorded(t, "text.sse")}})
		h := startProxy(t, mustConfig(t, openaiConfig("anthropic", ant.URL, "openrouter", or.URL+"/api/v1")))
		resp := h.post("/v1/messages", openaiStreamBody, nil)
		got := readAll(t, resp)
		if resp.StatusCode != 200 || got != recorded(t, "text.golden") {
			t.Fatalf("status %d: %s", resp.StatusCode, got)
		}
	})
	t.Run("both fail, the openai error last", func(t *testing.T) {
		ant := newUpstream(t)
		ant.SetBehavior(fakeanthropic.Behavior{Status: 500})
		or := newFakeOpenAI(t, fakeChat{status: 429, header: map[string]string{"Retry-After": "7"}, body: `{"error":{"message":"Rate limit exceeded","code":429}}`})
		h := startProxy(t, mustConfig(t, openaiConfig("anthropic", ant.URL, "openrouter", or.URL+"/api/v1")))
		resp := h.post("/v1/messages", openaiStreamBody, nil)
		got := readAll(t, resp)
		typ, msg := apiError(t, got)
		if resp.StatusCode != 429 || typ != "rate_limit_error" || !strings.Contains(msg, "Rate limit exceeded") || resp.Header.Get("Retry-After") != "7" {
			t.Fatalf("status %d retry-after %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), got)
		}
	})
}

// TestOpenAIErrors: a 401 from the provider is an authentication_error; a
// document block is refused before anything is sent; count_tokens answers
// the local estimate; a stream that dies before its first chunk fails over.
func TestOpenAIErrors(t *testing.T) {
	up := newFakeOpenAI(t, fakeChat{status: 401, body: `{"error":{"message":"Incorrect API key provided: sk-xx***","type":"invalid_request_error","code":"invalid_api_key"}}`})
	h := startProxy(t, mustConfig(t, openaiConfig("openai", up.URL+"/v1", "anthropic", closedURL(t))))
	resp := h.post("/v1/messages", openaiStreamBody, nil)
	if typ, _ := apiError(t, readAll(t, resp)); resp.StatusCode != 401 || typ != "authentication_error" {
		t.Errorf("status %d type %s", resp.StatusCode, typ)
	}

	resp = h.post("/v1/messages", `{"model":"duo","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}]}]}`, nil)
	typ, msg := apiError(t, readAll(t, resp))
	if resp.StatusCode != 400 || typ != "invalid_request_error" || !strings.Contains(msg, "first") || !strings.Contains(msg, "document") {
		t.Errorf("status %d %s %q", resp.StatusCode, typ, msg)
	}

	h2 := startProxy(t, mustConfig(t, openaiConfig("openai", up.URL+"/v1", "gemini", up.URL+"/v1beta/openai")))
	resp = h2.post("/v1/messages/count_tokens", `{"model":"duo","messages":[{"role":"user","content":"hello there"}]}`, nil)
	got := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, `"input_tokens"`) {
		t.Errorf("count_tokens: %d %s", resp.StatusCode, got)
	}
	if reqs, _ := up.requests(); len(reqs) != 1 {
		t.Errorf("the upstream got %d requests, want only the first", len(reqs))
	}

	dead := newFakeOpenAI(t, fakeChat{chunks: []string{`data: {"id":"x","choi`}})
	ant := newUpstream(t)
	h = startProxy(t, mustConfig(t, openaiConfig("openai", dead.URL+"/v1", "anthropic", ant.URL)))
	resp = h.post("/v1/messages", openaiStreamBody, nil)
	names := eventNames(readEvents(t, resp.Body))
	resp.Body.Close()
	if len(ant.Requests()) != 1 || names[len(names)-1] != "message_stop" {
		t.Errorf("a stream dead before its first event did not fail over: %v", names)
	}
}

// TestOpenAIGzipStream: an upstream that compresses its stream unasked
// is decoded before translation.
func TestOpenAIGzipStream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, recorded(t, "text.sse"))
		zw.Close()
	}))
	t.Cleanup(up.Close)
	h := startProxy(t, mustConfig(t, openaiConfig("openai-compatible", up.URL+"/v1", "anthropic", closedURL(t))))
	resp := h.post("/v1/messages", openaiStreamBody, nil)
	if got := readAll(t, resp); resp.Header.Get("Content-Encoding") != "" || got != recorded(t, "text.golden") {
		t.Fatalf("%v:\n%s", resp.Header, got)
	}
}
