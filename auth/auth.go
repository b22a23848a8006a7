// Package auth signs a user in to Claude with OAuth 2.0 + PKCE (loopback or
// pasted code), keeps tokens in ~/.claude-code-mux/oauth_tokens.json and keeps
// them fresh. It never imports proxy or tray and never logs a token value.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"ccmux/config"
)

const (
	// refreshWindow: a token with less left than this is refreshed before use.
	refreshWindow = 5 * time.Minute
	// expiringSoon: when refreshing keeps failing and less than this is
	// left, the tray is told (ExpiringSoon).
	expiringSoon = 15 * time.Minute
	// defaultLoginTimeout bounds a browser login.
	defaultLoginTimeout = 5 * time.Minute
	// pendingTTL bounds how long an Authorize waits for its Exchange, and
	// maxPending how many may wait at once (the oldest is dropped).
	pendingTTL = 10 * time.Minute
	maxPending = 32
	// defaultLifetime is assumed when a token response has no expires_in.
	defaultLifetime = time.Hour
)

// ErrNoToken is wrapped by the error for a provider id with no stored login.
var ErrNoToken = errors.New("no token found")

func noToken(id string) error {
	return &noTokenError{id}
}

type noTokenError struct{ id string }

func (e *noTokenError) Error() string {
	return fmt.Sprintf("No token found for provider %s — run `ccmux login --provider %s`", e.id, e.id)
}

func (e *noTokenError) Is(target error) bool { return target == ErrNoToken }

// Clock is the time source; tests pass a fake.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options tune a Client; zero values pick sensible defaults.
type Options struct {
	// HTTPClient makes token and API-key requests; nil means a client with
	// a 30-second timeout.
	HTTPClient *http.Client
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// Logger receives logs (never a token); nil means slog.Default().
	Logger *slog.Logger
	// OpenBrowser opens the login URL; nil uses pkg/browser.
	OpenBrowser func(url string) error
	// LoginTimeout bounds a login waiting for the browser or a pasted code;
	// 0 means 5 minutes.
	LoginTimeout time.Duration
}

// Client signs in, refreshes and hands out tokens. It is safe for
// concurrent use; one Client per process is expected.
type Client struct {
	cfg          *config.Config
	store        *Store
	http         *http.Client
	clock        Clock
	log          *slog.Logger
	open         func(string) error
	loginTimeout time.Duration
	// retryDelays are the waits before retrying a refresh that failed with
	// a network error or 5xx, within one attempt.
	retryDelays []time.Duration

	mu      sync.Mutex
	flights map[string]*flight // refresh in progress, per provider id
	health  map[string]*health
	pending map[string]pendingLogin // Authorize'd logins by state
	subs    map[chan Event]struct{}
	wake    chan struct{} // nudges RunRefresher after a login or logout
}

// NewClient returns a Client for cfg's [oauth.*] overrides (cfg may be nil)
// and store.
func NewClient(cfg *config.Config, store *Store, opts Options) *Client {
	c := &Client{
		cfg:          cfg,
		store:        store,
		http:         opts.HTTPClient,
		clock:        opts.Clock,
		log:          opts.Logger,
		open:         opts.OpenBrowser,
		loginTimeout: opts.LoginTimeout,
		retryDelays:  []time.Duration{time.Second, 3 * time.Second},
		flights:      map[string]*flight{},
		health:       map[string]*health{},
		pending:      map[string]pendingLogin{},
		subs:         map[chan Event]struct{}{},
		wake:         make(chan struct{}, 1),
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.open == nil {
		c.open = openBrowser
	}
	if c.loginTimeout <= 0 {
		c.loginTimeout = defaultLoginTimeout
	}
	store.log = c.log
	store.now = c.clock.Now
	return c
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

// health is what this process knows about a login's refreshes.
type health struct {
	failures      int
	nextAttempt   time.Time // no token request before this (backoff, Retry-After)
	lastError     string
	warnedSoon    bool // ExpiringSoon published for this failure streak
	warnedExpired bool // Expired published for this failure streak
}

func (c *Client) healthOf(id string) *health {
	h := c.health[id]
	if h == nil {
		h = &health{}
		c.health[id] = h
	}
	return h
}

// record reads providerID's stored login.
func (c *Client) record(ctx context.Context, id string) (record, error) {
	recs, err := c.store.read(ctx)
	if r, ok := recs[id]; ok {
		return r, nil
	}
	if err != nil {
		return record{}, err
	}
	return record{}, noToken(id)
}

// GetValidToken returns an access token with more than 5 minutes left.
func (c *Client) GetValidToken(ctx context.Context, providerID string) (string, error) {
	cred, err := c.Credential(ctx, providerID)
	return cred.Value, err
}

// Credential returns a valid credential for providerID, refreshing first
// when less than 5 minutes are left. Concurrent callers share one refresh,
// and a refresh another process already made is used instead of a new one.
func (c *Client) Credential(ctx context.Context, providerID string) (Credential, error) {
	r, err := c.record(ctx, providerID)
	if err != nil {
		return Credential{}, err
	}
	if r.APIKey != "" {
		return Credential{Value: r.APIKey, APIKey: true}, nil
	}
	if r.ExpiresAt.Sub(c.clock.Now()) > refreshWindow {
		return Credential{Value: r.AccessToken}, nil
	}
	return c.refresh(ctx, providerID, "", refreshWindow)
}

// ForceRefresh refreshes providerID's token now (the proxy's 401 retry),
// unless another caller replaced the token since this call started.
// A console login's API key is returned as is.
func (c *Client) ForceRefresh(ctx context.Context, providerID string) (Credential, error) {
	r, err := c.record(ctx, providerID)
	if err != nil {
		return Credential{}, err
	}
	if r.APIKey != "" {
		return Credential{Value: r.APIKey, APIKey: true}, nil
	}
	return c.refresh(ctx, providerID, r.AccessToken, refreshWindow)
}

// flight is one refresh shared by every concurrent caller for a provider.
type flight struct {
	done chan struct{}
	cred Credential
	err  error
}

// refresh runs doRefresh once per provider at a time; callers arriving while
// one runs wait for its result. The refresh itself is not cancelled with the
// first caller's ctx, since others may be waiting on it.
func (c *Client) refresh(ctx context.Context, id, seen string, within time.Duration) (Credential, error) {
	// A forced refresh does not join a lazy one, which may decide the
	// rejected token is still fresh; the store lock orders the two.
	key := id
	if seen != "" {
		key += "\x00force"
	}
	c.mu.Lock()
	f := c.flights[key]
	if f == nil {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
		go func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			f.cred, f.err = c.doRefresh(fctx, id, seen, within)
			cancel()
			c.mu.Lock()
			delete(c.flights, key)
			c.mu.Unlock()
			close(f.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.cred, f.err
	case <-ctx.Done():
		return Credential{}, ctx.Err()
	}
}

// doRefresh refreshes id's token under the store lock. It re-reads the store
// first: if the token there is no longer the one we would replace (seen, for
// ForceRefresh) or has more than within left, another process or goroutine
// refreshed it and that token is used, so a rotated refresh token is never
// spent twice.
func (c *Client) doRefresh(ctx context.Context, id, seen string, within time.Duration) (Credential, error) {
	var (
		cred      Credential
		reqErr    error // the token request failed
		ended     bool  // invalid_grant: the login was removed
		refreshed bool
		after     record
	)
	start := c.clock.Now()
	err := c.store.update(ctx, func(recs map[string]record) (bool, error) {
		now := c.clock.Now()
		r, ok := recs[id]
		if !ok {
			return false, noToken(id)
		}
		after = r
		if r.APIKey != "" {
			cred = Credential{Value: r.APIKey, APIKey: true}
			return false, nil
		}
		if (seen == "" && r.ExpiresAt.Sub(now) > within) || (seen != "" && r.AccessToken != seen) {
			cred = Credential{Value: r.AccessToken}
			return false, nil
		}
		c.mu.Lock()
		h := *c.healthOf(id)
		c.mu.Unlock()
		if now.Before(h.nextAttempt) {
			// Backing off after failures: no token request (never a
			// storm). A token that still works is better than none.
			if seen == "" && r.ExpiresAt.After(now) {
				cred = Credential{Value: r.AccessToken}
				return false, nil
			}
			return false, fmt.Errorf("refreshing the token for %s failed (%s); next try in %s", id, h.lastError, h.nextAttempt.Sub(now).Round(time.Second))
		}
		tok, err := c.refreshWithRetry(ctx, id, r.RefreshToken)
		if err != nil && ctx.Err() == nil {
			// claude-code-mux shares the file but not the lock: if it
			// rotated the token meanwhile, use its token rather than
			// deleting or overwriting it.
			if cur, rerr := c.store.readFile(); rerr == nil {
				if cr, ok := cur[id]; ok && cr.RefreshToken != r.RefreshToken && cr.ExpiresAt.After(now) {
					cred = Credential{Value: cr.AccessToken}
					return false, nil
				}
			}
		}
		if errors.Is(err, ErrSessionEnded) {
			delete(recs, id)
			ended = true
			return true, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return false, err
			}
			reqErr = err
			r.LastRefreshError = err.Error()
			recs[id] = r
			return true, nil
		}
		r.AccessToken = tok.AccessToken
		if tok.RefreshToken != "" { // tokens rotate, but a response may omit it
			r.RefreshToken = tok.RefreshToken
		}
		r.ExpiresAt = tok.Expiry
		if r.ExpiresAt.IsZero() {
			r.ExpiresAt = now.Add(defaultLifetime)
		}
		if email, _ := tok.Extra("email").(string); email != "" {
			r.Email = email
		}
		r.LastRefreshError = ""
		recs[id] = r
		after, cred, refreshed = r, Credential{Value: r.AccessToken}, true
		return true, nil
	})
	now := c.clock.Now()
	switch {
	case ended:
		c.resetHealth(id)
		c.log.Warn("token refresh refused: session ended, sign in again", "provider", id, "duration", now.Sub(start))
		c.publish(Event{Kind: SignedOut, ProviderID: id, Email: after.Email, Reason: "session ended, sign in again"})
		return Credential{}, fmt.Errorf("refreshing the token for %s: %w — run `ccmux login --provider %s`", id, ErrSessionEnded, id)
	case reqErr != nil:
		c.recordFailure(id, after, reqErr, err)
		return Credential{}, fmt.Errorf("refreshing the token for %s: %w", id, reqErr)
	case err != nil:
		return Credential{}, err
	case refreshed:
		c.resetHealth(id)
		c.log.Info("token refreshed", "provider", id, "expires_in", after.ExpiresAt.Sub(now).Round(time.Second), "duration", now.Sub(start))
		c.publish(Event{Kind: Refreshed, ProviderID: id, Email: after.Email, ExpiresAt: after.ExpiresAt})
	default:
		if !after.ExpiresAt.IsZero() && after.ExpiresAt.Sub(now) > refreshWindow {
			c.resetHealth(id) // refreshed elsewhere
		}
	}
	return cred, nil
}

// refreshWithRetry makes the refresh request, retrying network errors and
// 5xx after c.retryDelays; 429 is not retried here (Retry-After is honoured
// by the backoff in recordFailure).
func (c *Client) refreshWithRetry(ctx context.Context, id, refresh string) (*oauth2.Token, error) {
	p, err := PresetFor(c.cfg, id, "")
	if err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		tok, err := c.refreshToken(ctx, p, refresh)
		if err == nil {
			return tok, nil
		}
		var te *tokenError
		if !errors.As(err, &te) || !te.temporary() || te.status == http.StatusTooManyRequests || i >= len(c.retryDelays) {
			return nil, err
		}
		c.log.Warn("token refresh failed; retrying", "provider", id, "status", te.status, "err", te.Error())
		select {
		case <-c.clock.After(c.retryDelays[i]):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// recordFailure notes a failed refresh: backoff (or Retry-After), the error
// for Accounts, and RefreshFailed / ExpiringSoon / Expired events.
func (c *Client) recordFailure(id string, r record, reqErr, writeErr error) {
	now := c.clock.Now()
	c.mu.Lock()
	h := c.healthOf(id)
	h.failures++
	h.lastError = reqErr.Error()
	delay := min(30*time.Second<<min(h.failures-1, 4), 5*time.Minute)
	var te *tokenError
	if errors.As(reqErr, &te) && te.retryAfter > 0 {
		delay = te.retryAfter
	}
	h.nextAttempt = now.Add(delay)
	c.mu.Unlock()
	c.log.Warn("token refresh failed", "provider", id, "err", reqErr.Error(), "retry_in", delay)
	if writeErr != nil {
		c.log.Warn("could not record the refresh failure in the token store", "provider", id, "err", writeErr)
	}
	c.publish(Event{Kind: RefreshFailed, ProviderID: id, Email: r.Email, ExpiresAt: r.ExpiresAt, Reason: fmt.Sprintf("%s; retrying in %s", reqErr, delay.Round(time.Second))})
	c.noticeExpiry(id, r, now)
}

// noticeExpiry publishes ExpiringSoon (refresh keeps failing and less than
// 15 minutes are left) and Expired, once per failure streak.
func (c *Client) noticeExpiry(id string, r record, now time.Time) {
	left := r.ExpiresAt.Sub(now)
	c.mu.Lock()
	h := c.healthOf(id)
	var kind EventKind
	switch {
	case left <= 0 && !h.warnedExpired:
		h.warnedExpired, h.warnedSoon = true, true
		kind = Expired
	case left > 0 && left < expiringSoon && h.failures > 0 && !h.warnedSoon:
		h.warnedSoon = true
		kind = ExpiringSoon
	}
	reason := h.lastError
	c.mu.Unlock()
	if kind != 0 {
		c.publish(Event{Kind: kind, ProviderID: id, Email: r.Email, ExpiresAt: r.ExpiresAt, Reason: reason})
	}
}

func (c *Client) resetHealth(id string) {
	c.mu.Lock()
	delete(c.health, id)
	c.mu.Unlock()
}

// Logout removes providerID's stored token. Logging out of a provider that
// is not signed in is not an error.
func (c *Client) Logout(providerID string) error {
	var removed record
	var was bool
	err := c.store.update(context.Background(), func(recs map[string]record) (bool, error) {
		removed, was = recs[providerID]
		delete(recs, providerID)
		return was, nil
	})
	if err != nil {
		return fmt.Errorf("signing out of %s: %w", providerID, err)
	}
	c.resetHealth(providerID)
	if was {
		c.log.Info("signed out", "provider", providerID)
		c.publish(Event{Kind: SignedOut, ProviderID: providerID, Email: removed.Email, Reason: "signed out"})
		c.nudge()
	}
	return nil
}

// Accounts lists stored logins, without secrets, sorted by provider id. If
// the store was corrupt it was moved aside and the error says where.
func (c *Client) Accounts() ([]Account, error) {
	recs, err := c.store.read(context.Background())
	if err != nil && !errors.Is(err, ErrCorruptStore) {
		return nil, err
	}
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]Account, 0, len(ids))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		r := recs[id]
		a := Account{ProviderID: id, Email: r.Email, ExpiresAt: r.ExpiresAt, APIKey: r.APIKey != "", LastError: r.LastRefreshError}
		if h := c.health[id]; h != nil && h.lastError != "" {
			a.LastError = h.lastError
		}
		out = append(out, a)
	}
	return out, err
}

// EventKind says what happened to a login.
type EventKind int

// Event kinds, for the tray. The order is fixed: main.go converts them to
// the tray's kinds by number.
const (
	SignedIn      EventKind = iota + 1 // a login completed
	Refreshed                          // a token was refreshed
	RefreshFailed                      // a refresh failed; Reason says why; it will be retried
	ExpiringSoon                       // refreshing keeps failing and less than 15 minutes are left
	Expired                            // the token expired without a successful refresh
	SignedOut                          // logout, or the server ended the session (invalid_grant)
)

// String names the kind in words, for logs.
func (k EventKind) String() string {
	switch k {
	case SignedIn:
		return "signed in"
	case Refreshed:
		return "refreshed"
	case RefreshFailed:
		return "refresh failed"
	case ExpiringSoon:
		return "expiring soon"
	case Expired:
		return "expired"
	case SignedOut:
		return "signed out"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is published on every change of a login's state.
type Event struct {
	Kind       EventKind
	ProviderID string
	Email      string
	ExpiresAt  time.Time
	Reason     string // RefreshFailed, ExpiringSoon, SignedOut: why, in words, never a token
}

// Subscribe returns a channel of events and a function that ends the
// subscription and closes the channel. The channel is buffered; a
// subscriber that stops reading loses events rather than stalling refreshes.
func (c *Client) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 32)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs, ch)
			c.mu.Unlock()
			close(ch)
		})
	}
}

func (c *Client) publish(ev Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- ev:
		default:
			c.log.Warn("auth event dropped: a subscriber is not reading", "provider", ev.ProviderID, "event", ev.Kind.String())
		}
	}
}

// nudge wakes RunRefresher to re-read the store.
func (c *Client) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
