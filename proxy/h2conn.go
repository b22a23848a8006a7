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

// h2Conn is an upstream HTTP/2 connection whose writes go out from a
// goroutine of its own, in as few TLS records and system calls as they can.
//
// x/net writes each request from a goroutine it starts for that request.
// Encrypting a TLS record there grew that new goroutine's small stack, a
// copy of it on every request: about 6% of the proxy's CPU time. The
// writer's stack stays grown. Writes that wait together leave together,
// and a request's HEADERS frame waits for its first DATA frame: x/net
// flushes HEADERS by itself (golang/go#58674, a body might wait for the
// answer), a TLS record and a write more than needed, but ccmux's bodies
// are in memory and follow at once.
type h2Conn struct {
	net.Conn
	cork *corkConn // under the TLS, if dialH2TLS dialled it

	mu       sync.Mutex
	wake     sync.Cond // the writer: something to send, or closed
	room     sync.Cond // Write: pending drained below maxPending
	pending  []byte    // accepted, for the writer to send
	held     []byte    // HEADERS waiting for the write after them
	hold     bool      // the next write is held
	sending  bool      // the writer is in a write
	closed   bool
	err      error // the writer failed: the connection is broken
	holdFor  time.Duration
	holdTime *time.Timer
	done     chan struct{} // the writer ended
	// lastRead (monoNow), condemned, requests and retired are for health
	// checks (health.go).
	lastRead  atomic.Int64
	condemned atomic.Bool
	requests  atomic.Int32
	retired   atomic.Bool
}

// defaultHoldFor bounds how long held HEADERS wait for the next write:
// the body's first DATA frame normally follows within microseconds, but a
// server may make it wait for flow control, and open the window only once
// it has the HEADERS. Past it, the HEADERS go alone.
const defaultHoldFor = 20 * time.Millisecond

// maxPending bounds the bytes accepted and not yet sent: a large body's
// writes wait for the network instead of piling up here.
const maxPending = 64 << 10

func newH2Conn(c net.Conn, holdFor time.Duration) *h2Conn {
	h := &h2Conn{Conn: c, holdFor: holdFor, done: make(chan struct{})}
	if tc, ok := c.(*tls.Conn); ok {
		h.cork, _ = tc.NetConn().(*corkConn)
	}
	h.wake.L = &h.mu
	h.room.L = &h.mu
	h.holdTime = time.AfterFunc(time.Hour, h.release)
	h.holdTime.Stop()
	go h.write()
	return h
}

// ConnectionState lets x/net see the TLS state, as it would on a *tls.Conn.
func (c *h2Conn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// holdNext asks for the next write to wait for the one after it.
func (c *h2Conn) holdNext() {
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

// Write accepts p for the writer. An error of the writer's is returned by
// the writes after it, as x/net's own buffered writer would.
func (c *h2Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) >= maxPending && c.err == nil && !c.closed {
		c.room.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.hold {
		c.hold = false
		if len(c.held) == 0 {
			c.holdTime.Reset(c.holdFor)
		}
		c.held = append(c.held, p...) // after other held HEADERS, if any
		return len(p), nil
	}
	if len(c.held) > 0 {
		c.holdTime.Stop()
		c.unholdLocked()
	}
	if len(p) >= directWrite {
		return c.writeDirectLocked(p)
	}
	c.pending = append(c.pending, p...)
	if !c.sending {
		c.wake.Signal()
	}
	return len(p), nil
}

// directWrite is the size from which a write (a large body's DATA frame,
// up to the whole body when the server's window allows) goes out from the
// caller's goroutine instead of being copied for the writer: copying 400
// KB bodies into pending, after their held HEADERS, cost a sixth of the
// proxy's CPU. It takes what is pending with it instead (see send).
const directWrite = 16 << 10

// writeDirectLocked writes p itself, after what was accepted before it
// (held HEADERS, say), which it takes from the writer: with a cork they
// leave in the same system call. The writer stays out (sending)
// meanwhile.
func (c *h2Conn) writeDirectLocked(p []byte) (int, error) {
	for c.sending && c.err == nil && !c.closed {
		c.room.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	before := c.pending
	c.pending = nil
	c.sending = true
	c.room.Broadcast()
	c.mu.Unlock()
	n, err := c.send(before, p)
	c.mu.Lock()
	if c.pending == nil && cap(before) <= 4*maxPending {
		c.pending = before[:0] // nothing came meanwhile: keep the buffer
	}
	c.sending = false
	c.room.Broadcast()
	c.wake.Signal() // the writer: what came meanwhile, a Close, or an error to end on
	if err != nil && c.err == nil {
		c.err = err
		c.mu.Unlock()
		c.Conn.Close() // x/net's read loop sees it and fails the streams
		c.mu.Lock()
	}
	return n, err
}

// send writes before, then p, through TLS, the records leaving in one
// system call (one more each corkMax) when the connection has a cork. n
// counts p's bytes.
func (c *h2Conn) send(before, p []byte) (n int, err error) {
	cork := c.cork != nil && len(before)+len(p) > maxRecord
	if cork {
		c.cork.hold()
	}
	if len(before) > 0 {
		_, err = c.Conn.Write(before)
	}
	if err == nil {
		n, err = c.Conn.Write(p)
	}
	if cork {
		if ferr := c.cork.release(); err == nil && ferr != nil {
			n, err = 0, ferr
		}
	}
	return n, err
}

// release sends held HEADERS that nothing followed.
func (c *h2Conn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) > 0 && !c.closed {
		c.unholdLocked()
		c.wake.Signal()
	}
}

// unholdLocked queues the held HEADERS for the writer, after what is
// already pending.
func (c *h2Conn) unholdLocked() {
	c.pending = append(c.pending, c.held...)
	c.held = c.held[:0]
}

// write is the writer: it sends what is pending, all of it at once, until
// the connection is closed and nothing is left, or a write fails.
func (c *h2Conn) write() {
	defer close(c.done)
	var out []byte
	c.mu.Lock()
	for {
		for (len(c.pending) == 0 && !c.closed) || c.sending { // sending: a direct write
			c.wake.Wait()
		}
		if len(c.pending) == 0 || c.err != nil {
			c.mu.Unlock()
			return
		}
		out, c.pending = c.pending, out[:0]
		c.sending = true
		c.room.Broadcast()
		c.mu.Unlock()

		_, err := c.send(nil, out)
		if cap(out) > 4*maxPending {
			out = nil // a burst grew it; do not keep it
		}

		c.mu.Lock()
		c.sending = false
		c.room.Broadcast() // a direct write may wait for this one
		if err != nil {
			c.err = err
			c.mu.Unlock()
			c.Conn.Close() // x/net's read loop sees it and fails the streams
			return
		}
	}
}

// Close sends what is pending and held, then closes the connection. Like
// x/net for its own TLS connections, it waits no more than 250 ms for a
// peer that does not read.
func (c *h2Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.holdTime.Stop()
	c.unholdLocked()
	c.wake.Signal()
	c.room.Broadcast()
	c.mu.Unlock()
	force := time.AfterFunc(250*time.Millisecond, c.closeNet)
	defer force.Stop()
	<-c.done // a write stuck on the peer fails when closeNet closes under it
	return c.Conn.Close()
}

// closeNet closes the connection under TLS, so a write blocked on it and
// the TLS close alert end at once.
func (c *h2Conn) closeNet() {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		tc.NetConn().Close()
		return
	}
	c.Conn.Close()
}

// withHeldHeaders returns ctx with a trace that holds the HEADERS write of
// an HTTP/2 request whose body is in memory. x/net reports each header
// field as it encodes it, under its write lock, right before it writes and
// flushes the frame: the first field marks the connection's next write.
func withHeldHeaders(ctx context.Context) context.Context {
	h := &headerHold{}
	h.trace = httptrace.ClientTrace{GotConn: h.gotConn, WroteHeaderField: h.wroteField}
	return httptrace.WithClientTrace(ctx, &h.trace)
}

// headerHold is one request's trace.
type headerHold struct {
	conn  atomic.Pointer[h2Conn] // nil on HTTP/1.1, and once marked
	trace httptrace.ClientTrace
}

func (h *headerHold) gotConn(info httptrace.GotConnInfo) {
	c, _ := info.Conn.(*h2Conn)
	h.conn.Store(c) // again on a retry over another connection
}

func (h *headerHold) wroteField(string, []string) {
	if c := h.conn.Swap(nil); c != nil { // the first field only
		c.holdNext()
	}
}
