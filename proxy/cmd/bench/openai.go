package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"ccmux/proxy/internal/fakeanthropic"
)

// The "openai" phase: the same 20-event answer through ccmux from the fake
// Anthropic upstream (passed through) and from a fake Chat Completions
// upstream (translated), side by side in one proxy process.

// openaiEnv is the fake Chat Completions upstream the proxy child serves
// the model "gpt-bench" from, when set.
const openaiEnv = "CCMUX_BENCH_OPENAI_UPSTREAM"

const openaiTOML = `
[[providers]]
name = "bench-openai"
provider_type = "openai-compatible"
auth_type = "api_key"
api_key = "bench-key"
base_url = %q
models = ["gpt-bench*"]
`

// benchDeltas makes both answers 20 Anthropic events: message_start,
// block start, ping, 14 text deltas, block stop, message_delta, message_stop.
const benchDeltas = 14

// fakeChat is a Chat Completions upstream streaming benchDeltas text chunks;
// with hold set, it stops after its first chunk until release is closed.
type fakeChat struct {
	*httptest.Server
	hold    atomic.Bool
	mu      sync.Mutex
	release chan struct{}
}

func newFakeChat() *fakeChat {
	f := &fakeChat{release: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		write := func(s string) {
			io.WriteString(w, s)
			rc.Flush()
		}
		write(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"gpt-bench","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
		if f.hold.Load() {
			f.mu.Lock()
			rel := f.release
			f.mu.Unlock()
			select {
			case <-rel:
			case <-r.Context().Done():
				return
			}
		}
		for i := 0; i < benchDeltas; i++ {
			write(fmt.Sprintf(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"gpt-bench","choices":[{"index":0,"delta":{"content":"word%d "},"finish_reason":null}]}`+"\n\n", i))
		}
		write(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"gpt-bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
		write(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"gpt-bench","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":28}}` + "\n\ndata: [DONE]\n\n")
	}))
	return f
}

func (f *fakeChat) releaseAll() {
	f.mu.Lock()
	close(f.release)
	f.release = make(chan struct{})
	f.mu.Unlock()
}

// firstDelta sends a streaming request and times the first text delta's
// arrival, then reads the rest and counts the events.
func firstDelta(t *target, body []byte) (time.Duration, int, error) {
	start := time.Now()
	resp, err := t.request(context.Background(), body)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	var d time.Duration
	events := 0
	for {
		line, err := br.ReadSlice('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		if bytes.HasPrefix(line, []byte("event: ")) {
			events++
		}
		if d == 0 && bytes.Contains(line, []byte(`"text_delta"`)) {
			d = time.Since(start)
		}
	}
	if d == 0 {
		return 0, 0, fmt.Errorf("%s: no text delta", t.name)
	}
	return d, events, nil
}

// openaiPhase measures the translated stream against the passthrough.
func openaiPhase(proc *child, up *fakeanthropic.Upstream, chat *fakeChat, n, open int, tb *table, cs *checks) error {
	via := newTarget("ccmux", "http://"+proc.addr, nil)
	pass := fakeanthropic.RequestBody(1024, "claude-sonnet-4-5", true)
	trans := fakeanthropic.RequestBody(1024, "gpt-bench", true)
	up.SetBehavior(fakeanthropic.Behavior{Deltas: benchDeltas})
	defer up.SetBehavior(fakeanthropic.Behavior{})
	for i := 0; i < 50; i++ { // warm both paths
		for _, b := range [][]byte{pass, trans} {
			if _, _, err := firstDelta(via, b); err != nil {
				return err
			}
		}
	}
	// Short rounds alternate the two, so background noise falls on both.
	var pt, tt []time.Duration
	var pcpu, tcpu time.Duration
	var pev, tev int
	const round = 20
	for done := 0; done < n; done += round {
		for _, side := range []int{0, 1} {
			body, lat, cpu, evs := pass, &pt, &pcpu, &pev
			if side == 1 {
				body, lat, cpu, evs = trans, &tt, &tcpu, &tev
			}
			c0, _ := proc.sample()
			for i := 0; i < round; i++ {
				d, e, err := firstDelta(via, body)
				if err != nil {
					return err
				}
				*lat = append(*lat, d)
				*evs = e
			}
			c1, _ := proc.sample()
			*cpu += c1 - c0
		}
	}
	pm, tm := percentile(pt, 0.5), percentile(tt, 0.5)
	tb.add(row{metric: fmt.Sprintf("OpenAI upstream: time to first text delta, p50 (%d events)", tev),
		direct: us(pm) + " (passthrough)", ccmux: us(tm), ratio: fmt.Sprintf("%.2f×", float64(tm)/float64(pm)), target: "≤ 1.2×", verdict: verdict(float64(tm) <= 1.2*float64(pm))})
	tb.add(row{metric: "OpenAI upstream: time to first text delta, p99",
		direct: us(percentile(pt, 0.99)) + " (passthrough)", ccmux: us(percentile(tt, 0.99))})
	pc, tc := pcpu/time.Duration(len(pt)), tcpu/time.Duration(len(tt))
	tb.add(row{metric: fmt.Sprintf("OpenAI upstream: proxy CPU per %d-event stream", pev),
		direct: us(pc) + " (passthrough)", ccmux: us(tc), ratio: fmt.Sprintf("%.2f×", float64(tc)/float64(pc)), target: "≤ 2×", verdict: verdict(tc <= 2*pc)})
	cs.add("OpenAI upstream: time to first text delta", fmt.Sprintf("%.2f× the passthrough's", float64(tm)/float64(pm)), "≤ 1.2×", float64(tm) <= 1.2*float64(pm))
	cs.add("OpenAI upstream: CPU per 20-event stream", fmt.Sprintf("%.2f× the passthrough's", float64(tc)/float64(pc)), "≤ 2×", tc <= 2*pc)

	// Memory per open stream: open streams held after their first event.
	perStream := func(body []byte, hold func(bool), release func()) (int64, error) {
		hold(true)
		defer hold(false)
		runtime.GC()
		_, rss0 := proc.sample()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, open)
		started := make(chan struct{}, open)
		for i := 0; i < open; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := via.request(ctx, body)
				if err != nil {
					errs <- err
					started <- struct{}{}
					return
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						errs <- err
						started <- struct{}{}
						return
					}
					if len(bytes.TrimSpace(line)) == 0 {
						break
					}
				}
				started <- struct{}{}
				io.Copy(io.Discard, br)
			}()
		}
		for i := 0; i < open; i++ {
			<-started
		}
		_, rss1 := proc.sample()
		release()
		wg.Wait()
		select {
		case err := <-errs:
			return 0, err
		default:
		}
		return (rss1 - rss0) / int64(open), nil
	}
	pmem, err := perStream(pass, func(on bool) { up.SetBehavior(fakeanthropic.Behavior{Deltas: benchDeltas, HoldOpen: on}) }, up.Release)
	if err != nil {
		return err
	}
	tmem, err := perStream(trans, chat.hold.Store, chat.releaseAll)
	if err != nil {
		return err
	}
	kb := func(b int64) string { return fmt.Sprintf("%.1f KB", float64(b)/1024) }
	tb.add(row{metric: fmt.Sprintf("OpenAI upstream: proxy RSS per open stream (%d open)", open),
		direct: kb(pmem) + " (passthrough)", ccmux: kb(tmem), added: kb(tmem - pmem)})
	return nil
}

// withOpenAI adds the Chat Completions provider to the child's config when
// the parent started a fake for it.
func withOpenAI(toml string) string {
	if u := os.Getenv(openaiEnv); u != "" {
		return toml + fmt.Sprintf(openaiTOML, u)
	}
	return toml
}
