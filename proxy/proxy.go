// Package proxy is the local Anthropic Messages API server: it routes each
// request by model to the configured providers, fails over between them and
// relays streams event by event. It never imports tray; tokens come through TokenSource.
//
// A request goes through three parts, as in net/http/httputil's ReverseProxy:
// the Server (endpoints and security rules), the Router (which upstreams, in
// what order) and the relay (bytes to the client, one SSE event at a time).
// Only model, stream, thinking.type and tools[].type are read from a body;
// the body is forwarded as sent, with only the model value rewritten.
// https:// upstreams (api.anthropic.com) share one http.Transport, with
// HTTP/2; plain http:// upstreams get a synchronous HTTP/1.1 client whose
// requests run on the handler's goroutine, without the Transport's
// per-connection goroutines and their hand-offs (h1client.go).
//
// Rules every request meets: Host must be localhost, 127.0.0.1, [::1] or
// server.host (403 otherwise, against DNS rebinding); an Origin header must be
// in server.allowed_origins (403); bodies are limited to 32 MiB (413). When
// server.api_key is set, /v1/* and the admin API need it (x-api-key or
// Bearer); /health and HEAD / do not. The admin API (/api/oauth/*) answers
// loopback peers only, POSTs must be application/json, and it is off (404)
// when Server.Admin is nil.
//
// Claude subscription (OAuth) answers carry anthropic-ratelimit-unified-*
// headers; Server.Usage keeps their numbers (GET /api/usage) and, after a
// 429 whose status is rejected, skips that subscription until the reset it
// gave, so the next candidate serves (usage.go, limits.go, spent.go).
//
// count_tokens is forwarded like a message; when every candidate answers 404
// or 405 (an Anthropic-compatible vendor without the endpoint), the proxy
// answers {"input_tokens": N} with N = request bytes / 4 rounded up: the same
// estimate the long_context rule uses, which over-counts JSON punctuation and
// under-counts non-Latin text.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"ccmux/config"
)

// Credential is sent upstream for an OAuth provider: a bearer token, or an
// API key when the login created one (console preset).
type Credential struct {
	Value  string
	APIKey bool
}

// TokenSource hands out credentials for OAuth providers by token-store id.
type TokenSource interface {
	Token(ctx context.Context, providerID string) (Credential, error)
	ForceRefresh(ctx context.Context, providerID string) (Credential, error)
}

// TokenInfo describes a stored login for the admin API, never a secret.
type TokenInfo struct {
	ProviderID string    `json:"provider_id"`
	ExpiresAt  time.Time `json:"expires_at"`
	Email      string    `json:"email,omitempty"`
}

// OAuthAdmin backs the /api/oauth/* admin endpoints.
type OAuthAdmin interface {
	Authorize(providerID, preset string) (url, state string, err error)
	Exchange(ctx context.Context, providerID, code, state string) error
	Tokens() ([]TokenInfo, error)
	Delete(providerID string) error
}

// Server is the proxy. Set the fields, then Start and Stop it as often as needed.
type Server struct {
	// Config supplies the listen address, routing, providers and security
	// settings. It is read at each Start and must not change while running.
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

	mu       sync.Mutex             // serialises Start and Stop
	bound    atomic.Pointer[string] // the bound address while running
	srv      *http.Server
	ln       net.Listener
	served   chan struct{}           // closed when Serve returns
	stopping context.CancelCauseFunc // cancels every request with errStopping
	running  atomic.Bool
	inflight atomic.Int64 // handlers still running
	// transport and h1 are shared by every upstream request of every
	// Start: h1 serves plain http:// upstreams, transport the others.
	transport     *http.Transport
	h1            *h1Client
	transportOnce sync.Once
}

// state is what a Server derives from its Config when it starts.
type state struct {
	router    *Router
	apiKey    string     // server.api_key resolved, "" when clients need none
	upstreams []*url.URL // per provider index, nil when unusable
	h1Addr    []string   // per provider index: the address h1 dials, "" for the Transport
}

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
	h, err := s.Handler()
	if err != nil {
		return err
	}
	addr := s.Config.Addr()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if addrInUse(err) {
			return fmt.Errorf("cannot listen on %s: the address is already in use (is ccmux or claude-code-mux already running? change server.port in %s)", addr, s.configName())
		}
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelDebug),
	}
	base, stopping := context.WithCancelCause(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return base }
	served := make(chan struct{})
	s.srv, s.ln, s.served, s.stopping = srv, ln, served, stopping
	bound := ln.Addr().String()
	s.bound.Store(&bound)
	s.running.Store(true)
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	return nil
}

// addrInUse reports a listen error caused by another program on the port.
func addrInUse(err error) bool {
	const wsaeaddrinuse = 10048 // Windows
	var errno syscall.Errno
	return errors.Is(err, syscall.EADDRINUSE) || (errors.As(err, &errno) && errno == wsaeaddrinuse)
}

func (s *Server) configName() string {
	if s.Config.Path == "" {
		return "the config file"
	}
	return s.Config.Path
}

// Stop drains in-flight requests until ctx ends, then closes the listener.
// Requests still open when ctx ends are cut: streams end with an
// overloaded_error event and waiting requests get a 529, both of which
// Claude Code retries. Stop is a no-op when stopped.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	srv, served := s.srv, s.served
	s.running.Store(false)
	if err := srv.Shutdown(ctx); err != nil {
		// The drain time is over: cancel what is left (the upstream
		// requests end, open streams send the client an error event to
		// retry on), then close the connections.
		s.logger().Warn("cutting requests still open at stop", "requests", s.inflight.Load())
		s.stopping(errStopping)
		waitIdle(&s.inflight, farewell)
		srv.Close()
	}
	s.stopping(nil)
	<-served
	waitIdle(&s.inflight, drainAfterClose)
	s.transport.CloseIdleConnections()
	s.h1.closeIdle()
	s.srv, s.ln, s.served = nil, nil, nil
	s.bound.Store(nil)
	return nil
}

// waitIdle waits until no handler runs, at most d. Handlers whose
// connections Stop cut end quickly: their request contexts are cancelled.
func waitIdle(n *atomic.Int64, d time.Duration) {
	deadline := time.Now().Add(d)
	for n.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// Running reports whether the listener is open.
func (s *Server) Running() bool { return s.running.Load() }

// Addr is the address the server listens on (host:port), or the configured one when stopped.
// It never waits for a Start or Stop in progress.
func (s *Server) Addr() string {
	if a := s.bound.Load(); a != nil {
		return *a
	}
	return s.Config.Addr()
}

// Handler returns the proxy's HTTP handler without binding a port, for
// tests and embedding. Start uses the same handler.
func (s *Server) Handler() (http.Handler, error) {
	st, err := s.prepare()
	if err != nil {
		return nil, err
	}
	return &handler{s: s, st: st}, nil
}

// prepare derives the routing state from Config.
func (s *Server) prepare() (*state, error) {
	if s.Config == nil {
		return nil, errors.New("the proxy has no config")
	}
	router, err := NewRouter(s.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.configName(), err)
	}
	key, err := s.Config.ServerAPIKey()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.configName(), err)
	}
	n := len(s.Config.Providers)
	st := &state{router: router, apiKey: key, upstreams: make([]*url.URL, n), h1Addr: make([]string, n)}
	for i, p := range s.Config.Providers {
		u, err := url.Parse(p.Upstream())
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%s: providers[%d].base_url: want an http:// or https:// URL, got %q", s.configName(), i, p.BaseURL)
		}
		st.upstreams[i] = u
		st.h1Addr[i] = h1Addr(u)
	}
	s.transportOnce.Do(func() {
		t := s.Config.Server.Timeouts
		if s.transport == nil { // tests may install one that trusts their certificate
			s.transport = newTransport(t)
		}
		s.h1 = newH1Client(millis(t.ConnectTimeoutMS, DefaultConnectTimeout), millis(t.APITimeoutMS, DefaultAPITimeout))
	})
	return st, nil
}

var discard = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1}))

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return discard
	}
	return s.Logger
}
