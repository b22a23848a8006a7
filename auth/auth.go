// Package auth signs a user in to Claude with OAuth 2.0 + PKCE (loopback or
// pasted code), keeps tokens in ~/.claude-code-mux/oauth_tokens.json and keeps
// them fresh. It never imports proxy or tray and never logs a token value.
package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"ccmux/config"
)

// ErrNotImplemented marks the contract stubs the auth issue replaces.
var ErrNotImplemented = errors.New("not available yet")

// Preset is an OAuth client configuration.
type Preset struct {
	Name         string // "claude" or "console"
	ClientID     string
	AuthorizeURL string
	TokenURL     string
	RedirectURI  string // manual (paste) flow only
	Scopes       []string
	APIKeyURL    string // console preset only
}

// Claude is the Pro/Max subscription preset.
func Claude() Preset { return Preset{Name: "claude"} }

// Console is the preset that creates an API key.
func Console() Preset { return Preset{Name: "console"} }

// Store is the token store file.
type Store struct{ path string }

// NewStore returns the store at path (usually config.TokenPath()).
func NewStore(path string) *Store { return &Store{path: path} }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Clock is the time source; tests pass a fake.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Options tune a Client; zero values pick sensible defaults.
type Options struct {
	HTTPClient *http.Client
	Clock      Clock
	Logger     *slog.Logger
	// OpenBrowser opens the login URL; nil uses pkg/browser.
	OpenBrowser func(url string) error
}

// Client signs in, refreshes and hands out tokens.
type Client struct {
	cfg   *config.Config
	store *Store
	opts  Options
}

// NewClient returns a Client for cfg's [oauth.*] overrides and store.
func NewClient(cfg *config.Config, store *Store, opts Options) *Client {
	return &Client{cfg: cfg, store: store, opts: opts}
}

// Credential is what a provider sends upstream: an OAuth access token
// (Authorization: Bearer) or, for console logins, an API key (x-api-key).
type Credential struct {
	Value  string
	APIKey bool
}

// Account describes a stored login, without any secret.
type Account struct {
	ProviderID string
	Email      string
	ExpiresAt  time.Time
	APIKey     bool   // console login: a created API key is stored
	LastError  string // last refresh failure, "" when fine
}

// GetValidToken returns an access token with more than 5 minutes left.
func (c *Client) GetValidToken(ctx context.Context, providerID string) (string, error) {
	cred, err := c.Credential(ctx, providerID)
	return cred.Value, err
}

// Credential returns a valid credential for providerID, refreshing first if needed.
func (c *Client) Credential(ctx context.Context, providerID string) (Credential, error) {
	return Credential{}, ErrNotImplemented
}

// ForceRefresh refreshes providerID's token now (the proxy's 401 retry).
func (c *Client) ForceRefresh(ctx context.Context, providerID string) (Credential, error) {
	return Credential{}, ErrNotImplemented
}

// LoginOptions select the login flow.
type LoginOptions struct {
	Console bool // use the console preset and create an API key
	// Manual prints the URL to Out and reads the pasted code from In.
	Manual bool
	Out    io.Writer
	In     io.Reader
}

// Login runs the browser login for providerID and stores the token.
func (c *Client) Login(ctx context.Context, providerID string, opts LoginOptions) (Account, error) {
	return Account{}, ErrNotImplemented
}

// Authorize starts a manual-redirect login (admin API) and returns the URL
// and state; the PKCE verifier stays inside the Client.
func (c *Client) Authorize(providerID, preset string) (url, state string, err error) {
	return "", "", ErrNotImplemented
}

// Exchange completes a login started by Authorize. code may be "code#state".
func (c *Client) Exchange(ctx context.Context, providerID, code, state string) (Account, error) {
	return Account{}, ErrNotImplemented
}

// Logout removes providerID's stored token.
func (c *Client) Logout(providerID string) error { return ErrNotImplemented }

// Accounts lists stored logins, without secrets.
func (c *Client) Accounts() ([]Account, error) { return nil, ErrNotImplemented }

// EventKind says what happened to a login.
type EventKind int

// Event kinds, for the tray.
const (
	SignedIn EventKind = iota + 1
	Refreshed
	RefreshFailed
	ExpiringSoon
	Expired
	SignedOut
)

// Event is published on every change of a login's state.
type Event struct {
	Kind       EventKind
	ProviderID string
	Email      string
	ExpiresAt  time.Time
	Reason     string // RefreshFailed: why, in words, never a token
}

// Subscribe returns a channel of events and a function that ends the subscription.
func (c *Client) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event)
	return ch, func() {}
}

// RunRefresher keeps every stored token fresh until ctx is done.
func (c *Client) RunRefresher(ctx context.Context) { <-ctx.Done() }
