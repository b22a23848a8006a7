package tray

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/assets"
	"ccmux/auth"
)

// fakeAuth is an Auth whose Login waits for the test to finish it.
type fakeAuth struct {
	mu       sync.Mutex
	ids      []string                // the listed logins
	primary  string                  // the one the icon follows
	accounts map[string]auth.Account // by login id
	events   chan auth.Event
	logins   chan loginCall
	logouts  []string // the ids Logout was called for, in order
	logout   error
}

type loginCall struct {
	ctx    context.Context
	id     string
	result chan<- loginResult
}

type loginResult struct {
	acct auth.Account
	err  error
}

// apiKeyLogin is a login that never expires (an API key's), so the status
// line shows no expiry time and the tests need no clock.
func apiKeyLogin(email string) *auth.Account {
	return &auth.Account{ProviderID: "anthropic-max", Email: email, APIKey: true}
}

// newFakeAuth lists one login, anthropic-max, signed in as login (nil: not).
func newFakeAuth(login *auth.Account) *fakeAuth {
	f := &fakeAuth{ids: []string{"anthropic-max"}, primary: "anthropic-max", accounts: map[string]auth.Account{},
		events: make(chan auth.Event), logins: make(chan loginCall, 1)}
	if login != nil {
		f.accounts["anthropic-max"] = *login
	}
	return f
}

// set lists ids, with primary the one the icon follows, signed in as accounts.
func (f *fakeAuth) set(ids []string, primary string, accounts map[string]auth.Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ids, f.primary, f.accounts = ids, primary, accounts
}

func (f *fakeAuth) Logins() ([]string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids), f.primary
}

func (f *fakeAuth) Login(ctx context.Context, id string) (auth.Account, error) {
	res := make(chan loginResult, 1)
	f.logins <- loginCall{ctx, id, res}
	select {
	case r := <-res:
		return r.acct, r.err
	case <-ctx.Done():
		return auth.Account{}, fmt.Errorf("waiting for the browser: %w", ctx.Err())
	}
}

func (f *fakeAuth) Logout(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logouts = append(f.logouts, id)
	return f.logout
}

func (f *fakeAuth) Events() (<-chan auth.Event, func()) { return f.events, func() {} }

func (f *fakeAuth) Account(id string) (auth.Account, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acct, ok := f.accounts[id]
	return acct, ok
}

// fakeProxy is a Proxy that fails to start while startErr is set.
type fakeProxy struct {
	mu       sync.Mutex
	addr     string // "" is 127.0.0.1:13456
	running  bool
	startErr error
	starts   int
	stops    int
	code     string // DashboardCode's answer: server.api_key set
}

func (p *fakeProxy) DashboardCode() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

func (p *fakeProxy) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	if p.startErr != nil {
		return p.startErr
	}
	p.running = true
	return nil
}

func (p *fakeProxy) Stop(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stops++
	p.running = false
	return nil
}

func (p *fakeProxy) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

func (p *fakeProxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addr == "" {
		return "127.0.0.1:13456"
	}
	return p.addr
}

func (p *fakeProxy) setStartErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startErr = err
}

// fakeNotifier records notifications on a channel.
type fakeNotifier struct{ got chan note }

func (n *fakeNotifier) Notify(title, message string) error {
	n.got <- note{title, message}
	return nil
}

// fakeAutostart is an in-memory start-at-login entry.
type fakeAutostart struct {
	mu  sync.Mutex
	on  bool
	cmd loginCommand
	err error
}

func (f *fakeAutostart) Enabled() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on, nil
}

func (f *fakeAutostart) Enable(cmd loginCommand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.on, f.cmd = true, cmd
	return nil
}

func (f *fakeAutostart) Disable() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on = false
	return nil
}

// harness runs the event loop with fakes and watches what it shows.
type harness struct {
	t      *testing.T
	auth   *fakeAuth
	proxy  *fakeProxy
	notes  *fakeNotifier
	auto   *fakeAutostart
	opened chan string
	// openURL is the browser; nil for one that fails the test.
	openURL func(string) error
	clicks  chan action
	views   chan view
	last    view
	cancel  context.CancelFunc
	done    chan error
	usage   UsageSource
	// reload and reloads are Options.Reload and Options.Reloads.
	reload  Reloader
	reloads chan struct{}
	// exe and configPath are the binary and config file the app runs on;
	// "" for /usr/local/bin/ccmux and the default config of HOME=/home/ada.
	exe, configPath string
	// log is the app's logger; nil discards.
	log *slog.Logger
}

func start(t *testing.T, login *auth.Account) *harness {
	t.Helper()
	return newHarness(t, login).run()
}

// newHarness is a harness with fakes, not running yet.
func newHarness(t *testing.T, login *auth.Account) *harness {
	t.Helper()
	return &harness{
		t:      t,
		auth:   newFakeAuth(login),
		proxy:  &fakeProxy{},
		notes:  &fakeNotifier{got: make(chan note, 32)},
		auto:   &fakeAutostart{},
		opened: make(chan string, 1),
		clicks: make(chan action),
		views:  make(chan view, 256),
		done:   make(chan error, 1),
	}
}

func (h *harness) run() *harness {
	open := func(p string) error { h.opened <- p; return nil }
	exe, configPath := cmp.Or(h.exe, "/usr/local/bin/ccmux"), cmp.Or(h.configPath, "/home/ada/.claude-code-mux/config.toml")
	log := cmp.Or(h.log, slog.New(slog.DiscardHandler))
	a := newApp(Options{Auth: h.auth, Proxy: h.proxy, Usage: h.usage, Reload: h.reload, Reloads: h.reloads, ConfigPath: configPath, Logger: log}, h.notes, h.auto, open)
	a.executable = func() (string, error) { return exe, nil }
	a.openURL = h.openURL
	if a.openURL == nil {
		a.openURL = func(u string) error { h.t.Errorf("opened %s in the browser", u); return nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.prepare(ctx)
	h.cancel = cancel
	go func() { h.done <- a.loop(ctx, h.clicks, func(v view) { h.views <- v }) }()
	h.t.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

// waitView waits until the menu shows a view for which ok is true.
func (h *harness) waitView(what string, ok func(view) bool) view {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if ok(h.last) {
			return h.last
		}
		select {
		case h.last = <-h.views:
		case <-deadline:
			h.t.Fatalf("menu never showed %s; last view: %+v", what, h.last)
		}
	}
}

func (h *harness) click(a action) {
	h.t.Helper()
	select {
	case h.clicks <- a:
	case <-time.After(5 * time.Second):
		h.t.Fatalf("the event loop did not take click %d: it is blocked", a)
	}
}

func (h *harness) waitNote(title string) note {
	h.t.Helper()
	select {
	case n := <-h.notes.got:
		if n.title != title {
			h.t.Fatalf("notification %q (%q), want %q", n.title, n.message, title)
		}
		return n
	case <-time.After(5 * time.Second):
		h.t.Fatalf("no notification %q", title)
	}
	return note{}
}

// noMoreNotes checks that nothing else was notified, after a round trip
// through the loop (a click on Show proxy address) flushes the queue.
func (h *harness) noMoreNotes() {
	h.t.Helper()
	h.click(clickShowAddress)
	for {
		select {
		case got := <-h.notes.got:
			if got.title == "Proxy address for Claude Code" {
				return
			}
			h.t.Fatalf("unexpected notification %q (%q)", got.title, got.message)
		case <-time.After(5 * time.Second):
			h.t.Fatal("the flush notification never came")
		}
	}
}

func (h *harness) login() loginCall {
	h.t.Helper()
	select {
	case c := <-h.auth.logins:
		return c
	case <-time.After(5 * time.Second):
		h.t.Fatal("Login was not called")
	}
	return loginCall{}
}

func proxyOn(v view) bool { return v.ProxyChecked && v.ProxyEnabled }

func TestStartsProxyAndShowsSignedIn(t *testing.T) {
	h := start(t, apiKeyLogin("ada@example.com"))
	v := h.waitView("the proxy on", proxyOn)
	if v.Status != "Signed in as ada@example.com" || v.SignIn != "Sign out" || v.Icon != assets.Active {
		t.Fatalf("signed-in view = %+v", v)
	}
	if v.Proxy != "Proxy on 127.0.0.1:13456" {
		t.Errorf("proxy item = %q", v.Proxy)
	}
}

func TestSignIn(t *testing.T) {
	t.Setenv("HOME", "/home/ada") // the harness's config file is the default one
	h := start(t, nil)
	h.waitView("the proxy on", proxyOn)
	h.click(clickSignIn)
	h.waitView("signing in", func(v view) bool { return v.SignIn == "Cancel sign-in" })
	call := h.login()

	// The menu keeps working while the browser is open.
	h.click(clickProxy)
	h.waitView("the proxy off", func(v view) bool { return !v.ProxyChecked && v.ProxyEnabled })

	call.result <- loginResult{acct: *apiKeyLogin("ada@example.com")}
	v := h.waitView("signed in", func(v view) bool { return v.SignIn == "Sign out" })
	if v.Status != "Signed in as ada@example.com" || v.Icon != assets.ProxyOff {
		t.Errorf("after sign-in: %+v", v)
	}
	n := h.waitNote("Signed in to Claude")
	if !strings.Contains(n.message, "ada@example.com") || !strings.Contains(n.message, "Run Claude Code with: ccmux claude") || strings.Contains(n.message, "ANTHROPIC_BASE_URL") {
		t.Errorf("sign-in notification says %q", n.message)
	}
	// The auth client's own SignedIn event for the same login is not told twice.
	h.auth.events <- auth.Event{Kind: auth.SignedIn, ProviderID: "anthropic-max", Email: "ada@example.com", APIKey: true}
	h.noMoreNotes()
}

func TestSignInFailureAndCancel(t *testing.T) {
	h := start(t, nil)
	h.waitView("the proxy on", proxyOn)

	h.click(clickSignIn)
	h.login().result <- loginResult{err: errors.New("the authorization server said access_denied: you clicked Deny")}
	n := h.waitNote("Sign-in failed")
	if n.message != "The authorization server said access_denied: you clicked Deny." {
		t.Errorf("failure notification = %q", n.message)
	}
	h.waitView("signed out again", func(v view) bool { return v.SignIn == "Sign in with Claude" && v.Status == "Not signed in" })

	h.click(clickSignIn)
	call := h.login()
	h.waitView("signing in", func(v view) bool { return v.SignIn == "Cancel sign-in" })
	h.click(clickSignIn) // Cancel sign-in
	select {
	case <-call.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not cancel the login")
	}
	h.waitNote("Sign-in cancelled")
	h.waitView("signed out", func(v view) bool { return v.SignIn == "Sign in with Claude" })
}

func TestSignOut(t *testing.T) {
	h := start(t, apiKeyLogin("ada@example.com"))
	h.waitView("the proxy on", proxyOn)
	h.click(clickSignIn)
	v := h.waitView("signed out", func(v view) bool { return v.Status == "Not signed in" })
	if v.SignIn != "Sign in with Claude" || v.Icon != assets.SignedOut {
		t.Errorf("after sign-out: %+v", v)
	}
	h.auth.mu.Lock()
	defer h.auth.mu.Unlock()
	if !slices.Equal(h.auth.logouts, []string{"anthropic-max"}) {
		t.Errorf("Logout called for %q, want once for anthropic-max", h.auth.logouts)
	}
}

func TestProxyToggle(t *testing.T) {
	h := start(t, apiKeyLogin(""))
	h.waitView("the proxy on", proxyOn)

	h.click(clickProxy)
	v := h.waitView("the proxy off", func(v view) bool { return !v.ProxyChecked && v.ProxyEnabled })
	if v.Icon != assets.ProxyOff || h.proxy.Running() {
		t.Errorf("proxy off: icon %v, running %v", v.Icon, h.proxy.Running())
	}

	h.proxy.setStartErr(errors.New("listen tcp 127.0.0.1:13456: bind: address already in use"))
	h.click(clickProxy)
	n := h.waitNote("Proxy could not start")
	if !strings.Contains(n.message, "address already in use") {
		t.Errorf("notification = %q", n.message)
	}
	v = h.waitView("the failed start", func(v view) bool { return v.ProxyEnabled && v.Icon == assets.Error })
	if v.ProxyChecked {
		t.Error("the proxy box is checked although the proxy did not start")
	}

	h.proxy.setStartErr(nil)
	h.click(clickProxy)
	v = h.waitView("the proxy on", proxyOn)
	if v.Icon != assets.Active {
		t.Errorf("icon after a successful start = %v, want active", v.Icon)
	}
}

func TestRefreshFailureNotifiesOncePerStreak(t *testing.T) {
	h := start(t, apiKeyLogin("ada@example.com"))
	h.waitView("the proxy on", proxyOn)

	for range 3 {
		h.auth.events <- auth.Event{Kind: auth.RefreshFailed, ProviderID: "anthropic-max", Reason: "token endpoint answered 503 Service Unavailable"}
	}
	n := h.waitNote("Claude sign-in could not be refreshed")
	if n.message != "Token endpoint answered 503 Service Unavailable." {
		t.Errorf("refresh failure notification = %q", n.message)
	}
	h.waitView("the error icon", func(v view) bool { return v.Icon == assets.Error })
	h.noMoreNotes()

	h.auth.events <- auth.Event{Kind: auth.Refreshed, ProviderID: "anthropic-max", ExpiresAt: time.Now().Add(time.Hour)}
	h.waitView("the error gone", func(v view) bool { return v.Icon == assets.Active })
	h.auth.events <- auth.Event{Kind: auth.RefreshFailed, ProviderID: "anthropic-max", Reason: "invalid_grant"}
	h.waitNote("Claude sign-in could not be refreshed") // a new streak
}

func TestExpiringSoonAndExpired(t *testing.T) {
	h := start(t, &auth.Account{ProviderID: "anthropic-max", Email: "ada@example.com", ExpiresAt: time.Now().Add(time.Hour)})
	h.waitView("the proxy on", proxyOn)

	h.auth.events <- auth.Event{Kind: auth.ExpiringSoon, ProviderID: "anthropic-max", ExpiresAt: time.Now().Add(10 * time.Minute)}
	h.auth.events <- auth.Event{Kind: auth.ExpiringSoon, ProviderID: "anthropic-max", ExpiresAt: time.Now().Add(9 * time.Minute)}
	h.waitNote("Claude session expires soon")

	h.auth.events <- auth.Event{Kind: auth.Expired, ProviderID: "anthropic-max"}
	n := h.waitNote("Claude session expired")
	if n.message != "Claude session expired — click Sign in with Claude" {
		t.Errorf("expired notification = %q", n.message)
	}
	v := h.waitView("expired", func(v view) bool { return v.Status == "Session expired — sign in again" })
	if v.SignIn != "Sign in with Claude" || v.Icon != assets.Error {
		t.Errorf("expired view: %+v", v)
	}
	h.auth.events <- auth.Event{Kind: auth.Expired, ProviderID: "anthropic-max"}
	h.noMoreNotes()

	// Signing in again from the expired state works and is announced.
	h.click(clickSignIn)
	h.login().result <- loginResult{acct: *apiKeyLogin("ada@example.com")}
	h.waitNote("Signed in to Claude")
	h.waitView("signed in", func(v view) bool { return v.Icon == assets.Active })
}

// A login told by an event expires by auth's rule: a token's at its
// expiry, a console login's API key never.
func TestSignedInEventKeepsAuthsExpiry(t *testing.T) {
	h := start(t, nil)
	h.waitView("the proxy on", proxyOn)
	past := time.Now().Add(-time.Minute)
	h.auth.events <- auth.Event{Kind: auth.SignedIn, ProviderID: "anthropic-max", Email: "ada@example.com", ExpiresAt: past, APIKey: true}
	h.waitView("signed in with an API key", func(v view) bool { return v.SignIn == "Sign out" && v.Icon == assets.Active })
	h.waitNote("Signed in to Claude")
	h.auth.events <- auth.Event{Kind: auth.SignedIn, ProviderID: "anthropic-max", Email: "ada@example.com", ExpiresAt: past}
	h.waitView("an expired token", func(v view) bool { return v.Status == "Session expired — sign in again" && v.Icon == assets.Error })
}

func TestSessionEndedByServer(t *testing.T) {
	h := start(t, apiKeyLogin("ada@example.com"))
	h.waitView("the proxy on", proxyOn)
	h.auth.events <- auth.Event{Kind: auth.SignedOut, ProviderID: "anthropic-max", Reason: "session ended, sign in again"}
	h.waitView("signed out", func(v view) bool { return v.Status == "Not signed in" && v.Icon == assets.SignedOut })
	if n := h.waitNote("Signed out of Claude"); !strings.HasPrefix(n.message, "Session ended, sign in again.") {
		t.Errorf("notification = %q", n.message)
	}
}

func TestOwnSignOutIsNotAnnounced(t *testing.T) {
	h := start(t, apiKeyLogin("ada@example.com"))
	h.waitView("the proxy on", proxyOn)
	h.click(clickSignIn) // Sign out
	h.auth.events <- auth.Event{Kind: auth.SignedOut, ProviderID: "anthropic-max", Reason: "signed out"}
	h.waitView("signed out", func(v view) bool { return v.Status == "Not signed in" })
	h.noMoreNotes()
}

func TestAutostartToggle(t *testing.T) {
	// The harness's config file is the default one: no --config in the entry.
	t.Setenv("HOME", "/home/ada")
	h := start(t, nil)
	h.waitView("the proxy on", proxyOn)
	h.click(clickAutostart)
	h.waitView("start at login on", func(v view) bool { return v.Autostart && v.AutoEnabled })
	h.auto.mu.Lock()
	if got := h.auto.cmd.args(); len(got) != 1 || got[0] != "/usr/local/bin/ccmux" {
		t.Errorf("registered %q, want [/usr/local/bin/ccmux]", got)
	}
	h.auto.mu.Unlock()
	h.click(clickAutostart)
	h.waitView("start at login off", func(v view) bool { return !v.Autostart && v.AutoEnabled })
	h.noMoreNotes()
}

// A tray running on another config file starts at login on that file.
func TestAutostartRecordsTheConfig(t *testing.T) {
	t.Setenv("HOME", "/home/ada")
	h := newHarness(t, nil)
	h.configPath = "/home/ada/work/my ccmux.toml"
	h.run()
	h.waitView("the proxy on", proxyOn)
	h.click(clickAutostart)
	h.waitView("start at login on", func(v view) bool { return v.Autostart && v.AutoEnabled })
	h.auto.mu.Lock()
	defer h.auto.mu.Unlock()
	want := []string{"/usr/local/bin/ccmux", "--config", "/home/ada/work/my ccmux.toml"}
	if got := h.auto.cmd.args(); !slices.Equal(got, want) {
		t.Errorf("registered %q, want %q", got, want)
	}
}

// A `go run` binary is refused with a notification saying what to do, and
// the box stays unchecked.
func TestAutostartRefusesATemporaryBinary(t *testing.T) {
	h := newHarness(t, nil)
	h.exe = "/tmp/go-build123/b001/exe/ccmux"
	h.run()
	h.waitView("the proxy on", proxyOn)
	h.click(clickAutostart)
	n := h.waitNote("Start at login")
	if !strings.Contains(n.message, h.exe) || !strings.Contains(n.message, "go build") || !strings.Contains(n.message, "go install") {
		t.Errorf("refusal notification = %q, want the binary's path and the hint to go build or go install", n.message)
	}
	h.waitView("start at login still off", func(v view) bool { return !v.Autostart && v.AutoEnabled })
	h.auto.mu.Lock()
	defer h.auto.mu.Unlock()
	if h.auto.on {
		t.Error("the entry was written")
	}
}

func TestOpenConfigAndShowAddress(t *testing.T) {
	t.Setenv("HOME", "/home/ada") // the harness's config file is the default one
	h := start(t, nil)
	h.waitView("the proxy on", proxyOn)
	h.click(clickOpenConfig)
	select {
	case p := <-h.opened:
		if p != "/home/ada/.claude-code-mux/config.toml" {
			t.Errorf("opened %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the config file was not opened")
	}
	// A bare ANTHROPIC_BASE_URL leaves Claude Code asking for a login of
	// its own: the notification says to run it through ccmux.
	h.click(clickShowAddress)
	if n := h.waitNote("Proxy address for Claude Code"); n.message != "http://127.0.0.1:13456\nRun Claude Code with: ccmux claude (or eval \"$(ccmux env)\", then claude)" {
		t.Errorf("address notification = %q", n.message)
	}
}

// TestShowAddressNamesAnotherConfig: with a config file other than the
// default, the commands the notification suggests name it, or they would
// reach another proxy (or none).
func TestShowAddressNamesAnotherConfig(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sh quoting")
	}
	t.Setenv("HOME", "/home/ada")
	h := newHarness(t, nil)
	h.configPath = "/home/ada/work/my ccmux.toml"
	h.run()
	h.waitView("the proxy on", proxyOn)
	h.click(clickShowAddress)
	want := "http://127.0.0.1:13456\nRun Claude Code with: ccmux --config '/home/ada/work/my ccmux.toml' claude (or eval \"$(ccmux --config '/home/ada/work/my ccmux.toml' env)\", then claude)"
	if n := h.waitNote("Proxy address for Claude Code"); n.message != want {
		t.Errorf("address notification = %q, want %q", n.message, want)
	}
}

func TestQuitStopsTheProxy(t *testing.T) {
	for _, how := range []string{"Quit", "context"} {
		t.Run(how, func(t *testing.T) {
			h := start(t, nil)
			h.waitView("the proxy on", proxyOn)
			h.click(clickSignIn) // a login in progress must not hold up quitting
			if how == "Quit" {
				h.click(clickQuit)
			} else {
				h.cancel()
			}
			select {
			case err := <-h.done:
				h.done <- err // for Cleanup
				if err != nil {
					t.Fatalf("loop returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the loop did not stop")
			}
			if h.proxy.Running() || h.proxy.stops != 1 {
				t.Errorf("after quitting: running %v, %d stops", h.proxy.Running(), h.proxy.stops)
			}
		})
	}
}

func TestProxyThatCannotStartAtLaunch(t *testing.T) {
	h := newHarness(t, apiKeyLogin(""))
	h.proxy.startErr = errors.New("cannot listen on 127.0.0.1:13456: the address is already in use")
	h.run()
	n := h.waitNote("Proxy could not start")
	if n.message != "Cannot listen on 127.0.0.1:13456: the address is already in use." {
		t.Errorf("notification = %q", n.message)
	}
	v := h.waitView("the error", func(v view) bool { return v.Icon == assets.Error })
	if v.ProxyChecked || !v.ProxyEnabled {
		t.Errorf("proxy item after a failed start: checked %v, enabled %v", v.ProxyChecked, v.ProxyEnabled)
	}
}

func TestForwardClicksStopsOnClosedChannel(t *testing.T) {
	clicked := make(chan struct{})
	out := make(chan action, 4)
	done := make(chan struct{})
	go func() { forwardClicks(context.Background(), clicked, clickQuit, out); close(done) }()
	clicked <- struct{}{}
	if got := <-out; got != clickQuit {
		t.Fatalf("forwarded %v", got)
	}
	close(clicked) // what systray's Remove and ResetMenu do
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("forwardClicks kept reading a closed ClickedCh")
	}
	if len(out) != 0 {
		t.Errorf("a closed channel produced %d phantom clicks", len(out))
	}
}

// hungNotifier never returns, like a notification service that stopped answering.
type hungNotifier struct{ release chan struct{} }

func (h hungNotifier) Notify(string, string) error { <-h.release; return nil }

type failingNotifier struct{ calls chan struct{} }

func (f failingNotifier) Notify(string, string) error {
	f.calls <- struct{}{}
	return errors.New("org.freedesktop.Notifications: no such name")
}

func TestNotificationsNeverBlockOrFail(t *testing.T) {
	hung := hungNotifier{release: make(chan struct{})}
	defer close(hung.release)
	q := newNoteQueue(hung, slog.New(slog.DiscardHandler))
	sent := make(chan struct{})
	go func() {
		for range 3 * noteBacklog { // more than the backlog holds
			q.send("title", "message")
		}
		close(sent)
	}()
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		t.Fatal("send blocked behind a hung notification service")
	}
	q.close()
	q.send("after close", "is dropped, not a panic")

	var logged strings.Builder
	calls := make(chan struct{}, 2)
	f := newNoteQueue(failingNotifier{calls}, slog.New(slog.NewTextHandler(&syncWriter{w: &logged}, nil)))
	f.send("a", "b")
	f.send("c", "d")
	<-calls
	<-calls
	f.close()
	<-f.done
	if got := logged.String(); strings.Count(got, "could not show a notification") != 2 {
		t.Errorf("failures were not logged:\n%s", got)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
