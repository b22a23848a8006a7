//go:build linux

package tray

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"ccmux/config"
	"ccmux/internal/testsupport"
)

// The end-to-end tests run the real ccmux binary against a private D-Bus
// session bus on which the test plays the panel (a StatusNotifierWatcher
// that reads the menu over com.canonical.dbusmenu) and the notification
// service, with a stub browser that follows the login URL.

func TestMain(m *testing.M) {
	testsupport.ActAsBrowser()
	code := m.Run()
	testsupport.Cleanup()
	os.Exit(code)
}

// requireDBusDaemon fails in CI and skips elsewhere when dbus-daemon is missing.
func requireDBusDaemon(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("dbus-daemon")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatal("dbus-daemon is not installed; the tray's end-to-end test needs it (Debian/Ubuntu: apt-get install dbus)")
	}
	t.Skip("dbus-daemon is not installed (apt-get install dbus); skipping the tray's end-to-end test")
	return ""
}

// privateBus starts a session bus of its own, with no service activation,
// and returns its address.
func privateBus(t *testing.T) string {
	t.Helper()
	daemon := requireDBusDaemon(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=`+dir+`</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`), 0o644)
	cmd := exec.Command(daemon, "--config-file="+conf, "--nofork", "--print-address=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		for s.Scan() {
		}
	}()
	select {
	case addr, ok := <-line:
		if !ok || addr == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return addr
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon did not start within 10 s")
	}
	return ""
}

func connect(t *testing.T, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connecting to the private bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// desktop is a private session bus with a panel (the watcher) and a
// notification service on it, and the test's own connection to it.
type desktop struct {
	bus     string
	conn    *dbus.Conn
	watcher *fakeWatcher
	notes   *fakeNotifications
}

func newDesktop(t *testing.T) *desktop {
	t.Helper()
	bus := privateBus(t)
	d := &desktop{bus: bus, conn: connect(t, bus)}
	d.watcher = startWatcher(t, bus)
	d.notes = startNotifications(t, bus)
	return d
}

// start runs ccmux on the desktop (see startApp) and finds its tray item.
func (d *desktop) start(t *testing.T, home string, env ...string) (*runningApp, *trayItem) {
	t.Helper()
	app := startApp(t, home, append([]string{"DBUS_SESSION_BUS_ADDRESS=" + d.bus}, env...)...)
	return app, findItem(t, d.conn, app.cmd.Process.Pid)
}

// ---- the panel: a StatusNotifierWatcher ----

type fakeWatcher struct {
	conn  *dbus.Conn
	props *prop.Properties
	mu    sync.Mutex
	items []string
	regs  chan string // sender of each RegisterStatusNotifierItem
}

func (w *fakeWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	item := service
	if strings.HasPrefix(service, "/") {
		item = string(sender) + service
	}
	w.mu.Lock()
	w.items = append(w.items, item)
	items := append([]string(nil), w.items...)
	w.mu.Unlock()
	w.props.SetMust("org.kde.StatusNotifierWatcher", "RegisteredStatusNotifierItems", items)
	select {
	case w.regs <- string(sender):
	default:
	}
	return nil
}

func (w *fakeWatcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

// startWatcher takes org.kde.StatusNotifierWatcher on a connection of its own.
func startWatcher(t *testing.T, addr string) *fakeWatcher {
	t.Helper()
	w := &fakeWatcher{conn: connect(t, addr), regs: make(chan string, 8)}
	if err := w.conn.Export(w, watcherPath, watcherName); err != nil {
		t.Fatal(err)
	}
	props, err := prop.Export(w.conn, watcherPath, prop.Map{watcherName: {
		"RegisteredStatusNotifierItems":  {Value: []string{}, Emit: prop.EmitTrue},
		"IsStatusNotifierHostRegistered": {Value: true, Emit: prop.EmitTrue},
		"ProtocolVersion":                {Value: int32(0), Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w.props = props
	if reply, err := w.conn.RequestName(watcherName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning %s: %v %v", watcherName, reply, err)
	}
	return w
}

// ---- the notification service ----

type notification struct {
	App, Summary, Body string
	Hints              map[string]dbus.Variant
}

type fakeNotifications struct {
	conn *dbus.Conn
	mu   sync.Mutex
	got  []notification
}

func (n *fakeNotifications) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	n.mu.Lock()
	n.got = append(n.got, notification{app, summary, body, hints})
	id := uint32(len(n.got))
	n.mu.Unlock()
	// Close it at once, before the reply, while beeep still listens on the
	// shared connection: this is the two-argument signal that ends
	// fyne.io/systray's own re-registration loop (DESIGN.md, library traps).
	n.conn.Emit("/org/freedesktop/Notifications", "org.freedesktop.Notifications.NotificationClosed", id, uint32(1))
	return id, nil
}

func (n *fakeNotifications) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"body"}, nil
}

func (n *fakeNotifications) GetServerInformation() (string, string, string, string, *dbus.Error) {
	return "fake", "ccmux tests", "1", "1.2", nil
}

func (n *fakeNotifications) CloseNotification(uint32) *dbus.Error { return nil }

func (n *fakeNotifications) all() []notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notification(nil), n.got...)
}

func (n *fakeNotifications) find(summary string) (notification, bool) {
	for _, m := range n.all() {
		if m.Summary == summary {
			return m, true
		}
	}
	return notification{}, false
}

func startNotifications(t *testing.T, addr string) *fakeNotifications {
	t.Helper()
	n := &fakeNotifications{conn: connect(t, addr)}
	if err := n.conn.Export(n, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	if reply, err := n.conn.RequestName("org.freedesktop.Notifications", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("owning org.freedesktop.Notifications: %v %v", reply, err)
	}
	return n
}

// ---- reading and clicking the menu (com.canonical.dbusmenu) ----

type menuItem struct {
	ID       int32
	Label    string
	Enabled  bool
	Toggle   string // "checkmark" for checkboxes
	Checked  bool
	Children []menuItem // a submenu's visible items
}

type trayItem struct {
	conn    *dbus.Conn
	service string
	menu    dbus.BusObject
}

// findItem waits for the app's org.kde.StatusNotifierItem-PID-* name and its Menu.
func findItem(t *testing.T, conn *dbus.Conn, pid int) *trayItem {
	t.Helper()
	prefix := "org.kde.StatusNotifierItem-" + strconv.Itoa(pid) + "-"
	var service string
	testsupport.Eventually(t, "the app's StatusNotifierItem name", 20*time.Second, func() bool {
		var names []string
		conn.BusObject().Call("org.freedesktop.DBus.ListNames", 0).Store(&names)
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				service = n
				return true
			}
		}
		return false
	})
	// systray takes the name before it exports the item's objects: a
	// property read right after the name appears can find nothing there yet.
	var v dbus.Variant
	var err error
	testsupport.Eventually(t, "the item's Menu property", 20*time.Second, func() bool {
		v, err = conn.Object(service, itemPath).GetProperty("org.kde.StatusNotifierItem.Menu")
		return err == nil
	})
	path, ok := v.Value().(dbus.ObjectPath)
	if !ok {
		t.Fatalf("Menu property is %T, want an object path", v.Value())
	}
	return &trayItem{conn: conn, service: service, menu: conn.Object(service, path)}
}

// layout reads the top-level menu items, and their submenus, with GetLayout.
func (it *trayItem) layout(t *testing.T) []menuItem {
	t.Helper()
	var rev uint32
	var root struct {
		ID       int32
		Props    map[string]dbus.Variant
		Children []dbus.Variant
	}
	call := it.menu.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
	if call.Err != nil {
		t.Fatalf("GetLayout: %v", call.Err)
	}
	if err := call.Store(&rev, &root); err != nil {
		t.Fatalf("GetLayout reply: %v", err)
	}
	return visibleItems(t, root.Children)
}

// visibleItems decodes GetLayout's children, leaving out separators and
// hidden items.
func visibleItems(t *testing.T, children []dbus.Variant) []menuItem {
	t.Helper()
	var items []menuItem
	for _, c := range children {
		fields, ok := c.Value().([]any)
		if !ok || len(fields) != 3 {
			t.Fatalf("menu child %v is not (ia{sv}av)", c)
		}
		props, _ := fields[1].(map[string]dbus.Variant)
		if s, _ := props["type"].Value().(string); s == "separator" {
			continue
		}
		m := menuItem{ID: fields[0].(int32), Enabled: true}
		m.Label, _ = props["label"].Value().(string)
		if v, ok := props["enabled"]; ok {
			m.Enabled, _ = v.Value().(bool)
		}
		if v, ok := props["visible"]; ok {
			if visible, _ := v.Value().(bool); !visible {
				continue
			}
		}
		m.Toggle, _ = props["toggle-type"].Value().(string)
		if v, ok := props["toggle-state"]; ok {
			state, _ := v.Value().(int32)
			m.Checked = state == 1
		}
		if sub, ok := fields[2].([]dbus.Variant); ok {
			m.Children = visibleItems(t, sub)
		}
		items = append(items, m)
	}
	return items
}

// item returns the menu item whose label starts with prefix.
func (it *trayItem) item(t *testing.T, prefix string) (menuItem, bool) {
	for _, m := range it.layout(t) {
		if strings.HasPrefix(m.Label, prefix) {
			return m, true
		}
	}
	return menuItem{}, false
}

// waitItem polls the menu until an item with the label prefix satisfies ok.
func (it *trayItem) waitItem(t *testing.T, prefix, what string, ok func(menuItem) bool) menuItem {
	t.Helper()
	var got menuItem
	testsupport.Eventually(t, what, 20*time.Second, func() bool {
		m, found := it.item(t, prefix)
		got = m
		return found && ok(m)
	})
	return got
}

// click sends the dbusmenu "clicked" event for the item labelled prefix….
func (it *trayItem) click(t *testing.T, prefix string) {
	t.Helper()
	m, ok := it.item(t, prefix)
	if !ok {
		t.Fatalf("no menu item %q in %+v", prefix, it.layout(t))
	}
	call := it.menu.Call("com.canonical.dbusmenu.Event", 0, m.ID, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix()))
	if call.Err != nil && !(prefix == "Quit" && isNoReply(call.Err)) {
		t.Fatalf("clicking %q: %v", m.Label, call.Err)
	}
}

// clickIn clicks the item labelled prefix… in the submenu labelled parent….
func (it *trayItem) clickIn(t *testing.T, parent, prefix string) {
	t.Helper()
	sub, ok := it.item(t, parent)
	if !ok {
		t.Fatalf("no submenu %q in %+v", parent, it.layout(t))
	}
	for _, m := range sub.Children {
		if strings.HasPrefix(m.Label, prefix) {
			if call := it.menu.Call("com.canonical.dbusmenu.Event", 0, m.ID, "clicked", dbus.MakeVariant(""), uint32(time.Now().Unix())); call.Err != nil {
				t.Fatalf("clicking %q in %q: %v", m.Label, sub.Label, call.Err)
			}
			return
		}
	}
	t.Fatalf("no item %q in the submenu %+v", prefix, sub)
}

// isNoReply reports the bus's answer when the app left before replying:
// Quit can exit the process before the click's reply is written, which a
// panel ignores too; the test then judges Quit by the exit status.
func isNoReply(err error) bool {
	var e dbus.Error
	return errors.As(err, &e) && e.Name == "org.freedesktop.DBus.Error.NoReply"
}

// ---- the app's files and ports ----

// writeConfig writes the default config with the proxy on port, plus extra TOML.
func writeConfig(t *testing.T, home string, port int, extra string) string {
	t.Helper()
	text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1)
	if text == config.DefaultTOML {
		t.Fatal("the default config no longer says port = 13456; update the test")
	}
	dir := filepath.Join(home, config.DirName)
	os.MkdirAll(dir, 0o700)
	path := filepath.Join(dir, config.ConfigFileName)
	if err := os.WriteFile(path, []byte(text+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// healthy reports whether the proxy answers /health on port.
func healthy(port int) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// closed reports whether nothing accepts connections on port.
func closed(port int) bool {
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return true
	}
	conn.Close()
	return false
}

// app is a running ccmux binary.
type runningApp struct {
	cmd    *exec.Cmd
	out    *testsupport.Buffer
	exited chan error
}

// startApp runs ccmux with HOME and XDG_CONFIG_HOME under home.
func startApp(t *testing.T, home string, env ...string) *runningApp {
	t.Helper()
	bin := testsupport.Binary(t)
	browser := testsupport.StubBrowser(t, filepath.Join(home, "stub-bin"))
	cmd := exec.Command(bin)
	cmd.Env = append([]string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CONFIG_DIRS=" + filepath.Join(home, "etc-xdg"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		// The binary lives in this process's temp dir, where start at login
		// rightly refuses a binary; the app gets its own.
		"TMPDIR=" + home,
	}, append(browser, env...)...)
	a := &runningApp{cmd: cmd, out: &testsupport.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = a.out, a.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-a.exited:
		default:
			cmd.Process.Kill()
			<-a.exited
		}
		if t.Failed() {
			t.Logf("ccmux output:\n%s", a.out.String())
		}
	})
	return a
}

// wait waits for the app to exit and returns its exit status.
func (a *runningApp) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case err := <-a.exited:
		a.exited <- err // for Cleanup
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("waiting for ccmux: %v", err)
	case <-time.After(within):
		t.Fatalf("ccmux did not exit within %s", within)
	}
	return -1
}
