// Package fakeanthropic is a fake Anthropic Messages API for ccmux's proxy
// tests and benchmark: it answers on an httptest loopback server with the
// real SSE event sequence and error shapes, and can fail, stall or die mid-stream.
package fakeanthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Behavior tells the fake how to answer. The zero value answers every
// request successfully, streaming when the body asks for it.
type Behavior struct {
	// Status, when not 0 or 200, answers with Anthropic's error for it.
	Status int
	// RetryAfter is sent as retry-after with an error status.
	RetryAfter string
	// Stall holds the request before any byte of the answer until the client
	// goes away or Release is called.
	Stall bool
	// DieAfterEvents drops the connection after that many stream events (0: never).
	DieAfterEvents int
	// DieAtStart drops the connection right after the stream's headers.
	DieAtStart bool
	// EventGap is the pause between stream events.
	EventGap time.Duration
	// Deltas is the number of text deltas in an answer (default 3).
	Deltas int
	// HoldOpen keeps a stream open after message_start until the client goes
	// away or Release is called, then finishes it.
	HoldOpen bool
	// Stamp writes the time each delta was written (Unix nanoseconds) as its text.
	Stamp bool
	// Message, when set, replaces the message of the error for Status.
	Message string
	// Header is sent with the answer, success or error: for example the
	// anthropic-ratelimit-unified-* headers a subscription's answers carry
	// (see Unified).
	Header http.Header
}

// Request is what the fake received.
type Request struct {
	Method, Path, RawQuery string
	Proto                  string // e.g. HTTP/1.1 or HTTP/2.0
	Header                 http.Header
	Body                   []byte
	Model                  string
	Stream                 bool
}

// Upstream is a running fake. Close it when done.
type Upstream struct {
	*httptest.Server

	// Record keeps every request (headers and body) for Requests; turn it
	// off for load so memory stays flat.
	Record bool

	mu        sync.Mutex
	def       Behavior
	queue     []Behavior
	requests  []Request
	release   chan struct{}
	conns     atomic.Int64
	served    atomic.Int64
	cancelled chan struct{}
	ids       atomic.Int64
}

// New starts a fake on a loopback port (plain HTTP/1.1).
func New() *Upstream {
	u := NewUnstarted()
	u.Start()
	return u
}

// NewUnstarted returns a fake to start with Start or StartTLS (set
// EnableHTTP2 first for HTTP/2, as api.anthropic.com speaks).
func NewUnstarted() *Upstream {
	u := &Upstream{Record: true, release: make(chan struct{}), cancelled: make(chan struct{}, 4096)}
	u.Server = httptest.NewUnstartedServer(u)
	u.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	return u
}

// SetBehavior sets how every later request is answered.
func (u *Upstream) SetBehavior(b Behavior) {
	u.mu.Lock()
	u.def = b
	u.mu.Unlock()
}

// Queue sets how the next requests are answered, one Behavior each, before
// the default applies again.
func (u *Upstream) Queue(bs ...Behavior) {
	u.mu.Lock()
	u.queue = append(u.queue, bs...)
	u.mu.Unlock()
}

// Release lets stalled and held requests continue.
func (u *Upstream) Release() {
	u.mu.Lock()
	close(u.release)
	u.release = make(chan struct{})
	u.mu.Unlock()
}

// Requests returns the requests received so far.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.requests...)
}

// Served is the number of requests answered or started so far.
func (u *Upstream) Served() int64 { return u.served.Load() }

// Conns is the number of TCP connections clients have opened.
func (u *Upstream) Conns() int64 { return u.conns.Load() }

// Cancelled receives once for every request the client abandoned while the
// fake was still answering it (the proxy must cancel upstream requests).
func (u *Upstream) Cancelled() <-chan struct{} { return u.cancelled }

// gone notes a request the client abandoned.
func (u *Upstream) gone() {
	select {
	case u.cancelled <- struct{}{}:
	default:
	}
}

func (u *Upstream) next() (Behavior, chan struct{}) {
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.def
	if len(u.queue) > 0 {
		b, u.queue = u.queue[0], u.queue[1:]
	}
	return b, u.release
}

// ServeHTTP answers like api.anthropic.com.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.served.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	model, stream := routingFields(body)
	if u.Record {
		req := Request{Proto: r.Proto, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Model: model, Stream: stream}
		u.mu.Lock()
		u.requests = append(u.requests, req)
		u.mu.Unlock()
	}
	b, release := u.next()
	id := u.ids.Add(1)
	reqID := fmt.Sprintf("req_011CUfake%012d", id)
	w.Header().Set("request-id", reqID)
	w.Header().Set("anthropic-organization-id", "00000000-0000-4000-8000-000000000000")
	for k, v := range b.Header {
		w.Header()[k] = v
	}
	if b.Stall {
		select {
		case <-r.Context().Done():
			u.gone()
			return
		case <-release:
		}
	}
	if b.Status != 0 && b.Status != http.StatusOK {
		writeError(w, b)
		return
	}
	if msg := thinkingRefusal(body); msg != "" {
		writeInvalidRequest(w, msg, reqID)
		return
	}
	switch {
	case r.URL.Path == "/v1/messages/count_tokens":
		writeJSON(w, map[string]int{"input_tokens": len(body) / 4})
	case r.URL.Path != "/v1/messages":
		writeError(w, Behavior{Status: http.StatusNotFound})
	case stream:
		u.stream(w, r, b, release, model, id)
	default:
		writeJSON(w, message(model, id, deltas(b)))
	}
}

func deltas(b Behavior) int {
	if b.Deltas <= 0 {
		return 3
	}
	return b.Deltas
}

// ErrorType is Anthropic's error type for an HTTP status.
func ErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	default:
		return "api_error"
	}
}

func errorMessage(status int) string {
	switch status {
	case 429:
		return "Number of request tokens has exceeded your per-minute rate limit"
	case 529:
		return "Overloaded"
	case 401:
		return "invalid x-api-key"
	case 404:
		return "Not found"
	default:
		return "Internal server error"
	}
}

func writeError(w http.ResponseWriter, b Behavior) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-should-retry", strconv.FormatBool(b.Status == 429 || b.Status >= 500))
	if b.RetryAfter != "" {
		h.Set("retry-after", b.RetryAfter)
	}
	if b.Status == 429 {
		h.Set("anthropic-ratelimit-requests-remaining", "0")
	}
	w.WriteHeader(b.Status)
	msg := b.Message
	if msg == "" {
		msg = errorMessage(b.Status)
	}
	fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%q}}`, ErrorType(b.Status), msg)
}

func writeJSON(w http.ResponseWriter, v any) {
	data, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

func message(model string, id int64, n int) map[string]any {
	text := ""
	for i := 0; i < n; i++ {
		text += "Hello! "
	}
	return map[string]any{
		"id": fmt.Sprintf("msg_01Fake%012d", id), "type": "message", "role": "assistant", "model": model,
		"content":     []map[string]any{{"type": "text", "text": text}},
		"stop_reason": "end_turn", "stop_sequence": nil,
		"usage": map[string]int{"input_tokens": 25, "output_tokens": n * 2},
	}
}

// stream writes the real Messages API event sequence, flushing each event.
func (u *Upstream) stream(w http.ResponseWriter, r *http.Request, b Behavior, release chan struct{}, model string, id int64) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	n := deltas(b)
	events := make([]func() string, 0, n+6)
	ev := func(name, data string) func() string {
		return func() string { return "event: " + name + "\ndata: " + data + "\n\n" }
	}
	events = append(events,
		ev("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_01Fake%012d","type":"message","role":"assistant","model":%q,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`, id, model)),
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		ev("ping", `{"type": "ping"}`),
	)
	for i := 0; i < n; i++ {
		i := i
		events = append(events, func() string {
			text := fmt.Sprintf("word%d ", i)
			if b.Stamp {
				text = strconv.FormatInt(time.Now().UnixNano(), 10)
			}
			return "event: content_block_delta\ndata: " + `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + text + `"}}` + "\n\n"
		})
	}
	events = append(events,
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`),
		ev("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, n*2)),
		ev("message_stop", `{"type":"message_stop"}`),
	)
	var timer *time.Timer
	for i, next := range events {
		if (b.DieAfterEvents > 0 && i == b.DieAfterEvents) || (b.DieAtStart && i == 0) {
			// Drop the connection without ending the chunked body.
			panic(http.ErrAbortHandler)
		}
		if i > 0 && b.EventGap > 0 {
			if timer == nil {
				timer = time.NewTimer(b.EventGap)
			} else {
				timer.Reset(b.EventGap)
			}
			select {
			case <-timer.C:
			case <-r.Context().Done():
				u.gone()
				return
			}
		}
		if i == 1 && b.HoldOpen {
			select {
			case <-r.Context().Done():
				u.gone()
				return
			case <-release:
			}
		}
		if _, err := io.WriteString(w, next()); err != nil {
			u.gone()
			return
		}
		if err := rc.Flush(); err != nil {
			u.gone()
			return
		}
	}
}

// routingFields reads model and stream without decoding a large body: the
// fake must stay cheap so benchmarks measure the proxy, not the fake.
func routingFields(body []byte) (model string, stream bool) {
	if len(body) < 64<<10 {
		var v struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if json.Unmarshal(body, &v) == nil {
			return v.Model, v.Stream
		}
		return "", false
	}
	// Large bodies: the benchmark puts model and stream first.
	head := body[:256]
	if i := bytes.Index(head, []byte(`"model":"`)); i >= 0 {
		rest := head[i+9:]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			model = string(rest[:j])
		}
	}
	stream = bytes.Contains(head, []byte(`"stream":true`))
	return model, stream
}
