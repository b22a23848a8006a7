package tray

import (
	"context"

	"fyne.io/systray"
)

// trayMenu is the systray menu. It is built once, in onReady, and then only
// updated: Remove and ResetMenu would close the items' ClickedCh.
type trayMenu struct {
	status, signIn, proxy, autostart, open, showAddr, quit *systray.MenuItem
	shown                                                  view
	first                                                  bool
}

// clickBacklog absorbs a burst of clicks while the loop applies a change;
// fyne.io/systray drops a click outright when nobody is receiving.
const clickBacklog = 32

func newTrayMenu() *trayMenu {
	m := &trayMenu{first: true}
	m.status = systray.AddMenuItem(statusSignedOut, "")
	m.status.Disable()
	m.signIn = systray.AddMenuItem(labelSignIn, "")
	systray.AddSeparator()
	m.proxy = systray.AddMenuItemCheckbox("Proxy on", "Claude Code talks to this local address", false)
	m.autostart = systray.AddMenuItemCheckbox(labelAutostart, "Start ccmux when you log in", false)
	systray.AddSeparator()
	m.open = systray.AddMenuItem(labelOpen, "")
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
		m.open: clickOpenConfig, m.showAddr: clickShowAddress, m.quit: clickQuit,
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
	old, first := m.shown, m.first
	m.shown, m.first = v, false
	setText := func(item *systray.MenuItem, was, now string) {
		if first || was != now {
			item.SetTitle(now)
		}
	}
	setBool := func(was, now bool, on, off func()) {
		if first || was != now {
			if now {
				on()
			} else {
				off()
			}
		}
	}
	setText(m.status, old.Status, v.Status)
	setText(m.signIn, old.SignIn, v.SignIn)
	setBool(old.SignInEnabled, v.SignInEnabled, m.signIn.Enable, m.signIn.Disable)
	setText(m.proxy, old.Proxy, v.Proxy)
	setBool(old.ProxyChecked, v.ProxyChecked, m.proxy.Check, m.proxy.Uncheck)
	setBool(old.ProxyEnabled, v.ProxyEnabled, m.proxy.Enable, m.proxy.Disable)
	setBool(old.Autostart, v.Autostart, m.autostart.Check, m.autostart.Uncheck)
	setBool(old.AutoEnabled, v.AutoEnabled, m.autostart.Enable, m.autostart.Disable)
	if first || old.Icon != v.Icon {
		setIcon(v.Icon)
	}
	if first || old.Tooltip != v.Tooltip {
		systray.SetTooltip(v.Tooltip)
	}
}
