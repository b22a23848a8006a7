package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"ccmux/auth"
	"ccmux/config"
)

// Built-in upstream timeouts, used when [server.timeouts] leaves them out.
// A non-streaming answer only sends its first byte when the whole message
// is written, so the wait for it must allow a long generation.
const (
	DefaultConnectTimeout    = 10 * time.Second
	DefaultAPITimeout        = 10 * time.Minute
	DefaultStreamIdleTimeout = 5 * time.Minute
)

// maxUpstreamHeader bounds an upstream's response header; a larger one is
// that upstream failing, not a reason to buffer without limit.
const maxUpstreamHeader = 1 << 20

func millis(ms int, def time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// upstreamClient sends every upstream request, through net/http alone:
// https:// upstreams over HTTP/2 (x/net/http2, whose connection pool dials
// once per upstream however many requests arrive together, where
// net/http's dials once per waiting request: 1,000 streams at start opened
// hundreds of TLS connections), and plain http://, proxied and
// HTTP/1.1-only upstreams over an http.Transport.
type upstreamClient struct {
	h1 *http.Transport
	h2 *http2.Transport
	// pool is h2's connection pool.
	pool *h2Pool
	// viaH1 caches, per https host, whether it goes through h1: a proxy
	// from the environment applies to it, or it did not offer HTTP/2.
	viaH1 sync.Map // host → bool
}

// errNoHTTP2 is a TLS upstream that did not negotiate HTTP/2; nothing was
// sent to it, so the request goes through the HTTP/1.1 transport instead.
var errNoHTTP2 = errors.New("the upstream does not offer HTTP/2")

func newUpstreamClient(connect time.Duration, tlsConfig *tls.Config) *upstreamClient {
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	c := &upstreamClient{
		h1: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            dialH1(dialer),
			ForceAttemptHTTP2:      true, // through a proxy, https:// still gets HTTP/2
			TLSClientConfig:        tlsConfig.Clone(),
			MaxIdleConns:           1024,
			MaxIdleConnsPerHost:    256, // 32+ concurrent Claude Code sessions, with room to spare
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    connect,
			ExpectContinueTimeout:  time.Second,
			MaxResponseHeaderBytes: maxUpstreamHeader,
			// Pass the client's Accept-Encoding through instead of having the
			// transport ask for gzip and decompress behind the client's back.
			DisableCompression: true,
		},
	}
	h2TLS := tlsConfig.Clone()
	h2TLS.NextProtos = []string{"h2", "http/1.1"}
	pool := &h2Pool{
		conns:     map[string][]*http2.ClientConn{},
		dialing:   map[string]*h2Dial{},
		wires:     map[*http2.ClientConn]*h2Conn{},
		checking:  map[*http2.ClientConn]chan struct{}{},
		timeout:   2 * connect, // TCP, the handshake, then the server's SETTINGS
		holdFor:   defaultHoldFor,
		reuseIdle: reuseIdle,
		reusePing: reusePingTimeout,
		readIdle:  healthReadIdle,
		tick:      healthTick,
		ping:      healthPingTimeout,
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, connect) // TCP and TLS, as tls.Dialer bounds them
			defer cancel()
			conn, err := dialH2TLS(ctx, dialer.DialContext, h2TLS, addr)
			if err != nil {
				return nil, err
			}
			if conn.ConnectionState().NegotiatedProtocol != "h2" {
				conn.Close()
				return nil, errNoHTTP2
			}
			return conn, nil
		},
	}
	c.h2 = &http2.Transport{
		ConnPool:           pool,
		DisableCompression: true,
		MaxHeaderListSize:  maxUpstreamHeader,
		IdleConnTimeout:    90 * time.Second,
		// No ReadIdleTimeout: it would ping idle connections too; the
		// pool's own health checks ping only busy ones (see health.go).
	}
	pool.t = c.h2
	c.pool = pool
	return c
}

// h2Pool is the HTTP/2 connection pool of https:// upstreams. It dials one
// connection at a time per upstream, and hands a new connection out only
// once the server's SETTINGS (its stream limit) arrived: x/net's own pool
// counts a connection as 100 streams until then, so a burst of 1,000
// streams at start opened a connection more than the limit needs.
type h2Pool struct {
	t       *http2.Transport
	dial    func(ctx context.Context, addr string) (net.Conn, error)
	timeout time.Duration
	holdFor time.Duration // see h2Conn
	// reuseIdle and reusePing are the check before reuse; readIdle, tick
	// and ping the check of busy connections (see health.go).
	reuseIdle, reusePing time.Duration
	readIdle, tick, ping time.Duration

	mu      sync.Mutex
	conns   map[string][]*http2.ClientConn // pooled, by host:port
	dialing map[string]*h2Dial
	// wires has every open connection, pooled or retired, with its socket.
	wires    map[*http2.ClientConn]*h2Conn
	checking map[*http2.ClientConn]chan struct{}
	watching bool // watch runs
}

// h2Dial is a connection being opened; waiters share it.
type h2Dial struct {
	done chan struct{}
	cc   *http2.ClientConn
	err  error
}

// GetClientConn returns a connection to addr with a stream reserved for
// req: a pooled one that is not stale, one that passed its check, or a new
// one (always a new one for a retry, see sendNote.fresh).
func (p *h2Pool) GetClientConn(req *http.Request, addr string) (*http2.ClientConn, error) {
	note := sendNoteOf(req.Context())
	if !note.trip() {
		return nil, errSentTwice
	}
	fresh := note != nil && note.fresh
	for {
		p.mu.Lock()
		var check chan struct{}
		for _, cc := range p.conns[addr] {
			if fresh {
				break
			}
			if c := p.checking[cc]; c != nil {
				check = c
				continue
			}
			if p.stale(cc) {
				check = p.startCheckLocked(cc, p.reusePing)
				continue
			}
			if cc.ReserveNewRequest() {
				note.handed(cc, p.wires[cc])
				p.watchLocked()
				p.mu.Unlock()
				return cc, nil
			}
		}
		if check != nil {
			p.mu.Unlock()
			select {
			case <-check:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
			continue
		}
		d := p.dialing[addr]
		if d == nil {
			d = &h2Dial{done: make(chan struct{})}
			p.dialing[addr] = d
			go p.open(d, addr)
		}
		p.mu.Unlock()
		select {
		case <-d.done:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		if d.err != nil {
			return nil, d.err
		}
		if fresh && p.reserveFresh(req, d) {
			return d.cc, nil
		}
	}
}

// open dials addr for d; it outlives the request that started it, so a
// cancelled request does not fail the others waiting on the same dial.
func (p *h2Pool) open(d *h2Dial, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	var cc *http2.ClientConn
	var hc *h2Conn
	conn, err := p.dial(ctx, addr)
	if err == nil {
		hc = newH2Conn(conn, p.holdFor)
		if cc, err = p.t.NewClientConn(hc); err != nil {
			hc.Close()
		} else if err = cc.Ping(ctx); err != nil { // the server's SETTINGS come before its PING's ACK
			cc.Close()
		}
	}
	p.mu.Lock()
	delete(p.dialing, addr)
	if err == nil {
		p.conns[addr] = append(p.conns[addr], cc)
		p.wires[cc] = hc
	}
	d.cc, d.err = cc, err
	p.mu.Unlock()
	close(d.done)
}

// MarkDead forgets a connection that closed or went away.
func (p *h2Pool) MarkDead(dead *http2.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.wires, dead)
	p.forgetLocked(dead)
}

// forgetLocked takes dead out of the pool: it is handed out no more.
// p.mu is held.
func (p *h2Pool) forgetLocked(dead *http2.ClientConn) {
	for addr, ccs := range p.conns {
		for i, cc := range ccs {
			if cc == dead {
				p.conns[addr] = append(ccs[:i:i], ccs[i+1:]...)
				if len(p.conns[addr]) == 0 {
					delete(p.conns, addr)
				}
				return
			}
		}
	}
}

// closeIdle closes connections with no request on them.
func (p *h2Pool) closeIdle() {
	p.mu.Lock()
	var idle []*http2.ClientConn
	for _, ccs := range p.conns {
		for _, cc := range ccs {
			if !p.busyLocked(cc) {
				idle = append(idle, cc)
			}
		}
	}
	p.mu.Unlock()
	for _, cc := range idle {
		cc.Close() // calls MarkDead
	}
}

// RoundTrip sends req to its upstream, over HTTP/2 when h2 (viaH2's
// answer for req.URL, which the caller already asked).
func (c *upstreamClient) RoundTrip(req *http.Request, h2 bool) (*http.Response, error) {
	if !h2 {
		return c.h1.RoundTrip(req)
	}
	resp, err := c.h2.RoundTrip(req)
	if !errors.Is(err, errNoHTTP2) {
		return resp, err
	}
	c.viaH1.Store(req.URL.Host, true)
	again := req.Clone(req.Context())
	if again.Body, err = req.GetBody(); err != nil {
		return nil, err
	}
	return c.h1.RoundTrip(again)
}

// viaH2 reports whether a request to u goes through the HTTP/2 transport
// (as far as is known before it is sent: see errNoHTTP2).
func (c *upstreamClient) viaH2(u *url.URL) bool {
	return u.Scheme == "https" && !c.useH1(u)
}

func (c *upstreamClient) useH1(u *url.URL) bool {
	if v, ok := c.viaH1.Load(u.Host); ok {
		return v.(bool)
	}
	p, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	proxied := err != nil || p != nil
	c.viaH1.Store(u.Host, proxied)
	return proxied
}

func (c *upstreamClient) closeIdle() {
	if c != nil {
		c.h1.CloseIdleConnections()
		c.pool.closeIdle()
	}
}

// closeAll makes sure no connection pooled before the call is handed out
// again: idle ones are closed, HTTP/2 connections carrying requests are
// retired (their requests go on, and a health check ends them if the
// connection died). An HTTP/1.1 connection carries one request and is
// pooled again only after its answer arrived whole, which proves it alive;
// net/http has no way to retire it earlier.
func (c *upstreamClient) closeAll() {
	if c != nil {
		c.h1.CloseIdleConnections()
		c.pool.retireAll()
	}
}

// hopHeader reports the headers meaningful only for one connection, never
// forwarded (RFC 9110, section 7.6.1) in either direction. A switch, not a
// map: it runs for every header of every request and answer.
func hopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// clientOnlyHeader reports the client's credentials for ccmux itself and
// ccmux's own debugging header; the upstream gets the provider's
// credentials instead.
func clientOnlyHeader(k string) bool {
	switch k {
	case "Authorization", "X-Api-Key", "X-Provider",
		"Content-Length", // set from the (possibly rewritten) body
		"Host":
		return true
	}
	return false
}

// oauthBeta must be in anthropic-beta for requests authorised with a
// subscription's OAuth token.
const oauthBeta = "oauth-2025-04-20"

// defaultAnthropicVersion is sent with OAuth requests that name no version.
const defaultAnthropicVersion = "2023-06-01"

// upstreamHeader builds the header sent upstream: the client's end-to-end
// headers (anthropic-version, anthropic-beta, user-agent and the rest, as
// sent), without its credentials and hop-by-hop headers, plus the
// provider's credential. Nothing about the client's identity is invented.
func upstreamHeader(in http.Header, cred auth.Credential) http.Header {
	h := make(http.Header, len(in)+3)
	for k, v := range in {
		if !hopHeader(k) && !clientOnlyHeader(k) {
			h[k] = v
		}
	}
	removeConnectionHeaders(h, in)
	if len(h["User-Agent"]) == 0 {
		// net/http (both HTTP/1.1 and HTTP/2) writes Go-http-client/…
		// for a request without one; an empty value writes none.
		h["User-Agent"] = []string{""}
	}
	if cred.APIKey {
		h["X-Api-Key"] = []string{cred.Value}
		return h
	}
	h["Authorization"] = []string{"Bearer " + cred.Value}
	h["Anthropic-Beta"] = []string{mergeBeta(in["Anthropic-Beta"], oauthBeta)}
	if len(h["Anthropic-Version"]) == 0 {
		h["Anthropic-Version"] = []string{defaultAnthropicVersion}
	}
	return h
}

// removeConnectionHeaders drops headers the Connection header names as
// hop-by-hop for this connection.
func removeConnectionHeaders(h, in http.Header) {
	for _, v := range in["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				delete(h, http.CanonicalHeaderKey(name))
			}
		}
	}
}

// mergeBeta returns the anthropic-beta values joined by commas with flag
// added once; values the client sent are kept in order.
func mergeBeta(values []string, flag string) string {
	var parts []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
	}
	for _, p := range parts {
		if p == flag {
			return strings.Join(parts, ",")
		}
	}
	return strings.Join(append(parts, flag), ",")
}

// upstreamURL joins a provider's base URL and the client's path and query.
// Query strings such as ?beta=true are forwarded as received.
func upstreamURL(base *url.URL, in *url.URL) *url.URL {
	u := *base
	u.Path = strings.TrimRight(base.Path, "/") + in.Path
	u.RawPath = ""
	u.RawQuery = in.RawQuery
	return &u
}

// failover reports whether an upstream status lets the next candidate try:
// rate limits, server errors and 529 overloaded. Anything else is the
// client's answer.
func failover(status int) bool {
	return status == http.StatusTooManyRequests || (status >= 500 && status <= 599)
}

// attemptError is a candidate that produced no usable answer.
type attemptError struct {
	Provider string
	Err      error
	// SignIn is the token-store id when the provider has no usable login.
	SignIn string
	// secret is the upstream URL's userinfo, never printed.
	secret string
}

func (e *attemptError) Error() string {
	msg := e.Provider + ": " + e.Err.Error()
	if e.secret != "" {
		msg = strings.ReplaceAll(msg, e.secret, "xxxxx")
	}
	return msg
}

func (e *attemptError) Unwrap() error { return e.Err }

// apiKeyCredential resolves provider i's api_key once per start or reload.
func apiKeyCredential(cfg *config.Config, i int) (auth.Credential, error) {
	key, err := cfg.ProviderAPIKey(i)
	if err != nil {
		return auth.Credential{}, err
	}
	if key == "" {
		return auth.Credential{}, fmt.Errorf("providers[%d].api_key is empty", i)
	}
	return auth.Credential{Value: key, APIKey: true}, nil
}

// credential returns what provider i authenticates with upstream.
func (h *handler) credential(ctx context.Context, i int, refresh bool) (auth.Credential, error) {
	s := h.s
	p := h.st.cfg.Providers[i]
	if !p.IsOAuth() {
		return h.st.keys[i], h.st.keyErrs[i]
	}
	if s.Tokens == nil {
		return auth.Credential{}, errors.New("no token store is available")
	}
	var cred auth.Credential
	var err error
	if refresh {
		cred, err = s.Tokens.ForceRefresh(ctx, p.OAuthProvider)
	} else {
		cred, err = s.Tokens.Credential(ctx, p.OAuthProvider)
	}
	if err == nil && cred.Value == "" {
		err = errors.New("the stored login has no token")
	}
	return cred, err
}

// attempt runs candidate c: credential, request, and for an OAuth provider
// that answers 401, one forced refresh and one retry on the same provider.
// A usable answer comes back with its first event (a stream) or first body
// bytes already read, so that an upstream that fails or stalls before them
// is still a failed attempt the next candidate can replace.
func (h *handler) attempt(ctx context.Context, r *http.Request, c Candidate, body *payload, f *routingFields) (*answer, error) {
	s := h.s
	fail := func(err error) (*answer, error) { return nil, h.attemptFailed(c, err) }
	p := h.st.cfg.Providers[c.Index]
	if p.SpeaksOpenAI() {
		return h.attemptOpenAI(ctx, r, c, body, f.Stream)
	}
	cred, err := h.credential(ctx, c.Index, false)
	if err != nil {
		ae := &attemptError{Provider: c.Provider, Err: err}
		// Only a missing or ended login asks for a sign-in; an unreachable
		// token endpoint is reported as itself.
		if p.IsOAuth() && (errors.Is(err, auth.ErrNoToken) || errors.Is(err, auth.ErrSessionEnded)) {
			ae.SignIn = p.OAuthProvider
		}
		return nil, ae
	}
	if clean, ff, ok := forAnthropic(body); ok {
		body, f = bytesPayload(clean), ff
		defer body.release() // the transport holds its own reference while it reads
	}
	sent := sentFor(body, f, c)
	ans, err := h.send(ctx, r, c, sent, cred)
	if err != nil {
		return fail(err)
	}
	if ans.status() == http.StatusUnauthorized && p.IsOAuth() && !cred.APIKey {
		// Keep the 401 so the client gets it as received if the refresh fails.
		if err := ans.buffer(); err != nil {
			return fail(err)
		}
		fresh, err := h.credential(ctx, c.Index, true)
		if err != nil {
			s.logger().Warn("token refresh after 401 failed", "provider", c.Provider, "oauth_provider", p.OAuthProvider, "error", err)
			return ans, nil
		}
		ans.close()
		cred = fresh
		if ans, err = h.send(ctx, r, c, sent, cred); err != nil {
			return fail(err)
		}
	}
	if ans.status() == http.StatusBadRequest && thinks(f.ThinkingType) {
		if ans, err = h.withoutThinking(ctx, r, c, body, ans, cred); err != nil {
			return fail(err)
		}
		if ans.buffered {
			return ans, nil // another 400, as received
		}
	}
	if ans.status() == http.StatusUnauthorized {
		if err := ans.buffer(); err != nil {
			return fail(err)
		}
		return ans, nil
	}
	if failover(ans.status()) {
		return ans, nil // the caller buffers it while it tries the others
	}
	if err := ans.start(); err != nil {
		ans.close()
		return fail(err)
	}
	return ans, nil
}

// attemptFailed is the error of candidate c's attempt that failed with
// err; the upstream URL's userinfo is kept out of its message.
func (h *handler) attemptFailed(c Candidate, err error) *attemptError {
	ae := &attemptError{Provider: c.Provider, Err: err}
	if u := h.st.upstreams[c.Index].User; u != nil {
		ae.secret = u.String()
	}
	return ae
}

// send makes one upstream request for candidate c and waits for its
// headers. body is not read after the answer is closed.
func (h *handler) send(ctx context.Context, r *http.Request, c Candidate, body sentBody, cred auth.Credential) (*answer, error) {
	u := upstreamURL(h.st.upstreams[c.Index], r.URL)
	h2 := h.s.upstream.viaH2(u)
	var note *sendNote
	if h2 {
		note = &sendNote{pool: h.s.upstream.pool}
		ctx = withSendNote(ctx, note)
	}
	// note is given before the timer starts: set after, a watchdog firing
	// at once read it unsynchronised (and could miss retiring the
	// connection; found in review).
	ctx, wd := newWatchdog(ctx, h.st.firstByte, h.st.idle, note)
	if h2 && body.size() > 0 {
		ctx = withHeldHeaders(ctx) // HEADERS and the first DATA in one write
	}
	// WithContext's copy is the one allocation: http.NewRequestWithContext
	// would also parse a URL and make a header map, both replaced here.
	out := (&http.Request{
		Method:     r.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Host:       u.Host,
	}).WithContext(ctx)
	if h.st.cfg.Providers[c.Index].SpeaksOpenAI() {
		out.Header = openaiHeader(r.Header, cred)
	} else {
		out.Header = upstreamHeader(r.Header, cred)
	}
	out.ContentLength = body.size()
	if out.ContentLength <= inlineBody && !h2 {
		// A copy of a small body, as a reader net/http knows is in memory,
		// goes out in the same write as the headers; any other body makes
		// the transport flush the headers first, a write system call of
		// their own (net/http's isKnownInMemoryReader). Over HTTP/2 the
		// copy would only cost an allocation: see h2Conn.
		b := body.bytes()
		out.Body = io.NopCloser(bytes.NewReader(b))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	} else {
		var written *atomic.Bool
		if note != nil {
			written = &note.bodyWritten
		}
		out.Body = body.reader(written)
		out.GetBody = func() (io.ReadCloser, error) {
			if note.sentTwice() {
				return nil, errSentTwice
			}
			return body.reader(written), nil
		}
	}
	resp, err := h.s.upstream.RoundTrip(out, h2)
	if err != nil && note != nil && ctx.Err() == nil && note.unprocessed(err) && !note.sentTwice() {
		h.s.logger().Warn("upstream connection failed before the request could have been processed; sending it once more on a new connection",
			"provider", c.Provider, "model", clip(c.Model), "error", err)
		note.fresh = true
		note.bodyWritten.Store(false)
		again := *out
		again.Body, _ = out.GetBody()
		resp, err = h.s.upstream.RoundTrip(&again, h2)
	}
	if err != nil {
		err = wd.explain(err) // before stop, which forgets the connection
		wd.stop()
		return nil, err
	}
	if resp.StatusCode < 200 {
		// Only a 101 reaches here (net/http consumes the others): a
		// Messages API answer never switches protocols.
		resp.Body.Close()
		wd.stop()
		return nil, fmt.Errorf("answered %d %s, which is not a Messages API answer", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return &answer{resp: resp, body: &watchedBody{r: resp.Body, wd: wd}, wd: wd}, nil
}

// sentFor is body as sent to candidate c: with c's model when it differs
// from the one asked for (f is body's routing fields).
func sentFor(body *payload, f *routingFields, c Candidate) sentBody {
	if c.Model == f.Model && f.modelStart >= 0 {
		return sentBody{p: body, parts: body.segs}
	}
	// The model value lies in one segment (a member never straddles two),
	// the segments before and after it are sent as they are.
	at, end, mid := modelSplice(f, c.quoted)
	parts := make([][]byte, 0, len(body.segs)+2)
	parts = body.appendRange(parts, 0, at)
	parts = append(parts, mid)
	parts = body.appendRange(parts, end, body.size)
	return sentBody{p: body, parts: parts}
}

// sentBody is what one attempt sends: the client's bytes with the model
// value replaced, read in place as parts, the body's segments cut around
// the model (a 30 MB conversation is not copied once per candidate).
type sentBody struct {
	p     *payload
	parts [][]byte
}

func (b sentBody) size() int64 {
	n := 0
	for _, part := range b.parts {
		n += len(part)
	}
	return int64(n)
}

// inlineBody is the largest body sent from a copy (see send): with its
// headers it fits the transport's 4 KB write buffer, so the copy saves a
// system call; a larger one would be written in two anyway.
const inlineBody = 3 << 10

// bytes returns a copy of the body in one slice, for small bodies only: the
// copy is the garbage collector's, so the payload is not held for it.
func (b sentBody) bytes() []byte {
	return bytes.Join(b.parts, nil)
}

// reader returns the body for one request; the payload stays held until
// the transport closes it (it may still be writing when RoundTrip returns).
// written, when not nil, is set once the transport has read it all. The
// reader has its own list of parts: it shortens them as it reads.
func (b sentBody) reader(written *atomic.Bool) io.ReadCloser {
	b.p.retain()
	return &sentReader{parts: append([][]byte(nil), b.parts...), p: b.p, written: written}
}

type sentReader struct {
	parts   [][]byte
	i       int
	p       *payload
	once    sync.Once
	written *atomic.Bool
}

// Read fills dst from as many parts as fit: the transport writes each Read
// to the socket as it comes, so a part per Read cost two extra write
// system calls per request (the bytes before and after the model name).
func (r *sentReader) Read(dst []byte) (int, error) {
	n := 0
	for r.i < len(r.parts) && n < len(dst) {
		c := copy(dst[n:], r.parts[r.i])
		r.parts[r.i] = r.parts[r.i][c:]
		n += c
		if len(r.parts[r.i]) == 0 {
			r.i++
		}
	}
	if r.i == len(r.parts) && r.written != nil {
		r.written.Store(true)
	}
	if n == 0 && r.i == len(r.parts) {
		return 0, io.EOF
	}
	return n, nil
}

func (r *sentReader) Close() error {
	r.once.Do(r.p.release)
	return nil
}

// answer is an upstream's answer being classified, then relayed.
type answer struct {
	resp *http.Response
	body io.Reader // resp.Body under the watchdog, decoded for a gzip event stream
	wd   *watchdog
	// events is set for an event stream; first is its first event.
	events *eventReader
	// oai is set for a Chat Completions stream being translated.
	oai *openaiAnswer
	// first is the answer's first bytes, read by start (from buf) or the
	// whole body, read by buffer.
	first    []byte
	buf      *[]byte
	buffered bool
}

func (a *answer) status() int { return a.resp.StatusCode }

// start reads the first event of an event stream, or the first bytes of
// any other body; an answer is committed to the client only after them.
func (a *answer) start() error {
	hdr := a.resp.Header
	if strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		switch hdr.Get("Content-Encoding") {
		case "gzip":
			// Decoded, so that a stream cut mid-way can still end with an
			// error event the client reads; an unencoded stream is valid
			// whatever the client's Accept-Encoding.
			zr, err := gzip.NewReader(a.body)
			if err != nil {
				return fmt.Errorf("the gzip event stream failed before its first event: %w", a.wd.explain(err))
			}
			a.body = zr
			hdr.Del("Content-Encoding")
			fallthrough
		case "", "identity":
			hdr.Del("Content-Length")
			a.events = newEventReader(a.body)
			first, err := a.events.Next()
			if err != nil {
				return fmt.Errorf("the stream ended before its first event: %w", a.wd.explain(err))
			}
			a.first = first
			return nil
		}
	}
	a.buf = copyPool.Get().(*[]byte)
	for {
		n, err := a.body.Read(*a.buf)
		if n > 0 {
			a.first = (*a.buf)[:n]
			return nil
		}
		if errors.Is(err, io.EOF) {
			return nil // an empty body is a whole answer
		}
		if err != nil {
			return fmt.Errorf("the answer failed before its first byte: %w", a.wd.explain(err))
		}
	}
}

// maxErrorBody bounds how much of a failed upstream answer is kept for the client.
const maxErrorBody = 1 << 20

// buffer reads a (small, error) answer whole and closes the upstream body,
// so the answer can wait while other candidates are tried.
func (a *answer) buffer() error {
	if a.buffered {
		return nil
	}
	defer a.closeUpstream()
	// start may have read the first bytes already (a 404 from count_tokens).
	b, err := io.ReadAll(io.LimitReader(io.MultiReader(bytes.NewReader(a.first), a.body), maxErrorBody))
	if err != nil {
		return fmt.Errorf("reading the %d answer: %w", a.status(), a.wd.explain(err))
	}
	a.first, a.buffered = b, true
	a.resp.Header.Del("Content-Length") // the body may have been cut at maxErrorBody
	return nil
}

// closeUpstream ends the upstream request and stops the watchdog.
func (a *answer) closeUpstream() {
	a.resp.Body.Close()
	a.wd.stop()
}

// close releases the answer; it may be nil.
func (a *answer) close() {
	if a == nil {
		return
	}
	if !a.buffered {
		a.closeUpstream()
	}
	if a.events != nil {
		a.events.release()
		a.events = nil
	}
	if a.buf != nil {
		copyPool.Put(a.buf)
		a.buf = nil
	}
}

// watchdog ends an upstream request that goes silent: it allows firstByte
// for everything up to the answer's first body byte, then idle between reads.
type watchdog struct {
	ctx       context.Context
	cancel    context.CancelCauseFunc
	timer     *time.Timer
	firstByte time.Duration
	idle      time.Duration
	started   atomic.Bool
	// note, when set, is the HTTP/2 request's: its connection is retired
	// when firstByte passes without a byte (dead or stuck, it gets no more
	// requests).
	note *sendNote
}

// timeoutError is the cause of a request the watchdog ended.
type timeoutError struct {
	what string
	d    time.Duration
}

func (e *timeoutError) Error() string { return fmt.Sprintf("no %s within %v", e.what, e.d) }
func (e *timeoutError) Timeout() bool { return true }

func newWatchdog(parent context.Context, firstByte, idle time.Duration, note *sendNote) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{ctx: ctx, cancel: cancel, firstByte: firstByte, idle: idle, note: note}
	w.timer = time.AfterFunc(firstByte, w.fire)
	return ctx, w
}

func (w *watchdog) fire() {
	if w.started.Load() {
		w.cancel(&timeoutError{"data from the upstream", w.idle})
	} else {
		w.cancel(&timeoutError{"answer from the upstream (server.timeouts.api_timeout_ms)", w.firstByte})
		w.note.retire()
	}
}

// progress records a read: the next may take idle.
func (w *watchdog) progress() {
	w.started.Store(true)
	w.timer.Reset(w.idle)
}

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(nil)
	w.note.ended()
}

// cause is the timeout that ended the request, or nil.
func (w *watchdog) cause() error {
	var te *timeoutError
	if errors.As(context.Cause(w.ctx), &te) {
		return te
	}
	return nil
}

// explain replaces an error caused by the watchdog, or by a health check
// that found the connection silent, with its reason.
func (w *watchdog) explain(err error) error {
	if c := w.cause(); c != nil {
		return c
	}
	return w.note.explain(err)
}

// watchedBody tells the watchdog about each read.
type watchedBody struct {
	r  io.Reader
	wd *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.wd.progress()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = b.wd.explain(err)
	}
	return n, err
}

// copyResponseHeader copies an upstream response header for the client,
// without hop-by-hop headers, cookies (the client talks to ccmux, not to
// the upstream's site) and CORS headers (ccmux decides which pages may
// read its answers, see server.allowed_origins).
func copyResponseHeader(dst, src http.Header) {
	for k, v := range src {
		if !hopHeader(k) && k != "Set-Cookie" && !strings.HasPrefix(k, "Access-Control-") {
			dst[k] = v
		}
	}
	removeConnectionHeaders(dst, src)
}
