package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// h1Client sends requests to plain http:// upstreams over HTTP/1.1 on the
// calling goroutine: it writes the request, reads the answer and hands the
// connection back to its pool once the body was read to the end.
//
// http.Transport runs two goroutines per connection (one writes requests,
// one reads answers) and passes each request and answer between them and
// the caller. On a loopback upstream those hand-offs, each a thread wake-up,
// cost more CPU than the rest of a request, so the proxy uses this client
// where no HTTP/2, TLS or proxy is involved (the bench numbers are in the
// commit that added it). https:// upstreams keep the shared Transport.
type h1Client struct {
	dialer        net.Dialer
	headerTimeout time.Duration // from writing the request to the answer's headers
	idleTimeout   time.Duration // an idle connection is closed after it
	maxIdle       int           // idle connections kept per upstream address

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by host:port, most recently used last
	closed bool                 // set by closeIdle until the next request
}

// h1IdlePerHost bounds idle connections per upstream: 32+ concurrent Claude
// Code sessions, with room to spare.
const h1IdlePerHost = 256

// h1IdleTimeout is how long an unused upstream connection stays open.
const h1IdleTimeout = 90 * time.Second

// smallBody is the size up to which a body is copied behind the request
// head and sent with it in one write; larger bodies go out with writev.
const smallBody = 16 << 10

func newH1Client(connect, header time.Duration) *h1Client {
	return &h1Client{
		dialer:        net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second},
		headerTimeout: header,
		idleTimeout:   h1IdleTimeout,
		maxIdle:       h1IdlePerHost,
		idle:          map[string][]*h1Conn{},
	}
}

// h1Request is one upstream request.
type h1Request struct {
	method string
	addr   string // host:port to dial
	host   string // the Host header
	uri    string // path and query
	header http.Header
	body   []byte
}

// h1Conn is an upstream connection with its read buffer.
type h1Conn struct {
	net.Conn
	br     *bufio.Reader
	head   []byte // the request head being written, reused
	addr   string
	client *h1Client
	reused bool        // it served a request before this one
	idleAt time.Time   // when it went back to the pool
	timer  *time.Timer // closes it after idleTimeout in the pool
}

// errStale marks a reused connection the upstream had closed before it
// read the request: the request is sent again on a new connection.
var errStale = errors.New("the upstream closed a kept-alive connection")

// roundTrip sends req and returns the answer, whose body must be closed.
// ctx ending closes the connection at once, whatever is in progress.
func (c *h1Client) roundTrip(ctx context.Context, req *h1Request) (*http.Response, error) {
	pc, err := c.get(ctx, req.addr)
	if err != nil {
		return nil, err
	}
	resp, err := pc.roundTrip(ctx, req)
	if errors.Is(err, errStale) {
		// Like net/http, resend only when the upstream could not have
		// acted on the request: a reused connection failed the write or
		// closed before one byte of the answer.
		if pc, err = c.dial(ctx, req.addr); err != nil {
			return nil, err
		}
		resp, err = pc.roundTrip(ctx, req)
	}
	return resp, err
}

// get takes the most recently used idle connection to addr, or dials one.
func (c *h1Client) get(ctx context.Context, addr string) (*h1Conn, error) {
	c.mu.Lock()
	c.closed = false
	for list := c.idle[addr]; len(list) > 0; list = c.idle[addr] {
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		c.idle[addr] = list[:len(list)-1]
		pc.timer.Stop()
		if time.Since(pc.idleAt) < c.idleTimeout {
			c.mu.Unlock()
			pc.reused = true
			return pc, nil
		}
		pc.Conn.Close()
	}
	c.mu.Unlock()
	return c.dial(ctx, addr)
}

func (c *h1Client) dial(ctx context.Context, addr string) (*h1Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &h1Conn{Conn: conn, br: bufio.NewReaderSize(conn, 4<<10), addr: addr, client: c}, nil
}

// put returns a connection whose answer was read to the end to the pool.
func (c *h1Client) put(pc *h1Conn) {
	if pc.br.Buffered() > 0 { // bytes nobody asked for: not a usable connection
		pc.Conn.Close()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[pc.addr]
	if c.closed || len(list) >= c.maxIdle {
		pc.Conn.Close()
		return
	}
	pc.idleAt = time.Now()
	c.idle[pc.addr] = append(list, pc)
	if pc.timer == nil {
		pc.timer = time.AfterFunc(c.idleTimeout, pc.expire)
	} else {
		pc.timer.Reset(c.idleTimeout)
	}
}

// expire closes pc if it is still idle.
func (pc *h1Conn) expire() {
	c := pc.client
	c.mu.Lock()
	list := c.idle[pc.addr]
	for i, p := range list {
		if p == pc {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			c.idle[pc.addr] = list[:len(list)-1]
			pc.Conn.Close()
			break
		}
	}
	c.mu.Unlock()
}

// closeIdle closes every idle connection; connections in use are closed
// when their requests end (Stop calls it once requests are drained).
func (c *h1Client) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, list := range c.idle {
		for _, pc := range list {
			pc.timer.Stop()
			pc.Conn.Close()
		}
		delete(c.idle, addr)
	}
	c.closed = true
}

// idleConns is the number of idle connections to addr.
func (c *h1Client) idleConns(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.idle[addr])
}

// maxInformational bounds the 1xx answers skipped before the real one, as net/http does.
const maxInformational = 5

func (pc *h1Conn) roundTrip(ctx context.Context, req *h1Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { pc.Conn.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.Conn.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	// No answer (not even its headers) within the timeout ends the attempt;
	// the body may then take as long as a stream lasts.
	if err := pc.SetDeadline(time.Now().Add(pc.client.headerTimeout)); err != nil {
		return fail(err)
	}
	werr := pc.writeRequest(req)
	if errors.Is(werr, errHeaderValue) {
		return fail(werr) // nothing was sent
	}
	// An upstream that refuses the body may still have answered (413,
	// say): read what it sent before reporting the write error.
	if _, err := pc.br.Peek(1); err != nil {
		switch {
		case ctx.Err() != nil:
		case isTimeout(err):
			err = fmt.Errorf("no answer within %s (server.timeouts.api_timeout_ms)", pc.client.headerTimeout)
		case pc.reused && (werr != nil || connClosed(err)):
			err = fmt.Errorf("%w: %w", errStale, err)
		case werr != nil:
			err = werr
		}
		return fail(err)
	}
	resp, err := readResponse(pc.br, req.method)
	if err != nil {
		return fail(err)
	}
	if err := pc.SetDeadline(time.Time{}); err != nil {
		return fail(err)
	}
	keep := !resp.Close && werr == nil
	resp.Body = &h1Body{ctx: ctx, pc: pc, body: resp.Body, stop: stop, keep: keep}
	return resp, nil
}

// readResponse reads an answer's headers, skipping 1xx interim answers.
func readResponse(br *bufio.Reader, method string) (*http.Response, error) {
	req := &http.Request{Method: method}
	for range maxInformational {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
	return nil, errors.New("too many 1xx informational answers")
}

// writeRequest writes the request head and body in one write (writev for
// large bodies). Content-Length is always set; Expect is dropped because
// the body follows the head at once.
func (pc *h1Conn) writeRequest(req *h1Request) error {
	b := pc.head[:0]
	b = append(b, req.method...)
	b = append(b, ' ')
	b = append(b, req.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, req.host...)
	b = append(b, "\r\n"...)
	for k, vs := range req.header {
		if k == "Expect" {
			continue
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return fmt.Errorf("%w: %s", errHeaderValue, k)
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(req.body)), 10)
	b = append(b, "\r\n\r\n"...)
	var err error
	if len(req.body) <= smallBody {
		b = append(b, req.body...)
		_, err = pc.Conn.Write(b)
	} else {
		bufs := net.Buffers{b, req.body}
		_, err = bufs.WriteTo(pc.Conn)
	}
	if cap(b) <= 64<<10 { // keep the buffer unless a body made it large
		pc.head = b[:0]
	}
	return err
}

var errHeaderValue = errors.New("a control character in the value of header")

// validHeaderValue rejects control characters (but tab), which would
// split or corrupt the request; the client's own headers were checked by
// net/http already, so this guards values ccmux adds (credentials).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connClosed reports the errors of a connection the peer closed.
func connClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// h1Body is an answer's body. Closing it after the end returns the
// connection to the pool when the answer allows keep-alive; closing it
// earlier closes the connection (the rest of a stream is not drained).
type h1Body struct {
	ctx    context.Context
	pc     *h1Conn
	body   io.ReadCloser // from http.ReadResponse; its Close would drain
	stop   func() bool   // disarms the cancellation
	keep   bool
	eof    bool
	closed bool
}

var errBodyClosed = errors.New("read on a closed upstream body")

func (b *h1Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBodyClosed
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.ctx.Err() != nil:
		err = context.Cause(b.ctx) // the cancellation closed the connection
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.stop() && b.eof && b.keep {
		b.pc.client.put(b.pc)
		return nil
	}
	return b.pc.Conn.Close()
}
