package proxy

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// A request body is held as a list of segments, filled as it arrives
// (readBody). When one is full, the routing scan steps to its end and the
// next segment starts at the scan's checkpoint, the bytes after it (a
// message still arriving, usually a few KB: the carry) copied over; the
// full one ends at the checkpoint and stays (unless less than half of it
// would: see bodyGrowth). So only the carry is copied (a buffer grown by
// copying moved 320 KiB of a 400 KB conversation), and the scan always
// works on one contiguous segment. The hot path reads the segments in
// place (sentFor, the subagent tag, the signature check); the rare one
// that needs a single slice joins them once (payload.bytes).

// firstBodyChunk is the first segment's size.
const firstBodyChunk = 64 << 10

// bodyGrowth is how many times larger the next segment is when less than
// half of a full one would stay (an element larger than half of it, or a
// body that is not a conversation): all of it is carried and it goes back
// to its pool, as when a buffer grew by copying, so a 1 MB string copies
// what it copied then. A full segment at least half of which stays is kept
// and the next one is twice its size. So every kept segment is at least
// half full, and a client that stops sending holds at most four times what
// it sent (64 KiB before the first segment fills).
const bodyGrowth = 4

// payload is a request body shared by the handler and the upstream request
// bodies the transport reads (it may still be reading after RoundTrip
// returns), so its buffers go back to their pools only when all are done.
// Their capacity counts against the server's body budget while it is held.
type payload struct {
	// segs is the body, in order; each segment after the first starts at
	// a checkpoint of the routing scan. Offsets into the body (the
	// routing fields') count from the start of segs[0].
	segs [][]byte
	size int // the body's length: the sum of the segments'
	// bufs are the buffers the segments were read into, one per segment
	// while the body arrives; each goes back to its pool once.
	bufs []*[]byte
	// joined is bytes' copy of a body in several segments: the
	// collector's, and not counted against the budget, like a translation.
	joined []byte
	copied int // the bytes carried to new segments, for the tests

	refs int32
	mu   sync.Mutex
	held *atomic.Int64 // the budget it counts against; nil for none

	// The first segments' slots, so that a body takes no allocation for them.
	segs0 [4][]byte
	bufs0 [4]*[]byte
}

// payloadClasses are the buffer sizes pooled, one pool each, so a small
// request never pins a buffer sized for a 400 KB conversation (which matters
// with 1,000 open streams). A body's segments grow through them as it
// arrives (see readBody), so each is pooled: a 200 KB conversation used to
// get its 128 KiB and 256 KiB buffers fresh, zeroed, and left to the
// collector, and a 1 MB one its 1 and 2 MiB buffers, which the runtime then
// kept giving back to the OS and faulting in again (a third of the proxy's
// CPU). Larger buffers are left to the garbage collector (and given back to
// the OS, see giveBack): a pool would keep a burst of 30 MB bodies resident.
var payloadClasses = [...]int{4 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20}

var payloadPools [len(payloadClasses)]sync.Pool // of *[]byte

// newPayload returns an empty payload with room for size bytes, counted
// against held when it is not nil.
func newPayload(size int, held *atomic.Int64) *payload {
	p := &payload{refs: 1, held: held}
	p.segs, p.bufs = p.segs0[:0], p.bufs0[:0]
	buf := p.buffer(size)
	p.segs = append(p.segs, *buf)
	p.bufs = append(p.bufs, buf)
	return p
}

// bytesPayload returns a payload holding b, a body made in memory (a
// translation, a body without its thinking); it holds no pooled buffer.
func bytesPayload(b []byte) *payload {
	p := &payload{refs: 1, size: len(b)}
	p.segs = append(p.segs0[:0], b)
	return p
}

// buffer returns an empty buffer with room for size bytes, counted against
// the payload's budget.
func (p *payload) buffer(size int) *[]byte {
	var buf *[]byte
	for i, c := range payloadClasses {
		if size <= c {
			buf, _ = payloadPools[i].Get().(*[]byte)
			if buf == nil {
				b := make([]byte, 0, c)
				buf = &b
			}
			break
		}
	}
	if buf == nil {
		b := make([]byte, 0, size)
		buf = &b
	}
	*buf = (*buf)[:0]
	if p.held != nil {
		p.held.Add(int64(cap(*buf)))
	}
	return buf
}

// putBuffer gives buf back to its pool and reports whether it was a large
// one, left to the collector.
func (p *payload) putBuffer(buf *[]byte) (large bool) {
	if p.held != nil {
		p.held.Add(-int64(cap(*buf)))
	}
	for i, c := range payloadClasses {
		if cap(*buf) == c {
			payloadPools[i].Put(buf)
			return false
		}
	}
	return cap(*buf) >= largeBody
}

// last returns the last segment and where it starts in the body.
func (p *payload) last() (seg []byte, base int) {
	seg = p.segs[len(p.segs)-1]
	return seg, p.size - len(seg)
}

// room returns the free space at the end of the last segment, for a read.
func (p *payload) room() []byte {
	seg, _ := p.last()
	return seg[len(seg):cap(seg)]
}

// filled adds the n bytes just read into room to the body.
func (p *payload) filled(n int) {
	i := len(p.segs) - 1
	p.segs[i] = p.segs[i][:len(p.segs[i])+n]
	p.size += n
}

// nextSegment steps scan to the end of the full last segment and says how
// it ends: keep of its bytes stay, up to the checkpoint, or none when that
// is less than half of them, and the next one has room for size bytes,
// twice the full one's (bodyGrowth times when none stay), but no more than
// the carry and the rest of a body of limit bytes need.
func (p *payload) nextSegment(scan *routingScan, limit int64) (keep, size int) {
	seg, base := p.last()
	scan.step(seg, base)
	keep = scan.at - base
	size = 2 * cap(seg)
	if keep < len(seg)/2 {
		keep, size = 0, bodyGrowth*cap(seg)
	}
	carry := len(seg) - keep
	return keep, int(min(int64(size), limit-int64(p.size)+int64(carry)))
}

// cut ends the last segment after its first keep bytes and starts a new
// one, with room for size bytes, holding the rest of it (the carry), which
// size must exceed. A segment that keeps nothing goes back to its pool.
func (p *payload) cut(keep, size int) {
	i := len(p.segs) - 1
	seg := p.segs[i]
	buf := p.buffer(size)
	next := append(*buf, seg[keep:]...)
	p.copied += len(seg) - keep
	if keep == 0 {
		if p.putBuffer(p.bufs[i]) {
			giveBack()
		}
		p.segs[i], p.bufs[i] = next, buf
		return
	}
	p.segs[i] = seg[:keep]
	p.segs = append(p.segs, next)
	p.bufs = append(p.bufs, buf)
}

// bytes returns the body in one slice: the segment itself when there is
// one, else a copy made once. Only the rare paths ask for it (an OpenAI
// translation, a retry without thinking, a subagent tag to strip).
func (p *payload) bytes() []byte {
	if len(p.segs) == 1 {
		return p.segs[0]
	}
	if p.joined == nil {
		p.joined = bytes.Join(p.segs, nil)
	}
	return p.joined
}

// set makes b, a body in one slice, the payload's body; the buffers stay
// held until it is released.
func (p *payload) set(b []byte) {
	p.segs = append(p.segs[:0], b)
	p.size, p.joined = len(b), nil
}

// span returns the body's bytes from from to to: a slice of a segment when
// they lie in one, else a copy.
func (p *payload) span(from, to int) []byte {
	at := 0
	for _, seg := range p.segs {
		if from >= at && to <= at+len(seg) {
			return seg[from-at : to-at]
		}
		at += len(seg)
	}
	return bytes.Join(p.appendRange(nil, from, to), nil)
}

// appendRange appends to dst the pieces of the segments that hold the
// body's bytes from from to to, in order, without copying them.
func (p *payload) appendRange(dst [][]byte, from, to int) [][]byte {
	at := 0
	for _, seg := range p.segs {
		lo, hi := max(from-at, 0), min(to-at, len(seg))
		if lo < hi {
			dst = append(dst, seg[lo:hi])
		}
		at += len(seg)
	}
	return dst
}

func (p *payload) retain() {
	p.mu.Lock()
	p.refs++
	p.mu.Unlock()
}

func (p *payload) release() {
	p.mu.Lock()
	p.refs--
	done := p.refs == 0
	p.mu.Unlock()
	if !done {
		return
	}
	large := false
	for i, buf := range p.bufs {
		if p.putBuffer(buf) {
			large = true
		}
		p.bufs[i] = nil
	}
	p.bufs, p.segs, p.joined, p.held = nil, nil, nil, nil
	if large {
		giveBack()
	}
}

// finishBody scans the rest of the complete body p from scan's checkpoint.
// The scanner reads only the last segment, so an error's offset counts
// from its start: a body in several segments that is malformed (the rare
// case) is scanned again whole to report the offset scanRouting would.
func (r *routingScan) finishBody(p *payload) (routingFields, error) {
	seg, base := p.last()
	f, err := r.finish(seg, base)
	if err != nil && base > 0 {
		_, err = scanRouting(p.bytes())
	}
	return f, err
}

// largeBody is the size past which a released buffer asks for its memory
// to go back to the OS.
const largeBody = 4 << 20

// giveBackPending is set while a giveBack is scheduled.
var giveBackPending atomic.Bool

// giveBack returns freed memory to the OS a second after large bodies were
// released (once per burst, not once per body): the Go runtime would keep a
// burst's heap resident for minutes, and a tray app should shrink back.
func giveBack() {
	if giveBackPending.CompareAndSwap(false, true) {
		time.AfterFunc(time.Second, func() {
			// The first collection moves the pools' buffers to their
			// victim caches, the second (FreeOSMemory's) frees them.
			runtime.GC()
			debug.FreeOSMemory()
			giveBackPending.Store(false)
		})
	}
}
