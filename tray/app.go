package tray

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"ccmux/auth"
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
)

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
	executable func() (string, error)
	configPath string
	logPath    string
	log        *slog.Logger
	now        func() time.Time
	loc        *time.Location

	st               state
	expiringNotified bool // ExpiringSoon already told, until the next refresh or sign-in
	expiredNotified  bool // Expired already told, until the next sign-in
	cancelLogin      context.CancelFunc
	events           <-chan auth.Event // subscribed in prepare, so no change is missed
	unsubscribe      func()

	ctx     context.Context // the loop's lifetime; background work ends with it
	results chan func()     // state changes from background work, applied on the loop
	done    chan struct{}   // closed when the loop stops taking results
	work    sync.WaitGroup
	shown   *view

	limitNotes map[string]limitNote // usage notifications told, per window
	usageTimer *time.Timer          // wakes the loop at the next reset
	usageWake  <-chan time.Time
}

func newApp(opts Options, n Notifier, auto autostarter, open func(string) error) *app {
	a := &app{
		auth:       opts.Auth,
		proxy:      opts.Proxy,
		usage:      opts.Usage,
		reload:     opts.Reload,
		reloads:    opts.Reloads,
		limitNotes: map[string]limitNote{},
		autostart:  auto,
		openFile:   open,
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
	if acct, ok := a.auth.Account(); ok {
		a.st.login = &acct
	}
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
		switch {
		case a.st.signingIn:
			a.cancelLogin()
		case a.st.signingOut:
		case a.st.signedIn(a.now()):
			a.signOut()
		default:
			a.signIn()
		}
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
		a.notify("Proxy address for Claude Code", "ANTHROPIC_BASE_URL="+baseURL(a.st.proxyAddr))
	}
}

func (a *app) signIn() {
	ctx, cancel := context.WithCancel(a.ctx)
	a.cancelLogin = cancel
	a.st.signingIn = true
	a.background(func() func() {
		acct, err := a.auth.Login(ctx)
		return func() {
			cancel()
			a.cancelLogin = nil
			a.st.signingIn = false
			switch {
			case errors.Is(err, context.Canceled):
				a.notify("Sign-in cancelled", "You are not signed in to Claude.")
			case err != nil:
				a.log.Warn("sign-in failed", "err", err)
				a.notify("Sign-in failed", sentence(err.Error()))
			default:
				a.signedIn(acct)
			}
		}
	})
}

// signedIn records a fresh login and says so once, on the change.
func (a *app) signedIn(acct auth.Account) {
	was := a.st.signedIn(a.now())
	a.setLogin(&acct)
	if was {
		return
	}
	who := "Signed in"
	if acct.Email != "" {
		who += " as " + acct.Email
	}
	a.notify("Signed in to Claude", who+". Claude Code: ANTHROPIC_BASE_URL="+baseURL(a.st.proxyAddr))
	// The usage poll after a sign-in can answer before the loop hears of
	// the sign-in: numbers that came in meanwhile are told now.
	a.refreshUsage(true)
}

func (a *app) signOut() {
	a.st.signingOut = true
	a.background(func() func() {
		err := a.auth.Logout()
		return func() {
			a.st.signingOut = false
			if err != nil {
				a.log.Warn("sign-out failed", "err", err)
				a.notify("Sign-out failed", sentence(err.Error()))
				return
			}
			a.signedOut()
		}
	})
}

// signedOut forgets the login; the proxy asks auth for a token on every
// request, so it stops sending this provider's token at once.
func (a *app) signedOut() { a.setLogin(nil) }

// setLogin makes login the tray's (nil: none) and forgets what was told
// about the one before.
func (a *app) setLogin(login *auth.Account) {
	a.st.login = login
	a.st.refreshErr = ""
	a.expiringNotified, a.expiredNotified = false, false
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
		acct, signedIn := a.auth.Account() // the reloaded config may name another login
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
			if !signedIn {
				a.signedOut()
			} else if a.st.login == nil || a.st.login.ProviderID != acct.ProviderID {
				a.setLogin(&acct)
			}
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
	switch ev.Kind {
	case auth.SignedIn:
		a.signedIn(auth.Account{ProviderID: ev.ProviderID, Email: ev.Email, ExpiresAt: ev.ExpiresAt, APIKey: ev.APIKey})
	case auth.Refreshed:
		login := a.presentLogin(ev)
		if !ev.ExpiresAt.IsZero() {
			login.ExpiresAt = ev.ExpiresAt
		}
		if ev.Email != "" {
			login.Email = ev.Email
		}
		a.st.refreshErr = ""
		a.expiringNotified = false
	case auth.RefreshFailed:
		reason := ev.Reason
		if reason == "" {
			reason = "unknown error"
		}
		if a.st.refreshErr == "" { // once per failure streak, not on every retry
			msg := sentence(reason)
			if at := a.st.expiresAt(); !at.IsZero() {
				msg += " The current session lasts until " + when(at, a.now(), a.loc) + "."
			}
			a.notify("Claude sign-in could not be refreshed", msg)
		}
		a.st.refreshErr = reason
	case auth.ExpiringSoon:
		if !a.expiringNotified {
			a.expiringNotified = true
			at := a.st.expiresAt()
			if !ev.ExpiresAt.IsZero() {
				at = ev.ExpiresAt
			}
			msg := "Refreshing keeps failing. Sign in with Claude again to keep Claude Code working."
			if !at.IsZero() {
				msg = fmt.Sprintf("The session ends at %s and refreshing keeps failing. Sign in with Claude again to keep Claude Code working.", when(at, a.now(), a.loc))
			}
			a.notify("Claude session expires soon", msg)
		}
	case auth.Expired:
		// The token expired at ev.ExpiresAt by auth's clock; by the
		// tray's too, since then.
		a.presentLogin(ev).ExpiresAt = ev.ExpiresAt
		if !a.expiredNotified {
			a.expiredNotified = true
			a.notify("Claude session expired", "Claude session expired — click Sign in with Claude")
		}
	case auth.SignedOut:
		// Our own Sign out needs no news; the server ending the session does.
		if a.st.login != nil && !a.st.signingOut && ev.Reason != "" {
			a.notify("Signed out of Claude", sentence(ev.Reason)+" Click Sign in with Claude to sign in again.")
		}
		a.signedOut()
	}
}

// presentLogin is the tray's login, made present for an event that tells of
// one the tray did not know.
func (a *app) presentLogin(ev auth.Event) *auth.Account {
	if a.st.login == nil {
		a.st.login = &auth.Account{ProviderID: ev.ProviderID, Email: ev.Email}
	}
	return a.st.login
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
