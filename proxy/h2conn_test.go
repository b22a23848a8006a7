package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// Over HTTP/2 a small request goes upstream in one write (one TLS record,
// one system call): its HEADERS frame with its DATA frame. x/net alone
// flushes the HEADERS frame by itself first.
func TestHTTP2RequestInOneWrite(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := fakeanthropic.NewUnstarted()
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	trust := up.Client().Transport.(*http.Transport).TLSClientConfig
	writes := &writeSizes{}
	h := startProxy(t, mustConfig(t, rewriteTOML(up.URL)), func(s *Server) {
		s.upstreamOnce.Do(func() { s.upstream = newUpstreamClient(DefaultConnectTimeout, trust) })
		// However slow the machine, the DATA write comes before the hold
		// would end (TestHeldHeadersWithNoWindow tests the end).
		s.upstream.pool.holdFor = time.Minute
		// Nor do health pings come between, on a machine slow enough to
		// leave the connection quiet for their 10 s.
		s.upstream.pool.readIdle = time.Hour
		s.upstream.pool.reuseIdle = time.Hour
		s.upstream.pool.dial = func(ctx context.Context, addr string) (net.Conn, error) {
			raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			cfg := trust.Clone()
			cfg.NextProtos = []string{"h2"}
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
			conn := tls.Client(&countingConn{Conn: raw, w: writes}, cfg)
			if err := conn.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return conn, nil
		}
	})
	post := func(size int) {
		t.Helper()
		body := fakeanthropic.RequestBody(size, "claude-sonnet-4-5", false)
		resp := h.post("/v1/messages", string(body), nil)
		if got := readAll(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d bytes: status %d: %s", size, resp.StatusCode, got)
		}
		reqs := up.Requests()
		last := reqs[len(reqs)-1]
		if last.Proto != "HTTP/2.0" {
			t.Fatalf("the upstream was spoken to over %s", last.Proto)
		}
		want := bytes.Replace(body, []byte(`"claude-sonnet-4-5"`), []byte(`"claude-sonnet-4-5-20250929"`), 1)
		if !bytes.Equal(last.Body, want) {
			t.Fatalf("%d bytes: the upstream received %d bytes, not the request with its model rewritten", size, len(last.Body))
		}
	}
	post(1 << 10) // the connection's preface and settings
	writes.take()
	for i := range 5 {
		post(1 << 10)
		if sizes := writes.take(); len(sizes) != 1 {
			t.Fatalf("request %d took %d writes %v, want 1 (HEADERS and DATA together)", i+1, len(sizes), sizes)
		}
	}
	// A large body arrives whole. Its HEADERS leave alone: the body is
	// written without a copy to join them (see directWrite), which saves
	// more than the one TLS record and system call of the dozens it takes.
	post(400 << 10)
}

// A held HEADERS write still goes out when no DATA can follow it: this
// server grants no flow-control window to a stream until it has seen the
// stream's HEADERS (its initial window is 0).
func TestHeldHeadersWithNoWindow(t *testing.T) {
	t.Setenv("API_KEY", "k")
	serverTLS, trust := testCertificates(t)
	serverTLS.NextProtos = []string{"h2"}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		serveNoWindow(conn)
	}()
	cfg := mustConfig(t, apiKeyTOML("https://"+ln.Addr().String())+"[server.timeouts]\napi_timeout_ms = 30000\n")
	h := startProxyWith(t, cfg, func(s *Server) { s.tlsConfig = trust })
	resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if got := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(got, `"msg_window"`) {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
}

// serveNoWindow answers one request over HTTP/2 with an initial stream
// window of 0, opening the window only once it has the request's HEADERS.
func serveNoWindow(conn net.Conn) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(conn, preface); err != nil {
		return
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}) != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			fr.WriteWindowUpdate(f.StreamID, 1<<20)
		case *http2.DataFrame:
			if !f.StreamEnded() {
				continue
			}
			var hb bytes.Buffer
			enc := hpack.NewEncoder(&hb)
			enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/json"})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: hb.Bytes(), EndHeaders: true})
			fr.WriteData(f.StreamID, true, []byte(`{"id":"msg_window","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`))
		}
	}
}

// Two requests' held HEADERS, one after the other, both reach the wire,
// in order, with the write that follows them.
func TestH2ConnKeepsEveryHeldWrite(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := newH2Conn(client, defaultHoldFor)
	defer c.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		got <- b
	}()
	c.holdNext()
	c.Write([]byte("HEADERS-1 "))
	c.holdNext()
	c.Write([]byte("HEADERS-2 "))
	c.Write([]byte("DATA-1"))
	c.Close()
	if b := <-got; string(b) != "HEADERS-1 HEADERS-2 DATA-1" {
		t.Fatalf("the wire got %q", b)
	}
}

// Close ends a connection whose peer stopped reading, as x/net does for
// its own TLS connections, instead of waiting on the stuck write.
func TestH2ConnCloseWithAStuckPeer(t *testing.T) {
	client, server := net.Pipe() // nobody reads server
	defer server.Close()
	c := newH2Conn(client, defaultHoldFor)
	if _, err := c.Write(make([]byte, 1<<10)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a peer that does not read")
	}
}

// A failed write is returned by the writes after it: x/net then fails the
// connection's streams (and the proxy fails over).
func TestH2ConnWriteError(t *testing.T) {
	client, server := net.Pipe()
	c := newH2Conn(client, defaultHoldFor)
	defer c.Close()
	server.Close()
	c.Write([]byte("first")) // accepted; the writer's write fails
	testsupport.Eventually(t, "a write to fail", 10*time.Second, func() bool {
		_, err := c.Write([]byte("next"))
		return err != nil
	})
}

// Writes wait for the network once maxPending bytes are waiting: a large
// body is not copied into memory faster than the peer reads it. (Frames
// of directWrite and more are not copied at all: see
// TestH2ConnLargeWritesWaitForThePeer.)
func TestH2ConnBoundsPending(t *testing.T) {
	client, server := net.Pipe() // nobody reads server until the end
	defer server.Close()
	c := newH2Conn(client, defaultHoldFor)
	var accepted atomic.Int64
	const size = directWrite / 2
	go func() {
		frame := make([]byte, size)
		for range 4 * maxPending / size {
			if _, err := c.Write(frame); err != nil {
				return
			}
			accepted.Add(1)
		}
	}()
	// A batch of at most maxPending is in the writer's stuck write, and at
	// most maxPending more (plus the write that crossed it) wait.
	frames := int64(maxPending / size)
	testsupport.Eventually(t, "the writes to fill the pending buffer", 10*time.Second, func() bool { return accepted.Load() > frames })
	time.Sleep(100 * time.Millisecond) // would the writes go on?
	if n := accepted.Load(); n > 2*frames+1 {
		t.Fatalf("%d writes of %d bytes accepted while the peer read nothing, want at most %d", n, size, 2*frames+1)
	}
	c.Close()
}

// A large write (a body's DATA frame) goes out from the caller, after what
// was accepted before it and before what follows: it returns only once the
// peer took it.
func TestH2ConnLargeWritesWaitForThePeer(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := newH2Conn(client, defaultHoldFor)
	c.Write([]byte("small "))
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(bytes.Repeat([]byte("L"), directWrite))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a large write returned (%v) while the peer read nothing", err)
	case <-time.After(100 * time.Millisecond):
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		got <- b
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(" after"))
	c.Close()
	if b, want := <-got, "small "+strings.Repeat("L", directWrite)+" after"; string(b) != want {
		t.Fatalf("the wire got %d bytes, want %d in order", len(b), len(want))
	}
}

// Whatever the order of holds, writes and hold timeouts, the wire gets
// every byte written, once, in the order written.
func FuzzH2ConnOrder(f *testing.F) {
	f.Add([]byte{0, 5, 9, 2, 0, 4, 0, 8, 3, 1})
	f.Add([]byte{3, 3, 3, 0, 1, 2, 2, 0, 0, 5})
	f.Fuzz(func(t *testing.T, ops []byte) {
		client, server := net.Pipe()
		c := newH2Conn(client, time.Hour) // the test releases holds itself
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(server)
			got <- b
		}()
		var want []byte
		next := byte(0)
		write := func(n int) {
			p := make([]byte, n)
			for i := range p {
				p[i] = next
				next++
			}
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
			want = append(want, p...)
		}
		for _, op := range ops {
			switch op % 4 {
			case 0:
				c.holdNext()
			case 1:
				write(int(op>>2) + 1)
			case 2:
				c.release() // the hold timer firing
			case 3:
				write(maxPending/2 + int(op)) // past the pending bound
			}
		}
		c.Close()
		server.Close()
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("the wire got %d bytes, want the %d written in order", len(b), len(want))
		}
	})
}
