package proxy

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ccmux/internal/history"
	"ccmux/proxy/internal/fakeanthropic"
)

func openHistory(t testing.TB) *history.Store {
	t.Helper()
	st, err := history.Open(filepath.Join(t.TempDir(), history.FileName), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestHistoryRecordsRequests: a stream, a plain answer and a failover each
// leave one line with the models, provider, status, timings and the
// answer's token usage, and nothing of the bodies.
func TestHistoryRecordsRequests(t *testing.T) {
	t.Setenv("FIRST_KEY", "k1")
	t.Setenv("SECOND_KEY", "k2")
	first, second := newUpstream(t), newUpstream(t)
	store := openHistory(t)
	h := startProxy(t, mustConfig(t, twoProviders(first.URL, second.URL, "")), func(s *Server) { s.History = store })

	for _, c := range []struct {
		body  string
		first fakeanthropic.Behavior
	}{
		{`{"model":"duo","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"secret prompt"}]}`, fakeanthropic.Behavior{Deltas: 4}},
		{`{"model":"duo","max_tokens":16,"messages":[{"role":"user","content":"secret prompt"}]}`, fakeanthropic.Behavior{Deltas: 5}},
		{`{"model":"duo","max_tokens":16,"messages":[{"role":"user","content":"secret prompt"}]}`, fakeanthropic.Behavior{Status: 529}},
	} {
		first.SetBehavior(c.first)
		resp := h.post("/v1/messages", c.body, nil)
		if body := readAll(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	h.post("/v1/messages", `{"model":`, nil).Body.Close() // refused before routing: not recorded
	store.Flush()
	got, err := store.Requests(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("recorded %d requests, want 3: %+v", len(got), got)
	}
	type line struct {
		provider, sent, failover string
		in, out                  int64
	}
	want := []line{
		{"second", "model-b", "first → second", 25, 6}, // newest first
		{"first", "model-a", "", 25, 10},
		{"first", "model-a", "", 25, 8},
	}
	for i, r := range got {
		g := line{r.Provider, r.ModelSent, r.Failover, deref(r.Input), deref(r.Output)}
		if g != want[i] || r.Model != "duo" || r.Status != 200 || r.TTFBMS == nil || r.DurationMS+1 < *r.TTFBMS {
			t.Errorf("request %d = %+v (%+v), want %+v", i, r, g, want[i])
		}
	}
	stats, _ := store.Stats(context.Background(), 1)
	if len(stats) != 2 || stats[0].Model != "model-a" || stats[0].Requests != 2 || stats[0].Output != 18 {
		t.Errorf("stats = %+v", stats)
	}
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

func TestRecordingBodyUsage(t *testing.T) {
	body := `{"id":"msg","content":[{"type":"text","text":"the \"usage\": {\"input_tokens\": 99}"}],` +
		strings.Repeat(" ", 9000) + `"usage" : {"input_tokens":7,"cache_creation_input_tokens":3,"cache_read_input_tokens":2000,"cache_creation":{"ephemeral_5m_input_tokens":3,"ephemeral_1h_input_tokens":0},"output_tokens":11,"service_tier":"standard","server_tool_use":{"web_search_requests":0}}}`
	for _, chunk := range []int{1, 7, 4096, 100000} {
		r := &recording{}
		for b := []byte(body); len(b) > 0; {
			n := min(chunk, len(b))
			r.write(b[:n])
			b = b[n:]
		}
		r.bodyUsage()
		if deref(r.usage.Input) != 7 || deref(r.usage.Output) != 11 || deref(r.usage.CacheRead) != 2000 || deref(r.usage.CacheWrite) != 3 || len(r.tail) > tailSize {
			t.Errorf("chunks of %d: usage %+v, tail %d bytes", chunk, r.usage, len(r.tail))
		}
	}
}

// BenchmarkRecordingStream is what a recorded stream adds per event: the
// content_block_delta events that make up nearly all of a stream.
func BenchmarkRecordingStream(b *testing.B) {
	ev := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n")
	r := &recording{stream: true}
	b.ReportAllocs()
	for b.Loop() {
		r.write(ev)
	}
}

// BenchmarkRecordingUsageEvents is the two events per stream that are parsed.
func BenchmarkRecordingUsageEvents(b *testing.B) {
	start := []byte(`event: message_start
data: {"type":"message_start","message":{"id":"msg_01Fake","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":40000,"output_tokens":1}}}

`)
	delta := []byte(`event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":500}}

`)
	b.ReportAllocs()
	for b.Loop() {
		r := &recording{stream: true}
		r.write(start)
		r.write(delta)
	}
}

// BenchmarkRecordRequest is all a recorded stream adds on the request
// path: the recording, the candidate, the status line, 100 events (two of
// them parsed for usage) and the queued line.
func BenchmarkRecordRequest(b *testing.B) {
	st, err := history.Open(filepath.Join(b.TempDir(), history.FileName), history.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := &Server{History: st}
	hdr := http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}
	start := []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01Fake\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":40000,\"output_tokens\":1}}}\n\n")
	delta := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n")
	end := []byte("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":500}}\n\n")
	c := Candidate{Provider: "claude-max", Model: "claude-sonnet-4-5-20250929"}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		t0 := time.Now()
		ex := &exchange{rec: &recording{}, modelAsked: "claude-sonnet-4-5"}
		ex.trying(c)
		ex.rec.header(hdr)
		ex.rec.write(start)
		for range 97 {
			ex.rec.write(delta)
		}
		ex.rec.write(end)
		s.record(ex, t0, time.Now(), 200)
		if i++; i%4096 == 0 {
			b.StopTimer()
			st.Flush() // measure the queue send, not a full queue's drop
			b.StartTimer()
		}
	}
	if st.Dropped() > 0 {
		b.Errorf("%d records dropped", st.Dropped())
	}
}
