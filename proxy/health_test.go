package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// tcpRelay forwards loopback TCP connections to an upstream, and can break
// the ones it already carries the ways networks break them: silently (a
// blackhole: the sockets stay open, the bytes go nowhere) or with a reset,
// while new connections still go through.
type tcpRelay struct {
	ln      net.Listener
	target  string
	accepts atomic.Int64
	ended   chan struct{} // closed when the test ends

	mu    sync.Mutex
	pipes []*relayPipe
}

type relayPipe struct {
	client, server net.Conn
	cut            atomic.Bool
	// stalled stops reading, both ways, until the test ends: the path is
	// dead and the sender's buffers fill, so its writes block.
	stalled atomic.Bool
	ended   chan struct{}
	// resetAfter, when > 0, resets the pipe once that many more bytes went
	// from the client to the upstream.
	resetAfter atomic.Int64
}

func newTCPRelay(t *testing.T, target string) *tcpRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpRelay{ln: ln, target: target, ended: make(chan struct{})}
	go r.serve()
	t.Cleanup(func() {
		ln.Close()
		close(r.ended)
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.pipes {
			p.client.Close()
			p.server.Close()
		}
	})
	return r
}

// addr is the relay's host:port.
func (r *tcpRelay) addr() string { return r.ln.Addr().String() }

func (r *tcpRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepts.Add(1)
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		p := &relayPipe{client: c, server: s, ended: r.ended}
		r.mu.Lock()
		r.pipes = append(r.pipes, p)
		r.mu.Unlock()
		go p.forward(s, c, true)
		go p.forward(c, s, false)
	}
}

// forward copies src to dst until the pipe is cut (then it reads and drops)
// or reset.
func (p *relayPipe) forward(dst, src net.Conn, up bool) {
	buf := make([]byte, 32<<10)
	for {
		if p.stalled.Load() {
			<-p.ended
			return
		}
		n, err := src.Read(buf)
		if n > 0 && !p.cut.Load() && !p.stalled.Load() {
			if up {
				if left := p.resetAfter.Load(); left > 0 {
					if p.resetAfter.Add(-int64(n)) <= 0 {
						p.reset()
						return
					}
				}
			}
			dst.Write(buf[:n])
		}
		if err != nil {
			if !p.cut.Load() {
				dst.Close()
			}
			return
		}
	}
}

func (p *relayPipe) reset() {
	for _, c := range []net.Conn{p.client, p.server} {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

// each runs f on the pipes open now.
func (r *tcpRelay) each(f func(*relayPipe)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.pipes {
		f(p)
	}
}

// cut blackholes every connection open now.
func (r *tcpRelay) cut() { r.each(func(p *relayPipe) { p.cut.Store(true) }) }

// stall stops reading from every connection open now.
func (r *tcpRelay) stall() { r.each(func(p *relayPipe) { p.stalled.Store(true) }) }

// healthSetup is a fake HTTPS/HTTP2 upstream behind a relay, and ccmux
// pointed at the relay.
type healthSetup struct {
	up    *fakeanthropic.Upstream
	relay *tcpRelay
	h     *harness
}

// newHealthSetup starts the three; extraTOML goes in [server], tune (if
// not nil) adjusts the upstream client before its first connection.
func newHealthSetup(t *testing.T, extraTOML string, tune func(*upstreamClient)) *healthSetup {
	t.Helper()
	up := fakeanthropic.NewUnstarted()
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(func() {
		up.Release()
		up.CloseClientConnections()
		up.Close()
	})
	relay := newTCPRelay(t, up.Listener.Addr().String())
	trust := up.Client().Transport.(*http.Transport).TLSClientConfig
	cfg := mustConfig(t, fmt.Sprintf(`
[server]
%s
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "api"
auth_type = "api_key"
api_key = "test-key"
base_url = "https://%s"
models = ["claude-*"]
`, extraTOML, relay.addr()))
	h := startProxyWith(t, cfg, func(s *Server) {
		s.upstreamOnce.Do(func() { s.upstream = newUpstreamClient(DefaultConnectTimeout, trust) })
		if tune != nil {
			tune(s.upstream)
		}
	})
	h.client.Timeout = 60 * time.Second
	return &healthSetup{up: up, relay: relay, h: h}
}

const healthMessage = `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
const healthStream = `{"model":"claude-sonnet-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}]}`

// ok sends a message and wants a 200.
func (hs *healthSetup) ok(t *testing.T) {
	t.Helper()
	resp := hs.h.post("/v1/messages", healthMessage, nil)
	if got := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
}

// heldStream starts a stream the upstream holds open after message_start
// and returns it once that first event is read.
func (hs *healthSetup) heldStream(t *testing.T) *bufio.Reader {
	t.Helper()
	hs.up.SetBehavior(fakeanthropic.Behavior{HoldOpen: true})
	resp := hs.h.post("/v1/messages", healthStream, nil)
	t.Cleanup(func() { resp.Body.Close() })
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended before its first event: %v", err)
		}
		if line == "\n" {
			return br
		}
	}
}

// A request sent on a connection whose path went silent gets its answer
// through a new connection, at the default timeouts, and the upstream sees
// it once: sent at once after the cut (it goes out on the dead connection,
// whose health check ends it, and is sent again as unprocessed) and 15 s
// after it (the dead connection is found before the request is written).
func TestDeadConnectionRetried(t *testing.T) {
	t.Parallel()
	for _, after := range []time.Duration{0, 15 * time.Second} {
		t.Run(fmt.Sprintf("sent %v after the cut", after), func(t *testing.T) {
			t.Parallel()
			hs := newHealthSetup(t, "", nil)
			hs.ok(t)
			hs.relay.cut()
			if after > 0 {
				time.Sleep(after) // the scenario: a quiet while on a dead path
			}
			start := time.Now()
			hs.ok(t)
			took := time.Since(start)
			t.Logf("200 %v after the request (sent %v after the cut)", took.Round(time.Millisecond), after)
			if took > 20*time.Second {
				t.Errorf("the answer took %v, want within 20s", took)
			}
			if n := len(hs.up.Requests()); n != 2 {
				t.Errorf("the upstream saw %d requests for 2 sent", n)
			}
			if n := hs.relay.accepts.Load(); n != 2 {
				t.Errorf("%d connections, want 2 (the dead one and a new one)", n)
			}
		})
	}
}

// A stream whose path goes silent mid-way ends with an error event within
// 30 s, at the default timeouts (stream idle: 5 minutes).
func TestDeadConnectionEndsStream(t *testing.T) {
	t.Parallel()
	hs := newHealthSetup(t, "", nil)
	br := hs.heldStream(t)
	hs.relay.cut()
	start := time.Now()
	rest, err := io.ReadAll(br)
	took := time.Since(start)
	t.Logf("event: error %v after the cut", took.Round(time.Millisecond))
	evs := readEvents(t, strings.NewReader(string(rest)))
	if n := len(evs); n == 0 || evs[n-1].name != "error" {
		t.Fatalf("want the stream to end with an error event, got %v (%v)", eventNames(evs), err)
	}
	if took > 30*time.Second {
		t.Errorf("the error event came %v after the cut, want within 30s", took)
	}
}

// The upstream answers pings while it thinks: an answer whose first byte
// comes many ping periods late on a healthy connection is not cut.
func TestSlowAnswerOutlivesPings(t *testing.T) {
	hs := newHealthSetup(t, "", func(c *upstreamClient) {
		c.pool.readIdle = 20 * time.Millisecond
		c.pool.tick = 10 * time.Millisecond
		c.pool.ping = 5 * time.Second
		c.pool.reuseIdle = 20 * time.Millisecond
	})
	hs.up.SetBehavior(fakeanthropic.Behavior{Stall: true})
	released := time.AfterFunc(time.Second, hs.up.Release) // 50 ping periods
	defer released.Stop()
	hs.ok(t)
	if n := len(hs.up.Requests()); n != 1 {
		t.Errorf("the upstream saw %d requests for 1 sent", n)
	}
	if n := hs.relay.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
	// With no request left, nothing is watched: an idle ccmux sends no
	// pings and wakes for none.
	pool := hs.h.srv.upstream.pool
	testsupport.Eventually(t, "the health checks to stop", 5*time.Second, func() bool {
		pool.mu.Lock()
		defer pool.mu.Unlock()
		return !pool.watching
	})
}

// A request the upstream was seen working on (ping ACKs came back after
// it went out) is not sent again when the path then dies: the upstream may
// be generating its answer.
func TestDeadConnectionAfterSignOfLifeNotRetried(t *testing.T) {
	hs := newHealthSetup(t, "", func(c *upstreamClient) {
		c.pool.readIdle = 20 * time.Millisecond
		c.pool.tick = 10 * time.Millisecond
		c.pool.ping = 300 * time.Millisecond
		c.pool.reuseIdle = time.Hour
	})
	hs.up.Queue(fakeanthropic.Behavior{Stall: true})
	done := make(chan *http.Response, 1)
	go func() { done <- hs.h.post("/v1/messages", healthMessage, nil) }()
	testsupport.Eventually(t, "the upstream to read the request", 10*time.Second, func() bool { return len(hs.up.Requests()) == 1 })
	pool := hs.h.srv.upstream.pool
	lastRead := func() (n int64) {
		pool.mu.Lock()
		defer pool.mu.Unlock()
		for _, w := range pool.wires {
			n = max(n, w.lastRead.Load())
		}
		return n
	}
	seen := lastRead()
	testsupport.Eventually(t, "a ping to be answered", 10*time.Second, func() bool { return lastRead() > seen })
	hs.relay.cut()
	resp := <-done
	if got := readAll(t, resp); resp.StatusCode != http.StatusBadGateway || !strings.Contains(got, silentConnMessage) {
		t.Errorf("status %d, want 502 saying the connection went silent: %s", resp.StatusCode, got)
	}
	if n := len(hs.up.Requests()); n != 1 {
		t.Errorf("the upstream saw %d requests for 1 sent", n)
	}
}

// A connection nothing was read from for a while is pinged before it gets
// a request; one that does not answer is not used, so the request never
// goes out on it (and needs no retry).
func TestStaleConnectionCheckedBeforeReuse(t *testing.T) {
	hs := newHealthSetup(t, "", func(c *upstreamClient) {
		c.pool.readIdle = time.Hour // only the check before reuse
		c.pool.reuseIdle = 50 * time.Millisecond
		c.pool.reusePing = time.Second
	})
	hs.ok(t)
	hs.relay.cut()
	time.Sleep(100 * time.Millisecond) // the scenario: stale on a dead path
	hs.ok(t)
	if n := len(hs.up.Requests()); n != 2 {
		t.Errorf("the upstream saw %d requests for 2 sent", n)
	}
	if n := hs.relay.accepts.Load(); n < 2 {
		t.Errorf("%d connections, want a new one", n)
	}
	if logs := hs.h.logs.String(); strings.Contains(logs, "once more") {
		t.Errorf("the request went out on the dead connection and was retried:\n%s", logs)
	}
}

// After a request timed out before its first byte, its connection is
// retired: the next request dials anew.
func TestFirstByteTimeoutRetiresConnection(t *testing.T) {
	hs := newHealthSetup(t, "[server.timeouts]\napi_timeout_ms = 300", nil)
	hs.up.Queue(fakeanthropic.Behavior{Stall: true})
	resp := hs.h.post("/v1/messages", healthMessage, nil)
	if got := readAll(t, resp); resp.StatusCode != http.StatusBadGateway || !strings.Contains(got, "api_timeout_ms") {
		t.Fatalf("status %d, want 502 naming the timeout: %s", resp.StatusCode, got)
	}
	hs.ok(t)
	if n := hs.relay.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the timed-out one was used again", n)
	}
}

// A connection reset while the request's body is still going up is retried
// once on a new connection: the upstream never had the whole request.
func TestResetBeforeAnswerRetried(t *testing.T) {
	hs := newHealthSetup(t, "", nil)
	hs.ok(t)
	hs.relay.each(func(p *relayPipe) { p.resetAfter.Store(64 << 10) })
	// A conversation of 4 MB: more than the upstream's flow-control window,
	// so it is still being written when the reset comes.
	big := `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"` + strings.Repeat("a", 4<<20) + `"}]}`
	resp := hs.h.post("/v1/messages", big, nil)
	if got := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("status %d: %.300s", resp.StatusCode, got)
	}
	if n := len(hs.up.Requests()); n != 2 {
		t.Errorf("the upstream saw %d whole requests for 2 sent", n)
	}
	if n := hs.relay.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	if logs := hs.h.logs.String(); strings.Count(logs, "once more") != 1 {
		t.Errorf("want one retry logged:\n%s", logs)
	}
}

// A request whose upload stalls on a dead path (the peer reads nothing, so
// the transport's writes block while it holds the connection's write lock)
// is ended by its health check and sent again on a new connection; nothing
// else waits on the stuck connection (found in review: the health loop
// asked the connection's state, which waits for that lock, under the
// pool's lock, and the whole pool stopped).
func TestStalledUploadRetried(t *testing.T) {
	hs := newHealthSetup(t, "", func(c *upstreamClient) {
		c.pool.readIdle = 200 * time.Millisecond
		c.pool.tick = 20 * time.Millisecond
		c.pool.ping = 2 * time.Second // the retry's connection is pinged too, on a loaded machine
		c.pool.reuseIdle = time.Hour
		// A small send buffer, so that the kernel takes less than the
		// upstream's flow-control window (1 MB): the upload blocks in
		// the transport's write.
		dial := c.pool.dial
		c.pool.dial = func(ctx context.Context, addr string) (net.Conn, error) {
			conn, err := dial(ctx, addr)
			if err == nil {
				conn.(*tls.Conn).NetConn().(*corkConn).Conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
			}
			return conn, err
		}
	})
	hs.h.client.Timeout = 20 * time.Second
	hs.ok(t)
	hs.relay.stall()
	big := `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"` + strings.Repeat("a", 4<<20) + `"}]}`
	resp := hs.h.post("/v1/messages", big, nil)
	if got := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("status %d: %.300s", resp.StatusCode, got)
	}
	if n := len(hs.up.Requests()); n != 2 {
		t.Errorf("the upstream saw %d whole requests for 2 sent", n)
	}
	if n := hs.relay.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A request the upstream read whole is not sent again when the connection
// is then reset: the upstream may be generating its answer.
func TestResetAfterWholeRequestNotRetried(t *testing.T) {
	hs := newHealthSetup(t, "", nil)
	hs.ok(t)
	hs.up.Queue(fakeanthropic.Behavior{Stall: true})
	done := make(chan *http.Response, 1)
	go func() { done <- hs.h.post("/v1/messages", healthMessage, nil) }()
	testsupport.Eventually(t, "the upstream to read the request", 10*time.Second, func() bool { return len(hs.up.Requests()) == 2 })
	hs.relay.each(func(p *relayPipe) { p.reset() })
	resp := <-done
	if got := readAll(t, resp); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502: %s", resp.StatusCode, got)
	}
	if n := len(hs.up.Requests()); n != 2 {
		t.Errorf("the upstream saw %d requests for 2 sent", n)
	}
}

// A reload drops idle upstream connections: the next request dials anew
// (the upstream may have moved; SIGHUP is what a user tries).
func TestReloadClosesIdleUpstreamConns(t *testing.T) {
	hs := newHealthSetup(t, "", nil)
	hs.ok(t)
	// The client has the whole answer a moment before the proxy's request
	// ends (the answer goes out before the log line and the cleanup); only
	// then is the connection idle.
	testsupport.Eventually(t, "the upstream connection to be idle", 10*time.Second, func() bool {
		p := hs.h.srv.pooled.Load().pool
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, w := range p.wires {
			if w.requests.Load() > 0 {
				return false
			}
		}
		return true
	})
	if _, err := hs.h.srv.Reload(context.Background(), hs.h.srv.CurrentConfig()); err != nil {
		t.Fatal(err)
	}
	hs.ok(t)
	if n := hs.relay.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the reload kept the idle one", n)
	}
}

// After CloseUpstreamConns, a stream on a connection that died with the
// network ends at once (a ping), not after the connection's quiet time.
func TestCloseUpstreamConnsChecksStreams(t *testing.T) {
	t.Parallel()
	hs := newHealthSetup(t, "", nil)
	br := hs.heldStream(t)
	hs.relay.cut()
	start := time.Now()
	hs.h.srv.CloseUpstreamConns()
	rest, _ := io.ReadAll(br)
	took := time.Since(start)
	t.Logf("event: error %v after CloseUpstreamConns", took.Round(time.Millisecond))
	if !strings.Contains(string(rest), "event: error") || !strings.Contains(string(rest), silentConnMessage) {
		t.Fatalf("want an error event saying the connection went silent, got %q", rest)
	}
	if took > healthReadIdle {
		t.Errorf("the stream ended %v later, want within the ping timeout (%v)", took, healthPingTimeout)
	}
}

// CloseUpstreamConns (the machine slept, the network changed) hands no
// pooled connection out again; a stream running on one is not cut.
func TestCloseUpstreamConns(t *testing.T) {
	hs := newHealthSetup(t, "", nil)
	hs.up.Queue(fakeanthropic.Behavior{HoldOpen: true})
	resp := hs.h.post("/v1/messages", healthStream, nil)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	hs.h.srv.CloseUpstreamConns()
	hs.ok(t)
	if n := hs.relay.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2: a pooled connection was handed out after CloseUpstreamConns", n)
	}
	hs.up.Release()
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "message_stop") {
		t.Errorf("the running stream was cut: %v %q", err, rest)
	}
}

// CloseUpstreamConns does not wait for a Stop that is draining: the
// requests it drains may be the ones on connections the sleep killed,
// which only CloseUpstreamConns's pings end (found in review: it waited
// for the server's lock, which Stop holds while it drains).
func TestCloseUpstreamConnsDuringStop(t *testing.T) {
	hs := newHealthSetup(t, "", func(c *upstreamClient) {
		c.pool.readIdle = time.Hour // only CloseUpstreamConns pings
		c.pool.ping = 300 * time.Millisecond
	})
	hs.up.Queue(fakeanthropic.Behavior{Stall: true})
	answered := make(chan *http.Response, 1)
	go func() { answered <- hs.h.post("/v1/messages", healthMessage, nil) }()
	testsupport.Eventually(t, "the upstream to read the request", 10*time.Second, func() bool { return len(hs.up.Requests()) == 1 })
	hs.relay.cut()
	stopped := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		hs.h.srv.Stop(ctx)
		close(stopped)
	}()
	testsupport.Eventually(t, "Stop to start draining", 10*time.Second, func() bool { return !hs.h.srv.Running() })
	closed := make(chan struct{})
	go func() {
		hs.h.srv.CloseUpstreamConns()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("CloseUpstreamConns waited for Stop's drain")
	}
	readAll(t, <-answered)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop still drains the request on the dead connection")
	}
}

// A health-check ping that fails because the connection ended (the peer
// closed or reset it), not because no ACK came, does not condemn the
// connection: that is the peer alive, and a request it read whole may be
// being generated, so it must not look unsent (found in review: any failed
// ping condemned, so when the check saw the end before the stream did,
// such a request went out twice).
func TestPingFailedByPeerDoesNotCondemn(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	go func() { // the upstream: SETTINGS, then it hangs up at the first PING
		defer srv.Close()
		if _, err := io.ReadFull(srv, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		fr := http2.NewFramer(srv, srv)
		if fr.WriteSettings() != nil {
			return
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() && fr.WriteSettingsAck() != nil {
					return
				}
			case *http2.PingFrame:
				return
			}
		}
	}()
	p := &h2Pool{t: &http2.Transport{}, wires: map[*http2.ClientConn]*h2Conn{}, checking: map[*http2.ClientConn]chan struct{}{}}
	w := newH2Conn(cli, defaultHoldFor)
	cc, err := p.t.NewClientConn(w)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.wires[cc] = w
	checked := p.startCheckLocked(cc, time.Minute)
	p.mu.Unlock()
	<-checked
	if w.condemned.Load() {
		t.Error("a ping the peer hung up on condemned the connection")
	}
	if !cc.State().Closed {
		t.Error("the connection is still open")
	}
}
