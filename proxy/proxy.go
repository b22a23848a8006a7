// Package proxy is the local Anthropic Messages API server: it routes each
// request by model to the configured providers, fails over between them and
// relays streams event by event. It never imports tray; tokens come through TokenSource.
package proxy

import (
	"context"
	"errors"
	"log/slog"
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
	Config  *config.Config
	Tokens  TokenSource
	Admin   OAuthAdmin   // nil disables the admin API
	Logger  *slog.Logger // nil discards logs
	Version string
}

// Start binds Config.Server's address and serves in the background. It
// returns an error naming the address when it is in use.
func (s *Server) Start(ctx context.Context) error { return errors.New("proxy not available yet") }

// Stop drains in-flight requests until ctx ends, then closes the listener.
func (s *Server) Stop(ctx context.Context) error { return nil }

// Running reports whether the listener is open.
func (s *Server) Running() bool { return false }

// Addr is the address the server listens on (host:port), or the configured one when stopped.
func (s *Server) Addr() string { return s.Config.Addr() }
