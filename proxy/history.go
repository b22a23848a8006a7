package proxy

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"ccmux/internal/history"
)

// recording gathers, as a /v1/messages answer goes to the client, what the
// request history keeps of it: the providers tried, when the status line
// went out, and the token counts of the answer's usage. It sees the bytes
// the client gets, never keeps them: only a non-streaming answer's last
// tailSize bytes, where its usage is, until the request ends.
type recording struct {
	tried     []string
	firstByte time.Time
	stream    bool
	tail      []byte // a JSON answer's last bytes
	usage     tokenUsage
}

// tailSize bounds the bytes kept of a non-streaming answer: Anthropic puts
// usage last, in well under 1 KB.
const tailSize = 4 << 10

// tokenUsage is the usage object of an answer or stream event; a field
// absent from it stays nil.
type tokenUsage struct {
	Input      *int64 `json:"input_tokens"`
	Output     *int64 `json:"output_tokens"`
	CacheRead  *int64 `json:"cache_read_input_tokens"`
	CacheWrite *int64 `json:"cache_creation_input_tokens"`
}

// merge takes the fields u has: message_delta's counts are cumulative and
// replace message_start's.
func (t *tokenUsage) merge(u tokenUsage) {
	for _, f := range [...]struct{ dst, src **int64 }{{&t.Input, &u.Input}, {&t.Output, &u.Output}, {&t.CacheRead, &u.CacheRead}, {&t.CacheWrite, &u.CacheWrite}} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
}

func (t *tokenUsage) known() bool { return t.Input != nil || t.Output != nil }

// trying notes that c is the candidate being tried now.
func (e *exchange) trying(c Candidate) {
	e.provider, e.modelSent = c.Provider, c.Model
	if e.rec != nil {
		e.rec.tried = append(e.rec.tried, c.Provider)
	}
}

// header is the answer's status line going out.
func (r *recording) header(h http.Header) {
	if r.firstByte.IsZero() {
		r.firstByte = time.Now()
		r.stream = strings.HasPrefix(h.Get("Content-Type"), "text/event-stream")
	}
}

var (
	eventMessagePrefix = []byte("event: message_")
)

// write sees bytes going to the client: one whole event at a time for a
// stream (relayStream writes each event with one Write), chunks of the body
// otherwise. Of a stream only message_start and message_delta are parsed;
// every other event costs a prefix compare.
func (r *recording) write(b []byte) {
	if r.stream {
		if len(b) > len(eventMessagePrefix) && bytes.HasPrefix(b, eventMessagePrefix) {
			if c := b[len(eventMessagePrefix)]; c == 's' || c == 'd' {
				r.event(b)
			}
		}
		return
	}
	if len(b) >= tailSize {
		r.tail = append(r.tail[:0], b[len(b)-tailSize:]...)
		return
	}
	if over := len(r.tail) + len(b) - tailSize; over > 0 {
		r.tail = append(r.tail[:0], r.tail[over:]...)
	}
	r.tail = append(r.tail, b...)
}

// event reads the usage of a message_start or message_delta event: only
// the usage object is decoded (the last one in the event; a message_start's
// content is empty, and inside a JSON string a quote is escaped, so
// "usage" followed by a colon is a key).
func (r *recording) event(ev []byte) {
	r.usage.merge(usageAfter(ev))
}

// bodyUsage reads the usage object at the end of a non-streaming answer.
func (r *recording) bodyUsage() {
	r.usage.merge(usageAfter(r.tail))
}

var usageKey = []byte(`"usage"`)

// usageAfter decodes the object of the last "usage" key in b; the zero
// tokenUsage when there is none.
func usageAfter(b []byte) tokenUsage {
	var u tokenUsage
	i := bytes.LastIndex(b, usageKey)
	if i < 0 {
		return u
	}
	rest := bytes.TrimLeft(b[i+len(usageKey):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return u
	}
	sc := &scanner{b: rest[1:]}
	sc.ws()
	if !sc.consume('{') {
		return u
	}
	for {
		sc.ws()
		if sc.consume('}') {
			return u
		}
		k, err := sc.key()
		sc.ws()
		if err != nil || !sc.consume(':') {
			return tokenUsage{}
		}
		sc.ws()
		var dst **int64
		switch string(k) {
		case "input_tokens":
			dst = &u.Input
		case "output_tokens":
			dst = &u.Output
		case "cache_read_input_tokens":
			dst = &u.CacheRead
		case "cache_creation_input_tokens":
			dst = &u.CacheWrite
		}
		start := sc.i
		if err := sc.skipValue(0); err != nil {
			return tokenUsage{}
		}
		if dst != nil {
			if n, err := strconv.ParseInt(string(sc.b[start:sc.i]), 10, 64); err == nil && n >= 0 {
				*dst = &n
			}
		}
		sc.ws()
		sc.consume(',')
	}
}

// record queues the history's line for one /v1/messages request.
func (s *Server) record(ex *exchange, start, end time.Time, status int) {
	rec := ex.rec
	if ex.modelAsked == "" && ex.provider == "" {
		return // refused before it was read (a bad body, a limit)
	}
	if !rec.stream {
		rec.bodyUsage()
	}
	h := history.Request{
		Time: start, Model: ex.modelAsked, Provider: ex.provider, ModelSent: ex.modelSent,
		Status: status, Duration: end.Sub(start), TokensKnown: rec.usage.known(),
	}
	if len(rec.tried) > 1 {
		h.Failover = strings.Join(rec.tried, " → ")
	}
	if !rec.firstByte.IsZero() {
		h.TTFB = max(rec.firstByte.Sub(start), time.Millisecond)
	}
	for _, f := range [...]struct {
		dst *int64
		src *int64
	}{{&h.Input, rec.usage.Input}, {&h.Output, rec.usage.Output}, {&h.CacheRead, rec.usage.CacheRead}, {&h.CacheWrite, rec.usage.CacheWrite}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	s.History.Record(h)
}

// usageSampleEvery bounds how often answers' rate-limit headers add a
// usage sample per login; the usage endpoint's readings are always kept.
const usageSampleEvery = time.Minute

// sampleUsage adds login's usage windows to the history at most every
// usageSampleEvery: called for every subscription answer.
func (s *Server) sampleUsage(login string) {
	if s.History == nil || s.Usage == nil {
		return
	}
	now := time.Now().UnixNano()
	v, _ := s.sampled.LoadOrStore(login, new(atomic.Int64))
	last := v.(*atomic.Int64)
	prev := last.Load()
	if now-prev < int64(usageSampleEvery) || !last.CompareAndSwap(prev, now) {
		return
	}
	s.RecordUsage(login)
}

// RecordUsage adds what the usage tracker knows of login's windows to the
// request history now (the usage poller calls it after each reading).
func (s *Server) RecordUsage(login string) {
	if s.History == nil || s.Usage == nil {
		return
	}
	u, ok := s.Usage.Login(login)
	if !ok {
		return
	}
	now := time.Now()
	for _, w := range u.Windows {
		sample := history.UsageSample{Time: now, Login: login, Window: w.Name, Utilization: w.Utilization}
		if w.ResetsAt != nil {
			sample.ResetsAt = *w.ResetsAt
		}
		s.History.RecordUsage(sample)
	}
}
