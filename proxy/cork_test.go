package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ccmux/proxy/internal/fakeanthropic"
)

// corkPair is an upstream connection as the pool dials it (dialH2TLS,
// under an h2Conn) to a TLS server on loopback, with every write to the
// socket under the TLS counted.
type corkPair struct {
	h      *h2Conn
	writes *writeSizes
	raw    *net.TCPConn // the client's socket
	peer   *tls.Conn    // the server's end
	broken atomic.Bool  // the client's socket writes fail
	read   chan []byte  // what the peer read, once the connection closed (read = true)
}

var errBrokenSocket = errors.New("the socket broke")

// failingConn fails its writes once broken is set.
type failingConn struct {
	net.Conn
	broken *atomic.Bool
}

func (c *failingConn) Write(p []byte) (int, error) {
	if c.broken.Load() {
		return 0, errBrokenSocket
	}
	return c.Conn.Write(p)
}

// newCorkPair connects; the peer reads everything when read is set, and
// nothing otherwise (a peer that stopped reading).
func newCorkPair(t *testing.T, read bool) *corkPair {
	t.Helper()
	serverTLS, trust := testCertificates(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := &corkPair{writes: &writeSizes{}, read: make(chan []byte, 1)}
	accepted := make(chan *tls.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		if !read {
			conn.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		tc := tls.Server(conn, serverTLS)
		if tc.Handshake() != nil {
			tc.Close()
			accepted <- nil
			return
		}
		accepted <- tc
		if read {
			b, _ := io.ReadAll(tc)
			p.read <- b
		}
	}()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		p.raw = raw.(*net.TCPConn)
		return &countingConn{Conn: &failingConn{Conn: raw, broken: &p.broken}, w: p.writes}, nil
	}
	conn, err := dialH2TLS(context.Background(), dial, trust, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if p.peer = <-accepted; p.peer == nil {
		t.Fatal("the server's handshake failed")
	}
	t.Cleanup(func() { p.peer.Close() })
	p.h = newH2Conn(conn, defaultHoldFor)
	t.Cleanup(func() { p.h.Close() })
	if p.h.cork == nil {
		t.Fatal("the connection has no cork under its TLS")
	}
	p.writes.take() // the handshake
	return p
}

// received closes the connection and returns what the peer read.
func (p *corkPair) received(t *testing.T) []byte {
	t.Helper()
	if err := p.h.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-p.read:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("the peer did not see the connection end")
		return nil
	}
}

// A large write (a 400 KB body's DATA frame, written directly) is 26 TLS
// records; they leave in one system call, two past corkMax, not 26.
func TestCorkOneWritePerBatch(t *testing.T) {
	p := newCorkPair(t, true)
	body := bytes.Repeat([]byte("0123456789abcdef"), 400<<10/16)
	if _, err := p.h.Write(body); err != nil {
		t.Fatal(err)
	}
	sizes := p.writes.take()
	if len(sizes) != len(body)/corkMax+1 {
		t.Fatalf("a %d-byte write went out in %d system calls %v, want %d", len(body), len(sizes), sizes, len(body)/corkMax+1)
	}
	small := []byte("a small frame, through the writer goroutine")
	p.h.Write(small)
	if got := p.received(t); !bytes.Equal(got, append(body, small...)) {
		t.Fatalf("the peer read %d bytes, want the %d written in order", len(got), len(body)+len(small))
	}
}

// Writers of small frames (through the writer goroutine) and large ones
// (written directly) at once: every frame arrives whole, each writer's in
// the order written.
func TestCorkConcurrentWritersInOrder(t *testing.T) {
	p := newCorkPair(t, true)
	const writers, frames = 4, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range frames {
				size := 100 + 37*i
				if (w+i)%3 == 0 {
					size = directWrite + 1000*i // a DATA frame written directly
				}
				f := make([]byte, 12+size)
				binary.BigEndian.PutUint32(f, uint32(w))
				binary.BigEndian.PutUint32(f[4:], uint32(i))
				binary.BigEndian.PutUint32(f[8:], uint32(size))
				for j := range size {
					f[12+j] = byte(w + i + j)
				}
				if _, err := p.h.Write(f); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := p.received(t)
	next := make([]int, writers)
	for len(got) > 0 {
		if len(got) < 12 {
			t.Fatalf("%d bytes left over", len(got))
		}
		w, i, size := int(binary.BigEndian.Uint32(got)), int(binary.BigEndian.Uint32(got[4:])), int(binary.BigEndian.Uint32(got[8:]))
		if w >= writers || i != next[w] || len(got) < 12+size {
			t.Fatalf("a frame of writer %d numbered %d (want %d), %d bytes of %d left: the frames are mixed up", w, i, next[w], len(got), size)
		}
		for j, b := range got[12 : 12+size] {
			if b != byte(w+i+j) {
				t.Fatalf("writer %d's frame %d is corrupted at byte %d", w, i, j)
			}
		}
		next[w]++
		got = got[12+size:]
	}
	for w, n := range next {
		if n != frames {
			t.Errorf("writer %d: %d frames arrived of %d", w, n, frames)
		}
	}
}

// A socket write that fails, whether past corkMax or when the gathered
// records are written at the end, fails the write and every write after
// it: x/net then fails the connection's streams.
func TestCorkWriteError(t *testing.T) {
	for _, size := range []int{directWrite + 1, 400 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := newCorkPair(t, true)
			p.broken.Store(true)
			if _, err := p.h.Write(make([]byte, size)); !errors.Is(err, errBrokenSocket) {
				t.Fatalf("the write returned %v, want the socket's error", err)
			}
			if _, err := p.h.Write([]byte("next")); err == nil {
				t.Fatal("a write after the failed one succeeded")
			}
		})
	}
}

// The write deadline bounds a write to a peer that does not read, gathered
// records and all.
func TestCorkDeadlineWithAPeerThatDoesNotRead(t *testing.T) {
	p := newCorkPair(t, false)
	p.raw.SetWriteBuffer(4 << 10)
	p.h.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := p.h.Write(make([]byte, 8<<20))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the write returned %v, want its deadline exceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write outlived its deadline")
	}
}

// Close ends a connection whose peer stopped reading within its 250 ms,
// a write with gathered records stuck in the middle of it failing.
func TestCorkCloseWithAStuckWrite(t *testing.T) {
	p := newCorkPair(t, false)
	p.raw.SetWriteBuffer(4 << 10)
	done := make(chan error, 1)
	go func() {
		_, err := p.h.Write(make([]byte, 8<<20))
		done <- err
	}()
	// The write is stuck once its records stopped leaving.
	var last []int
	for deadline := time.Now().Add(10 * time.Second); ; {
		time.Sleep(50 * time.Millisecond)
		p.writes.mu.Lock()
		sizes := append([]int(nil), p.writes.sizes...)
		p.writes.mu.Unlock()
		if len(sizes) > 0 && len(sizes) == len(last) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write never got stuck")
		}
		last = sizes
	}
	closed := make(chan struct{})
	go func() {
		p.h.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a peer that does not read")
	}
	if err := <-done; err == nil {
		t.Fatal("the stuck write succeeded")
	}
}

// What was written before Close reaches the peer, small frames the writer
// still had and gathered records alike, and close_notify after them.
func TestCorkCloseFlushes(t *testing.T) {
	p := newCorkPair(t, true)
	var want []byte
	for i := range 50 {
		f := bytes.Repeat([]byte{byte(i)}, 10+i*1000)
		if _, err := p.h.Write(f); err != nil {
			t.Fatal(err)
		}
		want = append(want, f...)
	}
	if got := p.received(t); !bytes.Equal(got, want) {
		t.Fatalf("the peer read %d bytes, want the %d written", len(got), len(want))
	}
}

// Through the proxy, over the pool's connections: a 400 KB request goes
// upstream in a few system calls, not one per TLS record. Go's server
// allows DATA frames of 1 MiB, so x/net writes the body as one frame: with
// its HEADERS, one write per corkMax. A server keeping the default 16 KiB
// frames gets a write per frame (x/net flushes each), where each used to
// take two (a full record and the frame header's 9 bytes in another).
func TestHTTP2LargeRequestInFewWrites(t *testing.T) {
	for _, frame := range []uint32{1 << 20, 16 << 10} {
		t.Run(fmt.Sprint(frame), func(t *testing.T) {
			t.Setenv("API_KEY", "k")
			up := fakeanthropic.NewUnstarted()
			up.EnableHTTP2 = true
			up.Config.HTTP2 = &http.HTTP2Config{MaxReadFrameSize: int(frame)}
			up.StartTLS()
			t.Cleanup(up.Close)
			trust := up.Client().Transport.(*http.Transport).TLSClientConfig
			writes := &writeSizes{}
			h := startProxy(t, mustConfig(t, rewriteTOML(up.URL)), func(s *Server) {
				s.upstreamOnce.Do(func() { s.upstream = newUpstreamClient(DefaultConnectTimeout, trust) })
				s.upstream.pool.readIdle = time.Hour // no health pings between
				s.upstream.pool.reuseIdle = time.Hour
				cfg := trust.Clone()
				cfg.NextProtos = []string{"h2"}
				s.upstream.pool.dial = func(ctx context.Context, addr string) (net.Conn, error) {
					return dialH2TLS(ctx, func(ctx context.Context, network, addr string) (net.Conn, error) {
						raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
						if err != nil {
							return nil, err
						}
						return &countingConn{Conn: raw, w: writes}, nil
					}, cfg, addr)
				}
			})
			for i := range 3 {
				body := fakeanthropic.RequestBody(400<<10, "claude-sonnet-4-5", false)
				resp := h.post("/v1/messages", string(body), nil)
				if got := readAll(t, resp); resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, got)
				}
				want := len(body)/corkMax + 1
				if frame < corkMax {
					want = len(body)/int(frame) + 1
				}
				// The first request's writes include the connection's
				// preface and SETTINGS.
				if sizes := writes.take(); i > 0 && len(sizes) > want {
					t.Fatalf("request %d took %d writes %v, want %d", i+1, len(sizes), sizes, want)
				}
			}
		})
	}
}
