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
	"slices"
	"sort"
	"sync"
	"sync/atomic"
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
	// forcedRefreshEvery bounds forced refreshes (the proxy's 401 retry) to
	// one per login in this long: a token the API refuses right after a
	// refresh is refused for another reason, and rotating again won't help.
	forcedRefreshEvery = 30 * time.Second
	// flightTimeout bounds one refresh, lock wait and token request included.
	flightTimeout = 2 * time.Minute
)

// ErrRefreshedRecently is wrapped by ForceRefresh's error when a forced
// refresh of the same login ran less than 30 seconds ago: the caller should
// pass the upstream's 401 on instead of retrying.
var ErrRefreshedRecently = errors.New("its token was force-refreshed less than 30 seconds ago")

// ErrNotOwned is wrapped by the error for a login ccmux does not manage:
// another app (claude-code-mux's gemini or openai-codex logins, say) wrote it,
// and ccmux never refreshes, rewrites or removes it.
var ErrNotOwned = errors.New("managed by another app")

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
	// ResumeDelay picks the wait before the background work runs after a
	// Resume (at most 30 seconds); nil means a random one.
	ResumeDelay func() time.Duration
}

// Client signs in, refreshes and hands out tokens. It is safe for
// concurrent use; one Client per process is expected.
type Client struct {
	// conf is the config's view of the logins, replaced by SetConfig.
	conf         atomic.Pointer[clientConfig]
	store        *Store
	http         *http.Client
	clock        Clock
	log          *slog.Logger
	open         func(string) error
	loginTimeout time.Duration
	// retryDelays are the waits before retrying a refresh that failed with
	// a network error or 5xx, within one attempt.
	retryDelays []time.Duration

	mu       sync.Mutex
	flights  map[string]*flight   // refresh in progress, per provider id
	forcedAt map[string]time.Time // last forced refresh, per provider id
	running  int                  // refreshes in flight, for Drain
	drained  []chan struct{}      // Drain calls waiting for running == 0
	// sleepUntil is when RunRefresher wakes next (zero: it waits for a
	// nudge only); refresherOn says whether one runs, sleeping whether it
	// sleeps now.
	sleepUntil  time.Time
	refresherOn bool
	sleeping    bool
	// onSleep, when set by tests, sees each wake time RunRefresher picks.
	onSleep func(next time.Time)
	health  map[string]*health
	pending map[string]pendingLogin // Authorize'd logins by state
	subs    map[chan Event]struct{}
	wake    chan struct{} // nudges RunRefresher after a login or logout
	// resumed is closed (and replaced) by Resume; resumeWait is
	// Options.ResumeDelay.
	resumed    chan struct{}
	resumeWait func() time.Duration
}

// NewClient returns a Client for cfg's [oauth.*] overrides (cfg may be nil)
// and store.
func NewClient(cfg *config.Config, store *Store, opts Options) *Client {
	c := &Client{
		store:        store,
		http:         opts.HTTPClient,
		clock:        opts.Clock,
		log:          opts.Logger,
		open:         opts.OpenBrowser,
		loginTimeout: opts.LoginTimeout,
		retryDelays:  []time.Duration{time.Second, 3 * time.Second},
		flights:      map[string]*flight{},
		forcedAt:     map[string]time.Time{},
		health:       map[string]*health{},
		pending:      map[string]pendingLogin{},
		subs:         map[chan Event]struct{}{},
		wake:         make(chan struct{}, 1),
		resumed:      make(chan struct{}),
		resumeWait:   opts.ResumeDelay,
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
	c.SetConfig(cfg)
	store.log = c.log
	store.now = c.clock.Now
	store.onLoad = c.sawRecords
	return c
}

// clientConfig is what the Client reads of the config: [oauth.*] overrides
// and which logins are ccmux's.
type clientConfig struct {
	cfg *config.Config // nil: no config
	// owned are the ids of the configured Claude logins (see owns).
	owned map[string]bool
}

// SetConfig makes cfg's [oauth.*] overrides and Claude logins the ones the
// Client goes by from now on (a reloaded config); a refresh or login in
// progress finishes with the config it started with. cfg may be nil.
func (c *Client) SetConfig(cfg *config.Config) {
	cc := &clientConfig{cfg: cfg, owned: map[string]bool{}}
	if cfg != nil {
		for _, id := range cfg.ClaudeOAuthIDs() {
			cc.owned[id] = true
		}
		// An [oauth.ID] table is ccmux's own setting: that id is a Claude login.
		for id, o := range cfg.OAuth {
			if o.Preset == "" || o.Preset == "claude" || o.Preset == "console" {
				cc.owned[id] = true
			}
		}
	}
	c.conf.Store(cc)
}

// config is the config the Client goes by now, nil when it has none.
func (c *Client) config() *config.Config { return c.conf.Load().cfg }

// owns reports whether ccmux may refresh, rewrite or remove the record for
// id: id is a configured Claude login, or `ccmux login` wrote the record.
// Every other record in the shared file belongs to another app.
func (c *Client) owns(id string, r record) bool {
	return c.conf.Load().owned[id] || (!r.opaque && r.ManagedBy == managedByCcmux)
}

func (c *Client) notOwned(id string) error {
	return fmt.Errorf("the login %s in %s is %w (not a Claude login of ccmux's); ccmux leaves it alone", id, c.store.Path(), ErrNotOwned)
}

// notRecord is the error for an entry under id that is not a token record.
func (c *Client) notRecord(id string) error {
	return fmt.Errorf("the entry %s in %s is not a token record", id, c.store.Path())
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
	// Foreign marks a record another app manages (see ErrNotOwned); only
	// ProviderID is set for it.
	Foreign bool
}

// Expired reports whether the login's token had passed its expiry at now.
// An API key never expires; an expired token may still be Usable.
func (a Account) Expired(now time.Time) bool { return !a.APIKey && !a.ExpiresAt.After(now) }

// Usable reports whether requests can go out with the login at now: it is
// ccmux's, and it is an API key, an unexpired token, or an expired token
// whose last refresh did not fail (tokens are refreshed when used, so an
// expired one is renewed by the next request).
func (a Account) Usable(now time.Time) bool {
	return !a.Foreign && (a.APIKey || a.ExpiresAt.After(now) || a.LastError == "")
}

// SignedInEverywhere reports whether every Claude login an enabled provider of cfg
// uses is among accounts and Usable at now.
func SignedInEverywhere(cfg *config.Config, accounts []Account, now time.Time) bool {
	for _, id := range cfg.EnabledClaudeOAuthIDs() {
		if !slices.ContainsFunc(accounts, func(a Account) bool { return a.ProviderID == id && a.Usable(now) }) {
			return false
		}
	}
	return true
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
		if r.opaque {
			return record{}, c.notRecord(id)
		}
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
	if !c.owns(providerID, r) {
		if r.ExpiresAt.After(c.clock.Now()) {
			return Credential{Value: r.AccessToken}, nil
		}
		return Credential{}, c.notOwned(providerID)
	}
	return c.refresh(ctx, providerID, "", refreshWindow)
}

// ForceRefresh refreshes providerID's token now (the proxy's 401 retry),
// unless another caller replaced the token since this call started.
// A console login's API key is returned as is. At most one forced refresh
// per login runs in 30 seconds; a later call fails with an error wrapping
// ErrRefreshedRecently.
func (c *Client) ForceRefresh(ctx context.Context, providerID string) (Credential, error) {
	r, err := c.record(ctx, providerID)
	if err != nil {
		return Credential{}, err
	}
	if r.APIKey != "" {
		return Credential{Value: r.APIKey, APIKey: true}, nil
	}
	if !c.owns(providerID, r) {
		return Credential{}, c.notOwned(providerID)
	}
	now := c.clock.Now()
	c.mu.Lock()
	last, ok := c.forcedAt[providerID]
	recent := ok && now.Sub(last) < forcedRefreshEvery && !now.Before(last)
	if !recent {
		c.forcedAt[providerID] = now
	}
	c.mu.Unlock()
	if recent {
		return Credential{}, fmt.Errorf("not refreshing %s again: %w", providerID, ErrRefreshedRecently)
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
		c.running++
		go func() {
			defer c.flightDone()
			// Detached from the caller: a token request that reached the
			// endpoint has rotated the refresh token, and only storing its
			// answer keeps the login (Drain waits for it on shutdown).
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flightTimeout)
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
		if r.opaque {
			return false, c.notRecord(id)
		}
		if r.APIKey != "" {
			cred = Credential{Value: r.APIKey, APIKey: true}
			return false, nil
		}
		if !c.owns(id, r) {
			return false, c.notOwned(id)
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
	p, err := PresetFor(c.config(), id, "")
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
// is not signed in is not an error; a login another app manages is refused
// with an error wrapping ErrNotOwned.
func (c *Client) Logout(providerID string) error {
	var removed record
	var was bool
	err := c.store.update(context.Background(), func(recs map[string]record) (bool, error) {
		removed, was = recs[providerID]
		if was && !c.owns(providerID, removed) {
			return false, c.notOwned(providerID)
		}
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

// Accounts lists stored logins, without secrets, sorted by provider id;
// those another app manages are marked Foreign. It only reads: a corrupt
// store is reported, and left where it is.
func (c *Client) Accounts() ([]Account, error) {
	recs, err := c.store.read(context.Background())
	if err != nil {
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
		if r.opaque || !c.owns(id, r) {
			out = append(out, Account{ProviderID: id, Foreign: true})
			continue
		}
		a := Account{ProviderID: id, Email: r.Email, ExpiresAt: r.ExpiresAt, APIKey: r.APIKey != "", LastError: r.LastRefreshError}
		if h := c.health[id]; h != nil && h.lastError != "" {
			a.LastError = h.lastError
		}
		out = append(out, a)
	}
	return out, nil
}

// Drain waits until the refreshes in flight have finished and stored their
// result, or ctx is done. A clean stop calls it: a token request that
// reached the endpoint has rotated the refresh token, so exiting before its
// answer is stored would lose the login.
func (c *Client) Drain(ctx context.Context) error {
	c.mu.Lock()
	if c.running == 0 {
		c.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	c.drained = append(c.drained, done)
	c.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("a token refresh was still running at shutdown: %w", ctx.Err())
	}
}

func (c *Client) flightDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running--; c.running == 0 {
		for _, ch := range c.drained {
			close(ch)
		}
		c.drained = nil
	}
}

// EventKind says what happened to a login.
type EventKind int

// Event kinds, for the tray.
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
	APIKey     bool   // SignedIn: a console login, whose API key never expires
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
