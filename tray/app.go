package tray

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"ccmux/auth"
	"ccmux/config"
)

// action is a menu click, as the event loop sees it.
type action int

const (
	clickSignIn      action = iota + 1 // "Sign in with Claude", "Sign out" or "Cancel sign-in"
	clickProxy                         // "Proxy on HOST:PORT"
	clickAutostart                     // "Start at login"
	clickOpenConfig                    // "Open config file"
	clickReload                        // "Reload config"
	clickOpenLog                       // "Open log"
	clickShowAddress                   // "Show proxy address"
	clickQuit                          // "Quit"
	clickDashboard                     // "Open dashboard"

	// clickLoginSignIn is the sign-in item of the first login's submenu;
	// loginClick(i) is the i-th's.
	clickLoginSignIn action = 100
)

// loginClick is a click on the sign-in item of the i-th login's submenu.
func loginClick(i int) action { return clickLoginSignIn + action(i) }

// Notifier shows a desktop notification.
type Notifier interface {
	Notify(title, message string) error
}

// autostarter reads and writes this OS's start-at-login entry.
type autostarter interface {
	Enabled() (bool, error)
	Enable(cmd loginCommand) error
	Disable() error
}

// stopTimeout bounds how long Quit waits for the proxy's requests in flight.
const stopTimeout = 5 * time.Second

// app is the tray's controller: it owns the state and runs the event loop.
// Only the loop goroutine touches st; slow work runs in background
// goroutines that hand a state change back through results.
type app struct {
	auth       Auth
	proxy      Proxy
	usage      UsageSource // nil: no usage lines
	reload     Reloader    // nil: "Reload config" is disabled
	reloads    <-chan struct{}
	notes      *noteQueue
	autostart  autostarter
	openFile   func(path string) error
	openURL    func(url string) error
	executable func() (string, error)
	configPath string
	logPath    string
	log        *slog.Logger
	now        func() time.Time
	loc        *time.Location

	st          state
	news        map[string]*loginNews // per login id
	events      <-chan auth.Event     // subscribed in prepare, so no change is missed
	unsubscribe func()

	ctx     context.Context // the loop's lifetime; background work ends with it
	results chan func()     // state changes from background work, applied on the loop
	done    chan struct{}   // closed when the loop stops taking results
	work    sync.WaitGroup
	shown   *view

	usageTimer *time.Timer // wakes the loop at the next reset
	usageWake  <-chan time.Time
}

// loginNews is what the tray told of one login, and its running sign-in.
type loginNews struct {
	expiring    bool                 // ExpiringSoon already told, until the next refresh or sign-in
	expired     bool                 // Expired already told, until the next sign-in
	cancelLogin context.CancelFunc   // ends the running sign-in, nil when none runs
	limits      map[string]limitNote // usage notifications told, per window
}

func newApp(opts Options, n Notifier, auto autostarter, open func(string) error) *app {
	a := &app{
		auth:       opts.Auth,
		proxy:      opts.Proxy,
		usage:      opts.Usage,
		reload:     opts.Reload,
		reloads:    opts.Reloads,
		news:       map[string]*loginNews{},
		autostart:  auto,
		openFile:   open,
		openURL:    openURL,
		executable: executable,
		configPath: opts.ConfigPath,
		logPath:    opts.LogPath,
		log:        logger(opts),
		now:        time.Now,
		loc:        time.Local,
		results:    make(chan func()),
		done:       make(chan struct{}),
	}
	if a.configPath == "" && opts.Config != nil {
		a.configPath = opts.Config.Path
	}
	a.notes = newNoteQueue(n, a.log)
	a.st.proxyAddr = opts.Proxy.Addr()
	a.st.canReload = opts.Reload != nil
	return a
}

// prepare reads the login and the autostart entry (small files) and starts
// the proxy (a bind on loopback) before the tray appears, so the first icon
// and menu are already right. A proxy that cannot start is told, not fatal.
func (a *app) prepare(ctx context.Context) {
	events, unsubscribe := a.auth.Events()
	a.events, a.unsubscribe = events, sync.OnceFunc(unsubscribe)
	a.setLogins(a.readLogins())
	// Numbers restored from the last run were told then: note them silently.
	a.refreshUsage(false)
	on, err := a.autostart.Enabled()
	if err != nil {
		a.log.Warn("reading the start-at-login entry", "err", err)
		a.st.autoUnknown = err.Error()
	}
	a.st.autostart = on

	err = a.proxy.Start(ctx)
	a.st.proxyOn, a.st.proxyAddr = a.proxy.Running(), a.proxy.Addr()
	if err != nil {
		a.st.proxyOn = false
		a.st.proxyErr = err.Error()
		a.log.Warn("proxy could not start", "err", err)
		a.notify("Proxy could not start", sentence(err.Error()))
		return
	}
	a.log.Info("proxy listening", "addr", a.st.proxyAddr)
}

// loop runs until Quit is clicked or ctx ends, then stops the proxy.
// It shows every state change through show and never blocks on slow work.
func (a *app) loop(ctx context.Context, clicks <-chan action, show func(view)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.ctx = ctx
	defer a.unsubscribe()
	events := a.events

	for {
		a.show(show)
		select {
		case <-ctx.Done():
			return a.shutdown(cancel)
		case act := <-clicks:
			if act == clickQuit {
				return a.shutdown(cancel)
			}
			a.click(act)
		case ev, ok := <-events:
			if !ok {
				events = nil // the auth client is gone; keep the menu working
				continue
			}
			a.authEvent(ev)
		case apply := <-a.results:
			apply()
		case <-a.reloads:
			a.reloadConfig()
		case <-a.usageChanged():
			a.refreshUsage(true)
		case <-a.usageWake:
			a.usageTimer, a.usageWake = nil, nil
			a.refreshUsage(true)
		}
	}
}

func (a *app) show(show func(view)) {
	v := render(a.st, a.now(), a.loc)
	if a.shown != nil && *a.shown == v {
		return
	}
	a.shown = &v
	show(v)
}

// background runs work off the loop; the state change it returns is applied
// on the loop (or dropped once the loop has stopped).
func (a *app) background(work func() (apply func())) {
	a.work.Add(1)
	go func() {
		defer a.work.Done()
		apply := work()
		select {
		case a.results <- apply:
		case <-a.done:
		}
	}()
}

func (a *app) click(act action) {
	switch act {
	case clickSignIn:
		a.signInOrOut(0)
	case clickProxy:
		switch {
		case a.st.proxyBusy:
		case a.st.proxyOn:
			a.stopProxy()
		default:
			a.startProxy()
		}
	case clickAutostart:
		if !a.st.autoBusy {
			a.toggleAutostart()
		}
	case clickOpenConfig:
		path := a.configPath
		a.background(func() func() {
			err := a.openFile(path)
			return func() {
				if err != nil {
					a.notify("Could not open the config file", fmt.Sprintf("Open %s in a text editor (%v).", path, err))
				}
			}
		})
	case clickReload:
		a.reloadConfig()
	case clickOpenLog:
		path := a.logPath
		a.background(func() func() {
			err := a.openFile(path)
			return func() {
				if err != nil {
					a.notify("Could not open the log", fmt.Sprintf("Open %s in a text editor (%v).", path, err))
				}
			}
		})
	case clickShowAddress:
		a.notify("Proxy address for Claude Code", baseURL(a.st.proxyAddr)+"\nRun Claude Code with: "+config.RunHint(a.configPath))
	case clickDashboard:
		url := baseURL(a.st.proxyAddr) + "/"
		open := url
		if c, ok := a.proxy.(dashboardCoder); ok {
			if code := c.DashboardCode(); code != "" {
				open = url + "?code=" + code // one use, within a minute
			}
		}
		a.background(func() func() {
			err := a.openURL(open)
			return func() {
				if err != nil {
					a.notify("Could not open the dashboard", fmt.Sprintf("Open %s in a browser (%v).", url, err))
				}
			}
		})
	default:
		if act >= clickLoginSignIn {
			a.signInOrOut(int(act - clickLoginSignIn))
		}
	}
}

// signInOrOut is a click on the i-th login's sign-in item: it signs in,
// signs out or cancels the running sign-in, as the item says.
func (a *app) signInOrOut(i int) {
	if i < 0 || i >= len(a.st.logins) {
		return
	}
	l := a.st.logins[i]
	switch {
	case l.signingIn:
		if cancel := a.newsOf(l.id).cancelLogin; cancel != nil {
			cancel()
		}
	case l.signingOut:
	case l.signedIn(a.now()):
		a.signOut(l.id)
	default:
		a.signIn(l.id)
	}
}

func (a *app) signIn(id string) {
	ctx, cancel := context.WithCancel(a.ctx)
	a.newsOf(id).cancelLogin = cancel
	a.loginOf(id).signingIn = true
	a.background(func() func() {
		acct, err := a.auth.Login(ctx, id)
		return func() {
			cancel()
			l := a.loginOf(id)
			if l == nil { // a reload dropped the login
				return
			}
			a.newsOf(id).cancelLogin = nil
			l.signingIn = false
			switch {
			case errors.Is(err, context.Canceled):
				a.notify(a.titled("Sign-in cancelled", id), "You are not signed in to Claude.")
			case err != nil:
				a.log.Warn("sign-in failed", "provider", id, "err", err)
				a.notify(a.titled("Sign-in failed", id), sentence(err.Error()))
			default:
				a.signedIn(id, acct)
			}
		}
	})
}

// signedIn records a fresh login and says so once, on the change.
func (a *app) signedIn(id string, acct auth.Account) {
	l := a.loginOf(id)
	if l == nil {
		return
	}
	was := l.signedIn(a.now())
	a.setLogin(id, &acct)
	if was {
		return
	}
	who := "Signed in"
	if acct.Email != "" {
		who += " as " + acct.Email
	}
	a.notify(a.titled("Signed in to Claude", id), who+". Run Claude Code with: "+config.RunHint(a.configPath))
	// The usage poll after a sign-in can answer before the loop hears of
	// the sign-in: numbers that came in meanwhile are told now.
	a.refreshUsage(true)
}

func (a *app) signOut(id string) {
	a.loginOf(id).signingOut = true
	a.background(func() func() {
		err := a.auth.Logout(id)
		return func() {
			l := a.loginOf(id)
			if l == nil {
				return
			}
			l.signingOut = false
			if err != nil {
				a.log.Warn("sign-out failed", "provider", id, "err", err)
				a.notify(a.titled("Sign-out failed", id), sentence(err.Error()))
				return
			}
			a.signedOut(id)
		}
	})
}

// signedOut forgets the login; the proxy asks auth for a token on every
// request, so it stops sending this provider's token at once.
func (a *app) signedOut(id string) { a.setLogin(id, nil) }

// setLogin makes login the account of the listed login id (nil: none) and
// forgets what was told about the one before.
func (a *app) setLogin(id string, login *auth.Account) {
	l := a.loginOf(id)
	if l == nil {
		return
	}
	l.login = login
	l.refreshErr = ""
	n := a.newsOf(id)
	n.expiring, n.expired = false, false
}

// loginOf is the listed login with id, nil when the tray does not list it.
func (a *app) loginOf(id string) *loginState {
	for i := range a.st.logins {
		if a.st.logins[i].id == id {
			return &a.st.logins[i]
		}
	}
	return nil
}

// newsOf is what was told of login id, made on first use.
func (a *app) newsOf(id string) *loginNews {
	n := a.news[id]
	if n == nil {
		n = &loginNews{limits: map[string]limitNote{}}
		a.news[id] = n
	}
	return n
}

// titled names login id in a notification's title when the tray lists
// several: "Claude session expired (claude-work)".
func (a *app) titled(title, id string) string {
	if len(a.st.logins) > 1 {
		return title + " (" + id + ")"
	}
	return title
}

// readLogins asks auth which logins the tray lists and their accounts
// (small files: the token store).
func (a *app) readLogins() (ids []string, primary string, accounts map[string]auth.Account) {
	ids, primary = a.auth.Logins()
	accounts = map[string]auth.Account{}
	for _, id := range ids {
		if acct, ok := a.auth.Account(id); ok {
			accounts[id] = acct
		}
	}
	return ids, primary, accounts
}

// setLogins lists ids, in this order, with primary the one the icon
// follows. A login listed before keeps its state (a sign-in running, a
// refresh failure) and its account unless it has none now or had none;
// a login no longer listed is forgotten and its sign-in ends.
func (a *app) setLogins(ids []string, primary string, accounts map[string]auth.Account) {
	if len(ids) > maxLogins && len(ids) != len(a.st.logins) {
		a.log.Warn("the tray has room for the first logins only; ccmux status lists every one", "logins", len(ids), "shown", maxLogins)
	}
	next := make([]loginState, 0, len(ids))
	for _, id := range ids {
		l := loginState{id: id}
		if old := a.loginOf(id); old != nil {
			l = *old
		}
		next = append(next, l)
	}
	for id, n := range a.news {
		if !slices.Contains(ids, id) {
			if n.cancelLogin != nil {
				n.cancelLogin()
			}
			delete(a.news, id)
		}
	}
	a.st.logins = next
	a.st.primary = max(slices.Index(ids, primary), 0)
	for _, id := range ids {
		acct, ok := accounts[id]
		switch had := a.loginOf(id).login != nil; {
		case !ok && had:
			a.signedOut(id)
		case ok && !had:
			a.setLogin(id, &acct)
		}
	}
}

func (a *app) startProxy() {
	a.st.proxyBusy = true
	a.background(func() func() {
		err := a.proxy.Start(a.ctx)
		running, addr := a.proxy.Running(), a.proxy.Addr()
		return func() {
			a.st.proxyBusy = false
			a.st.proxyOn, a.st.proxyAddr = running, addr
			if err != nil {
				a.st.proxyOn = false
				a.st.proxyErr = err.Error()
				a.log.Warn("proxy could not start", "err", err)
				a.notify("Proxy could not start", sentence(err.Error()))
				return
			}
			a.st.proxyErr = ""
			a.log.Info("proxy listening", "addr", addr)
		}
	})
}

func (a *app) stopProxy() {
	a.st.proxyBusy = true
	a.background(func() func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), stopTimeout)
		defer cancel()
		err := a.proxy.Stop(ctx)
		running := a.proxy.Running()
		return func() {
			a.st.proxyBusy = false
			a.st.proxyOn = running
			a.st.proxyErr = ""
			if err != nil {
				a.log.Warn("proxy did not stop cleanly", "err", err)
			}
		}
	})
}

// reloadConfig re-reads the config file off the loop and says how it went;
// a reload asked for while one runs is dropped (it would read the same file).
func (a *app) reloadConfig() {
	if a.reload == nil || a.st.reloadBusy {
		return
	}
	a.st.reloadBusy = true
	a.background(func() func() {
		changed, err := a.reload.Reload(a.ctx)
		running, addr := a.proxy.Running(), a.proxy.Addr()
		ids, primary, accounts := a.readLogins() // the reloaded config may name other logins
		return func() {
			a.st.reloadBusy = false
			// A failed move may have stopped the proxy; a good one moved it.
			a.st.proxyOn, a.st.proxyAddr = running, addr
			if err != nil {
				// The reloader logged it; the notification shows what
				// `ccmux config check` prints for the file.
				a.notify("Config not reloaded", firstLine(err.Error()))
				return
			}
			if running {
				a.st.proxyErr = ""
			}
			a.notify("Config reloaded", sentence(changed))
			a.setLogins(ids, primary, accounts)
			a.refreshUsage(true)
		}
	})
}

// maxNoteText bounds a notification's text: desktops show a few lines.
const maxNoteText = 300

// firstLine is the first line of a multi-line error (a config error lists
// one problem a line), cut to its first sentence when it is still long.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if len(line) <= maxNoteText {
		return line
	}
	if i := strings.Index(line, ". "); i > 0 && i < maxNoteText {
		return line[:i+1]
	}
	return line[:maxNoteText] + "…"
}

func (a *app) toggleAutostart() {
	a.st.autoBusy = true
	turnOn := !a.st.autostart
	a.background(func() func() {
		var err error
		if turnOn {
			var exe string
			var cmd loginCommand
			if exe, err = a.executable(); err == nil {
				if cmd, err = newLoginCommand(exe, a.configPath); err == nil {
					err = a.autostart.Enable(cmd)
				}
			}
		} else {
			err = a.autostart.Disable()
		}
		on, readErr := a.autostart.Enabled()
		return func() {
			a.st.autoBusy = false
			a.st.autostart = on
			a.st.autoUnknown = ""
			if readErr != nil {
				a.st.autoUnknown = readErr.Error()
			}
			if err != nil {
				a.log.Warn("changing start at login", "err", err)
				a.notify("Start at login", sentence(err.Error()))
			}
		}
	})
}

func (a *app) authEvent(ev auth.Event) {
	id := ev.ProviderID
	l := a.loginOf(id)
	if l == nil {
		return // not a login the tray lists
	}
	n := a.newsOf(id)
	switch ev.Kind {
	case auth.SignedIn:
		a.signedIn(id, auth.Account{ProviderID: ev.ProviderID, Email: ev.Email, ExpiresAt: ev.ExpiresAt, APIKey: ev.APIKey})
	case auth.Refreshed:
		login := presentLogin(l, ev)
		if !ev.ExpiresAt.IsZero() {
			login.ExpiresAt = ev.ExpiresAt
		}
		if ev.Email != "" {
			login.Email = ev.Email
		}
		l.refreshErr = ""
		n.expiring = false
	case auth.RefreshFailed:
		reason := ev.Reason
		if reason == "" {
			reason = "unknown error"
		}
		if l.refreshErr == "" { // once per failure streak, not on every retry
			msg := sentence(reason)
			if at := l.expiresAt(); !at.IsZero() {
				msg += " The current session lasts until " + when(at, a.now(), a.loc) + "."
			}
			a.notify(a.titled("Claude sign-in could not be refreshed", id), msg)
		}
		l.refreshErr = reason
	case auth.ExpiringSoon:
		if !n.expiring {
			n.expiring = true
			at := l.expiresAt()
			if !ev.ExpiresAt.IsZero() {
				at = ev.ExpiresAt
			}
			msg := "Refreshing keeps failing. Sign in with Claude again to keep Claude Code working."
			if !at.IsZero() {
				msg = fmt.Sprintf("The session ends at %s and refreshing keeps failing. Sign in with Claude again to keep Claude Code working.", when(at, a.now(), a.loc))
			}
			a.notify(a.titled("Claude session expires soon", id), msg)
		}
	case auth.Expired:
		// The token expired at ev.ExpiresAt by auth's clock; by the
		// tray's too, since then.
		presentLogin(l, ev).ExpiresAt = ev.ExpiresAt
		if !n.expired {
			n.expired = true
			a.notify(a.titled("Claude session expired", id), "Claude session expired — click Sign in with Claude")
		}
	case auth.SignedOut:
		// Our own Sign out needs no news; the server ending the session does.
		if l.login != nil && !l.signingOut && ev.Reason != "" {
			a.notify(a.titled("Signed out of Claude", id), sentence(ev.Reason)+" Click Sign in with Claude to sign in again.")
		}
		a.signedOut(id)
	}
}

// presentLogin is l's account, made present for an event that tells of
// one the tray did not know.
func presentLogin(l *loginState, ev auth.Event) *auth.Account {
	if l.login == nil {
		l.login = &auth.Account{ProviderID: ev.ProviderID, Email: ev.Email}
	}
	return l.login
}

func (a *app) notify(title, message string) { a.notes.send(title, message) }

// shutdown ends the loop: it cancels a running login, lets background work
// finish (bounded), stops the proxy gracefully and the notification queue.
func (a *app) shutdown(cancel context.CancelFunc) error {
	cancel()
	close(a.done)
	finished := make(chan struct{})
	go func() { a.work.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(stopTimeout):
		a.log.Warn("quitting while background work is still running")
	}
	if a.proxy.Running() {
		ctx, stop := context.WithTimeout(context.Background(), stopTimeout)
		defer stop()
		if err := a.proxy.Stop(ctx); err != nil {
			a.log.Warn("proxy did not stop cleanly", "err", err)
		}
	}
	a.notes.close()
	return nil
}

// executable is this binary's absolute path with symlinks resolved, which is
// what a login item must run.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the ccmux binary: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", fmt.Errorf("finding the ccmux binary: %w", err)
	}
	return exe, nil
}

// sentence makes an error text read as a sentence: capital first letter, final full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "!") && !strings.HasSuffix(s, "?") {
		s += "."
	}
	return s
}
