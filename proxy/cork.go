package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
)

// corkConn is the socket under an upstream HTTP/2 connection's TLS. TLS
// writes each record of at most 16 KiB with a system call of its own: a
// 400 KB body left in 26 to 32 of them, and system calls were 35-45 % of
// the proxy's CPU on such requests. While h2Conn is inside a TLS
// write (hold to release), the records are gathered and leave together
// when it returns. Outside such a window every write goes straight
// through: the alerts, close_notify and KeyUpdate answers TLS writes on
// its own (from Read, or Close) are never kept waiting. Close closes the
// socket at once, without waiting for c.mu: a release blocked on a peer
// that does not read fails then (see h2Conn.closeNet).
type corkConn struct {
	net.Conn

	mu    sync.Mutex // held across the socket's writes, to keep their order
	holds int        // open windows; h2Conn has one at a time
	buf   []byte     // records gathered in the windows, not yet written
	err   error      // a write failed: the connection is broken
}

// maxRecord is the most a TLS record carries: a write of no more is one
// record (once TLS has sent its first 128 KB in smaller ones), and goes
// straight through, not copied.
const maxRecord = 16 << 10

// corkMax bounds the bytes gathered: past it they are written at once,
// the window going on, so a larger write still goes at the network's pace
// and the buffer stays bounded (corkMax plus a record).
const corkMax = 256 << 10

// hold opens a window: records written until release are gathered.
func (c *corkConn) hold() {
	c.mu.Lock()
	c.holds++
	c.mu.Unlock()
}

// release closes a window and writes what was gathered, in one system
// call. Its error is the connection's, as a failed TLS write's is.
func (c *corkConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holds--
	return c.flushLocked()
}

// Write is TLS writing a record (or close_notify, an alert, a handshake
// flight).
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.holds == 0 {
		n, err := c.Conn.Write(p)
		c.err = err
		return n, err
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= corkMax {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flushLocked writes what was gathered. The deadline set on the
// connection bounds it, as it bounds any write. c.mu is held.
func (c *corkConn) flushLocked() error {
	if c.err != nil || len(c.buf) == 0 {
		return c.err
	}
	_, c.err = c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return c.err
}

// dialH2TLS dials addr and opens TLS over a corkConn, as tls.Dialer would
// over the bare socket.
func dialH2TLS(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), cfg *tls.Config, addr string) (*tls.Conn, error) {
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	conn := tls.Client(&corkConn{Conn: raw}, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}
