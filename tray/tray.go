// Package tray is the desktop face of ccmux: the system tray icon and menu,
// notifications and start-at-login. Its state lives in a plain struct that is
// rendered into the menu; clicks are handled off the menu loop. It does no network I/O itself.
package tray

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"ccmux/config"
)

// AuthEventKind mirrors the login events the tray reacts to.
type AuthEventKind int

// Login event kinds.
const (
	SignedIn AuthEventKind = iota + 1
	Refreshed
	RefreshFailed
	ExpiringSoon
	Expired
	SignedOut
)

// AuthEvent is a change of the login's state.
type AuthEvent struct {
	Kind      AuthEventKind
	Email     string
	ExpiresAt time.Time
	Reason    string
}

// Account is the current login, if any.
type Account struct {
	SignedIn  bool
	Email     string
	ExpiresAt time.Time
	Expired   bool
}

// Auth is what the tray needs of the auth package, for one provider id.
type Auth interface {
	Login(ctx context.Context) (Account, error)
	Logout() error
	Account() Account
	Events() (<-chan AuthEvent, func())
}

// Proxy is what the tray needs of the proxy server.
type Proxy interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Running() bool
	Addr() string
}

// Options wire the tray to the rest of the app.
type Options struct {
	Config     *config.Config
	ConfigPath string
	Auth       Auth
	Proxy      Proxy
	Logger     *slog.Logger
	Version    string
}

// Available reports whether a system tray can be shown (on Linux: a D-Bus
// session bus answers). The error says in words why not.
func Available() error { return errors.New("tray not available yet") }

// Run shows the tray and blocks until Quit is clicked or ctx ends.
func Run(ctx context.Context, opts Options) error { return errors.New("tray not available yet") }

// Autostart entries ("Start at login").

// AutostartEnabled reports whether ccmux starts at login.
func AutostartEnabled() (bool, error) { return false, errors.New("autostart not available yet") }

// EnableAutostart registers exe (an absolute path) to start at login.
func EnableAutostart(exe string) error { return errors.New("autostart not available yet") }

// DisableAutostart removes the start-at-login entry.
func DisableAutostart() error { return errors.New("autostart not available yet") }
