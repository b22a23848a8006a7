package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// x/net's HTTP/2 transport flushes a request's HEADERS frame on its own,
// before it reads the body (golang/go#58674: a body might wait for the
// answer), so every request costs a TLS record and a write system call
// more than it needs: about a tenth of the proxy's CPU time per request.
// ccmux's bodies are always in memory, so their first DATA frame follows at
// once. A heldConn keeps the HEADERS write of such a request and sends it
// in the same write as the next one.

// holdFor bounds how long a held write waits for the next: the body's
// first DATA frame normally follows within microseconds, but a server may
// make it wait for flow control, and it only answers once it has the
// HEADERS.
const holdFor = 5 * time.Millisecond

// heldConn is an upstream HTTP/2 connection that can hold one write.
type heldConn struct {
	net.Conn

	mu    sync.Mutex
	hold  bool   // the next write is held
	held  []byte // a held write, sent with the next or by timer
	timer *time.Timer
	err   error // a write failed: the connection is broken
}

func newHeldConn(c net.Conn) *heldConn {
	h := &heldConn{Conn: c}
	h.timer = time.AfterFunc(time.Hour, h.flush)
	h.timer.Stop()
	return h
}

// ConnectionState lets x/net see the TLS state, as it would on a *tls.Conn.
func (c *heldConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// holdNext asks for the next write to be held.
func (c *heldConn) holdNext() {
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.hold {
		c.hold = false
		if len(c.held) == 0 {
			c.timer.Reset(holdFor)
		}
		c.held = append(c.held, p...) // after another request's held HEADERS, if any
		return len(p), nil
	}
	if len(c.held) == 0 {
		n, err := c.Conn.Write(p)
		c.err = err
		return n, err
	}
	c.timer.Stop()
	c.held = append(c.held, p...)
	_, err := c.Conn.Write(c.held)
	c.release()
	if c.err = err; err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush sends a held write that nothing followed.
func (c *heldConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) == 0 || c.err != nil {
		return
	}
	_, c.err = c.Conn.Write(c.held)
	c.release()
	if c.err != nil {
		c.Conn.Close() // x/net's read loop sees the close and fails the streams
	}
}

// release empties the held buffer, keeping it unless a large body grew it.
func (c *heldConn) release() {
	c.held = c.held[:0]
	if cap(c.held) > 64<<10 {
		c.held = nil
	}
}

func (c *heldConn) Close() error {
	c.timer.Stop()
	return c.Conn.Close()
}

// withHeldHeaders returns ctx with a trace that holds the HEADERS write of
// an HTTP/2 request whose body is in memory. x/net reports each header
// field as it encodes it, under its write lock, right before it writes and
// flushes the frame: the first field marks the connection's next write.
func withHeldHeaders(ctx context.Context) context.Context {
	var conn atomic.Pointer[heldConn]
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			c, _ := info.Conn.(*heldConn)
			conn.Store(c) // nil on HTTP/1.1
		},
		WroteHeaderField: func(string, []string) {
			if c := conn.Swap(nil); c != nil { // the first field only
				c.holdNext()
			}
		},
	})
}
