package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
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
	f, err := scan.finishBody(body)
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
	tag := body.subagentTag(&f)
	rt, err := h.st.router.Route(RouteRequest{
		Model:           f.Model,
		Thinking:        thinks(f.ThinkingType),
		WebSearch:       f.WebSearch,
		Subagent:        tag.Model,
		EstimatedTokens: estimateTokens(body.size),
	})
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found_error", err.Error())
		return
	}
	if rt.Subagent {
		body.set(tag.strip(body.bytes(), &f))
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
		writeJSON(w, http.StatusOK, map[string]int{"input_tokens": estimateTokens(body.size)})
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

// readBody reads the request body as it arrives into a payload whose
// segments grow with it (never sized from the declared Content-Length
// alone; see body.go), within MaxBodyBytes (413), the server's body budget
// (529) and the client body timeout between reads (the connection is
// closed). It advances scan over each read, so that routing waits only for
// the scan of the last one, and steps it to the end of each full segment,
// where the next one starts.
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
	for int64(p.size) < limit {
		room := p.room()
		if len(room) == 0 {
			keep, size := p.nextSegment(scan, limit)
			if s.held.Load()+int64(size) > budget {
				p.release()
				writeError(w, 529, "overloaded_error", "ccmux holds too many request bodies right now; retry the request")
				return nil, false
			}
			p.cut(keep, size)
			room = p.room()
		}
		rc.SetReadDeadline(time.Now().Add(timeout))
		n, err := body.Read(room)
		p.filled(n)
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
		if int64(p.size) < limit {
			scan.advance(p.last())
		}
	}
	return p, true
}
