// Package tray is the desktop face of ccmux: the system tray icon and menu,
// notifications and start-at-login. Its state lives in a plain struct that is
// rendered into the menu; clicks are handled off the menu loop. It does no network I/O itself.
package tray

import (
	"context"
	"errors"
	"log/slog"

	"fyne.io/systray"

	"ccmux/auth"
	"ccmux/config"
)

// Auth is what the tray needs of the auth package, for the Claude logins
// (token-store ids) it lists.
type Auth interface {
	// Logins are the logins the tray lists, in the config's order, at least
	// one, and the one whose state the icon follows (the login that serves
	// the default model). A reload may change them.
	Logins() (ids []string, primary string)
	// Login signs in to login id through the browser and returns the new login.
	Login(ctx context.Context, id string) (auth.Account, error)
	Logout(id string) error
	// Account is login id's account; ok is false when there is none.
	Account(id string) (acct auth.Account, ok bool)
	// Events are the changes of the listed logins, and none of another's.
	Events() (<-chan auth.Event, func())
}

// Proxy is what the tray needs of the proxy server.
type Proxy interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Running() bool
	Addr() string
}

// dashboardCoder is a Proxy that needs a one-time code to open its
// dashboard (server.api_key set): "Open dashboard" opens /?code=….
type dashboardCoder interface {
	DashboardCode() string // "" when the dashboard needs none
}

// Reloader re-reads the config file and applies it. On success it returns
// what changed, in a few words; on an error nothing changed, and the error
// is what `ccmux config check` prints for the file.
type Reloader interface {
	Reload(ctx context.Context) (changed string, err error)
}

// Options wire the tray to the rest of the app.
type Options struct {
	Config     *config.Config
	ConfigPath string
	// Reload backs "Reload config"; nil disables the item.
	Reload Reloader
	// Reloads asks for a reload as the item does (SIGHUP); nil for none.
	Reloads <-chan struct{}
	// LogPath is the log file "Open log" opens.
	LogPath string
	Auth    Auth
	Proxy   Proxy
	Usage   UsageSource // nil: no usage lines
	Logger  *slog.Logger
	Version string
}

// Available reports whether a system tray can be shown (on Linux: a D-Bus
// session bus answers). The error says in words why not.
func Available() error { return available() }

// Run shows the tray and blocks until Quit is clicked or ctx ends. Either way
// it stops the proxy (waiting up to 5 s for requests in flight) and returns nil.
func Run(ctx context.Context, opts Options) error {
	if opts.Auth == nil || opts.Proxy == nil {
		return errors.New("tray: Options.Auth and Options.Proxy are required")
	}
	a := newApp(opts, newBeeepNotifier(), platformAutostart(), openFile)
	a.prepare(ctx)
	defer a.unsubscribe()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan struct{})
	loopDone := make(chan error, 1)
	first := render(a.st, a.now(), a.loc)
	beforeRun(first)
	systray.Run(func() {
		// onReady must return quickly: GetLayout waits for it.
		close(started)
		m := newTrayMenu(first)
		keepRegistered(ctx, a.log)
		go func() {
			loopDone <- a.loop(ctx, m.clicks(ctx), m.apply)
			systray.Quit()
		}()
	}, nil)
	cancel()
	select {
	case <-started:
		return <-loopDone
	default:
		return errors.New("the system tray stopped before it was ready")
	}
}

func logger(opts Options) *slog.Logger {
	if opts.Logger != nil {
		return opts.Logger
	}
	return slog.New(slog.DiscardHandler)
}
