package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"ccmux/proxy/openai"
)

// relay writes a committed answer to the client: its status and headers,
// then the buffered body, the events of a stream, or the body as it
// arrives. An upstream that fails after the status line went out never
// looks like a whole answer: a stream ends with an Anthropic error event,
// any other body with the client's connection cut (as ReverseProxy does).
func (h *handler) relay(w *exchange, r *http.Request, a *answer, c Candidate) {
	defer a.close()
	copyResponseHeader(w.Header(), a.resp.Header)
	w.WriteHeader(a.status())
	switch {
	case a.buffered:
		if _, err := w.Write(a.first); err == nil {
			w.finish()
		}
	case a.oai != nil:
		if err := relayOpenAI(r.Context(), w, a); err != nil {
			h.s.logger().Warn("stream interrupted", "provider", c.Provider, "model", clip(c.Model), "error", err)
		}
	case a.events != nil:
		if err := relayStream(r.Context(), w, a.first, a.events, c.Provider); err != nil {
			h.s.logger().Warn("stream interrupted", "provider", c.Provider, "model", clip(c.Model), "error", err)
		}
	default:
		flush := strings.HasPrefix(a.resp.Header.Get("Content-Type"), "text/event-stream")
		upErr, clientErr := copyBody(w, a.first, a.body, *a.buf, flush)
		if upErr == nil && clientErr == nil {
			w.finish()
		}
		if upErr != nil && clientErr == nil && r.Context().Err() == nil {
			w.aborted = true
			h.s.logger().Warn("the upstream answer failed after it started; cutting the client's connection",
				"provider", c.Provider, "model", clip(c.Model), "error", upErr)
		}
	}
}

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

// eventBuffered reports whether the next event is already read, whole:
// Next will return it without waiting for the upstream. Events that
// arrived together then leave together, in one write to the client instead
// of one per event (a stream of 200 events came in a few dozen reads), and
// none waits for more to arrive.
func (r *eventReader) eventBuffered() bool {
	b, _ := r.br.Peek(r.br.Buffered())
	return bytes.HasPrefix(b, []byte("\n")) || bytes.HasPrefix(b, []byte("\r\n")) ||
		bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
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
		if !er.eventBuffered() {
			if err := w.Flush(); err != nil {
				return err
			}
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
	b := append([]byte("event: error\ndata: "), openai.ErrorBody(typ, msg)...)
	return append(b, "\n\n"...)
}

// copyPool holds the buffers non-streaming answers are copied through.
var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody sends first, then the rest of r, to the client through buf.
// With flush set, every read is sent on at once (a compressed event
// stream, whose events cannot be told apart, still must not wait in a
// buffer). upErr is the upstream failing; clientErr the client going away.
func copyBody(w *exchange, first []byte, r io.Reader, buf []byte, flush bool) (upErr, clientErr error) {
	chunk := first
	for {
		if len(chunk) > 0 {
			if _, err := w.Write(chunk); err != nil {
				return nil, err
			}
			if flush {
				if err := w.Flush(); err != nil {
					return nil, err
				}
			}
		}
		n, err := r.Read(buf)
		chunk = buf[:n]
		if err != nil {
			if n > 0 {
				if _, werr := w.Write(chunk); werr != nil {
					return nil, werr
				}
			}
			if errors.Is(err, io.EOF) {
				return nil, nil
			}
			return err, nil
		}
	}
}

// exchange wraps the client's ResponseWriter to record what the request log
// line reports.
type exchange struct {
	http.ResponseWriter
	status int
	bytes  int64

	modelAsked, provider, modelSent string
	// aborted asks ServeHTTP to cut the client's connection: the answer
	// already started and cannot be finished honestly.
	aborted bool
	// rec gathers the request history's line (history.go); nil when the
	// history is off or this is not a /v1/messages request.
	rec *recording
}

func (e *exchange) WriteHeader(code int) {
	if e.status == 0 {
		e.status = code
	}
	if e.rec != nil {
		e.rec.header(e.Header())
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *exchange) Write(b []byte) (int, error) {
	if e.status == 0 {
		e.status = http.StatusOK
	}
	if e.rec != nil {
		e.rec.header(e.Header())
		e.rec.write(b)
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

// finish sends a whole answer of a declared length now: the client has
// all it waits for, and closing the upstream request and the log line
// (a write to the log file) happen after, not before. An answer of unknown
// length is left to net/http, which may still size it or must end its
// chunks when the handler returns.
func (e *exchange) finish() {
	if e.Header().Get("Content-Length") != "" {
		e.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real ResponseWriter.
func (e *exchange) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// apiErrorShape is Anthropic's error shape, as openai.ErrorBody writes it.
type apiErrorShape struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers with Anthropic's error shape.
// writeError and writeJSON write ccmux's own answers; nosniff keeps a
// browser from reading one as anything but JSON (a script, a page).
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(openai.ErrorBody(typ, msg))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "api_error", "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}
