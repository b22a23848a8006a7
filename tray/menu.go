package tray

import (
	"context"

	"fyne.io/systray"
)

// trayMenu is the systray menu. It is built once, in onReady, and then only
// updated: Remove and ResetMenu would close the items' ClickedCh.
type trayMenu struct {
	status, signIn, proxy, autostart, open, reload, openLog, showAddr, quit *systray.MenuItem
	limits                                                                  [maxLimitLines]*systray.MenuItem
	shown                                                                   view
}

// clickBacklog absorbs a burst of clicks while the loop applies a change;
// fyne.io/systray drops a click outright when nobody is receiving.
const clickBacklog = 32

// newTrayMenu shows v: icon, tooltip and menu.
func newTrayMenu(v view) *trayMenu {
	m := &trayMenu{shown: v}
	setIcon(v.Icon)
	systray.SetTooltip(v.Tooltip)
	m.status = systray.AddMenuItem(v.Status, "")
	m.status.Disable()
	// The usage lines exist from the start and are hidden while unused:
	// items cannot be inserted under the status line later.
	for i, line := range v.Limits {
		m.limits[i] = systray.AddMenuItem(line, "")
		m.limits[i].Disable()
		if line == "" {
			m.limits[i].Hide()
		}
	}
	m.signIn = systray.AddMenuItem(v.SignIn, "")
	if !v.SignInEnabled {
		m.signIn.Disable()
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
	m.open = systray.AddMenuItem(labelOpen, "")
	m.reload = systray.AddMenuItem(labelReload, "Read the config file again and apply it")
	if !v.ReloadEnabled {
		m.reload.Disable()
	}
	m.openLog = systray.AddMenuItem(labelOpenLog, "Open ccmux's log file")
	m.showAddr = systray.AddMenuItem(labelShowAddr, "Show the ANTHROPIC_BASE_URL for Claude Code")
	systray.AddSeparator()
	m.quit = systray.AddMenuItem(labelQuit, "Stop the proxy and quit")
	return m
}

// clicks forwards every item's clicks, as actions, to one channel.
func (m *trayMenu) clicks(ctx context.Context) <-chan action {
	out := make(chan action, clickBacklog)
	for item, act := range map[*systray.MenuItem]action{
		m.signIn: clickSignIn, m.proxy: clickProxy, m.autostart: clickAutostart,
		m.open: clickOpenConfig, m.reload: clickReload, m.openLog: clickOpenLog, m.showAddr: clickShowAddress, m.quit: clickQuit,
	} {
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
	if old.Status != v.Status {
		m.status.SetTitle(v.Status)
	}
	for i, item := range m.limits {
		switch was, now := old.Limits[i], v.Limits[i]; {
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
	if old.SignIn != v.SignIn {
		m.signIn.SetTitle(v.SignIn)
	}
	setEnabled(m.signIn, old.SignInEnabled, v.SignInEnabled)
	if old.Proxy != v.Proxy {
		m.proxy.SetTitle(v.Proxy)
	}
	setChecked(m.proxy, old.ProxyChecked, v.ProxyChecked)
	setEnabled(m.proxy, old.ProxyEnabled, v.ProxyEnabled)
	setChecked(m.autostart, old.Autostart, v.Autostart)
	setEnabled(m.autostart, old.AutoEnabled, v.AutoEnabled)
	setEnabled(m.reload, old.ReloadEnabled, v.ReloadEnabled)
	if old.Icon != v.Icon {
		setIcon(v.Icon)
	}
	if old.Tooltip != v.Tooltip {
		systray.SetTooltip(v.Tooltip)
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
