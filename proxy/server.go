package proxy

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxBodyBytes is the largest request body the proxy accepts (413 above it).
const MaxBodyBytes = 32 << 20

// handler serves one started configuration.
type handler struct {
	s  *Server
	st *state
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.s.inflight.Add(1)
	defer h.s.inflight.Add(-1)
	start := time.Now()
	ex := &exchange{ResponseWriter: w}
	h.serve(ex, r)
	log := h.s.logger()
	if !log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	status := ex.status
	if status == 0 {
		status = 499 // the client went away before any answer
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("method", r.Method), slog.String("path", r.URL.Path))
	if ex.provider != "" || ex.modelAsked != "" {
		attrs = append(attrs,
			slog.String("model", ex.modelAsked),
			slog.String("provider", ex.provider),
			slog.String("model_sent", ex.modelSent))
	}
	attrs = append(attrs,
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.Int64("bytes", ex.bytes))
	log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

func (h *handler) serve(w *exchange, r *http.Request) {
	if !h.allowedHost(r.Host) {
		writeError(w, http.StatusForbidden, "permission_error",
			fmt.Sprintf("Host %q is not allowed: ccmux answers only localhost, 127.0.0.1, [::1] and server.host", r.Host))
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !h.allowedOrigin(origin) {
			writeError(w, http.StatusForbidden, "permission_error",
				fmt.Sprintf("Origin %q is not allowed: add it to server.allowed_origins to let that page call ccmux", origin))
			return
		}
		hdr := w.Header()
		hdr.Set("Access-Control-Allow-Origin", origin)
		hdr.Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			hdr.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, HEAD, OPTIONS")
			hdr.Set("Access-Control-Allow-Headers", "*")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	path := r.URL.Path
	switch {
	case path == "/health":
		if !method(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		h.health(w, r)
	case path == "/":
		if !method(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			io.WriteString(w, "ccmux proxy: set ANTHROPIC_BASE_URL to this address\n")
		}
	case path == "/v1/messages" || path == "/v1/messages/count_tokens":
		if !method(w, r, http.MethodPost) || !h.authorized(w, r) {
			return
		}
		h.messages(w, r, path == "/v1/messages/count_tokens")
	case path == "/v1/models":
		if !method(w, r, http.MethodGet) || !h.authorized(w, r) {
			return
		}
		h.models(w)
	case strings.HasPrefix(path, "/api/"):
		if h.s.Admin == nil {
			writeError(w, http.StatusNotFound, "not_found_error", "the admin API is not enabled")
			return
		}
		if !h.authorized(w, r) {
			return
		}
		h.admin(w, r)
	default:
		writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no endpoint %s %s", r.Method, path))
	}
}

// method answers 405 unless r uses one of the allowed methods.
func method(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for _, m := range allowed {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, "invalid_request_error",
		fmt.Sprintf("%s %s is not supported; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
	return false
}

// allowedHost is the DNS-rebinding defence: a page on evil.example that
// rebinds its name to 127.0.0.1 still sends Host: evil.example.
func (h *handler) allowedHost(hostport string) bool {
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	configured := strings.TrimSuffix(strings.TrimPrefix(h.s.Config.Server.Host, "["), "]")
	return configured != "" && strings.EqualFold(host, configured)
}

func (h *handler) allowedOrigin(origin string) bool {
	origin = strings.TrimRight(origin, "/")
	for _, o := range h.s.Config.Server.AllowedOrigins {
		if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	return false
}

// authorized checks server.api_key, sent as x-api-key or Authorization:
// Bearer, in constant time.
func (h *handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	want := h.st.apiKey
	if want == "" {
		return true
	}
	got := r.Header.Get("X-Api-Key")
	if got == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			got = strings.TrimSpace(v)
		}
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
		return true
	}
	writeError(w, http.StatusUnauthorized, "authentication_error",
		"this ccmux proxy requires the key set in server.api_key (send it as x-api-key or Authorization: Bearer)")
	return false
}

// readBody reads the request body into a pooled payload, enforcing MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) (*payload, bool) {
	if r.ContentLength > MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large",
			fmt.Sprintf("the request body is larger than %d MiB", MaxBodyBytes>>20))
		return nil, false
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if r.ContentLength >= 0 {
		p := newPayload(int(r.ContentLength))
		p.b = p.b[:r.ContentLength]
		if _, err := io.ReadFull(body, p.b); err != nil {
			p.release()
			writeError(w, http.StatusBadRequest, "invalid_request_error", "reading the request body: "+err.Error())
			return nil, false
		}
		return p, true
	}
	p := newPayload(0)
	for {
		if len(p.b) == cap(p.b) {
			p.b = append(p.b, 0)[:len(p.b)]
		}
		n, err := body.Read(p.b[len(p.b):cap(p.b)])
		p.b = p.b[:len(p.b)+n]
		if errors.Is(err, io.EOF) {
			return p, true
		}
		if err != nil {
			p.release()
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, http.StatusRequestEntityTooLarge, "request_too_large",
					fmt.Sprintf("the request body is larger than %d MiB", MaxBodyBytes>>20))
			} else {
				writeError(w, http.StatusBadRequest, "invalid_request_error", "reading the request body: "+err.Error())
			}
			return nil, false
		}
	}
}

// messages serves /v1/messages and /v1/messages/count_tokens.
func (h *handler) messages(w *exchange, r *http.Request, countTokens bool) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	// The body goes back to its pool as soon as an answer is committed:
	// a stream may stay open for minutes and must not pin it.
	release := sync.OnceFunc(body.release)
	defer release()
	f, err := scanRouting(body.b)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	w.modelAsked = f.Model
	rt, err := h.st.router.Route(RouteRequest{
		Model:           f.Model,
		Thinking:        f.ThinkingType == "enabled",
		WebSearch:       f.WebSearch,
		EstimatedTokens: estimateTokens(body.b),
	})
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found_error", err.Error())
		return
	}
	if pin := r.Header.Get("X-Provider"); pin != "" {
		if rt, err = h.st.router.Pin(rt, pin); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
	}
	h.forward(w, r, body, release, &f, rt, countTokens)
}

// forward tries the candidates in order and relays the first usable answer.
// release gives body back once an answer is committed.
func (h *handler) forward(w *exchange, r *http.Request, body *payload, release func(), f *routingFields, rt Route, countTokens bool) {
	ctx := r.Context()
	var (
		failures     []string
		lastReply    *http.Response // the last failover-worthy answer, buffered
		lastFrom     Candidate      // who sent lastReply
		signIn       string         // the first OAuth provider without a usable login
		others       []string       // failures other than missing logins
		notSupported int
		spent        spentSkip // subscriptions skipped until their limits reset
	)
	for _, c := range rt.Candidates {
		if until, ok := h.s.spentUntil(c); ok {
			spent.add(c.Provider, until)
			continue
		}
		w.provider, w.modelSent = c.Provider, c.Model
		sent := body
		if c.Model != f.Model || f.modelStart < 0 {
			sent = newPayload(len(body.b) + len(c.quoted))
			sent.b = rewriteModel(sent.b, body.b, f, c.quoted)
		}
		resp, err := h.s.try(ctx, h.st, r, c, sent)
		if sent != body {
			sent.release()
		}
		if ctx.Err() != nil {
			if resp != nil {
				resp.Body.Close()
			}
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
			h.s.logger().Warn("upstream attempt failed", "provider", c.Provider, "model", c.Model, "error", err)
			continue
		}
		h.s.noteUsage(c, resp)
		unsupported := countTokens && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed)
		if failover(resp.StatusCode) || unsupported {
			if unsupported {
				notSupported++
			}
			buffered, err := bufferResponse(resp)
			if err != nil {
				failures = append(failures, c.Provider+": "+err.Error())
				continue
			}
			lastReply, lastFrom = buffered, c
			failures = append(failures, fmt.Sprintf("%s: status %d", c.Provider, resp.StatusCode))
			h.s.logger().Warn("upstream attempt failed", "provider", c.Provider, "model", c.Model, "status", resp.StatusCode)
			continue
		}
		if h.relay(w, r, resp, c, release) {
			return
		}
		failures = append(failures, c.Provider+": the stream ended before its first event")
	}
	switch {
	case countTokens && notSupported > 0 && notSupported == len(rt.Candidates):
		// No upstream counts tokens: answer the documented local estimate.
		w.provider, w.modelSent = "local-estimate", ""
		writeJSON(w, http.StatusOK, map[string]int{"input_tokens": estimateTokens(body.b)})
	case lastReply != nil:
		// The client gets the last upstream error as the upstream sent it.
		w.provider, w.modelSent = lastFrom.Provider, lastFrom.Model
		h.relay(w, r, lastReply, lastFrom, release)
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

// relay sends an upstream answer to the client. For an event stream it reads
// the first event before committing, and reports false (nothing written) when
// the upstream died before it, so the next candidate can still be tried.
func (h *handler) relay(w *exchange, r *http.Request, resp *http.Response, c Candidate, commit func()) bool {
	defer resp.Body.Close()
	if !isEventStream(resp) {
		commit()
		copyResponseHeader(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		streaming := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
		if _, err := copyBody(w, resp.Body, streaming); err != nil && r.Context().Err() == nil {
			h.s.logger().Warn("relaying the answer failed", "provider", c.Provider, "error", err)
		}
		return true
	}
	er := newEventReader(resp.Body)
	defer er.release()
	first, err := er.Next()
	if err != nil {
		h.s.logger().Warn("upstream stream failed before its first event", "provider", c.Provider, "error", err)
		return false
	}
	commit()
	hdr := w.Header()
	copyResponseHeader(hdr, resp.Header)
	hdr.Del("Content-Length")
	w.WriteHeader(resp.StatusCode)
	if err := relayStream(r.Context(), w, first, er, c.Provider); err != nil {
		h.s.logger().Warn("stream interrupted", "provider", c.Provider, "error", err)
	}
	return true
}

func isEventStream(resp *http.Response) bool {
	ct := resp.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "text/event-stream") && resp.Header.Get("Content-Encoding") == ""
}

// models lists configured model names in Anthropic's /v1/models shape:
// [[models]] names, then the concrete (glob-free) names in providers' models.
func (h *handler) models(w http.ResponseWriter) {
	type model struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
	}
	seen := map[string]bool{}
	list := []model{}
	add := func(name string) {
		k := strings.ToLower(name)
		if name == "" || seen[k] || strings.ContainsAny(name, "*?") {
			return
		}
		seen[k] = true
		// ccmux does not know when a model was released; the epoch says so.
		list = append(list, model{Type: "model", ID: name, DisplayName: name, CreatedAt: "1970-01-01T00:00:00Z"})
	}
	cfg := h.s.Config
	for _, m := range cfg.Models {
		add(m.Name)
	}
	for i, p := range cfg.Providers {
		if h.st.router.usable(i) {
			for _, g := range p.Models {
				add(g)
			}
		}
	}
	resp := map[string]any{"data": list, "has_more": false, "first_id": nil, "last_id": nil}
	if len(list) > 0 {
		resp["first_id"], resp["last_id"] = list[0].ID, list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

// health reports the proxy's state and signed-in providers, never a secret.
func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	type provider struct {
		ProviderID string    `json:"provider_id"`
		ExpiresAt  time.Time `json:"expires_at"`
	}
	signedIn := []provider{}
	if h.s.Admin != nil {
		if infos, err := h.s.Admin.Tokens(); err == nil {
			for _, t := range infos {
				signedIn = append(signedIn, provider{t.ProviderID, t.ExpiresAt})
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":    "ok",
		"version":   h.s.Version,
		"providers": signedIn,
	})
}

// errorBody is Anthropic's error shape.
func errorBody(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}{Type: "error", Error: struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}{typ, msg}})
	return b
}

// writeError answers with Anthropic's error shape.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(errorBody(typ, msg))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "api_error", "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
