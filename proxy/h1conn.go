package proxy

import (
	"context"
	"io"
	"net"
)

// h1Conn is an upstream HTTP/1.1 connection that sends a request body held
// in memory (a sentReader) with one vectored write of its parts, where
// net/http copies any body through a 32 KB buffer, a system call per
// 32 KB: 13 writes for a 400 KB conversation, each of which on loopback
// also runs the receiver's TCP work.
type h1Conn struct {
	net.Conn
}

// dialH1 dials with d and wraps the connection in an h1Conn.
func dialH1(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &h1Conn{Conn: c}, nil
	}
}

// ReadFrom is what net/http's transport writes a request body with (after
// the headers, which it flushes first): io.Copy hands it the body limited
// to its Content-Length.
func (c *h1Conn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if sr, ok := lr.R.(*sentReader); ok {
			bufs := sr.take(lr.N)
			n, err := bufs.WriteTo(c.Conn)
			lr.N -= n
			return n, err
		}
	}
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// take returns the unread parts, at most n bytes of them, as buffers for
// one vectored write, and marks them read.
func (r *sentReader) take(n int64) net.Buffers {
	var bufs net.Buffers
	for ; r.i < len(r.parts) && n > 0; r.i++ {
		p := r.parts[r.i]
		if int64(len(p)) > n {
			bufs = append(bufs, p[:n])
			r.parts[r.i] = p[n:]
			return bufs
		}
		if len(p) > 0 {
			bufs = append(bufs, p)
		}
		n -= int64(len(p))
	}
	return bufs
}
