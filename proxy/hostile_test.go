package proxy

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// brokenUpstream is a loopback HTTP/1.1 upstream, plain or over TLS, whose
// answers a test writes byte by byte: truncated, stalled, oversized, reset.
type brokenUpstream struct {
	URL      string
	TLS      *tls.Config // what a client must trust, for https
	ln       net.Listener
	requests atomic.Int64
	done     chan struct{} // closed at cleanup: stalled answers end
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// testCertificates returns httptest's certificate for a server and a
// client configuration that trusts it.
func testCertificates(t *testing.T) (server, client *tls.Config) {
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS()
	defer ts.Close()
	server = &tls.Config{Certificates: ts.TLS.Certificates, NextProtos: []string{"http/1.1"}}
	return server, ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

// newBrokenUpstream serves every connection with serve; scheme is "http"
// or "https" (HTTP/1.1 over TLS: ccmux falls back to it from HTTP/2).
func newBrokenUpstream(t *testing.T, scheme string, serve func(u *brokenUpstream, conn net.Conn, br *bufio.Reader)) *brokenUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &brokenUpstream{ln: ln, done: make(chan struct{}), URL: scheme + "://" + ln.Addr().String()}
	if scheme == "https" {
		var server *tls.Config
		server, u.TLS = testCertificates(t)
		u.ln = tls.NewListener(ln, server)
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			conn, err := u.ln.Accept()
			if err != nil {
				return
			}
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
		close(u.done)
		u.ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

// readRequest reads one whole request; false when the client closed instead.
func (u *brokenUpstream) readRequest(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return false
	}
	u.requests.Add(1)
	return true
}

// stall blocks until the test ends.
func (u *brokenUpstream) stall() { <-u.done }

// reset closes conn with a TCP reset, as a crashed upstream or a middlebox does.
func reset(conn net.Conn) {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

const jsonHead = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
const messageStart = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"model-a\"}}\n\n"

// brokenProxy starts ccmux with u as the first provider and fallback (a
// URL, or a closed port when "") as the second; timeouts are short.
func brokenProxy(t *testing.T, u *brokenUpstream, fallback string) *harness {
	t.Helper()
	t.Setenv("FIRST_KEY", "k1")
	t.Setenv("SECOND_KEY", "k2")
	if fallback == "" {
		fallback = closedURL(t)
	}
	cfg := mustConfig(t, twoProviders(u.URL, fallback, "[server.timeouts]\napi_timeout_ms = 500\nstream_idle_timeout_ms = 500"))
	h := startProxyWith(t, cfg, func(s *Server) { s.tlsConfig = u.TLS })
	// A hang must fail the test, not block it.
	h.client.Timeout = 20 * time.Second
	return h
}

const duoMessage = `{"model":"duo","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`
const duoStream = `{"model":"duo","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`

// A non-streaming answer that breaks after it started reaches the client as
// broken (its connection is cut), never as a complete 200; one that breaks
// before its first byte is a failed attempt (502 here).
func TestTruncatedAnswerIsNeverASuccess(t *testing.T) {
	cases := []struct {
		name   string
		answer func(conn net.Conn)
		status int // 0: the client must see a broken answer
	}{
		{"content-length body cut", func(c net.Conn) {
			io.WriteString(c, jsonHead+"Content-Length: 200\r\n\r\n{\"id\":\"msg_1\",\"type\"")
			reset(c)
		}, 0},
		{"chunked body cut", func(c net.Conn) {
			io.WriteString(c, jsonHead+"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"id\":\"msg_1\",\"t\r\n")
			reset(c)
		}, 0},
		{"close-delimited body reset", func(c net.Conn) {
			io.WriteString(c, jsonHead+"Connection: close\r\n\r\n{\"id\":\"msg_1\",")
			reset(c)
		}, 0},
		{"chunk size overflow", func(c net.Conn) {
			io.WriteString(c, jsonHead+"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n{}")
			reset(c)
		}, http.StatusBadGateway},
	}
	for _, scheme := range []string{"http", "https"} {
		for _, tc := range cases {
			t.Run(scheme+"/"+tc.name, func(t *testing.T) {
				up := newBrokenUpstream(t, scheme, func(u *brokenUpstream, conn net.Conn, br *bufio.Reader) {
					if u.readRequest(br) {
						tc.answer(conn)
					}
				})
				h := brokenProxy(t, up, "")
				req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/messages", strings.NewReader(duoMessage))
				req.Header.Set("Content-Type", "application/json")
				resp, err := h.client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if tc.status != 0 {
					if err != nil || resp.StatusCode != tc.status {
						t.Fatalf("want a whole %d answer, got %v %q", tc.status, err, body)
					}
					return
				}
				if err == nil {
					t.Fatalf("a broken upstream answer reached the client as a complete %d: %q", resp.StatusCode, body)
				}
			})
		}
	}
}

// A stream that breaks mid-way ends with an Anthropic error event, plain
// or gzip-encoded.
func TestTruncatedStreamEndsWithError(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gzip=%v", scheme, gz), func(t *testing.T) {
				up := newBrokenUpstream(t, scheme, func(u *brokenUpstream, conn net.Conn, br *bufio.Reader) {
					if !u.readRequest(br) {
						return
					}
					if !gz {
						io.WriteString(conn, sseHead+"Connection: close\r\n\r\n"+messageStart+"event: content_block_start\ndata: {\"ty")
						reset(conn)
						return
					}
					io.WriteString(conn, sseHead+"Content-Encoding: gzip\r\nConnection: close\r\n\r\n")
					zw := gzip.NewWriter(conn)
					io.WriteString(zw, messageStart)
					zw.Flush()
					reset(conn)
				})
				h := brokenProxy(t, up, "")
				resp := h.post("/v1/messages", duoStream, map[string]string{"Accept-Encoding": "gzip"})
				defer resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
				}
				r := io.Reader(resp.Body)
				if resp.Header.Get("Content-Encoding") == "gzip" {
					zr, err := gzip.NewReader(resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					r = zr
				}
				evs := readEvents(t, r)
				names := eventNames(evs)
				if len(names) < 2 || names[0] != "message_start" || names[len(names)-1] != "error" {
					t.Fatalf("events %v, want message_start … error", names)
				}
				if typ, _ := apiError(t, evs[len(evs)-1].data); typ != "api_error" {
					t.Errorf("error type %q", typ)
				}
			})
		}
	}
}

// No silence hangs a client: before the first byte the next candidate is
// tried after api_timeout_ms; after it, stream_idle_timeout_ms ends the
// answer (a cut connection, or an error event for a stream).
func TestStalledUpstreamNeverHangs(t *testing.T) {
	cases := []struct {
		name     string
		stream   bool
		answer   string // written before the stall; "" stalls before the headers
		failover bool   // the second provider answers
	}{
		{"before the headers", false, "", true},
		{"after the headers", false, jsonHead + "Content-Length: 100\r\n\r\n", true},
		{"stream after the headers", true, sseHead + "\r\n", true},
		{"mid-body", false, jsonHead + "Content-Length: 100\r\n\r\n{\"id\":", false},
		{"mid-stream", true, sseHead + "\r\n" + messageStart, false},
	}
	for _, scheme := range []string{"http", "https"} {
		for _, tc := range cases {
			t.Run(scheme+"/"+tc.name, func(t *testing.T) {
				up := newBrokenUpstream(t, scheme, func(u *brokenUpstream, conn net.Conn, br *bufio.Reader) {
					if u.readRequest(br) {
						io.WriteString(conn, tc.answer)
						u.stall()
					}
				})
				second := newUpstream(t)
				h := brokenProxy(t, up, second.URL)
				body := duoMessage
				if tc.stream {
					body = duoStream
				}
				req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/messages", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := h.client.Do(req)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("the client hung: %v", err)
				}
				if err != nil {
					if !tc.failover && !tc.stream {
						return // cut before the status line: broken, as it should be
					}
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case tc.failover:
					if err != nil || resp.StatusCode != 200 || !strings.Contains(string(got), "model-b") {
						t.Fatalf("want the second provider's answer, got %d %v %.300q", resp.StatusCode, err, got)
					}
				case tc.stream:
					evs := readEvents(t, strings.NewReader(string(got)))
					if n := len(evs); n == 0 || evs[n-1].name != "error" {
						t.Fatalf("want the stream to end with an error event, got %v (%v)", eventNames(evs), err)
					}
				default:
					if err == nil {
						t.Fatalf("a stalled answer reached the client as a complete %d: %q", resp.StatusCode, got)
					}
				}
			})
		}
	}
}

// An upstream whose header never ends is that upstream failing, not a
// reason to buffer without bound: the next provider answers.
func TestOversizedUpstreamHeaderFailsOver(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			up := newBrokenUpstream(t, scheme, func(u *brokenUpstream, conn net.Conn, br *bufio.Reader) {
				if !u.readRequest(br) {
					return
				}
				io.WriteString(conn, jsonHead+"X-Big: ")
				chunk := strings.Repeat("a", 64<<10)
				for i := 0; i < 32; i++ { // 2 MiB
					if _, err := io.WriteString(conn, chunk); err != nil {
						return
					}
				}
				io.WriteString(conn, "\r\nContent-Length: 2\r\n\r\n{}")
			})
			second := newUpstream(t)
			h := brokenProxy(t, up, second.URL)
			resp := h.post("/v1/messages", duoMessage, nil)
			got := readAll(t, resp)
			if resp.StatusCode != 200 || !strings.Contains(got, "model-b") {
				t.Fatalf("want the second provider's answer, got %d %.300q", resp.StatusCode, got)
			}
		})
	}
}

// A request whose body was written whole is never sent again: when the
// reused connection breaks before the answer, the upstream may already be
// generating, and a resend is a duplicate generation.
func TestWrittenRequestIsNeverResent(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			up := newBrokenUpstream(t, scheme, func(u *brokenUpstream, conn net.Conn, br *bufio.Reader) {
				for u.readRequest(br) {
					if u.requests.Load() == 2 {
						reset(conn) // the second request, on the reused connection
						return
					}
					io.WriteString(conn, jsonHead+"Content-Length: 2\r\n\r\n{}")
				}
			})
			h := brokenProxy(t, up, "")
			if resp := h.post("/v1/messages", duoMessage, nil); resp.StatusCode != 200 {
				t.Fatalf("first request: status %d: %s", resp.StatusCode, readAll(t, resp))
			} else {
				readAll(t, resp)
			}
			resp := h.post("/v1/messages", duoMessage, nil)
			got := readAll(t, resp)
			if n := up.requests.Load(); n != 2 {
				t.Fatalf("the upstream received %d requests for 2 sent (the answer: %d %q)", n, resp.StatusCode, got)
			}
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502: %s", resp.StatusCode, got)
			}
		})
	}
}

// An upstream may not switch protocols, set cookies or open CORS on ccmux's
// address.
func TestUpstreamHeadersHygiene(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme+"/101", func(t *testing.T) {
			up := newBrokenUpstream(t, scheme, func(u *brokenUpstream, conn net.Conn, br *bufio.Reader) {
				if u.readRequest(br) {
					io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
					u.stall()
				}
			})
			h := brokenProxy(t, up, "")
			resp := h.post("/v1/messages", duoMessage, nil)
			got := readAll(t, resp)
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(got, "101") {
				t.Fatalf("status %d, want 502 naming the 101: %s", resp.StatusCode, got)
			}
		})
		t.Run(scheme+"/cookies and CORS", func(t *testing.T) {
			up := newBrokenUpstream(t, scheme, func(u *brokenUpstream, conn net.Conn, br *bufio.Reader) {
				for u.readRequest(br) {
					io.WriteString(conn, jsonHead+"Set-Cookie: session=1\r\nAccess-Control-Allow-Origin: *\r\n"+
						"Access-Control-Allow-Credentials: true\r\nRequest-Id: req_1\r\nContent-Length: 2\r\n\r\n{}")
				}
			})
			h := brokenProxy(t, up, "")
			resp := h.post("/v1/messages", duoMessage, nil)
			readAll(t, resp)
			for _, k := range []string{"Set-Cookie", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"} {
				if v := resp.Header.Get(k); v != "" {
					t.Errorf("the upstream's %s: %s reached the client", k, v)
				}
			}
			if resp.Header.Get("Request-Id") != "req_1" {
				t.Errorf("an end-to-end header was dropped: %v", resp.Header)
			}
		})
	}
}

// Nothing the client did not send reaches the upstream, on https://
// (HTTP/2) as on http:// (HTTP/1.1): no User-Agent is invented.
func TestNoHeaderInvented(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			t.Setenv("API_KEY", "k")
			up := fakeanthropic.NewUnstarted()
			if scheme == "https" {
				up.EnableHTTP2 = true
				up.StartTLS()
			} else {
				up.Start()
			}
			defer up.Close()
			h := startProxyWith(t, mustConfig(t, apiKeyTOML(up.URL)), func(s *Server) {
				if scheme == "https" {
					s.tlsConfig = up.Client().Transport.(*http.Transport).TLSClientConfig
				}
			})
			req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","messages":[]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Anthropic-Version", "2023-06-01")
			req.Header.Set("User-Agent", "") // net/http's client sends none
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			reqs := up.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d upstream requests", len(reqs))
			}
			if scheme == "https" && reqs[0].Proto != "HTTP/2.0" {
				t.Errorf("https upstream spoken to over %s, want HTTP/2", reqs[0].Proto)
			}
			// What the client sent (Go's client adds Accept-Encoding), the
			// provider's key, and the body's length: nothing else.
			allowed := map[string]bool{"Content-Type": true, "Anthropic-Version": true, "Accept-Encoding": true, "X-Api-Key": true, "Content-Length": true}
			for k, v := range reqs[0].Header {
				if !allowed[k] {
					t.Errorf("the upstream received %s: %q, which the client did not send", k, v)
				}
			}
		})
	}
}

// The same rules hold over HTTP/2 (api.anthropic.com's protocol): a stall
// before the answer fails over, a stream cut or gone silent ends with an
// error event.
func TestBrokenHTTP2Upstream(t *testing.T) {
	cases := []struct {
		name     string
		behavior fakeanthropic.Behavior
		stream   bool
		failover bool
	}{
		{"stall before the answer", fakeanthropic.Behavior{Stall: true}, false, true},
		{"stream reset at start", fakeanthropic.Behavior{DieAtStart: true}, true, true},
		{"stream reset mid-way", fakeanthropic.Behavior{DieAfterEvents: 2}, true, false},
		{"stream silent mid-way", fakeanthropic.Behavior{HoldOpen: true}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FIRST_KEY", "k1")
			t.Setenv("SECOND_KEY", "k2")
			up := fakeanthropic.NewUnstarted()
			up.EnableHTTP2 = true
			up.StartTLS()
			t.Cleanup(func() {
				up.Release()
				up.CloseClientConnections()
				up.Close()
			})
			up.SetBehavior(tc.behavior)
			second := newUpstream(t)
			cfg := mustConfig(t, twoProviders(up.URL, second.URL, "[server.timeouts]\napi_timeout_ms = 500\nstream_idle_timeout_ms = 500"))
			h := startProxyWith(t, cfg, func(s *Server) { s.tlsConfig = up.Client().Transport.(*http.Transport).TLSClientConfig })
			h.client.Timeout = 20 * time.Second
			body := duoMessage
			if tc.stream {
				body = duoStream
			}
			resp := h.post("/v1/messages", body, nil)
			got := readAll(t, resp)
			if tc.failover {
				if resp.StatusCode != 200 || !strings.Contains(got, "model-b") {
					t.Fatalf("want the second provider's answer, got %d %.300q", resp.StatusCode, got)
				}
				return
			}
			evs := readEvents(t, strings.NewReader(got))
			if n := len(evs); n < 2 || evs[0].name != "message_start" || evs[n-1].name != "error" {
				t.Fatalf("events %v, want message_start … error", eventNames(evs))
			}
			if reqs := up.Requests(); len(reqs) == 0 || reqs[0].Proto != "HTTP/2.0" {
				t.Errorf("the upstream was not spoken to over HTTP/2")
			}
		})
	}
}

// A cold burst over HTTP/2 opens as few connections as the upstream's
// stream limit needs (Go's server allows 250 per connection), instead of
// one dial per waiting request.
func TestColdBurstHTTP2(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := fakeanthropic.NewUnstarted()
	up.EnableHTTP2 = true
	up.Record = false
	up.StartTLS()
	t.Cleanup(func() {
		up.Release()
		up.CloseClientConnections()
		up.Close()
	})
	up.SetBehavior(fakeanthropic.Behavior{HoldOpen: true})
	h := startProxyWith(t, mustConfig(t, apiKeyTOML(up.URL)), func(s *Server) {
		s.tlsConfig = up.Client().Transport.(*http.Transport).TLSClientConfig
	})
	const streams = 300
	errs := make(chan error, streams)
	var ready atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/messages", strings.NewReader(streamReq))
			req.Header.Set("Content-Type", "application/json")
			resp, err := h.client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			for { // through the first event's blank line
				line, err := br.ReadString('\n')
				if err != nil {
					errs <- fmt.Errorf("the stream ended before its first event: %w", err)
					return
				}
				if line == "\n" {
					break
				}
			}
			// The upstream holds the stream open now, waiting for Release.
			ready.Add(1)
			if _, err := io.Copy(io.Discard, br); err != nil {
				errs <- err
			}
		}()
	}
	testsupport.Eventually(t, "every stream to start", 30*time.Second, func() bool { return ready.Load() == streams })
	up.Release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := up.Conns(); n > 2 {
		t.Errorf("%d streams opened %d upstream connections, want 2 (250 streams each)", streams, n)
	}
}
