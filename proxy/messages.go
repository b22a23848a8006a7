package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBodyBytes is the largest request body the proxy accepts (413 above it).
const MaxBodyBytes = 32 << 20

// DefaultBodyBudget is Server.BodyBudget's default.
const DefaultBodyBudget = 256 << 20

// maxModelName bounds the model name a client may ask for; real names are
// under 64 bytes, and a name is cached, logged and echoed in errors.
const maxModelName = 256

// messages serves /v1/messages and /v1/messages/count_tokens: read the
// body, route it, and forward it to the candidates in order.
func (h *handler) messages(w *exchange, r *http.Request, countTokens bool) {
	var scan routingScan
	body, ok := h.readBody(w, r, &scan)
	if !ok {
		return
	}
	// The body goes back as soon as an answer is committed: a stream may
	// stay open for minutes and must not pin it.
	released := false
	release := func() {
		if !released {
			released = true
			body.release()
		}
	}
	defer release()
	f, err := scan.finish(body.b)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	if len(f.Model) > maxModelName {
		writeError(w, http.StatusBadRequest, "invalid_request_error",
			fmt.Sprintf("model: the name is %d bytes long; model names are at most %d bytes", len(f.Model), maxModelName))
		return
	}
	w.modelAsked = f.Model
	tag := findSubagentTag(body.b, &f)
	rt, err := h.st.router.Route(RouteRequest{
		Model:           f.Model,
		Thinking:        thinks(f.ThinkingType),
		WebSearch:       f.WebSearch,
		Subagent:        tag.Model,
		EstimatedTokens: estimateTokens(body.b),
	})
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found_error", err.Error())
		return
	}
	if rt.Subagent {
		body.b = tag.strip(body.b, &f)
	}
	if pin := r.Header.Get("X-Provider"); pin != "" {
		if rt, err = h.st.router.Pin(rt, pin); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
	}
	h.forward(w, r, body, release, &f, rt, countTokens)
}

// thinks reports whether a thinking.type asks for extended thinking:
// "enabled" with a budget, or "adaptive" (Claude Code's main turns).
func thinks(typ string) bool { return typ == "enabled" || typ == "adaptive" }

// forward tries the candidates in order and relays the first usable answer.
// release gives body back once an answer is committed.
func (h *handler) forward(w *exchange, r *http.Request, body *payload, release func(), f *routingFields, rt Route, countTokens bool) {
	ctx := r.Context()
	var (
		failures     []string
		lastReply    *answer   // the last failover-worthy answer, buffered
		lastFrom     Candidate // who sent lastReply
		signIn       string    // the first OAuth provider without a usable login
		others       []string  // failures other than missing logins
		notSupported int
		spent        spentSkip // subscriptions skipped until their limits reset
	)
	for _, c := range rt.Candidates {
		if until, ok := h.s.spentUntil(h.st.logins[c.Index]); ok {
			spent.add(c.Provider, until)
			continue
		}
		w.trying(c)
		ans, err := h.attempt(ctx, r, c, body, f)
		if ctx.Err() != nil {
			ans.close()
			if errors.Is(context.Cause(ctx), errStopping) {
				writeError(w, 529, "overloaded_error", "ccmux is stopping; retry the request")
			}
			return // otherwise the client is gone; nobody to answer
		}
		if err != nil {
			var ae *attemptError
			if errors.As(err, &ae) && ae.SignIn != "" {
				if signIn == "" {
					signIn = ae.SignIn
				}
			} else {
				others = append(others, err.Error())
			}
			failures = append(failures, err.Error())
			h.s.logger().Warn("upstream attempt failed", "provider", c.Provider, "model", clip(c.Model), "error", err)
			continue
		}
		h.s.noteUsage(h.st.logins[c.Index], ans.resp)
		unsupported := countTokens && (ans.status() == http.StatusNotFound || ans.status() == http.StatusMethodNotAllowed)
		if failover(ans.status()) || unsupported {
			if unsupported {
				notSupported++
			}
			if err := ans.buffer(); err != nil {
				failures = append(failures, c.Provider+": "+err.Error())
				h.s.logger().Warn("upstream attempt failed", "provider", c.Provider, "model", clip(c.Model), "status", ans.status(), "error", err)
				continue
			}
			lastReply.close()
			lastReply, lastFrom = ans, c
			failures = append(failures, fmt.Sprintf("%s: status %d", c.Provider, ans.status()))
			h.s.logger().Warn("upstream attempt failed", "provider", c.Provider, "model", clip(c.Model), "status", ans.status())
			continue
		}
		lastReply.close()
		release()
		h.relay(w, r, ans, c)
		return
	}
	switch {
	case countTokens && notSupported > 0 && notSupported == len(rt.Candidates):
		// No upstream counts tokens: answer the documented local estimate.
		lastReply.close()
		w.provider, w.modelSent = "local-estimate", ""
		writeJSON(w, http.StatusOK, map[string]int{"input_tokens": estimateTokens(body.b)})
	case lastReply != nil:
		// The client gets the last upstream error as the upstream sent it.
		release()
		w.provider, w.modelSent = lastFrom.Provider, lastFrom.Model
		h.relay(w, r, lastReply, lastFrom)
	case !spent.until.IsZero():
		w.provider = spent.provider
		h.s.writeLimitReached(w, spent)
	case signIn != "":
		msg := fmt.Sprintf("ccmux is not signed in to %s: run `ccmux login` or use Sign in in the tray", signIn)
		if len(others) > 0 {
			msg += " (other providers: " + strings.Join(others, "; ") + ")"
		}
		writeError(w, http.StatusUnauthorized, "authentication_error", msg)
	default:
		writeError(w, http.StatusBadGateway, "api_error",
			"no provider answered: "+strings.Join(failures, "; "))
	}
}

// readBody reads the request body as it arrives into a payload that grows
// with it (never sized from the declared Content-Length alone), within
// MaxBodyBytes (413), the server's body budget (529) and the client body
// timeout between reads (the connection is closed). It advances scan over
// each read, so that routing waits only for the scan of the last one.
func (h *handler) readBody(w *exchange, r *http.Request, scan *routingScan) (*payload, bool) {
	if r.ContentLength > MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large",
			fmt.Sprintf("the request body is larger than %d MiB", MaxBodyBytes>>20))
		return nil, false
	}
	s := h.s
	budget := s.budget()
	timeout := s.ClientBodyTimeout
	if timeout <= 0 {
		timeout = DefaultClientBodyTimeout
	}
	rc := http.NewResponseController(w)
	defer rc.SetReadDeadline(time.Time{}) // the connection outlives the body
	limit := int64(MaxBodyBytes + 1)      // one byte over tells MaxBytesReader's error apart
	if r.ContentLength >= 0 {
		limit = r.ContentLength
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	p := newPayload(int(min(limit, firstBodyChunk)), &s.held)
	for int64(len(p.b)) < limit {
		if len(p.b) == cap(p.b) {
			grown := int(min(limit, int64(bodyGrowth*cap(p.b))))
			if s.held.Load()+int64(grown) > budget {
				p.release()
				writeError(w, 529, "overloaded_error", "ccmux holds too many request bodies right now; retry the request")
				return nil, false
			}
			p = p.grow(grown)
		}
		rc.SetReadDeadline(time.Now().Add(timeout))
		n, err := body.Read(p.b[len(p.b):cap(p.b)])
		p.b = p.b[:len(p.b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.release()
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				writeError(w, http.StatusRequestEntityTooLarge, "request_too_large",
					fmt.Sprintf("the request body is larger than %d MiB", MaxBodyBytes>>20))
			case errors.Is(err, os.ErrDeadlineExceeded):
				// Nobody reads an answer on a connection that stopped
				// sending; closing it frees the slot at once.
				w.aborted = true
			default:
				writeError(w, http.StatusBadRequest, "invalid_request_error", "reading the request body: "+err.Error())
			}
			return nil, false
		}
		if int64(len(p.b)) < limit {
			scan.advance(p.b)
		}
	}
	return p, true
}

// firstBodyChunk is the first allocation for a body; it grows bodyGrowth
// times as bytes arrive.
const firstBodyChunk = 64 << 10

// bodyGrowth is how many times a full body buffer grows: a 200 KB body
// takes one copy of 64 KiB (doubling took two, of 192 KiB), a 1 MB one
// copies 320 KiB instead of 960. A client that stops sending holds at most
// four times what it sent (64 KiB before any growth).
const bodyGrowth = 4

// payload is a request body shared by the handler and the upstream request
// bodies the transport reads (it may still be reading after RoundTrip
// returns), so it goes back to its pool only when all are done. Its
// capacity counts against the server's body budget while it is held.
type payload struct {
	b    []byte
	refs int32
	mu   sync.Mutex
	held *atomic.Int64 // the budget it counts against; nil for none
}

// payloadClasses are the buffer sizes pooled, one pool each, so a small
// request never pins a buffer sized for a 400 KB conversation (which matters
// with 1,000 open streams). A body grows through them as it arrives (see
// readBody), so each step is pooled: a 200 KB conversation used to get its
// 128 KiB and 256 KiB buffers fresh, zeroed, and left to the collector, and
// a 1 MB one its 1 and 2 MiB buffers, which the runtime then kept giving
// back to the OS and faulting in again (a third of the proxy's CPU). Larger bodies are left to the garbage collector
// (and given back to the OS, see giveBack): a pool would keep a burst of
// 30 MB bodies resident.
var payloadClasses = [...]int{4 << 10, 64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20}

var payloadPools [len(payloadClasses)]sync.Pool

// newPayload returns an empty payload with room for size bytes, counted
// against held when it is not nil.
func newPayload(size int, held *atomic.Int64) *payload {
	var p *payload
	for i, c := range payloadClasses {
		if size <= c {
			p, _ = payloadPools[i].Get().(*payload)
			if p == nil {
				p = &payload{b: make([]byte, 0, c)}
			}
			break
		}
	}
	if p == nil {
		p = &payload{b: make([]byte, 0, size)}
	}
	p.b, p.refs, p.held = p.b[:0], 1, held
	if held != nil {
		held.Add(int64(cap(p.b)))
	}
	return p
}

// grow returns a payload with the same bytes and room for size, releasing p.
func (p *payload) grow(size int) *payload {
	q := newPayload(size, p.held)
	q.b = append(q.b, p.b...)
	p.release()
	return q
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
	if p.held != nil {
		p.held.Add(-int64(cap(p.b)))
		p.held = nil
	}
	for i, c := range payloadClasses {
		if cap(p.b) == c {
			payloadPools[i].Put(p)
			return
		}
	}
	if cap(p.b) >= largeBody {
		giveBack()
	}
}

// largeBody is the size past which a released body asks for its memory to
// go back to the OS.
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
