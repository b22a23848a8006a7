package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

const streamReq = `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`

func apiKeyTOML(baseURL string) string {
	return fmt.Sprintf(`
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "api"
auth_type = "api_key"
api_key = "$API_KEY"
base_url = %q
models = ["claude-*"]
`, baseURL)
}

// rewriteTOML is apiKeyTOML with claude-sonnet-4-5 mapped to a dated name,
// so every request's model is rewritten on its way upstream.
func rewriteTOML(baseURL string) string {
	return apiKeyTOML(baseURL) + `
[[models]]
name = "claude-sonnet-4-5"
[[models.mappings]]
actual_model = "claude-sonnet-4-5-20250929"
priority = 1
provider = "api"
`
}

// Each event reaches the client before the upstream writes the next one:
// the upstream waits for the test to see event i before writing event i+1,
// so any buffering in the proxy deadlocks and fails the test.
func TestStreamEventsAreNotBuffered(t *testing.T) {
	t.Setenv("API_KEY", "k")
	events := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"event: ping\ndata: {\"type\": \"ping\"}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
		"event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\r\n\r\n",
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	}
	seen := make(chan int)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		rc := http.NewResponseController(w)
		for i, ev := range events {
			// Write each event in two pieces to check the proxy reassembles it.
			io.WriteString(w, ev[:len(ev)/2])
			rc.Flush()
			io.WriteString(w, ev[len(ev)/2:])
			rc.Flush()
			select {
			case got := <-seen:
				if got != i {
					return
				}
			case <-time.After(5 * time.Second):
				return
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer up.Close()
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	resp := h.post("/v1/messages", streamReq, nil)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	for i, want := range events {
		got := readRawEvent(t, br)
		if got != want {
			t.Fatalf("event %d: got %q, want %q", i, got, want)
		}
		select {
		case seen <- i:
		case <-time.After(5 * time.Second):
			t.Fatalf("upstream did not wait for event %d", i)
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("unexpected bytes after message_stop: %q", rest)
	}
}

// readRawEvent reads one event's bytes through its blank line, failing the
// test if it does not arrive within a few seconds.
func readRawEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			b.WriteString(line)
			if err != nil {
				ch <- result{b.String(), err}
				return
			}
			if line == "\n" || line == "\r\n" {
				ch <- result{b.String(), nil}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("reading an event: %v (got %q)", r.err, r.s)
		}
		return r.s
	case <-time.After(5 * time.Second):
		t.Fatal("an event sat in a buffer: the client did not receive it")
		return ""
	}
}

// The client hanging up mid-stream cancels the upstream request at once, and
// nothing is left running afterwards.
func TestClientCancelStopsUpstream(t *testing.T) {
	t.Setenv("API_KEY", "k")
	base := runtime.NumGoroutine()
	up := fakeanthropic.New()
	up.SetBehavior(fakeanthropic.Behavior{HoldOpen: true})
	cfg := mustConfig(t, apiKeyTOML(up.URL))
	cfg.Server.Port = 0
	srv := &Server{Config: cfg}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+srv.Addr()+"/v1/messages", strings.NewReader(streamReq))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ev := readRawEvent(t, bufio.NewReader(resp.Body)); !strings.HasPrefix(ev, "event: message_start") {
		t.Fatalf("first event %q", ev)
	}
	cancel()
	select {
	case <-up.Cancelled():
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled when the client went away")
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	stop, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	if err := srv.Stop(stop); err != nil {
		t.Fatal(err)
	}
	up.Close()
	testsupport.Eventually(t, "goroutines to return to the baseline", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

// An upstream that closes the stream cleanly but early still ends the
// client's stream with an error event.
func TestUpstreamEndsEarly(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\"")
	}))
	defer up.Close()
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	resp := h.post("/v1/messages", streamReq, nil)
	evs := readEvents(t, resp.Body)
	resp.Body.Close()
	if got := eventNames(evs); strings.Join(got, ",") != "message_start,error" {
		t.Fatalf("events %v, want message_start then error (the partial event dropped)", got)
	}
	if typ, msg := apiError(t, evs[1].data); typ != "api_error" || !strings.Contains(msg, "before message_stop") {
		t.Errorf("error event %s %q", typ, msg)
	}
}

func TestNonStreamingPassesThrough(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	resp := h.post("/v1/messages?beta=true", `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{"User-Agent": "claude-cli/2.0.14 (external, cli)", "Anthropic-Beta": "claude-code-20250219"})
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `"type":"message"`) || resp.Header.Get("request-id") == "" {
		t.Fatalf("status %d, headers %v, body %s", resp.StatusCode, resp.Header, body)
	}
	r := up.Requests()[0]
	if r.RawQuery != "beta=true" || r.Header.Get("User-Agent") != "claude-cli/2.0.14 (external, cli)" ||
		r.Header.Get("Anthropic-Beta") != "claude-code-20250219" || r.Header.Get("X-Api-Key") != "k" {
		t.Errorf("upstream got query %q headers %v", r.RawQuery, r.Header)
	}
	// A whole answer is sent before its log line is written (fdea3c6).
	testsupport.Eventually(t, "the request's log line", 5*time.Second, func() bool { return strings.Contains(h.logs.String(), "status=200") })
	log := h.logs.String()
	for _, want := range []string{"method=POST", "path=/v1/messages", "model=claude-sonnet-4-5", "provider=api", "model_sent=claude-sonnet-4-5", "status=200", "duration=", "bytes=" + fmt.Sprint(len(body))} {
		if !strings.Contains(log, want) {
			t.Errorf("request log line lacks %q:\n%s", want, log)
		}
	}
}

func TestStartStopRepeatedly(t *testing.T) {
	base := runtime.NumGoroutine()
	cfg := mustConfig(t, apiKeyTOML("http://127.0.0.1:9"))
	cfg.Server.Port = 0
	srv := &Server{Config: cfg, Version: "v"}
	client := &http.Client{Transport: &http.Transport{}}
	for i := 0; i < 3; i++ {
		if err := srv.Start(context.Background()); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if !srv.Running() {
			t.Fatal("Running() is false after Start")
		}
		if err := srv.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("a second Start: %v", err)
		}
		resp, err := client.Get("http://" + srv.Addr() + "/health")
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); !strings.Contains(body, `"status":"ok"`) || !strings.Contains(body, `"version":"v"`) {
			t.Fatalf("health: %s", body)
		}
		if err := srv.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if srv.Running() {
			t.Fatal("Running() is true after Stop")
		}
		client.CloseIdleConnections()
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatalf("Stop when stopped: %v", err)
	}
	testsupport.Eventually(t, "goroutines to return to the baseline", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

func TestStartAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := mustConfig(t, apiKeyTOML("http://127.0.0.1:9"))
	cfg.Server.Port = ln.Addr().(*net.TCPAddr).Port
	srv := &Server{Config: cfg}
	err = srv.Start(context.Background())
	if err == nil {
		srv.Stop(context.Background())
		t.Fatal("Start on a busy port succeeded")
	}
	if !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "already in use") || strings.Contains(err.Error(), "\n") {
		t.Errorf("want one sentence naming %s and saying it is in use, got %q", ln.Addr(), err)
	}
	if srv.Running() {
		t.Error("Running() after a failed Start")
	}
}

// Stop lets a request in flight finish, then cuts streams still open when
// its context ends.
func TestStopDrains(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	up.Queue(fakeanthropic.Behavior{Stall: true})
	cfg := mustConfig(t, apiKeyTOML(up.URL))
	cfg.Server.Port = 0
	srv := &Server{Config: cfg}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	type result struct {
		status int
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Post("http://"+srv.Addr()+"/v1/messages", "application/json", strings.NewReader(`{"model":"claude-sonnet-4-5","messages":[]}`))
		if err != nil {
			got <- result{0, err}
			return
		}
		readAll(t, resp)
		got <- result{resp.StatusCode, nil}
	}()
	testsupport.Eventually(t, "the request to reach the upstream", 5*time.Second, func() bool { return up.Served() == 1 })
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- srv.Stop(ctx)
	}()
	testsupport.Eventually(t, "Stop to close the listener", 5*time.Second, func() bool { return !srv.Running() })
	up.Release()
	if r := <-got; r.err != nil || r.status != 200 {
		t.Fatalf("in-flight request during Stop: %d %v", r.status, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}

	// A stream still open when the drain time ends is cut.
	up.SetBehavior(fakeanthropic.Behavior{HoldOpen: true})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post("http://"+srv.Addr()+"/v1/messages", "application/json", strings.NewReader(streamReq))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readRawEvent(t, br)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.Cancelled():
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream stream was not cancelled by Stop")
	}
	// The cut stream ends with an error event telling the client to retry.
	evs := readEvents(t, br)
	if len(evs) != 1 || evs[0].name != "error" {
		t.Fatalf("after Stop the stream sent %v, want one error event", eventNames(evs))
	}
	if typ, msg := apiError(t, evs[0].data); typ != "overloaded_error" || !strings.Contains(msg, "stopping") {
		t.Errorf("error event %s %q", typ, msg)
	}
}

// Upstreams that offer HTTP/2 over TLS get it, and a stream keeps flowing
// event by event over it.
func TestHTTP2Upstream(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := fakeanthropic.NewUnstarted()
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	cfg := mustConfig(t, apiKeyTOML(up.URL))
	cfg.Server.Port = 0
	srv := &Server{Config: cfg, tlsConfig: up.Client().Transport.(*http.Transport).TLSClientConfig}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, body := range []string{streamReq, `{"model":"claude-sonnet-4-5","messages":[]}`} {
		resp, err := client.Post("http://"+srv.Addr()+"/v1/messages", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, got)
		}
	}
	reqs := up.Requests()
	if len(reqs) != 2 || reqs[0].Proto != "HTTP/2.0" || reqs[1].Proto != "HTTP/2.0" {
		t.Fatalf("upstream requests were not HTTP/2: %+v", reqs)
	}
	if up.Conns() != 1 {
		t.Errorf("two requests used %d upstream connections, want 1", up.Conns())
	}
}

// A non-streaming request still waiting when Stop's drain time ends gets an
// overloaded_error to retry on, not a dropped connection.
func TestStopAnswersWaitingRequests(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	up.SetBehavior(fakeanthropic.Behavior{Stall: true})
	cfg := mustConfig(t, apiKeyTOML(up.URL))
	cfg.Server.Port = 0
	srv := &Server{Config: cfg}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Post("http://"+srv.Addr()+"/v1/messages", "application/json", strings.NewReader(`{"model":"claude-sonnet-4-5","messages":[]}`))
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, string(b), err}
	}()
	testsupport.Eventually(t, "the request to reach the upstream", 5*time.Second, func() bool { return up.Served() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.status != 529 {
		t.Fatalf("waiting request at Stop: %d %q %v", r.status, r.body, r.err)
	}
	if typ, msg := apiError(t, r.body); typ != "overloaded_error" || !strings.Contains(msg, "stopping") {
		t.Errorf("got %s %q", typ, msg)
	}
}
