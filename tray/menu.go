package tray

import (
	"context"

	"fyne.io/systray"
)

// trayMenu is the systray menu. It is built once, in onReady, and then only
// updated: Remove and ResetMenu would close the items' ClickedCh.
type trayMenu struct {
	status, signIn, proxy, autostart, dashboard, open, reload, openLog, showAddr, quit *systray.MenuItem
	limits                                                                             [maxLimitLines]*systray.MenuItem
	logins                                                                             [maxLogins]loginMenu
	shown                                                                              view
}

// loginMenu is one login's submenu.
type loginMenu struct {
	title, status, signIn *systray.MenuItem
	limits                [maxLimitLines]*systray.MenuItem
}

// clickBacklog absorbs a burst of clicks while the loop applies a change;
// fyne.io/systray drops a click outright when nobody is receiving.
const clickBacklog = 32

// newTrayMenu shows v: icon, tooltip and menu.
func newTrayMenu(v view) *trayMenu {
	m := &trayMenu{shown: v}
	setIcon(v.Icon)
	systray.SetTooltip(v.Tooltip)
	// Every item exists from the start and lines not in use are hidden:
	// items cannot be inserted in the middle of the menu later. One login
	// has its lines at the top; several have a submenu each.
	m.status = addItem(nil, v.Status, false)
	for i, line := range v.Limits {
		m.limits[i] = addItem(nil, line, false)
	}
	m.signIn = addItem(nil, v.SignIn, v.SignInEnabled)
	for i, lv := range v.Logins {
		lm := &m.logins[i]
		lm.title = addItem(nil, lv.Title, true)
		lm.status = addItem(lm.title, lv.Status, false)
		for j, line := range lv.Limits {
			lm.limits[j] = addItem(lm.title, line, false)
		}
		lm.signIn = addItem(lm.title, lv.SignIn, lv.SignInEnabled)
	}
	systray.AddSeparator()
	m.proxy = systray.AddMenuItemCheckbox(v.Proxy, "Claude Code talks to this local address", v.ProxyChecked)
	if !v.ProxyEnabled {
		m.proxy.Disable()
	}
	m.autostart = systray.AddMenuItemCheckbox(labelAutostart, "Start ccmux when you log in", v.Autostart)
	if !v.AutoEnabled {
		m.autostart.Disable()
	}
	systray.AddSeparator()
	m.dashboard = systray.AddMenuItem(labelDashboard, "Open ccmux's dashboard in the browser")
	if !v.DashboardEnabled {
		m.dashboard.Disable()
	}
	m.open = systray.AddMenuItem(labelOpen, "")
	m.reload = systray.AddMenuItem(labelReload, "Read the config file again and apply it")
	if !v.ReloadEnabled {
		m.reload.Disable()
	}
	m.openLog = systray.AddMenuItem(labelOpenLog, "Open ccmux's log file")
	m.showAddr = systray.AddMenuItem(labelShowAddr, "Show the proxy address and how to run Claude Code through it")
	systray.AddSeparator()
	m.quit = systray.AddMenuItem(labelQuit, "Stop the proxy and quit")
	return m
}

// addItem adds an item to the menu (parent nil) or a submenu, hidden while
// its text is "".
func addItem(parent *systray.MenuItem, text string, enabled bool) *systray.MenuItem {
	var item *systray.MenuItem
	if parent == nil {
		item = systray.AddMenuItem(text, "")
	} else {
		item = parent.AddSubMenuItem(text, "")
	}
	if !enabled {
		item.Disable()
	}
	if text == "" {
		item.Hide()
	}
	return item
}

// clicks forwards every item's clicks, as actions, to one channel.
func (m *trayMenu) clicks(ctx context.Context) <-chan action {
	out := make(chan action, clickBacklog)
	items := map[*systray.MenuItem]action{
		m.signIn: clickSignIn, m.proxy: clickProxy, m.autostart: clickAutostart, m.dashboard: clickDashboard,
		m.open: clickOpenConfig, m.reload: clickReload, m.openLog: clickOpenLog, m.showAddr: clickShowAddress, m.quit: clickQuit,
	}
	for i, lm := range m.logins {
		items[lm.signIn] = loginClick(i)
	}
	for item, act := range items {
		go forwardClicks(ctx, item.ClickedCh, act, out)
	}
	return out
}

func forwardClicks(ctx context.Context, clicked <-chan struct{}, act action, out chan<- action) {
	for {
		select {
		case _, ok := <-clicked:
			if !ok { // the item was removed: a closed channel would fire forever
				return
			}
			select {
			case out <- act:
			default: // the loop is far behind; drop the click as systray itself would
			}
		case <-ctx.Done():
			return
		}
	}
}

// apply shows v, touching only what changed (each change is a D-Bus signal).
func (m *trayMenu) apply(v view) {
	old := m.shown
	m.shown = v
	setLine(m.status, old.Status, v.Status)
	for i, item := range m.limits {
		setLine(item, old.Limits[i], v.Limits[i])
	}
	setLine(m.signIn, old.SignIn, v.SignIn)
	setEnabled(m.signIn, old.SignInEnabled, v.SignInEnabled)
	for i, lm := range m.logins {
		was, now := old.Logins[i], v.Logins[i]
		setLine(lm.title, was.Title, now.Title)
		setLine(lm.status, was.Status, now.Status)
		for j, item := range lm.limits {
			setLine(item, was.Limits[j], now.Limits[j])
		}
		setLine(lm.signIn, was.SignIn, now.SignIn)
		setEnabled(lm.signIn, was.SignInEnabled, now.SignInEnabled)
	}
	if old.Proxy != v.Proxy {
		m.proxy.SetTitle(v.Proxy)
	}
	setChecked(m.proxy, old.ProxyChecked, v.ProxyChecked)
	setEnabled(m.proxy, old.ProxyEnabled, v.ProxyEnabled)
	setChecked(m.autostart, old.Autostart, v.Autostart)
	setEnabled(m.autostart, old.AutoEnabled, v.AutoEnabled)
	setEnabled(m.dashboard, old.DashboardEnabled, v.DashboardEnabled)
	setEnabled(m.reload, old.ReloadEnabled, v.ReloadEnabled)
	if old.Icon != v.Icon {
		setIcon(v.Icon)
	}
	if old.Tooltip != v.Tooltip {
		systray.SetTooltip(v.Tooltip)
	}
}

// setLine shows an item's new text; "" hides the item.
func setLine(item *systray.MenuItem, was, now string) {
	switch {
	case was == now:
	case now == "":
		item.Hide()
	default:
		item.SetTitle(now)
		if was == "" {
			item.Show()
		}
	}
}

func setChecked(item *systray.MenuItem, was, now bool) {
	switch {
	case was == now:
	case now:
		item.Check()
	default:
		item.Uncheck()
	}
}

func setEnabled(item *systray.MenuItem, was, now bool) {
	switch {
	case was == now:
	case now:
		item.Enable()
	default:
		item.Disable()
	}
}
