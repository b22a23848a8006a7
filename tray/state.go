package tray

import (
	"fmt"
	"strings"
	"time"

	"ccmux/assets"
	"ccmux/auth"
)

// state is everything the menu shows. The event loop owns it; render turns
// it into a view. Nothing here does I/O, so unit tests cover every state.
type state struct {
	login *auth.Account // the provider's login, nil when there is none

	signingIn   bool   // a browser login is running
	signingOut  bool   // a logout is running
	refreshErr  string // last refresh failure while the streak lasts, "" when fine
	proxyAddr   string // host:port the proxy listens on (or would)
	proxyOn     bool   // the listener is open
	proxyBusy   bool   // a start or stop is running
	proxyErr    string // why the proxy last failed to start, "" when fine
	autostart   bool   // "Start at login" is on
	autoBusy    bool   // the autostart entry is being written
	autoUnknown string // why the autostart entry could not be read, "" when fine
	canReload   bool   // "Reload config" has a config to reload
	reloadBusy  bool   // a reload is running
	usage       Usage  // the subscription's limits
	hasUsage    bool   // there is a subscription whose limits can be shown
}

// signedIn reports whether there is a login that has not expired at now.
func (s state) signedIn(now time.Time) bool { return s.login != nil && !s.login.Expired(now) }

// expired reports whether there is a login that has expired at now: the
// user must sign in again.
func (s state) expired(now time.Time) bool { return s.login != nil && s.login.Expired(now) }

// expiresAt is when the login's token expires, zero without a login.
func (s state) expiresAt() time.Time {
	if s.login == nil {
		return time.Time{}
	}
	return s.login.ExpiresAt
}

// view is a rendered state: exactly what the menu, icon and tooltip show.
type view struct {
	Status        string // disabled first line
	SignIn        string // "Sign in with Claude", "Sign out" or "Cancel sign-in"
	SignInEnabled bool
	Proxy         string // "Proxy on HOST:PORT"
	ProxyChecked  bool
	ProxyEnabled  bool
	Autostart     bool
	AutoEnabled   bool
	ReloadEnabled bool
	Icon          assets.Icon
	Tooltip       string
	Limits        [maxLimitLines]string // usage lines under the status line; "" hides one
}

// Labels that are part of the contract (DESIGN.md, "Tray").
const (
	labelSignIn    = "Sign in with Claude"
	labelSignOut   = "Sign out"
	labelCancel    = "Cancel sign-in"
	labelAutostart = "Start at login"
	labelOpen      = "Open config file"
	labelReload    = "Reload config"
	labelOpenLog   = "Open log"
	labelShowAddr  = "Show proxy address"
	labelQuit      = "Quit"

	statusSignedOut = "Not signed in"
	statusExpired   = "Session expired — sign in again"
	statusSigningIn = "Signing in — finish in your browser"
)

// render turns s into what the menu shows. now and loc format the expiry.
func render(s state, now time.Time, loc *time.Location) view {
	v := view{
		SignInEnabled: !s.signingOut,
		Proxy:         "Proxy on " + s.proxyAddr,
		ProxyChecked:  s.proxyOn,
		ProxyEnabled:  !s.proxyBusy,
		Autostart:     s.autostart,
		AutoEnabled:   !s.autoBusy && s.autoUnknown == "",
		ReloadEnabled: s.canReload && !s.reloadBusy,
	}
	signedIn, expired := s.signedIn(now), s.expired(now)
	switch {
	case s.signingIn:
		v.Status, v.SignIn = statusSigningIn, labelCancel
	case expired:
		v.Status, v.SignIn = statusExpired, labelSignIn
	case signedIn:
		v.Status, v.SignIn = signedInLine(*s.login, now, loc), labelSignOut
	default:
		v.Status, v.SignIn = statusSignedOut, labelSignIn
	}
	warn := false
	if signedIn && !s.signingIn {
		v.Limits = limitLines(s, now, loc)
		if line := spentLine(s, now, loc); line != "" {
			v.Status = line
		}
		warn = usageWarning(s, now)
	}

	broken := expired || (signedIn && s.refreshErr != "") || s.proxyErr != ""
	switch {
	case broken:
		v.Icon = assets.Error
	case !signedIn:
		v.Icon = assets.SignedOut
	case warn:
		v.Icon = assets.Warning
	case !s.proxyOn:
		v.Icon = assets.ProxyOff
	default:
		v.Icon = assets.Active
	}
	v.Tooltip = tooltip(s, v, now, loc)
	return v
}

// signedInLine is "Signed in as EMAIL (expires 15:04)", or "Signed in" when
// the email is unknown; the date is added when the expiry is not today.
func signedInLine(a auth.Account, now time.Time, loc *time.Location) string {
	line := "Signed in"
	if a.Email != "" {
		line += " as " + a.Email
	}
	if !a.ExpiresAt.IsZero() {
		line += " (expires " + when(a.ExpiresAt, now, loc) + ")"
	}
	return line
}

// when formats t as a clock time, with the day when it is not today.
func when(t, now time.Time, loc *time.Location) string {
	t, now = t.In(loc), now.In(loc)
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	if t.Year() == now.Year() {
		return t.Format("2 Jan 15:04")
	}
	return t.Format("2 Jan 2006 15:04")
}

// tooltip says in words what the icon shows, one fact per line.
func tooltip(s state, v view, now time.Time, loc *time.Location) string {
	lines := []string{"ccmux", v.Status}
	if l, ok := tightest(s.usage.Windows); ok && v.Limits[0] != "" {
		lines = append(lines, menuLine(l, now, loc))
	}
	if s.proxyOn {
		lines = append(lines, "Proxy on "+s.proxyAddr)
	} else {
		lines = append(lines, "Proxy off")
	}
	if s.refreshErr != "" && s.signedIn(now) {
		lines = append(lines, "Refresh failed: "+s.refreshErr)
	}
	if s.proxyErr != "" {
		lines = append(lines, "Proxy could not start: "+s.proxyErr)
	}
	return strings.Join(lines, "\n")
}

// baseURL is what Claude Code's ANTHROPIC_BASE_URL should be for addr.
func baseURL(addr string) string {
	host, port := addr, ""
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host, port = addr[:i], addr[i+1:]
	}
	switch host {
	case "0.0.0.0", "":
		host = "127.0.0.1"
	case "[::]":
		host = "[::1]"
	}
	return fmt.Sprintf("http://%s:%s", host, port)
}
