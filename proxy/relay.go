package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// maxEventSize bounds one SSE event, so a broken upstream cannot make the
// proxy buffer without limit. Real events are a few hundred bytes.
const maxEventSize = 16 << 20

// eventReaderSize is the read buffer of a stream. Events longer than it are
// assembled in the event buffer; 1,000 open streams cost 4 MB of it.
const eventReaderSize = 4 << 10

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, eventReaderSize) }}

// eventReader splits a text/event-stream into events. Each event is returned
// as the exact bytes the upstream sent, through the blank line that ends it,
// so the relay forwards it unchanged. Lines may end in "\n" or "\r\n".
type eventReader struct {
	br *bufio.Reader
	ev []byte
}

func newEventReader(r io.Reader) *eventReader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return &eventReader{br: br}
}

// release returns the read buffer to the pool; the reader is unusable after.
func (r *eventReader) release() {
	r.br.Reset(nil)
	readerPool.Put(r.br)
	r.br = nil
}

// errIncompleteEvent reports a stream that ended in the middle of an event.
var errIncompleteEvent = errors.New("the stream ended in the middle of an event")

// Next returns the next event, valid until the following call. At a clean
// end of stream (between events) it returns io.EOF. When the stream stops in
// the middle of an event, the partial event is dropped and the error is
// errIncompleteEvent, or the read error when the connection failed.
func (r *eventReader) Next() ([]byte, error) {
	r.ev = r.ev[:0]
	lineStart := 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.ev = append(r.ev, chunk...)
		switch {
		case err == nil:
			line := r.ev[lineStart:]
			if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
				return r.ev, nil
			}
			lineStart = len(r.ev)
		case errors.Is(err, bufio.ErrBufferFull):
			// A line longer than the buffer: keep assembling it.
		case errors.Is(err, io.EOF):
			if len(r.ev) == 0 {
				return nil, io.EOF
			}
			return nil, errIncompleteEvent
		default:
			return nil, err
		}
		if len(r.ev) > maxEventSize {
			return nil, fmt.Errorf("an event is larger than %d bytes", maxEventSize)
		}
	}
}

// eventType returns the value of the event's "event:" field.
func eventType(ev []byte) []byte {
	for len(ev) > 0 {
		line := ev
		if i := bytes.IndexByte(ev, '\n'); i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		if v, ok := bytes.CutPrefix(line, []byte("event:")); ok {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}

// streamEnded reports whether ev is an event after which the upstream is
// allowed to close the stream: message_stop, or an error it already reported.
func streamEnded(ev []byte) bool {
	t := eventType(ev)
	return string(t) == "message_stop" || string(t) == "error"
}

// relayStream forwards events to the client as they arrive, flushing after
// each one: Claude Code renders tokens as soon as it reads them, so nothing
// may sit in a buffer. first is the event already read by the caller. When
// the upstream dies before message_stop, the client gets an Anthropic
// "event: error" instead of a silently truncated stream; when Stop cuts the
// stream, an overloaded_error that tells the client to retry.
func relayStream(ctx context.Context, w *exchange, first []byte, er *eventReader, provider string) error {
	ended := false
	ev := first
	for {
		ended = streamEnded(ev)
		if _, err := w.Write(ev); err != nil {
			return err // the client went away; the caller cancels the upstream
		}
		if err := w.Flush(); err != nil {
			return err
		}
		var err error
		ev, err = er.Next()
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) && ended {
			return nil
		}
		typ, msg := "api_error", fmt.Sprintf("upstream %s ended the stream before message_stop", provider)
		switch {
		case errors.Is(context.Cause(ctx), errStopping):
			typ, msg = "overloaded_error", "ccmux is stopping; retry the request"
		case errors.Is(err, errIncompleteEvent):
			msg += " (in the middle of an event)"
		case !errors.Is(err, io.EOF):
			msg = fmt.Sprintf("upstream %s failed mid-stream: %v", provider, err)
		}
		w.Write(errorEvent(typ, msg))
		w.Flush()
		return errors.New(msg)
	}
}

// errorEvent is an Anthropic SSE error event.
func errorEvent(typ, msg string) []byte {
	b := append([]byte("event: error\ndata: "), errorBody(typ, msg)...)
	return append(b, "\n\n"...)
}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies a response body with a pooled buffer. With flush set,
// every read is sent on at once (a compressed event stream, whose events
// cannot be told apart, still must not wait in a buffer).
func copyBody(w *exchange, r io.Reader, flush bool) (int64, error) {
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	if !flush {
		return io.CopyBuffer(writerOnly{w}, r, *bp)
	}
	var total int64
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
			if ferr := w.Flush(); ferr != nil {
				return total, ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// writerOnly hides ReadFrom so io.CopyBuffer uses the pooled buffer.
type writerOnly struct{ io.Writer }

// exchange wraps the client's ResponseWriter to record what the request log
// line reports.
type exchange struct {
	http.ResponseWriter
	status int
	bytes  int64

	modelAsked, provider, modelSent string
}

func (e *exchange) WriteHeader(code int) {
	if e.status == 0 {
		e.status = code
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *exchange) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	n, err := e.ResponseWriter.Write(b)
	e.bytes += int64(n)
	return n, err
}

// Flush sends buffered bytes to the client now.
func (e *exchange) Flush() error {
	switch f := e.ResponseWriter.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return http.NewResponseController(e.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the real ResponseWriter.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// payload is a pooled request body shared by the handler and the upstream
// request bodies the transport reads (it may still be reading after
// RoundTrip returns), so it goes back to the pool only when all are done.
type payload struct {
	b    []byte
	refs int32
	mu   sync.Mutex
}

// payloadClasses are the buffer sizes pooled, one pool each, so a small
// request never pins a buffer sized for a 400 KB conversation (which matters
// with 1,000 open streams). Larger bodies are left to the garbage collector.
var payloadClasses = [...]int{4 << 10, 64 << 10, 512 << 10, 4 << 20}

var payloadPools [len(payloadClasses)]sync.Pool

// newPayload returns an empty payload with room for size bytes.
func newPayload(size int) *payload {
	for i, c := range payloadClasses {
		if size <= c {
			p, _ := payloadPools[i].Get().(*payload)
			if p == nil {
				p = &payload{b: make([]byte, 0, c)}
			}
			p.b = p.b[:0]
			p.refs = 1
			return p
		}
	}
	return &payload{b: make([]byte, 0, size), refs: 1}
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
	for i, c := range payloadClasses {
		if cap(p.b) == c {
			payloadPools[i].Put(p)
			return
		}
	}
}

// reader returns a request body over p that releases it on Close.
func (p *payload) reader() io.ReadCloser {
	p.retain()
	return &payloadReader{Reader: bytes.NewReader(p.b), p: p}
}

type payloadReader struct {
	*bytes.Reader
	p    *payload
	once sync.Once
}

func (r *payloadReader) Close() error {
	r.once.Do(r.p.release)
	return nil
}
