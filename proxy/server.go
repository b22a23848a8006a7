package proxy

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/internal/history"
)

// Server is the proxy. Set the fields, then Start and Stop it as often as needed.
type Server struct {
	// Config supplies the listen address, routing, providers and security
	// settings. Set it before the first Start and do not change it: Reload
	// replaces the config in use (see CurrentConfig), which later Starts keep.
	Config *config.Config
	// Tokens gives OAuth providers their credentials; a provider whose token
	// it cannot give is skipped like a failed upstream.
	Tokens TokenSource
	// Admin backs /api/oauth/* and the signed-in list of /health;
	// nil disables the admin API.
	Admin OAuthAdmin
	// Logger gets one line per request (method, path, model, provider,
	// model_sent, status, duration, bytes) and upstream failures; nil discards.
	Logger *slog.Logger
	// Version is reported by /health.
	Version string
	// Usage tracks Claude subscriptions' limits from their answers and skips
	// a spent one until its reset; nil turns both off (GET /api/usage then
	// lists no numbers).
	Usage *UsageTracker
	// BodyBudget bounds the request bytes held in memory across all
	// requests (each is kept until an answer is committed, for failover);
	// requests arriving past it get 529 overloaded_error, which Claude Code
	// retries. 0 means DefaultBodyBudget.
	BodyBudget int64
	// ClientBodyTimeout closes a client connection whose request body makes
	// no progress for that long. 0 means DefaultClientBodyTimeout.
	ClientBodyTimeout time.Duration
	// History, when set, records each /v1/messages request's metadata and
	// the subscriptions' usage samples (off the request path), which the
	// dashboard and /api/requests, /api/stats show.
	History *history.Store
	// Dashboard gives the dashboard page (GET /) what it needs from the
	// program around the proxy; nil leaves out what it gives (Sign in).
	Dashboard *Dashboard

	mu       sync.Mutex             // serialises Start, Stop and Reload
	bound    atomic.Pointer[string] // the bound address while running
	srv      *http.Server
	ln       net.Listener
	served   chan struct{}  // closed when Serve returns
	draining []*http.Server // listeners left by a Reload, finishing their requests
	// cur is the config in use and what is derived from it. Each request
	// takes it once, when it arrives, so a Reload never changes the config
	// of a request or stream in flight.
	cur      atomic.Pointer[state]
	base     context.Context         // every request's parent while running
	stopping context.CancelCauseFunc // cancels base with errStopping
	running  atomic.Bool
	inflight atomic.Int64 // handlers still running
	held     atomic.Int64 // request body bytes held, against BodyBudget

	// upstream is shared by every upstream request of every Start, so
	// connections are kept alive across restarts of the listener.
	upstream     *upstreamClient
	upstreamOnce sync.Once
	// pooled is upstream once made, for CloseUpstreamConns, which must not
	// wait for mu: Stop holds it while it drains, and the requests it
	// drains may be on connections the sleep killed.
	pooled atomic.Pointer[upstreamClient]
	// tlsConfig, when set (tests), is the TLS configuration for upstreams.
	tlsConfig *tls.Config
	// sampled is, per login, when answers' headers last added a usage
	// sample to History (Unix nanoseconds, *atomic.Int64).
	sampled sync.Map
	// lastReload is the last NoteReload, for the dashboard.
	lastReload atomic.Pointer[ReloadResult]
	// dashCodes and dashSessions open the dashboard when server.api_key
	// is set (dashsession.go).
	dashCodes, dashSessions dashSecrets
}

// state is a config and what a Server derives from it when it starts or
// reloads: a request sees one state from start to end.
type state struct {
	cfg       *config.Config
	router    *Router
	apiKey    string     // server.api_key resolved, "" when clients need none
	upstreams []*url.URL // per provider index
	// keys and keyErrs are the api_key providers' credentials, per index.
	keys    []auth.Credential
	keyErrs []error
	// logins are the Claude subscription logins, per index ("" for others):
	// the ones with usage limits.
	logins []string
	// firstByte and idle are server.timeouts' api_timeout_ms and
	// stream_idle_timeout_ms (see watchdog).
	firstByte, idle time.Duration
}

// Client-side limits: a client that sends its headers or body too slowly
// loses its connection instead of pinning a goroutine and a buffer.
const (
	clientHeaderTimeout      = 30 * time.Second
	DefaultClientBodyTimeout = 60 * time.Second
)

// drainOnFailedMove bounds the drain when a move lost both addresses.
const drainOnFailedMove = 5 * time.Second

// drainAfterClose bounds the wait for handlers whose connections Stop cut.
const drainAfterClose = 3 * time.Second

// farewell is how long streams cut by Stop get to send the client their
// final error event before the connections close.
const farewell = 500 * time.Millisecond

// errStopping is the cause of requests cancelled because Stop's drain time ended.
var errStopping = errors.New("ccmux is stopping")

// Start binds Config.Server's address and serves in the background. It
// returns an error naming the address when it is in use.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return fmt.Errorf("the proxy is already running on %s", s.ln.Addr())
	}
	st, err := s.prepare(s.CurrentConfig())
	if err != nil {
		return err
	}
	ln, err := listen(ctx, st.cfg)
	if err != nil {
		return err
	}
	s.cur.Store(st)
	capHeap(s.budget())
	s.base, s.stopping = context.WithCancelCause(context.Background())
	s.serve(ln, s.base)
	s.running.Store(true)
	return nil
}

// listen binds cfg's address, or says in one sentence why it cannot.
func listen(ctx context.Context, cfg *config.Config) (net.Listener, error) {
	addr := cfg.Addr()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if addrInUse(err) {
			return nil, &inUseError{fmt.Sprintf("cannot listen on %s: the address is already in use (is ccmux or claude-code-mux already running? change server.port in %s)", addr, configName(cfg)), err}
		}
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// inUseError is a listen error for an address in use, in words that say
// what to do, unwrapping to the system's error.
type inUseError struct {
	msg   string
	cause error
}

func (e *inUseError) Error() string { return e.msg }
func (e *inUseError) Unwrap() error { return e.cause }

// serve serves ln in the background as the live listener; its requests'
// contexts derive from base, which Stop cancels.
func (s *Server) serve(ln net.Listener, base context.Context) {
	srv := &http.Server{
		Handler:           &handler{s: s},
		ReadHeaderTimeout: clientHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan struct{})
	s.srv, s.ln, s.served = srv, ln, served
	bound := ln.Addr().String()
	s.bound.Store(&bound)
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
}

// Reload makes cfg the config of every request that arrives from now on;
// requests and streams in flight finish with the config they started
// with, and the usage tracker keeps what it knows. When the proxy runs and
// cfg moves it to another address, it listens there first and only then
// stops accepting on the old address, whose open requests finish. On an
// error (an invalid config, the new address in use) nothing changes.
// It reports whether the listener moved.
func (s *Server) Reload(ctx context.Context, cfg *config.Config) (moved bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.prepare(cfg)
	if err != nil {
		return false, err
	}
	// A reload also drops the idle upstream connections: SIGHUP is what a
	// user tries when the upstream moved and requests fail.
	defer s.upstream.closeIdle()
	s.keyChanged(st)
	if s.srv == nil || cfg.Addr() == s.CurrentConfig().Addr() {
		s.cur.Store(st)
		return false, nil
	}
	ln, err := listen(ctx, cfg)
	if err != nil && addrInUse(err) && s.ln.Addr().(*net.TCPAddr).Port == cfg.Server.Port {
		ln, err = s.rebind(ctx, cfg)
	}
	if err != nil {
		return false, err
	}
	old := s.srv
	s.cur.Store(st)
	s.serve(ln, s.base)
	s.retire(old)
	return true, nil
}

// rebind moves the listener to an address that overlaps the bound one on
// the same port (127.0.0.1 to localhost or 0.0.0.0), which the OS binds
// only once the old listener is closed: new connections are refused for
// that moment, and connections already open go on. When the new address
// still cannot be bound, the old one is bound again.
func (s *Server) rebind(ctx context.Context, cfg *config.Config) (net.Listener, error) {
	oldAddr := s.ln.Addr().String()
	s.ln.Close() // Serve returns; its open connections are still served
	ln, err := listen(ctx, cfg)
	if err == nil {
		return ln, nil
	}
	back, backErr := listen(ctx, s.CurrentConfig())
	if backErr != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainOnFailedMove)
		defer cancel()
		s.stopLocked(stopCtx)
		return nil, fmt.Errorf("%w; and %s could not be bound again (%w), so the proxy is stopped", err, oldAddr, backErr)
	}
	old := s.srv
	s.serve(back, s.base)
	s.retire(old)
	return nil, err
}

// retire lets srv, whose listener a reload replaced, finish its requests.
func (s *Server) retire(srv *http.Server) {
	s.draining = append(s.draining, srv)
	go func() {
		// Shutdown closes the listener at once and returns when the last
		// request has finished (or Stop closed the connections).
		srv.Shutdown(context.Background())
		s.mu.Lock()
		s.draining = slices.DeleteFunc(s.draining, func(d *http.Server) bool { return d == srv })
		s.mu.Unlock()
	}()
}

// CurrentConfig is the config new requests get: Config until a Reload,
// then the reloaded one.
func (s *Server) CurrentConfig() *config.Config {
	if st := s.cur.Load(); st != nil {
		return st.cfg
	}
	return s.Config
}

// budget is BodyBudget or its default.
func (s *Server) budget() int64 {
	if s.BodyBudget > 0 {
		return s.BodyBudget
	}
	return DefaultBodyBudget
}

// capHeap sets the Go runtime's soft memory limit to twice the body budget
// plus 64 MiB, unless GOMEMLIMIT (or an embedding program) set one: with
// the default pacing, a burst of large bodies held within the budget lets
// the heap reach twice their size before the collector runs.
func capHeap(budget int64) {
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(2*budget + 64<<20)
	}
}

// addrInUse reports a listen error caused by another program on the port.
func addrInUse(err error) bool {
	const wsaeaddrinuse = 10048 // Windows
	var errno syscall.Errno
	return errors.Is(err, syscall.EADDRINUSE) || (errors.As(err, &errno) && errno == wsaeaddrinuse)
}

func configName(cfg *config.Config) string {
	if cfg.Path == "" {
		return "the config file"
	}
	return cfg.Path
}

// Stop drains in-flight requests until ctx ends, then closes the listener
// (and any a Reload moved away from). Requests still open when ctx ends are
// cut: streams end with an overloaded_error event and waiting requests get
// a 529, both of which Claude Code retries. Stop is a no-op when stopped.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked(ctx)
	return nil
}

// stopLocked is Stop with s.mu held.
func (s *Server) stopLocked(ctx context.Context) {
	if s.srv == nil {
		return
	}
	srvs := append([]*http.Server{s.srv}, s.draining...)
	served := s.served
	s.running.Store(false)
	if !shutdown(ctx, srvs) {
		// The drain time is over: cancel what is left (the upstream
		// requests end, open streams send the client an error event to
		// retry on), then close the connections.
		s.logger().Warn("cutting requests still open at stop", "requests", s.inflight.Load())
		s.stopping(errStopping)
		waitIdle(&s.inflight, farewell)
		for _, srv := range srvs {
			srv.Close()
		}
	}
	s.stopping(nil)
	<-served
	waitIdle(&s.inflight, drainAfterClose)
	s.upstream.closeIdle()
	s.srv, s.ln, s.served, s.draining = nil, nil, nil, nil
	s.bound.Store(nil)
}

// shutdown shuts srvs down at once and reports whether all of them
// finished their requests before ctx ended.
func shutdown(ctx context.Context, srvs []*http.Server) bool {
	var wg sync.WaitGroup
	for _, srv := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Shutdown(ctx)
		}()
	}
	wg.Wait()
	return ctx.Err() == nil
}

// waitIdle waits until no handler runs, at most d. Handlers whose
// connections Stop cut end quickly: their request contexts are cancelled.
func waitIdle(n *atomic.Int64, d time.Duration) {
	deadline := time.Now().Add(d)
	for n.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// CloseUpstreamConns closes the pooled upstream connections (HTTP/2 and
// HTTP/1.1), so the next requests dial anew: the machine slept or its
// network changed, and a pooled connection may be dead without knowing it.
// A connection carrying requests is not cut (it may have survived, say a
// VPN toggled on another route) but retired: never handed out again, closed
// when its requests end, and ended sooner by its health check if it is
// dead (see closeAll and health.go).
func (s *Server) CloseUpstreamConns() {
	s.pooled.Load().closeAll()
}

// Running reports whether the listener is open.
func (s *Server) Running() bool { return s.running.Load() }

// Addr is the address the server listens on (host:port), or the configured one when stopped.
// It never waits for a Start or Stop in progress.
func (s *Server) Addr() string {
	if a := s.bound.Load(); a != nil {
		return *a
	}
	return s.CurrentConfig().Addr()
}

// Handler returns the proxy's HTTP handler without binding a port, for
// tests and embedding; Reload changes its config too. Start uses the same
// handler.
func (s *Server) Handler() (http.Handler, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.prepare(s.CurrentConfig())
	if err != nil {
		return nil, err
	}
	s.cur.Store(st)
	return &handler{s: s}, nil
}

// prepare derives the routing state from cfg.
func (s *Server) prepare(cfg *config.Config) (*state, error) {
	if cfg == nil {
		return nil, errors.New("the proxy has no config")
	}
	router, err := NewRouter(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", configName(cfg), err)
	}
	key, err := cfg.ServerAPIKey()
	if err != nil {
		return nil, cfg.Locate(err)
	}
	t := cfg.Server.Timeouts
	st := &state{
		cfg:       cfg,
		router:    router,
		apiKey:    key,
		upstreams: make([]*url.URL, len(cfg.Providers)),
		keys:      make([]auth.Credential, len(cfg.Providers)),
		keyErrs:   make([]error, len(cfg.Providers)),
		logins:    make([]string, len(cfg.Providers)),
		firstByte: millis(t.APITimeoutMS, DefaultAPITimeout),
		idle:      millis(t.StreamIdleTimeoutMS, DefaultStreamIdleTimeout),
	}
	for i, p := range cfg.Providers {
		if !router.usable(i) {
			continue // never a candidate, so never dialled
		}
		u, err := url.Parse(p.Upstream())
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("%s: providers[%d].base_url: want an http:// or https:// URL, got %q", configName(cfg), i, config.RedactURL(p.Upstream()))
		}
		st.upstreams[i] = u
		st.logins[i] = cfg.SubscriptionLogin(i)
		if !p.IsOAuth() {
			st.keys[i], st.keyErrs[i] = apiKeyCredential(cfg, i)
		}
	}
	// The upstream client keeps its connections across restarts and
	// reloads; its connect timeout is the first config's.
	s.upstreamOnce.Do(func() {
		s.upstream = newUpstreamClient(millis(t.ConnectTimeoutMS, DefaultConnectTimeout), s.tlsConfig)
	})
	s.pooled.Store(s.upstream)
	return st, nil
}

var discard = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return discard
	}
	return s.Logger
}

// handler serves the Server's current config; ServeHTTP gives each request
// a handler of its own, holding the config the request started with.
type handler struct {
	s  *Server
	st *state // nil in the Server's own handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.s.inflight.Add(1)
	defer h.s.inflight.Add(-1)
	start := time.Now()
	ex := &exchange{ResponseWriter: w}
	req := &handler{s: h.s, st: h.s.cur.Load()}
	if h.s.History != nil && r.URL.Path == "/v1/messages" {
		ex.rec = &recording{}
	}
	req.serve(ex, r)
	status := ex.status
	if status == 0 {
		status = 499 // the client went away before any answer
	}
	if ex.rec != nil {
		h.s.record(ex, start, time.Now(), status)
	}
	if log := h.s.logger().Handler(); log.Enabled(r.Context(), slog.LevelInfo) {
		attrs := make([]slog.Attr, 0, 9)
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", clip(r.URL.Path)))
		if ex.provider != "" || ex.modelAsked != "" {
			attrs = append(attrs,
				slog.String("model", clip(ex.modelAsked)),
				slog.String("provider", ex.provider),
				slog.String("model_sent", clip(ex.modelSent)))
		}
		now := time.Now()
		attrs = append(attrs,
			slog.Int("status", status),
			slog.Duration("duration", now.Sub(start)),
			slog.Int64("bytes", ex.bytes))
		if ex.aborted {
			attrs = append(attrs, slog.Bool("cut", true)) // the answer broke after it started
		}
		// The record goes to the handler with no caller's PC: no ccmux
		// logger prints the source, and Logger.LogAttrs's runtime.Callers
		// was a fifth of the line's cost, once per request.
		rec := slog.NewRecord(now, slog.LevelInfo, "request", 0)
		rec.AddAttrs(attrs...)
		log.Handle(r.Context(), rec)
	}
	if ex.aborted {
		// As httputil.ReverseProxy does: the client must see a broken
		// answer as broken, not as a complete one.
		panic(http.ErrAbortHandler)
	}
}

// maxLogValue bounds a client-chosen value in a log line.
const maxLogValue = 256

// clip shortens a client-chosen string for a log line.
func clip(s string) string {
	if len(s) <= maxLogValue {
		return s
	}
	return s[:maxLogValue] + "…"
}

func (h *handler) serve(w *exchange, r *http.Request) {
	if !h.allowedHost(r.Host) {
		writeError(w, http.StatusForbidden, "permission_error",
			fmt.Sprintf("Host %q is not allowed: ccmux answers only localhost, 127.0.0.1, [::1] and server.host", clip(r.Host)))
		return
	}
	origin := r.Header.Get("Origin")
	if origin != "" && !h.allowedOrigin(origin) && !ownOrigin(r, origin) {
		writeError(w, http.StatusForbidden, "permission_error",
			fmt.Sprintf("Origin %q is not allowed: add it to server.allowed_origins to let that page call ccmux", clip(origin)))
		return
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" && origin == "" {
		// A browser says another site sent this; without an allowed
		// Origin, nothing vouches for that site.
		writeError(w, http.StatusForbidden, "permission_error",
			"cross-site browser requests are not allowed: add the page's origin to server.allowed_origins to let it call ccmux")
		return
	}
	if origin != "" {
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
		h.health(w)
	case (path == "/" && r.Method == http.MethodGet || strings.HasPrefix(path, "/web/")) && h.s.Admin != nil:
		if !method(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		h.page(w, r)
	case path == "/":
		if !method(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff") // like every answer of ccmux's own
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			io.WriteString(w, "ccmux proxy: run Claude Code with: ccmux claude (or eval \"$(ccmux env)\", then claude)\n")
		}
	case path == "/v1/messages" || path == "/v1/messages/count_tokens":
		if !method(w, r, http.MethodPost) || !h.authorized(w, r) || !jsonBody(w, r) {
			return
		}
		h.messages(w, r, path == "/v1/messages/count_tokens")
	case path == "/v1/models":
		if !method(w, r, http.MethodGet) || !h.authorized(w, r) {
			return
		}
		h.models(w)
	case strings.HasPrefix(path, "/v1/models/"):
		if !method(w, r, http.MethodGet) || !h.authorized(w, r) {
			return
		}
		h.model(w, strings.TrimPrefix(path, "/v1/models/"))
	case strings.HasPrefix(path, "/api/"):
		if h.s.Admin == nil {
			writeError(w, http.StatusNotFound, "not_found_error", "the admin API is not enabled")
			return
		}
		// With server.api_key set, the dashboard's session cookie (from a
		// one-time code only a holder of the key gets) stands in for the key,
		// for the page's endpoints only; its POSTs also need the page's token.
		if !(pageEndpoint(path) && h.st.apiKey != "" && loopbackPeer(r.RemoteAddr) && h.dashSession(r)) && !h.authorized(w, r) {
			return
		}
		h.admin(w, r)
	default:
		writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no endpoint %s %s", r.Method, clip(path)))
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
		fmt.Sprintf("%s %s is not supported; use %s", clip(r.Method), clip(r.URL.Path), strings.Join(allowed, " or ")))
	return false
}

// jsonBody answers 415 unless the request is application/json: a browser
// can send text/plain or a form to any address without a preflight, so
// refusing them keeps every "simple request" away from the upstreams.
func jsonBody(w http.ResponseWriter, r *http.Request) bool {
	if isJSON(r.Header.Get("Content-Type")) {
		return true
	}
	writeError(w, http.StatusUnsupportedMediaType, "invalid_request_error",
		fmt.Sprintf("%s needs Content-Type: application/json", r.URL.Path))
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
	configured := strings.TrimSuffix(strings.TrimPrefix(h.st.cfg.Server.Host, "["), "]")
	return configured != "" && strings.EqualFold(host, configured)
}

func (h *handler) allowedOrigin(origin string) bool {
	origin = strings.TrimRight(origin, "/")
	for _, o := range h.st.cfg.Server.AllowedOrigins {
		if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	return false
}

// authorized checks server.api_key, sent as x-api-key or Authorization:
// Bearer (the scheme in any case, RFC 9110 section 11.1), in constant time.
func (h *handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	want := h.st.apiKey
	if want == "" {
		return true
	}
	got := r.Header.Get("X-Api-Key")
	if got == "" {
		if scheme, v, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
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

// health reports the proxy's state and signed-in providers, never a secret.
func (h *handler) health(w http.ResponseWriter) {
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
	// "service" tells `ccmux status` a ccmux from another program on the
	// port, and "config" which file that ccmux runs on: absolute, as a
	// path relative to this process's directory means nothing to status.
	cfgPath := h.st.cfg.Path
	if abs, err := filepath.Abs(cfgPath); err == nil && cfgPath != "" {
		cfgPath = abs
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":    "ok",
		"service":   "ccmux",
		"version":   h.s.Version,
		"config":    cfgPath,
		"providers": signedIn,
	})
}

// modelInfo is one entry of /v1/models, in Anthropic's shape.
type modelInfo struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// modelList is the configured model names: [[models]] names, then the
// concrete (glob-free) names in usable providers' models.
func (h *handler) modelList() []modelInfo {
	seen := map[string]bool{}
	list := []modelInfo{}
	add := func(name string) {
		k := strings.ToLower(name)
		if name == "" || seen[k] || strings.ContainsAny(name, "*?") {
			return
		}
		seen[k] = true
		// ccmux does not know when a model was released; the epoch says so.
		list = append(list, modelInfo{Type: "model", ID: name, DisplayName: name, CreatedAt: "1970-01-01T00:00:00Z"})
	}
	cfg := h.st.cfg
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
	return list
}

// models answers GET /v1/models.
func (h *handler) models(w http.ResponseWriter) {
	list := h.modelList()
	resp := map[string]any{"data": list, "has_more": false, "first_id": nil, "last_id": nil}
	if len(list) > 0 {
		resp["first_id"], resp["last_id"] = list[0].ID, list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, resp)
}

// model answers GET /v1/models/{id} (the SDKs' models.retrieve) for every
// id /v1/models lists and every other id the router would serve without
// falling back to router.default: one a provider's models pattern matches.
func (h *handler) model(w http.ResponseWriter, id string) {
	for _, m := range h.modelList() {
		if strings.EqualFold(m.ID, id) {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	if !strings.ContainsAny(id, "*?") && len(h.st.router.resolve(id)) > 0 {
		writeJSON(w, http.StatusOK, modelInfo{Type: "model", ID: id, DisplayName: id, CreatedAt: "1970-01-01T00:00:00Z"})
		return
	}
	writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("model %q is not configured in ccmux", clip(id)))
}
