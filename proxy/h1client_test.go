package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ccmux/proxy/internal/fakeanthropic"
)

// rawUpstream is a loopback HTTP/1.1 server whose answers a test writes
// byte by byte, to check how the client treats each kind of body and
// connection end.
type rawUpstream struct {
	ln       net.Listener
	accepted atomic.Int64
	closed   chan struct{} // receives once per connection the client closed
	requests chan *http.Request
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// newRawUpstream serves each connection with serve, which gets the
// upstream, the connection and a reader over it and returns when done with it.
func newRawUpstream(t *testing.T, serve func(up *rawUpstream, conn net.Conn, br *bufio.Reader)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln, closed: make(chan struct{}, 64), requests: make(chan *http.Request, 64)}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			u.accepted.Add(1)
			u.mu.Lock()
			u.conns = append(u.conns, conn)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer conn.Close()
				serve(u, conn, bufio.NewReader(conn))
			}()
		}
	}()
	t.Cleanup(func() {
		// A failed test may leave serve waiting on a connection.
		ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

// readRequest reads one request with its body and records it; false when
// the client closed the connection instead.
func (u *rawUpstream) readRequest(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return false
	}
	req.Body = io.NopCloser(strings.NewReader(string(body)))
	u.requests <- req
	return true
}

// waitClosed reports (to u.closed) when the client closes conn.
func (u *rawUpstream) waitClosed(br *bufio.Reader) {
	if _, err := br.ReadByte(); err != nil {
		u.closed <- struct{}{}
	}
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

func testRequest(addr string) *h1Request {
	return &h1Request{
		method: http.MethodPost, addr: addr, host: addr, uri: "/v1/messages?beta=true",
		header: http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {"k"}},
		body:   []byte(`{"model":"m"}`),
	}
}

// h1Do sends one request and reads the whole answer.
func h1Do(t *testing.T, c *h1Client, ctx context.Context, req *h1Request) (*http.Response, string, error) {
	t.Helper()
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func expectClosed(t *testing.T, u *rawUpstream, what string) {
	t.Helper()
	select {
	case <-u.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("the upstream connection was not closed %s", what)
	}
}

// Each kind of body is read whole; connections are kept only when the
// answer's framing says where it ends and it allows keep-alive.
func TestH1Bodies(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		body   string
		kept   bool
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}", `{"ok":true}`, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", true},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n", "hi", true},
		{"close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", "until the end", false},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", false},
		{"interim 100 and 103 skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", true},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) {
				if !up.readRequest(br) {
					return
				}
				io.WriteString(conn, tt.answer)
				if strings.Contains(tt.answer, "Content-Type: text/plain") || strings.Contains(tt.answer, "HTTP/1.0") || strings.Contains(tt.answer, "Connection: close") {
					return // the close ends the body
				}
				up.waitClosed(br)
			})
			c := newH1Client(time.Second, 5*time.Second)
			defer c.closeIdle()
			resp, body, err := h1Do(t, c, context.Background(), testRequest(up.addr()))
			if err != nil {
				t.Fatal(err)
			}
			if body != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if resp.StatusCode >= 200 && resp.StatusCode < 300 && tt.name == "chunked with trailer" && resp.Trailer.Get("X-T") != "1" {
				t.Errorf("trailer %v", resp.Trailer)
			}
			if got := c.idleConns(up.addr()) == 1; got != tt.kept {
				t.Errorf("connection kept = %v, want %v", got, tt.kept)
			}
			req := <-up.requests
			if req.Method != "POST" || req.RequestURI != "/v1/messages?beta=true" || req.Host != up.addr() ||
				req.ContentLength != 13 || req.Header.Get("X-Api-Key") != "k" || req.Header.Get("User-Agent") != "" {
				t.Errorf("upstream got %s %s host %q length %d headers %v", req.Method, req.RequestURI, req.Host, req.ContentLength, req.Header)
			}
		})
	}
}

// Sequential requests share one connection, and large bodies arrive whole.
func TestH1KeepAlive(t *testing.T) {
	up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) {
		for up.readRequest(br) {
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newH1Client(time.Second, 5*time.Second)
	defer c.closeIdle()
	big := strings.Repeat("x", 400<<10)
	for i, body := range []string{"{}", big, "{}", big} {
		req := testRequest(up.addr())
		req.body = []byte(body)
		if _, got, err := h1Do(t, c, context.Background(), req); err != nil || got != "ok" {
			t.Fatalf("request %d: %q %v", i, got, err)
		}
		if r := <-up.requests; r.ContentLength != int64(len(body)) {
			t.Fatalf("request %d: upstream got %d bytes, want %d", i, r.ContentLength, len(body))
		}
	}
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("4 requests used %d connections, want 1", n)
	}
}

// A kept-alive connection the upstream closed meanwhile is detected on the
// next request, which goes out again on a new connection; an upstream that
// fails a new connection, or after starting its answer, is not sent the
// request twice.
func TestH1StaleConnection(t *testing.T) {
	tests := []struct {
		name       string
		second     func(conn net.Conn) // what the first connection does with the second request
		wantErr    bool
		wantConns  int64
		wantServed int // requests the upstream read
	}{
		{name: "closed while idle: resent", second: nil, wantConns: 2, wantServed: 2},
		// The client cannot tell this from a reset of a connection the
		// upstream closed as the request arrived, so it resends, as browsers do.
		{name: "reset before any byte of the answer: resent", second: func(conn net.Conn) {
			conn.(*net.TCPConn).SetLinger(0) // an RST, not a FIN
		}, wantConns: 2, wantServed: 3},
		{name: "part of an answer then closed: not resent", second: func(conn net.Conn) {
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Le")
		}, wantErr: true, wantConns: 1, wantServed: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			firstDone := make(chan struct{})
			up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) {
				if up.accepted.Load() > 1 { // a fresh connection answers normally
					for up.readRequest(br) {
						io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					}
					return
				}
				if !up.readRequest(br) {
					return
				}
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if tt.second != nil && up.readRequest(br) {
					tt.second(conn)
				}
				conn.Close()
				close(firstDone)
			})
			c := newH1Client(time.Second, 5*time.Second)
			defer c.closeIdle()
			if _, _, err := h1Do(t, c, context.Background(), testRequest(up.addr())); err != nil {
				t.Fatal(err)
			}
			if tt.second == nil {
				<-firstDone // the idle connection is closed before the next request
			}
			_, body, err := h1Do(t, c, context.Background(), testRequest(up.addr()))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %q", body)
				}
			} else if err != nil || body != "ok" {
				t.Fatalf("second request: %q %v", body, err)
			}
			if n := up.accepted.Load(); n != tt.wantConns {
				t.Errorf("%d connections, want %d", n, tt.wantConns)
			}
			if n := len(up.requests); n != tt.wantServed {
				t.Errorf("upstream read %d requests, want %d", n, tt.wantServed)
			}
		})
	}
}

// A new connection that closes before answering is an error, never a resend.
func TestH1NewConnectionNotResent(t *testing.T) {
	up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) { up.readRequest(br) })
	c := newH1Client(time.Second, 5*time.Second)
	defer c.closeIdle()
	if _, _, err := h1Do(t, c, context.Background(), testRequest(up.addr())); err == nil {
		t.Fatal("want an error")
	}
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (no resend)", n)
	}
}

// Cancelling the request closes the upstream connection at once, whether
// it waits for the headers or reads the body.
func TestH1CancelClosesConnection(t *testing.T) {
	for _, during := range []string{"headers", "body"} {
		t.Run(during, func(t *testing.T) {
			up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) {
				if !up.readRequest(br) {
					return
				}
				if during == "body" {
					io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
				}
				up.waitClosed(br)
			})
			// The header timeout is far longer than the test may take.
			c := newH1Client(time.Second, time.Hour)
			defer c.closeIdle()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if during == "headers" {
				go func() {
					<-up.requests
					cancel()
				}()
				done := make(chan error, 1)
				go func() {
					_, err := c.roundTrip(ctx, testRequest(up.addr()))
					done <- err
				}()
				select {
				case err := <-done:
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("got %v, want context.Canceled", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("the request went on after it was cancelled")
				}
				expectClosed(t, up, "when the request was cancelled")
				return
			}
			resp, err := c.roundTrip(ctx, testRequest(up.addr()))
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
				t.Fatalf("first chunk %q %v", buf, err)
			}
			cancel()
			expectClosed(t, up, "when the request was cancelled")
			if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
				t.Errorf("read after cancel: %v, want context.Canceled", err)
			}
			resp.Body.Close()
			if n := c.idleConns(up.addr()); n != 0 {
				t.Errorf("%d idle connections after a cancelled request", n)
			}
		})
	}
}

// Closing a body before its end closes the connection instead of reading
// the rest of a stream (or pooling a connection in the middle of one).
func TestH1EarlyCloseDoesNotDrain(t *testing.T) {
	up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) {
		if !up.readRequest(br) {
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		up.waitClosed(br)
	})
	c := newH1Client(time.Second, 5*time.Second)
	defer c.closeIdle()
	resp, err := c.roundTrip(context.Background(), testRequest(up.addr()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	expectClosed(t, up, "when the body was closed early")
	if n := c.idleConns(up.addr()); n != 0 {
		t.Errorf("%d idle connections, want 0", n)
	}
}

// The answer's headers must come within the API timeout; its body may then
// take longer (a stream has no overall limit).
func TestH1HeaderTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) {
		if !up.readRequest(br) {
			return
		}
		if up.accepted.Load() == 1 {
			up.waitClosed(br) // never answers
			return
		}
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
		<-time.After(3 * timeout) // a slow stream, not synchronisation
		io.WriteString(conn, "4\r\nlast\r\n0\r\n\r\n")
		up.waitClosed(br)
	})
	c := newH1Client(time.Second, timeout)
	defer c.closeIdle()
	start := time.Now()
	_, _, err := h1Do(t, c, context.Background(), testRequest(up.addr()))
	if err == nil || !strings.Contains(err.Error(), "api_timeout_ms") {
		t.Fatalf("got %v, want a timeout naming server.timeouts.api_timeout_ms", err)
	}
	if d := time.Since(start); d > 10*timeout {
		t.Errorf("the timeout took %s", d)
	}
	expectClosed(t, up, "after the timeout")
	_, body, err := h1Do(t, c, context.Background(), testRequest(up.addr()))
	if err != nil || body != "firstlast" {
		t.Fatalf("a body slower than the header timeout: %q %v", body, err)
	}
}

// The pool keeps at most maxIdle connections per upstream and closes the
// rest; idle connections close after idleTimeout.
func TestH1PoolBound(t *testing.T) {
	release := make(chan struct{})
	up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) {
		for up.readRequest(br) {
			<-release
			io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		up.closed <- struct{}{}
	})
	c := newH1Client(time.Second, 5*time.Second)
	c.maxIdle = 2
	defer c.closeIdle()
	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() {
			_, body, err := h1Do(t, c, context.Background(), testRequest(up.addr()))
			if err == nil && body != "ok" {
				err = errors.New("body " + body)
			}
			errs <- err
		}()
	}
	for range n {
		<-up.requests
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for range n - 2 {
		expectClosed(t, up, "beyond the pool bound")
	}
	if got := c.idleConns(up.addr()); got != 2 {
		t.Errorf("%d idle connections, want 2", got)
	}

	// Idle connections expire.
	c.mu.Lock()
	c.idleTimeout = 50 * time.Millisecond
	for _, pc := range c.idle[up.addr()] {
		pc.timer.Reset(c.idleTimeout)
	}
	c.mu.Unlock()
	expectClosed(t, up, "after the idle timeout")
	expectClosed(t, up, "after the idle timeout")
	if got := c.idleConns(up.addr()); got != 0 {
		t.Errorf("%d idle connections after the idle timeout, want 0", got)
	}
}

// A credential with a line break cannot add headers to the request.
func TestH1RejectsHeaderInjection(t *testing.T) {
	up := newRawUpstream(t, func(up *rawUpstream, conn net.Conn, br *bufio.Reader) { up.waitClosed(br) })
	c := newH1Client(time.Second, 5*time.Second)
	defer c.closeIdle()
	req := testRequest(up.addr())
	req.header = upstreamHeader(http.Header{}, Credential{Value: "tok\r\nX-Evil: 1", APIKey: true})
	if _, err := c.roundTrip(context.Background(), req); err == nil || strings.Contains(err.Error(), "tok") {
		t.Fatalf("got %v, want an error that does not show the value", err)
	}
	expectClosed(t, up, "after a refused request")
	if len(up.requests) != 0 {
		t.Error("the upstream received a request")
	}
}

// Through the proxy, answers of every kind (a message, a stream, an error
// relayed as received) leave the upstream connection reusable, so a plain
// http:// upstream sees one connection.
func TestProxyReusesUpstreamConnection(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	up.Queue(fakeanthropic.Behavior{}, fakeanthropic.Behavior{}, fakeanthropic.Behavior{Status: 429, RetryAfter: "1"}, fakeanthropic.Behavior{})
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	const message = `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`
	for i, tt := range []struct {
		body   string
		status int
	}{{message, 200}, {streamReq, 200}, {message, 429}, {message, 200}} {
		resp := h.post("/v1/messages", tt.body, nil)
		got := readAll(t, resp)
		if resp.StatusCode != tt.status {
			t.Fatalf("request %d: status %d, want %d: %s", i, resp.StatusCode, tt.status, got)
		}
	}
	if n := up.Conns(); n != 1 {
		t.Errorf("4 requests opened %d upstream connections, want 1", n)
	}
	if n := h.srv.h1.idleConns(strings.TrimPrefix(up.URL, "http://")); n != 1 {
		t.Errorf("%d idle upstream connections, want 1", n)
	}
}
