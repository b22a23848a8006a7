package proxy

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Health of upstream HTTP/2 connections. A laptop's connection can die
// without a word (sleep, a new Wi-Fi, a NAT that forgot it): no FIN, no
// reset, the bytes just go nowhere, and the kernel gives up only after
// minutes. So the pool asks:
//
//   - While a connection carries requests, one goroutine per pool looks
//     every healthTick for a connection nothing was read from for
//     healthReadIdle, pings it, and closes it when the ACK takes longer
//     than healthPingTimeout. The upstream answers pings while it thinks,
//     so a long non-streaming answer is not cut; a streaming one is read
//     from all the time and never pinged. The goroutine ends when no
//     connection carries a request: an idle ccmux wakes for nothing, with
//     or without connections (x/net's ReadIdleTimeout would ping idle
//     connections every 10 s until they close 90 s later).
//   - Before a connection nothing was read from for reuseIdle gets a
//     request, it is pinged (as Chrome does with an HTTP/2 session idle
//     for 10 s), and the request goes on a new connection if no ACK comes
//     within reusePingTimeout; it never goes out on a dead one.
//   - A connection whose request got no answer within api_timeout_ms is
//     retired: it finishes what it carries and is never handed out again.
//
// A request sent on a connection that dies unnoticed is therefore ended
// within healthReadIdle + healthTick + healthPingTimeout, and sent once
// more on a new connection when that is safe (see sendNote.unprocessed).
const (
	healthReadIdle    = 10 * time.Second
	healthTick        = time.Second
	healthPingTimeout = 5 * time.Second
	reuseIdle         = 10 * time.Second
	reusePingTimeout  = 3 * time.Second
)

// monoBase makes monoNow a monotonic clock cheap to store atomically.
var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) }

// Read notes when the upstream last sent anything: see h2Pool.stale and
// sendNote.unprocessed.
func (c *h2Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(monoNow())
	}
	return n, err
}

// sendNote follows one upstream HTTP/2 request through the pool: which
// connection carried it, and how much of it was written.
type sendNote struct {
	pool *h2Pool
	// fresh asks the pool for a newly dialled connection (the retry).
	fresh bool
	// trips counts the connections asked of the pool: x/net asks again
	// for each of its own retries (see errSentTwice).
	trips atomic.Int32
	// bodyWritten is set once the transport has read the whole body.
	bodyWritten atomic.Bool
	cc          atomic.Pointer[http2.ClientConn]
	wire        atomic.Pointer[h2Conn]
	handedAt    atomic.Int64 // monoNow when the pool handed cc out
}

type sendNoteKey struct{}

func withSendNote(ctx context.Context, n *sendNote) context.Context {
	return context.WithValue(ctx, sendNoteKey{}, n)
}

func sendNoteOf(ctx context.Context) *sendNote {
	n, _ := ctx.Value(sendNoteKey{}).(*sendNote)
	return n
}

// handed records the connection the pool gave the request; the pool
// counts it busy until ended. p.mu is held, so that the pool never finds
// a connection idle while a stream is reserved on it.
func (n *sendNote) handed(cc *http2.ClientConn, w *h2Conn) {
	if n == nil {
		return
	}
	if w != nil {
		w.requests.Add(1)
	}
	if old := n.wire.Swap(w); old != nil { // x/net or the retry asked again
		old.requests.Add(-1)
	}
	n.cc.Store(cc)
	n.handedAt.Store(monoNow())
}

// ended records that the request is over (its watchdog stopped); a
// retired connection closes when its last request ends.
func (n *sendNote) ended() {
	if n == nil {
		return
	}
	if w := n.wire.Swap(nil); w != nil && w.requests.Add(-1) == 0 && w.retired.Load() {
		n.cc.Load().Close()
	}
}

// silentConnMessage is what a request or stream on a connection its
// health check condemned fails with, instead of x/net's "client connection
// force closed via ClientConn.Close", which reads as if ccmux had cut it for
// no reason.
const silentConnMessage = "the connection to the upstream went silent (no answer to a ping), so ccmux closed it"

type silentConnError struct{ err error }

func (e *silentConnError) Error() string { return silentConnMessage }
func (e *silentConnError) Unwrap() error { return e.err }

// explain replaces err with silentConnError when the request's connection
// was condemned.
func (n *sendNote) explain(err error) error {
	if n == nil || err == nil {
		return err
	}
	if w := n.wire.Load(); w != nil && w.condemned.Load() {
		return &silentConnError{err}
	}
	return err
}

// retire retires the connection that carried the request, if any.
func (n *sendNote) retire() {
	if n == nil {
		return
	}
	if cc := n.cc.Load(); cc != nil {
		n.pool.retire(cc)
	}
}

// unprocessed reports whether an HTTP/2 request that failed with err,
// before any byte of its answer arrived, certainly or most likely never
// reached the upstream whole, so that sending it once more on a new
// connection cannot make the upstream generate the answer twice. The rule
// is "a request that may have been processed is never sent twice"; each
// case is judged so:
//
//   - REFUSED_STREAM, a GOAWAY with NO_ERROR whose last stream id is below
//     the request's, a connection that closed before the stream opened:
//     RFC 9113 section 8.7 says these were not processed, and x/net
//     already resends them by itself (through GetBody) before RoundTrip
//     returns, so they do not reach here (TestRefusedStreamRetried,
//     TestGoAwayUnprocessedRetried). x/net would resend up to 7 times over
//     a minute of back-off; send's GetBody and the pool stop it after one
//     resend (errSentTwice, TestRefusedTwiceNotSentAgain). A GOAWAY with
//     an error code on a connection's first stream x/net does not resend:
//     it reaches here and is judged by the cases below (after a whole
//     body: not resent).
//     A request resent once, by x/net or by send, is not resent again.
//   - No connection was handed out (a dial failed): the error is the
//     upstream's, reported as it is; a second dial would only double the
//     wait before failover.
//   - The body was not written whole (the connection broke during the
//     upload, whatever broke it): the upstream cannot have a complete
//     request, and a Messages API request is not processed without its
//     JSON. Safe.
//   - The body was written whole, and ccmux itself found the connection
//     dead: a health-check PING got no ACK, and nothing at all was read from the
//     connection after the request was handed to it. The path went silent
//     and the upstream gave no sign of having seen the request, so it most
//     likely went into the void with the rest (a blackholed path, a slept
//     laptop, a changed network). The remaining risk, a request that
//     arrived just before the path died and was answered into the void, is
//     bounded to that one silent window: a longer generation shows up as
//     ping ACKs read after the request, which rules the retry out.
//   - Anything else after a whole body: a reset or end of the connection
//     by the peer (it is alive, and may have read the request and be
//     generating), a stream reset, a timeout, the client going away. Not
//     sent again; TestWrittenRequestIsNeverResent holds this.
//
// HTTP/1.1 requests never get here: net/http resends a request it never
// wrote and closes a connection whose request was cancelled.
func (n *sendNote) unprocessed(err error) bool {
	w := n.wire.Load()
	if w == nil || errors.Is(err, errSentTwice) {
		return false
	}
	if !n.bodyWritten.Load() {
		return true
	}
	return w.condemned.Load() && w.lastRead.Load() <= n.handedAt.Load()
}

// errSentTwice ends a request that went upstream twice: x/net resends a
// refused stream, or one a GOAWAY left unprocessed, up to 7 times with
// back-off (over a minute); send and the pool stop it after one resend, so
// that the client gets its error, or the next provider its chance, at once.
var errSentTwice = errors.New("the upstream turned the request away again after it was sent a second time (HTTP/2 REFUSED_STREAM or GOAWAY); it is not sent a third time")

// trip counts one more connection asked of the pool for the request, and
// reports whether it may have one: at most two, one send and one resend.
func (n *sendNote) trip() bool {
	return n == nil || n.trips.Add(1) <= 2
}

// sentTwice reports whether the request already had its resend. x/net
// asks for the body (GetBody) before its back-off, so a body refused then
// ends the request at once instead of a second later.
func (n *sendNote) sentTwice() bool {
	return n != nil && n.trips.Load() >= 2
}

// retire takes cc out of the pool: the requests it carries go on, and it
// closes when they end (or when a health check finds it dead).
func (p *h2Pool) retire(cc *http2.ClientConn) {
	p.mu.Lock()
	p.forgetLocked(cc)
	w := p.wires[cc]
	p.mu.Unlock()
	closeWhenIdle(cc, w)
}

// closeWhenIdle closes cc, now if it carries no request, else when its
// last one ends (sendNote.ended). Whether it carries requests is the
// pool's count, not cc.State(): State waits for the connection's write
// lock, which a write blocked on a dead path holds for minutes.
func closeWhenIdle(cc *http2.ClientConn, w *h2Conn) {
	cc.SetDoNotReuse()
	if w == nil {
		return // x/net marked it dead (closed, or a GOAWAY): it closes it when idle
	}
	w.retired.Store(true)
	if w.requests.Load() == 0 {
		cc.Close()
	}
}

// busyLocked reports whether cc carries requests. p.mu is held.
func (p *h2Pool) busyLocked(cc *http2.ClientConn) bool {
	w := p.wires[cc]
	return w != nil && w.requests.Load() > 0
}

// retireAll retires every pooled connection; see Server.CloseUpstreamConns.
// Those carrying requests are pinged at once: after a sleep or a network
// change, a dead one ends its requests in healthPingTimeout (and they may
// be sent again, see sendNote.unprocessed) instead of after healthReadIdle.
func (p *h2Pool) retireAll() {
	p.mu.Lock()
	var all []*http2.ClientConn
	for addr, ccs := range p.conns {
		all = append(all, ccs...)
		delete(p.conns, addr)
	}
	wires := make([]*h2Conn, len(all))
	for i, cc := range all {
		wires[i] = p.wires[cc]
		if p.busyLocked(cc) && p.checking[cc] == nil {
			p.startCheckLocked(cc, p.ping)
		}
	}
	p.mu.Unlock()
	for i, cc := range all {
		closeWhenIdle(cc, wires[i])
	}
}

// stale reports whether nothing was read from cc for reuseIdle, so it is
// pinged before it gets a request. p.mu is held.
func (p *h2Pool) stale(cc *http2.ClientConn) bool {
	w := p.wires[cc]
	return w != nil && monoNow()-w.lastRead.Load() > int64(p.reuseIdle)
}

// startCheckLocked pings cc in the background; requests wait on the
// returned channel, then look again. p.mu is held.
func (p *h2Pool) startCheckLocked(cc *http2.ClientConn, timeout time.Duration) chan struct{} {
	done := make(chan struct{})
	p.checking[cc] = done
	go p.check(cc, done, timeout)
	return done
}

// check pings cc; a connection that does not answer within timeout is
// condemned and closed, its requests failing. A ping that fails because
// the connection ended is the peer's doing, not silence: the connection is
// dropped without condemning it (see sendNote.unprocessed). An answered
// ping is a read, so cc is no longer stale.
func (p *h2Pool) check(cc *http2.ClientConn, done chan struct{}, timeout time.Duration) {
	defer close(done)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	err := cc.Ping(ctx)
	cancel()
	p.mu.Lock()
	delete(p.checking, cc)
	w := p.wires[cc]
	if err != nil {
		p.forgetLocked(cc)
	}
	p.mu.Unlock()
	if err != nil {
		if w != nil && errors.Is(err, context.DeadlineExceeded) {
			w.condemned.Store(true) // before its streams fail: see unprocessed
		}
		cc.Close()
	}
}

// reserveFresh reserves a stream on a connection dialled for req itself.
func (p *h2Pool) reserveFresh(req *http.Request, d *h2Dial) bool {
	if d.cc == nil || !d.cc.ReserveNewRequest() {
		return false
	}
	p.mu.Lock()
	sendNoteOf(req.Context()).handed(d.cc, p.wires[d.cc])
	p.watchLocked()
	p.mu.Unlock()
	return true
}

// watchLocked starts watch unless it runs. p.mu is held.
func (p *h2Pool) watchLocked() {
	if !p.watching {
		p.watching = true
		go p.watch()
	}
}

// watch checks the connections that carry requests and were quiet for
// readIdle, every tick, until none carries a request.
func (p *h2Pool) watch() {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for range t.C {
		p.mu.Lock()
		busy := false
		now := monoNow()
		for cc, w := range p.wires {
			if w.requests.Load() == 0 {
				continue
			}
			busy = true
			if p.checking[cc] == nil && now-w.lastRead.Load() > int64(p.readIdle) {
				p.startCheckLocked(cc, p.ping)
			}
		}
		if !busy {
			p.watching = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}
