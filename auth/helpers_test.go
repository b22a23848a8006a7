package auth

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/config"
	"ccmux/internal/testsupport"
)

// fakeClock is a Clock the test moves by hand.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	afters  int           // After calls so far
	armed   chan struct{} // signalled on every After call
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), armed: make(chan struct{}, 1000)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	f.afters++
	if d <= 0 {
		ch <- f.now
	} else {
		f.waiters = append(f.waiters, fakeWaiter{f.now.Add(d), ch})
	}
	f.armed <- struct{}{}
	return ch
}

// Advance moves the clock and fires every timer that is due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if !w.at.After(f.now) {
			w.ch <- f.now
		} else {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
}

// Jump moves the clock by d as a suspend does: the wall clock runs on,
// timers (monotonic) do not count the time, so none fires.
func (f *fakeClock) Jump(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for i := range f.waiters {
		f.waiters[i].at = f.waiters[i].at.Add(d)
	}
}

// NextTimer is when the earliest pending timer fires (zero if none).
func (f *fakeClock) NextTimer() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Time
	for _, w := range f.waiters {
		if next.IsZero() || w.at.Before(next) {
			next = w.at
		}
	}
	return next
}

// AdvanceToNext moves the clock to the earliest pending timer and fires it.
func (f *fakeClock) AdvanceToNext() {
	if next := f.NextTimer(); !next.IsZero() {
		f.Set(next)
	}
}

// Set moves the clock to t (forward only).
func (f *fakeClock) Set(t time.Time) { f.Advance(t.Sub(f.Now())) }

// waitArmed waits for the next After call (the code under test going back to sleep).
func (f *fakeClock) waitArmed(t *testing.T) {
	t.Helper()
	select {
	case <-f.armed:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for the code under test to wait on the clock")
	}
}

// drainArmed forgets earlier After calls.
func (f *fakeClock) drainArmed() {
	for {
		select {
		case <-f.armed:
		default:
			return
		}
	}
}

// env is one test's fake server, config, store and client, with every log
// line and error it saw checked for token values at the end.
type env struct {
	t       testing.TB
	srv     *authtest.Server
	cfgText string // config.toml, before the [oauth.*] tables pointing at srv
	cfg     *config.Config
	path    string
	store   *Store
	c       *Client
	clock   *fakeClock // nil with the real clock
	logs    *testsupport.Buffer
	said    *testsupport.Buffer // errors and output the test collected
}

type envOption func(*env, *Options)

func withFakeClock() envOption {
	return func(e *env, o *Options) { e.clock = newFakeClock(); o.Clock = e.clock }
}

func withOpener(open func(string) error) envOption {
	return func(_ *env, o *Options) { o.OpenBrowser = open }
}

// withConfig replaces the default config the env starts from.
func withConfig(text string) envOption {
	return func(e *env, _ *Options) { e.cfgText = text }
}

// withResumeDelay makes the wait after a Resume d instead of a random one.
func withResumeDelay(d time.Duration) envOption {
	return func(_ *env, o *Options) { o.ResumeDelay = func() time.Duration { return d } }
}

func withLoginTimeout(d time.Duration) envOption {
	return func(_ *env, o *Options) { o.LoginTimeout = d }
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	srv := authtest.NewServer()
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, cfgText: config.DefaultTOML, path: filepath.Join(t.TempDir(), ".claude-code-mux", "oauth_tokens.json"), logs: &testsupport.Buffer{}, said: &testsupport.Buffer{}}
	o := Options{
		Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OpenBrowser: func(string) error { return errors.New("no browser in this test") },
	}
	for _, opt := range opts {
		opt(e, &o)
	}
	cfg, err := config.Parse("config.toml", []byte(e.cfgText+srv.OAuthTOML("anthropic-max", "claude")+srv.OAuthTOML("console-id", "console")))
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	e.store = NewStore(e.path)
	e.c = NewClient(cfg, e.store, o)
	e.c.retryDelays = nil
	t.Cleanup(e.checkNoSecrets)
	t.Cleanup(func() {
		if t.Failed() { // what the client logged says why; any token value is blanked
			logs := e.logs.String()
			for _, s := range e.srv.Secrets() {
				logs = strings.ReplaceAll(logs, s, "[token]")
			}
			t.Logf("client log:\n%s", logs)
		}
	})
	return e
}

// newClient is a second client (think: another process) on the same file.
func (e *env) newClient() *Client {
	c := NewClient(e.cfg, NewStore(e.path), Options{Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Clock: e.c.clock})
	c.retryDelays = nil
	return c
}

// note keeps an error or output for the secret check.
func (e *env) note(v any) {
	switch v := v.(type) {
	case nil:
	case error:
		if v != nil {
			e.said.Write([]byte(v.Error() + "\n"))
		}
	case string:
		e.said.Write([]byte(v + "\n"))
	}
}

func (e *env) checkNoSecrets() {
	logs, said := e.logs.String(), e.said.String()
	for _, s := range e.srv.Secrets() {
		if strings.Contains(logs, s) {
			e.t.Errorf("a secret issued by the fake appears in the logs:\n%s", logs)
		}
		if strings.Contains(said, s) {
			e.t.Errorf("a secret issued by the fake appears in an error or output:\n%s", said)
		}
	}
}

// signIn completes a login through the admin flow (Authorize, the fake's
// approval, Exchange) and returns the account.
func (e *env) signIn(id string) Account {
	e.t.Helper()
	u, state, err := e.c.Authorize(id, "")
	if err != nil {
		e.t.Fatal(err)
	}
	loc, err := e.srv.Approve(u)
	if err != nil {
		e.t.Fatal(err)
	}
	acct, err := e.c.Exchange(context.Background(), id, loc.Query().Get("code"), state)
	e.note(err)
	if err != nil {
		e.t.Fatal(err)
	}
	return acct
}

// records reads the store file directly.
func (e *env) records() map[string]record {
	e.t.Helper()
	recs, err := e.store.readFile()
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// expire moves id's stored expiry to at.
func (e *env) expire(id string, at time.Time) {
	e.t.Helper()
	err := e.store.update(context.Background(), func(recs map[string]record) (bool, error) {
		r := recs[id]
		r.ExpiresAt = at
		recs[id] = r
		return true, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// now is the client's clock.
func (e *env) now() time.Time { return e.c.clock.Now() }

// nextEvent waits for an event of kind on ch.
func nextEvent(t *testing.T, ch <-chan Event, kind EventKind) Event {
	t.Helper()
	deadline := time.After(30 * time.Second) // a wait for what is owed, not a measurement
	for {
		select {
		case ev := <-ch:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event", kind)
		}
	}
}

// noEvent asserts nothing is queued on ch.
func noEvent(t *testing.T, ch <-chan Event) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected %s event (%s)", ev.Kind, ev.Reason)
	default:
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
