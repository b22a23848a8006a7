// Package proxy is the local Anthropic Messages API server: it routes each
// request by model to the configured providers, fails over between them and
// relays streams event by event. It never imports tray; tokens come through TokenSource.
//
// A request reads top-down, one step per file:
//   - server.go: the listener, the Host/Origin/key gates and the endpoint table;
//   - messages.go: read the body, route it, try the candidates in order;
//   - upstream.go: build and send one upstream request, classify its answer;
//   - relay.go: write the answer back (headers, body or events).
//
// Only model, stream, thinking.type, tools[].type and system[1].text (for
// claude-code-mux's subagent tag) are read from a body; the body is forwarded
// as sent, with only the model value rewritten and that tag removed. Every
// upstream goes through net/http: plain http:// through an http.Transport,
// https:// through an HTTP/2 transport that dials once per upstream however
// many requests arrive together (and falls back to HTTP/1.1 when the
// upstream does not offer HTTP/2).
//
// Rules every request meets: Host must be localhost, 127.0.0.1, [::1] or
// server.host (403 otherwise, against DNS rebinding); an Origin header must be
// in server.allowed_origins (403), and Sec-Fetch-Site: cross-site is refused
// the same way unless its Origin is allowed; POST /v1/* must be
// application/json (415), so no browser "simple request" reaches an upstream;
// bodies are limited to 32 MiB (413) and read as they arrive, and the bytes
// held for failover across all requests have a budget (529 past it). When
// server.api_key is set, /v1/* and the admin API need it (x-api-key or
// Bearer); /health and HEAD / do not. The admin API (/api/oauth/*) answers
// loopback peers only, POSTs must be application/json, and it is off (404)
// when Server.Admin is nil.
//
// An answer is never a false success: a non-streaming body that fails after
// the status line went out aborts the client's connection, and a stream ends
// with an Anthropic "event: error". Nothing hangs: an upstream gets
// server.timeouts.api_timeout_ms for its first byte (then the next candidate
// is tried) and stream_idle_timeout_ms between reads after it.
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

	"ccmux/auth"
)

// TokenSource hands out the credential sent upstream for an OAuth provider
// (a bearer token, or the API key a console login created) by token-store
// id. *auth.Client is one.
type TokenSource interface {
	Credential(ctx context.Context, providerID string) (auth.Credential, error)
	ForceRefresh(ctx context.Context, providerID string) (auth.Credential, error)
}

// OAuthAdmin backs the /api/oauth/* admin endpoints.
type OAuthAdmin interface {
	Authorize(providerID, preset string) (url, state string, err error)
	Exchange(ctx context.Context, providerID, code, state string) error
	// Tokens lists ccmux's own logins, never another app's.
	Tokens() ([]auth.Account, error)
	Delete(providerID string) error
	// Refresh refreshes providerID's token now and returns the login as it
	// then is.
	Refresh(ctx context.Context, providerID string) (auth.Account, error)
}
