package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// refusingUpstream is an HTTPS/HTTP2 upstream spoken frame by frame: the
// first whole request it receives gets first (a REFUSED_STREAM, a GOAWAY
// that says it was not processed, or another reset); every other request
// gets a 200 Messages API answer.
type refusingUpstream struct {
	ln    net.Listener
	first func(fr *http2.Framer, conn net.Conn, stream uint32)
	// refuseAll gives every request first's treatment.
	refuseAll atomic.Bool

	conns    atomic.Int64 // connections accepted
	headers  atomic.Int64 // request HEADERS frames read: requests sent
	whole    atomic.Int64 // requests received whole (END_STREAM)
	answered atomic.Int64 // requests answered: processed
}

func newRefusingUpstream(t *testing.T, first func(fr *http2.Framer, conn net.Conn, stream uint32)) (*refusingUpstream, *tls.Config) {
	t.Helper()
	serverTLS, trust := testCertificates(t)
	serverTLS.NextProtos = []string{"h2"}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS)
	if err != nil {
		t.Fatal(err)
	}
	u := &refusingUpstream{ln: ln, first: first}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			mu.Lock()
			open = append(open, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				u.serve(conn)
			}()
		}
	}()
	return u, trust
}

func (u *refusingUpstream) serve(conn net.Conn) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(conn, preface); err != nil {
		return
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if fr.WriteSettings() != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		var ended uint32
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
			u.headers.Add(1)
			if f.StreamEnded() {
				ended = f.StreamID
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				ended = f.StreamID
			}
		}
		if ended == 0 {
			continue
		}
		if u.whole.Add(1) == 1 || u.refuseAll.Load() {
			u.first(fr, conn, ended)
			continue
		}
		u.answered.Add(1)
		body, _ := json.Marshal(map[string]any{
			"id": "msg_01Refused", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
			"content":     []map[string]any{{"type": "text", "text": "Hello!"}},
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]int{"input_tokens": 25, "output_tokens": 2},
		})
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/json"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: ended, BlockFragment: hb.Bytes(), EndHeaders: true})
		fr.WriteData(ended, true, body)
	}
}

// refusedSetup starts ccmux in front of a refusingUpstream.
func refusedSetup(t *testing.T, first func(fr *http2.Framer, conn net.Conn, stream uint32)) (*refusingUpstream, *harness) {
	t.Helper()
	t.Setenv("API_KEY", "k")
	u, trust := newRefusingUpstream(t, first)
	h := startProxyWith(t, mustConfig(t, apiKeyTOML("https://"+u.ln.Addr().String())), func(s *Server) { s.tlsConfig = trust })
	h.client.Timeout = 60 * time.Second
	return u, h
}

// postRetried sends a request the upstream turns away once (why) and
// checks it was sent once more, answered 200 and processed once, with
// no failure in the logs.
func postRetried(t *testing.T, u *refusingUpstream, h *harness, why string) {
	t.Helper()
	resp := h.post("/v1/messages", healthMessage, nil)
	if got := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(got, "msg_01Refused") {
		t.Fatalf("status %d, want 200: %s\n%s", resp.StatusCode, got, h.logs.String())
	}
	if n := u.headers.Load(); n != 2 {
		t.Errorf("the upstream got the request %d times, want 2 (%s, then answered)", n, why)
	}
	if n := u.answered.Load(); n != 1 {
		t.Errorf("the upstream processed the request %d times, want 1", n)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "status=200") || strings.Contains(logs, "level=WARN") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("the logs show a failure:\n%s", logs)
	}
}

// A stream the upstream refuses (RST_STREAM REFUSED_STREAM before any
// answer, after it read the whole request) was not processed (RFC 9113
// section 8.7): it is sent once more and answered 200, and the upstream
// processed it once.
func TestRefusedStreamRetried(t *testing.T) {
	u, h := refusedSetup(t, func(fr *http2.Framer, _ net.Conn, stream uint32) {
		fr.WriteRSTStream(stream, http2.ErrCodeRefusedStream)
	})
	postRetried(t, u, h, "refused")
}

// A GOAWAY whose last stream id is below the request's (here 0: nothing
// was processed), then the end of the connection: the request is sent
// once more on a new connection and answered 200.
func TestGoAwayUnprocessedRetried(t *testing.T) {
	u, h := refusedSetup(t, func(fr *http2.Framer, conn net.Conn, _ uint32) {
		fr.WriteGoAway(0, http2.ErrCodeNo, nil)
		// Closed gracefully: the GOAWAY is read before the end of the
		// connection (a close with unread bytes would reset it).
		conn.(*tls.Conn).CloseWrite()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, conn)
		conn.Close()
	})
	postRetried(t, u, h, "went away")
	if n := u.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the retry goes on a new one", n)
	}
}

// A stream reset with another code after the upstream read the whole
// request may have been processed: it is not sent again, the client gets
// a 502.
func TestResetInternalErrorNotRetried(t *testing.T) {
	u, h := refusedSetup(t, func(fr *http2.Framer, _ net.Conn, stream uint32) {
		fr.WriteRSTStream(stream, http2.ErrCodeInternal)
	})
	resp := h.post("/v1/messages", healthMessage, nil)
	if got := readAll(t, resp); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502: %s", resp.StatusCode, got)
	}
	if n := u.headers.Load(); n != 1 {
		t.Errorf("the upstream got the request %d times, want 1", n)
	}
	if n := u.answered.Load(); n != 0 {
		t.Errorf("the upstream answered %d requests, want none", n)
	}
}

// An upstream that refuses every stream gets the request twice, not the
// eight times (over a minute of back-off) x/net's own loop would send it:
// one retry, then the client gets a 502 at once (or the next provider).
func TestRefusedTwiceNotSentAgain(t *testing.T) {
	u, h := refusedSetup(t, func(fr *http2.Framer, _ net.Conn, stream uint32) {
		fr.WriteRSTStream(stream, http2.ErrCodeRefusedStream)
	})
	u.refuseAll.Store(true)
	h.client.Timeout = 20 * time.Second // x/net alone takes 63 s of back-off
	start := time.Now()
	resp := h.post("/v1/messages", healthMessage, nil)
	got := readAll(t, resp)
	took := time.Since(start)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502: %s", resp.StatusCode, got)
	}
	if n := u.headers.Load(); n != 2 {
		t.Errorf("the upstream got the request %d times, want 2", n)
	}
	if took > 5*time.Second {
		t.Errorf("the 502 came after %v, want at once", took)
	}
	t.Logf("502 after %v: %s", took.Round(time.Millisecond), got)
}

// A GOAWAY with an error code on a connection's first stream: x/net does
// not resend it (a server that fails a new connection would likely fail
// the next one), and ccmux, which cannot see the GOAWAY's last stream id,
// judges it as a stream ended after a whole request: not resent, 502.
func TestGoAwayWithErrorNotRetried(t *testing.T) {
	u, h := refusedSetup(t, func(fr *http2.Framer, conn net.Conn, _ uint32) {
		fr.WriteGoAway(0, http2.ErrCodeEnhanceYourCalm, nil)
		conn.(*tls.Conn).CloseWrite()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, conn)
		conn.Close()
	})
	resp := h.post("/v1/messages", healthMessage, nil)
	if got := readAll(t, resp); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502: %s", resp.StatusCode, got)
	}
	if n := u.headers.Load(); n != 1 {
		t.Errorf("the upstream got the request %d times, want 1", n)
	}
}
