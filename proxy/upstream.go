package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"ccmux/auth"
	"ccmux/config"
)

// Built-in upstream timeouts, used when [server.timeouts] leaves them out.
// A non-streaming answer only sends its headers when the whole message is
// written, so the wait for headers must allow a long generation.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultAPITimeout     = 10 * time.Minute
)

// newTransport returns the one Transport every upstream request shares, so
// connections (HTTP/2 where the upstream offers it) are kept alive and reused
// across requests. There is no overall timeout: a stream may last minutes.
func newTransport(t config.Timeouts) *http.Transport {
	connect := millis(t.ConnectTimeoutMS, DefaultConnectTimeout)
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256, // 32+ concurrent Claude Code sessions, with room to spare
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: millis(t.APITimeoutMS, DefaultAPITimeout),
		ExpectContinueTimeout: time.Second,
		// Pass the client's Accept-Encoding through instead of having the
		// transport ask for gzip and decompress behind the client's back.
		DisableCompression: true,
	}
}

func millis(ms int, def time.Duration) time.Duration {
	if ms <= 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// hopHeaders are meaningful only for one connection and are never forwarded
// (RFC 9110, section 7.6.1), in either direction.
var hopHeaders = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// clientOnlyHeaders are the client's credentials for ccmux itself and ccmux's
// own debugging header; the upstream gets the provider's credentials instead.
var clientOnlyHeaders = map[string]bool{
	"Authorization":  true,
	"X-Api-Key":      true,
	"X-Provider":     true,
	"Content-Length": true, // set from the (possibly rewritten) body
	"Host":           true,
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
func upstreamHeader(in http.Header, cred Credential) http.Header {
	h := make(http.Header, len(in)+2)
	for k, v := range in {
		if !hopHeaders[k] && !clientOnlyHeaders[k] {
			h[k] = v
		}
	}
	removeConnectionHeaders(h, in)
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

// copyResponseHeader copies an upstream response header for the client.
func copyResponseHeader(dst, src http.Header) {
	for k, v := range src {
		if !hopHeaders[k] {
			dst[k] = v
		}
	}
	removeConnectionHeaders(dst, src)
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
}

func (e *attemptError) Error() string { return e.Provider + ": " + e.Err.Error() }

// credential returns what provider i authenticates with upstream.
func (s *Server) credential(ctx context.Context, i int, refresh bool) (Credential, error) {
	p := s.Config.Providers[i]
	if !p.IsOAuth() {
		key, err := s.Config.ProviderAPIKey(i)
		if err != nil {
			return Credential{}, err
		}
		if key == "" {
			return Credential{}, fmt.Errorf("providers[%d].api_key is empty", i)
		}
		return Credential{Value: key, APIKey: true}, nil
	}
	if s.Tokens == nil {
		return Credential{}, errors.New("no token store is available")
	}
	var cred Credential
	var err error
	if refresh {
		cred, err = s.Tokens.ForceRefresh(ctx, p.OAuthProvider)
	} else {
		cred, err = s.Tokens.Token(ctx, p.OAuthProvider)
	}
	if err == nil && cred.Value == "" {
		err = errors.New("the stored login has no token")
	}
	return cred, err
}

// send makes one upstream request for candidate c with body. Plain
// http:// upstreams are served by the synchronous HTTP/1.1 client, the
// others by the shared Transport. body is not read after send returns.
func (s *Server) send(ctx context.Context, st *state, r *http.Request, c Candidate, body *payload, cred Credential) (*http.Response, error) {
	u := upstreamURL(st.upstreams[c.Index], r.URL)
	if addr := st.h1Addr[c.Index]; addr != "" {
		resp, err := s.h1.roundTrip(ctx, &h1Request{
			method: r.Method,
			addr:   addr,
			host:   u.Host,
			uri:    u.RequestURI(),
			header: upstreamHeader(r.Header, cred),
			body:   body.b,
		})
		if err != nil {
			return nil, &url.Error{Op: methodName(r.Method), URL: u.String(), Err: err}
		}
		return resp, nil
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, "", nil)
	if err != nil {
		return nil, err
	}
	out.URL = u
	out.Host = out.URL.Host
	out.Header = upstreamHeader(r.Header, cred)
	out.ContentLength = int64(len(body.b))
	out.Body = body.reader()
	out.GetBody = func() (io.ReadCloser, error) { return body.reader(), nil }
	return s.transport.RoundTrip(out)
}

// methodName spells a method as net/http's errors do ("Post").
func methodName(m string) string {
	if len(m) < 2 {
		return m
	}
	return m[:1] + strings.ToLower(m[1:])
}

// h1Addr returns the host:port the synchronous client dials for u, or ""
// when u needs the Transport: https (HTTP/2), or a proxy from the
// environment (HTTP_PROXY, NO_PROXY) applies to it.
func h1Addr(u *url.URL) string {
	if u.Scheme != "http" {
		return ""
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// try runs candidate c: credential, request, and for an OAuth provider that
// answers 401, one forced refresh and one retry on the same provider.
func (s *Server) try(ctx context.Context, st *state, r *http.Request, c Candidate, body *payload) (*http.Response, error) {
	p := s.Config.Providers[c.Index]
	cred, err := s.credential(ctx, c.Index, false)
	if err != nil {
		ae := &attemptError{Provider: c.Provider, Err: err}
		// Only a missing or ended login asks for a sign-in; an unreachable
		// token endpoint is reported as itself.
		if p.IsOAuth() && (errors.Is(err, auth.ErrNoToken) || errors.Is(err, auth.ErrSessionEnded)) {
			ae.SignIn = p.OAuthProvider
		}
		return nil, ae
	}
	resp, err := s.send(ctx, st, r, c, body, cred)
	if err != nil {
		return nil, &attemptError{Provider: c.Provider, Err: err}
	}
	if resp.StatusCode != http.StatusUnauthorized || !p.IsOAuth() || cred.APIKey {
		return resp, nil
	}
	// Keep the 401 so the client gets it as received if the refresh fails.
	first, err := bufferResponse(resp)
	if err != nil {
		return nil, &attemptError{Provider: c.Provider, Err: err}
	}
	cred, err = s.credential(ctx, c.Index, true)
	if err != nil {
		s.logger().Warn("token refresh after 401 failed", "provider", c.Provider, "oauth_provider", p.OAuthProvider, "error", err)
		return first, nil
	}
	resp, err = s.send(ctx, st, r, c, body, cred)
	if err != nil {
		return nil, &attemptError{Provider: c.Provider, Err: err}
	}
	return resp, nil
}

// maxErrorBody bounds how much of a failed upstream answer is kept for the client.
const maxErrorBody = 1 << 20

// bufferResponse reads a (small, error) response into memory and closes it,
// returning a response that replays the same status, headers and body.
func bufferResponse(resp *http.Response) (*http.Response, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, fmt.Errorf("reading the %d answer: %w", resp.StatusCode, err)
	}
	out := *resp
	out.Body = io.NopCloser(strings.NewReader(string(b)))
	out.ContentLength = int64(len(b))
	out.Header = resp.Header.Clone()
	out.Header.Del("Content-Length") // the body may have been cut at maxErrorBody
	return &out, nil
}
