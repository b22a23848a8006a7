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
	// logins are the Claude logins the tray lists, in the config's order;
	// render treats none as one signed-out login.
	logins  []loginState
	primary int // the index of the login the icon follows (the default model's)

	proxyAddr   string // host:port the proxy listens on (or would)
	proxyOn     bool   // the listener is open
	proxyBusy   bool   // a start or stop is running
	proxyErr    string // why the proxy last failed to start, "" when fine
	autostart   bool   // "Start at login" is on
	autoBusy    bool   // the autostart entry is being written
	autoUnknown string // why the autostart entry could not be read, "" when fine
	canReload   bool   // "Reload config" has a config to reload
	reloadBusy  bool   // a reload is running
}

// loginState is one Claude login (one token-store id) as the menu shows it.
type loginState struct {
	id         string
	login      *auth.Account // nil when there is none
	signingIn  bool          // a browser login is running
	signingOut bool          // a logout is running
	refreshErr string        // last refresh failure while the streak lasts, "" when fine
	usage      Usage         // the subscription's limits
	hasUsage   bool          // there is a subscription whose limits can be shown
}

// signedIn reports whether there is a login that has not expired at now.
func (l loginState) signedIn(now time.Time) bool { return l.login != nil && !l.login.Expired(now) }

// expired reports whether there is a login that has expired at now: the
// user must sign in again.
func (l loginState) expired(now time.Time) bool { return l.login != nil && l.login.Expired(now) }

// expiresAt is when the login's token expires, zero without a login.
func (l loginState) expiresAt() time.Time {
	if l.login == nil {
		return time.Time{}
	}
	return l.login.ExpiresAt
}

// listed is s.logins, or one signed-out login when there is none.
func (s state) listed() []loginState {
	if len(s.logins) == 0 {
		return []loginState{{}}
	}
	return s.logins
}

// main is the login the icon and tooltip follow.
func (s state) main() loginState {
	ls := s.listed()
	if s.primary >= 0 && s.primary < len(ls) {
		return ls[s.primary]
	}
	return ls[0]
}

// view is a rendered state: exactly what the menu, icon and tooltip show.
// With one login its lines are at the top of the menu (Status … SignIn);
// with several, each login is a submenu (Logins) and those lines are "".
type view struct {
	Status           string // disabled first line; "" hides it
	SignIn           string // "Sign in with Claude", "Sign out" or "Cancel sign-in"; "" hides it
	SignInEnabled    bool
	Logins           [maxLogins]loginView // one submenu per login when there are several
	Proxy            string               // "Proxy on HOST:PORT"
	ProxyChecked     bool
	ProxyEnabled     bool
	Autostart        bool
	AutoEnabled      bool
	DashboardEnabled bool // "Open dashboard": the proxy serves it
	ReloadEnabled    bool
	Icon             assets.Icon
	Tooltip          string
	Limits           [maxLimitLines]string // usage lines under the status line; "" hides one
}

// loginView is one login's submenu: its title, then what the top of the
// menu shows for a single login.
type loginView struct {
	Title         string // "● claude-max — ada@example.com"; "" hides the submenu
	Status        string
	Limits        [maxLimitLines]string
	SignIn        string
	SignInEnabled bool
}

// maxLogins is how many logins the menu has submenus for; the menu cannot
// grow items in the middle later, so they are made at start.
const maxLogins = 8

// Labels that are part of the contract (DESIGN.md, "Tray").
const (
	labelSignIn    = "Sign in with Claude"
	labelSignOut   = "Sign out"
	labelCancel    = "Cancel sign-in"
	labelAutostart = "Start at login"
	labelDashboard = "Open dashboard"
	labelOpen      = "Open config file"
	labelReload    = "Reload config"
	labelOpenLog   = "Open log"
	labelShowAddr  = "Show proxy address"
	labelQuit      = "Quit"

	statusSignedOut = "Not signed in"
	statusExpired   = "Session expired — sign in again"
	statusSigningIn = "Signing in — finish in your browser"
)

// Markers before a login's submenu title, so the state shows without
// opening it.
const (
	markSignedIn  = "●" // signed in and fine
	markSignedOut = "○" // not signed in (or signing in)
	markLimit     = "◐" // near or at a usage limit
	markBroken    = "⚠" // the session expired or refreshing fails
)

// render turns s into what the menu shows. now and loc format the expiry.
func render(s state, now time.Time, loc *time.Location) view {
	v := view{
		Proxy:            "Proxy on " + s.proxyAddr,
		ProxyChecked:     s.proxyOn,
		ProxyEnabled:     !s.proxyBusy,
		Autostart:        s.autostart,
		AutoEnabled:      !s.autoBusy && s.autoUnknown == "",
		DashboardEnabled: s.proxyOn,
		ReloadEnabled:    s.canReload && !s.reloadBusy,
	}
	logins := s.listed()
	warn := false
	for i, l := range logins {
		lv, lwarn := renderLogin(l, now, loc)
		warn = warn || lwarn
		switch {
		case len(logins) == 1:
			v.Status, v.Limits, v.SignIn, v.SignInEnabled = lv.Status, lv.Limits, lv.SignIn, lv.SignInEnabled
		case i < maxLogins:
			lv.Title = loginTitle(l, lwarn, now)
			v.Logins[i] = lv
		}
	}

	m := s.main()
	signedIn, expired := m.signedIn(now), m.expired(now)
	broken := expired || (signedIn && m.refreshErr != "") || s.proxyErr != ""
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

// renderLogin is one login's status line, usage lines and sign-in item, and
// whether it is near or at a usage limit.
func renderLogin(l loginState, now time.Time, loc *time.Location) (lv loginView, warn bool) {
	lv.SignInEnabled = !l.signingOut
	signedIn, expired := l.signedIn(now), l.expired(now)
	switch {
	case l.signingIn:
		lv.Status, lv.SignIn = statusSigningIn, labelCancel
	case expired:
		lv.Status, lv.SignIn = statusExpired, labelSignIn
	case signedIn:
		lv.Status, lv.SignIn = signedInLine(*l.login, now, loc), labelSignOut
	default:
		lv.Status, lv.SignIn = statusSignedOut, labelSignIn
	}
	if signedIn && !l.signingIn {
		lv.Limits = limitLines(l, now, loc)
		if line := spentLine(l, now, loc); line != "" {
			lv.Status = line
		}
		warn = usageWarning(l, now)
	}
	return lv, warn
}

// loginTitle is a login's submenu title: a state marker, the login's id
// and, once known, its account: "● claude-max — ada@example.com".
func loginTitle(l loginState, warn bool, now time.Time) string {
	mark := markSignedOut
	switch {
	case l.signingIn:
	case l.expired(now), l.signedIn(now) && l.refreshErr != "":
		mark = markBroken
	case warn:
		mark = markLimit
	case l.signedIn(now):
		mark = markSignedIn
	}
	title := mark + " " + l.id
	if l.login != nil && l.login.Email != "" && !l.signingIn {
		title += " — " + l.login.Email
	}
	return title
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

// tooltip says in words what the icon shows, one fact per line. With
// several logins it names the one the icon follows, and each other that
// is near or at a limit.
func tooltip(s state, v view, now time.Time, loc *time.Location) string {
	lines := []string{"ccmux"}
	m := s.main()
	if len(s.listed()) == 1 {
		lines = append(lines, v.Status)
	} else {
		lv, _ := renderLogin(m, now, loc)
		lines = append(lines, m.id+": "+lv.Status)
	}
	if l, ok := tightest(m.usage.Windows); ok && m.hasUsage && m.signedIn(now) && !m.signingIn {
		lines = append(lines, menuLine(l, now, loc))
	}
	for i, l := range s.listed() {
		if i == s.primary || !l.signedIn(now) || !usageWarning(l, now) {
			continue
		}
		if line := spentLine(l, now, loc); line != "" {
			lines = append(lines, line)
		} else if w, ok := tightest(l.usage.Windows); ok {
			lines = append(lines, l.id+": "+menuLine(w, now, loc))
		}
	}
	if s.proxyOn {
		lines = append(lines, "Proxy on "+s.proxyAddr)
	} else {
		lines = append(lines, "Proxy off")
	}
	if m.refreshErr != "" && m.signedIn(now) {
		lines = append(lines, "Refresh failed: "+m.refreshErr)
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
