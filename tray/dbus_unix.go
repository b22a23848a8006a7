//go:build !darwin && !windows

package tray

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// available checks for a reachable D-Bus session bus: fyne.io/systray needs
// one for the StatusNotifierItem, and its Quit panics without it.
func available() error {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		// Without the variable, godbus looks for $XDG_RUNTIME_DIR/bus and
		// then tries dbus-launch, which would start a bus nobody watches.
		sock := filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "bus")
		if fi, err := os.Stat(sock); os.Getenv("XDG_RUNTIME_DIR") == "" || err != nil || fi.Mode()&os.ModeSocket == 0 {
			return errors.New("no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set")
		}
		addr = "unix:path=" + sock
	}
	conn, err := dbus.SessionBus()
	if err != nil {
		return fmt.Errorf("cannot reach the D-Bus session bus at %s: %w", addr, err)
	}
	return waitForHost(conn, hostWait)
}

// hostWait is how long a start waits for a tray host to appear: a panel
// started at login may come up a moment after ccmux does.
const hostWait = 10 * time.Second

// errNoHost says what is missing and how to get it: with a bus but no
// StatusNotifierWatcher (GNOME without the extension) a tray icon would
// never be seen, and the user would not know ccmux is running.
var errNoHost = errors.New("nothing on the D-Bus session bus shows tray icons (no " + watcherName +
	`; on GNOME, install and enable the "AppIndicator and KStatusNotifierItem Support" extension)`)

// waitForHost returns nil once a StatusNotifierWatcher owns its name on
// conn's bus (or can be started by the bus), and errNoHost if none has
// appeared within wait.
func waitForHost(conn *dbus.Conn, wait time.Duration) error {
	// Listen before asking, so a watcher that appears in between is seen.
	rule := []dbus.MatchOption{
		dbus.WithMatchSender("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, watcherName),
	}
	if err := conn.AddMatchSignal(rule...); err == nil {
		defer conn.RemoveMatchSignal(rule...)
	}
	signals := make(chan *dbus.Signal, 8)
	conn.Signal(signals)
	defer conn.RemoveSignal(signals)

	bus := conn.BusObject()
	var owned bool
	if bus.Call("org.freedesktop.DBus.NameHasOwner", 0, watcherName).Store(&owned) == nil && owned {
		return nil
	}
	var activatable []string
	if bus.Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&activatable) == nil {
		for _, n := range activatable {
			if n == watcherName {
				return nil
			}
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case sig := <-signals:
			if sig != nil && watcherAppeared(sig) {
				return nil
			}
		case <-timer.C:
			return errNoHost
		}
	}
}

const (
	watcherName  = "org.kde.StatusNotifierWatcher"
	watcherPath  = "/StatusNotifierWatcher"
	itemPath     = "/StatusNotifierItem" // where fyne.io/systray exports the item
	settleBefore = time.Second
)

// keepRegistered registers the tray icon again whenever a panel (a
// StatusNotifierWatcher) appears, e.g. after the panel restarts.
//
// fyne.io/systray has such a loop, but it ends for good on the first signal
// with fewer than three arguments. beeep's notifications share godbus's
// session connection and bring exactly such signals (NotificationClosed,
// ActionInvoked), so after a notification the icon would vanish with the
// next panel restart. This loop waits a moment, lets systray's own loop
// (if it is still alive) go first, and registers only if the item is missing.
func keepRegistered(ctx context.Context, log *slog.Logger) {
	conn, err := dbus.SessionBus()
	if err != nil {
		return
	}
	rule := []dbus.MatchOption{
		dbus.WithMatchSender("org.freedesktop.DBus"),
		dbus.WithMatchObjectPath("/org/freedesktop/DBus"),
		dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, watcherName),
	}
	if err := conn.AddMatchSignal(rule...); err != nil {
		log.Warn("cannot watch for the system tray restarting", "err", err)
		return
	}
	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)
	go func() {
		defer conn.RemoveSignal(signals)
		for {
			select {
			case sig, ok := <-signals:
				if !ok || sig == nil {
					return // the connection closed (Quit)
				}
				if !watcherAppeared(sig) {
					continue
				}
				select {
				case <-time.After(settleBefore):
				case <-ctx.Done():
					return
				}
				if !registered(ctx, conn) {
					register(ctx, conn, log)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
}

// watcherAppeared reports whether sig says a new StatusNotifierWatcher owns its name.
func watcherAppeared(sig *dbus.Signal) bool {
	if sig.Name != "org.freedesktop.DBus.NameOwnerChanged" || len(sig.Body) < 3 {
		return false
	}
	name, _ := sig.Body[0].(string)
	owner, _ := sig.Body[2].(string)
	return name == watcherName && owner != ""
}

// registered asks the watcher whether it lists this process's item; when it
// cannot tell, it answers false (registering twice is harmless to watchers).
func registered(ctx context.Context, conn *dbus.Conn) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var items []string
	call := conn.Object(watcherName, watcherPath).CallWithContext(ctx,
		"org.freedesktop.DBus.Properties.Get", 0, watcherName, "RegisteredStatusNotifierItems")
	if call.Err != nil || call.Store(&items) != nil {
		return false
	}
	names := conn.Names()
	for _, item := range items {
		service, _, _ := strings.Cut(item, "/")
		for _, n := range names {
			if service == n {
				return true
			}
		}
	}
	return false
}

func register(ctx context.Context, conn *dbus.Conn, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	call := conn.Object(watcherName, watcherPath).CallWithContext(ctx,
		watcherName+".RegisterStatusNotifierItem", 0, itemPath)
	if call.Err != nil {
		log.Warn("cannot register the tray icon with the panel", "err", call.Err)
		return
	}
	log.Info("registered the tray icon with the restarted panel")
}
