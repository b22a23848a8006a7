package tray

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"ccmux/config"
	"ccmux/internal/atomicfile"
)

// AutostartEnabled reports whether ccmux starts at login. An entry that
// passes --config is ccmux's as much as one that does not.
func AutostartEnabled() (bool, error) { return platformAutostart().Enabled() }

// EnableAutostart registers this ccmux binary to start at login, with
// --config and configPath's absolute path when configPath is not the default
// config file (a login session has neither the flag nor CCMUX_CONFIG). It
// returns the command line the entry runs. It refuses a binary that will be
// gone by the next login: a `go run` build, one in Go's build cache or in the
// OS temp dir.
func EnableAutostart(configPath string) ([]string, error) {
	exe, err := executable()
	if err != nil {
		return nil, err
	}
	cmd, err := newLoginCommand(exe, configPath)
	if err != nil {
		return nil, err
	}
	return cmd.args(), platformAutostart().Enable(cmd)
}

// DisableAutostart removes the start-at-login entry.
func DisableAutostart() error { return platformAutostart().Disable() }

// loginCommand is what the start-at-login entry runs.
type loginCommand struct {
	exe    string // absolute path of the ccmux binary
	config string // absolute path for --config; "" for the default config
}

func (c loginCommand) args() []string {
	if c.config == "" {
		return []string{c.exe}
	}
	return []string{c.exe, "--config", c.config}
}

// newLoginCommand is the entry for exe running on the config file at
// configPath, checked against this machine's temporary places.
func newLoginCommand(exe, configPath string) (loginCommand, error) {
	cmd := loginCommand{exe: exe}
	if configPath != "" {
		abs, err := filepath.Abs(configPath)
		if err != nil {
			return loginCommand{}, fmt.Errorf("finding the absolute path of the config file %s: %w", configPath, err)
		}
		if def, err := config.DefaultPath(); err != nil || abs != def {
			cmd.config = abs
		}
	}
	// The go-build check comes first: it names `go run`, which the
	// temp-dir check (go run builds there) would not.
	if err := cmd.check(); err != nil {
		return loginCommand{}, err
	}
	if err := temporaryDirs().check(exe); err != nil {
		return loginCommand{}, err
	}
	return cmd, nil
}

// check says in words why the entry could not run at the next login, or nil.
func (c loginCommand) check() error {
	if err := checkExecutable(c.exe); err != nil {
		return err
	}
	if c.config == "" {
		return nil
	}
	if !filepath.IsAbs(c.config) && !isWindowsAbs(c.config) {
		return fmt.Errorf("start at login needs the absolute path of the config file, got %q", c.config)
	}
	if strings.IndexFunc(c.config, unicode.IsControl) >= 0 || !utf8.ValidString(c.config) {
		return fmt.Errorf("the path of the config file %q contains a control character or is not UTF-8; move it to a plain path first", c.config)
	}
	return nil
}

// buildHint is what to do instead of registering a temporary binary.
const buildHint = "build or install ccmux first (go build -o ~/bin/ccmux . or go install) and turn on start at login from that binary"

// checkExecutable says in words why exe cannot be started at login, or nil.
func checkExecutable(exe string) error {
	if !filepath.IsAbs(exe) && !isWindowsAbs(exe) {
		return fmt.Errorf("start at login needs the absolute path of the ccmux binary, got %q", exe)
	}
	for _, part := range strings.FieldsFunc(exe, func(r rune) bool { return r == '/' || r == '\\' }) {
		if strings.HasPrefix(part, "go-build") {
			return fmt.Errorf("%s is a temporary `go run` build that will be gone by your next login: %s", exe, buildHint)
		}
	}
	// macOS runs a downloaded, unsigned app that was never moved from a
	// read-only random copy (App Translocation), gone after the next reboot.
	if strings.Contains(exe, "/AppTranslocation/") {
		return fmt.Errorf("%s is a temporary copy macOS made because ccmux.app was opened where it was downloaded: move ccmux.app to /Applications, open it from there, then turn on start at login", exe)
	}
	// Desktop entries and plists are UTF-8 text: a control character or
	// a byte that is not UTF-8 cannot be written in one.
	if strings.IndexFunc(exe, unicode.IsControl) >= 0 || !utf8.ValidString(exe) {
		return fmt.Errorf("the path of the ccmux binary %q contains a control character or is not UTF-8; move it to a plain path first", exe)
	}
	return nil
}

// tempDirs are the directories whose binaries do not outlive the next login
// (or the next `go clean -cache`): since Go 1.24, `go run` keeps the binaries
// it builds in the build cache, and the OS temp dir is emptied at reboot.
type tempDirs struct {
	goCache string // `go env GOCACHE`; "" when off or unknown
	temp    string // os.TempDir()
}

// temporaryDirs finds this machine's tempDirs without running the go command.
func temporaryDirs() tempDirs {
	return tempDirs{goCache: goCacheDir(os.Getenv), temp: os.TempDir()}
}

// goCacheDir is what `go env GOCACHE` says: $GOCACHE, else the value
// `go env -w` stored in the go env file, else the user cache dir's go-build.
func goCacheDir(getenv func(string) string) string {
	dir := getenv("GOCACHE")
	if dir == "" {
		dir = goEnvFileValue(getenv, "GOCACHE")
	}
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(cache, "go-build")
	}
	if dir == "off" || !filepath.IsAbs(dir) {
		return ""
	}
	return dir
}

// goEnvFileValue reads key from the file `go env -w` writes: $GOENV, else
// go/env in the user config dir.
func goEnvFileValue(getenv func(string) string, key string) string {
	file := getenv("GOENV")
	if file == "off" {
		return ""
	}
	if file == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return ""
		}
		file = filepath.Join(dir, "go", "env")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// check refuses exe when it lies in one of the directories, comparing paths
// with symlinks resolved (macOS's temp dir /var/folders/… is really under
// /private/var).
func (d tempDirs) check(exe string) error {
	if d.goCache != "" && within(d.goCache, exe) {
		return fmt.Errorf("%s is in Go's build cache %s, which `go run` uses and `go clean -cache` empties: %s", exe, d.goCache, buildHint)
	}
	if d.temp != "" && within(d.temp, exe) {
		return fmt.Errorf("%s is in the temporary directory %s, which is emptied at reboot or sooner: %s", exe, d.temp, buildHint)
	}
	return nil
}

// within reports whether path is inside dir, with symlinks resolved on both
// sides. A root directory contains everything and so is never a temp dir.
func within(dir, path string) bool {
	dir, path = resolved(dir), resolved(path)
	if filepath.Dir(dir) == dir {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolved is p with symlinks resolved in as much of it as exists.
func resolved(p string) string {
	p = filepath.Clean(p)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p
	}
	return filepath.Join(resolved(parent), filepath.Base(p))
}

func isWindowsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// writeEntry replaces a start-at-login entry (0644, in a folder made when
// missing) so that a crash never leaves half of one.
func writeEntry(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(name, data, 0o644); err != nil && !atomicfile.IsDirSync(err) {
		return err
	}
	return nil
}

// ---- Linux and other XDG desktops ----

// desktopFileName is the autostart entry's name under autostart/.
const desktopFileName = "ccmux.desktop"

// xdgAutostart is the XDG Autostart entry: $XDG_CONFIG_HOME/autostart/ccmux.desktop,
// which overrides an entry of the same name in $XDG_CONFIG_DIRS/autostart.
type xdgAutostart struct {
	configHome string   // $XDG_CONFIG_HOME, default ~/.config
	configDirs []string // $XDG_CONFIG_DIRS, default /etc/xdg
}

// newXDGAutostart reads the XDG base directories from the environment.
func newXDGAutostart(getenv func(string) string, home string) xdgAutostart {
	x := xdgAutostart{configHome: getenv("XDG_CONFIG_HOME")}
	if !filepath.IsAbs(x.configHome) {
		x.configHome = filepath.Join(home, ".config")
	}
	for _, d := range filepath.SplitList(getenv("XDG_CONFIG_DIRS")) {
		if filepath.IsAbs(d) {
			x.configDirs = append(x.configDirs, d)
		}
	}
	if len(x.configDirs) == 0 {
		x.configDirs = []string{"/etc/xdg"}
	}
	return x
}

func (x xdgAutostart) path() string {
	return filepath.Join(x.configHome, "autostart", desktopFileName)
}

// Enabled reads the user's entry, else the first system-wide one. An entry
// with Hidden=true or X-GNOME-Autostart-enabled=false is off.
func (x xdgAutostart) Enabled() (bool, error) {
	for _, p := range append([]string{x.path()}, x.systemPaths()...) {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("reading the start-at-login entry %s: %w", p, err)
		}
		return desktopEntryEnabled(data), nil
	}
	return false, nil
}

func (x xdgAutostart) systemPaths() []string {
	var ps []string
	for _, d := range x.configDirs {
		ps = append(ps, filepath.Join(d, "autostart", desktopFileName))
	}
	return ps
}

// Enable writes the user's entry (it also overrides a hidden system entry).
func (x xdgAutostart) Enable(cmd loginCommand) error {
	entry, err := desktopEntry(cmd)
	if err != nil {
		return err
	}
	if err := writeEntry(x.path(), []byte(entry)); err != nil {
		return fmt.Errorf("writing the start-at-login entry %s: %w", x.path(), err)
	}
	return nil
}

// Disable removes the user's entry, or hides a system-wide one (which only
// an entry of the same name in the user's directory can do).
func (x xdgAutostart) Disable() error {
	for _, p := range x.systemPaths() {
		if _, err := os.Stat(p); err == nil {
			hidden := "[Desktop Entry]\nType=Application\nName=ccmux\nHidden=true\n"
			if err := writeEntry(x.path(), []byte(hidden)); err != nil {
				return fmt.Errorf("writing the start-at-login entry %s: %w", x.path(), err)
			}
			return nil
		}
	}
	if err := os.Remove(x.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the start-at-login entry %s: %w", x.path(), err)
	}
	return nil
}

// desktopEntry is the XDG autostart file that runs cmd.
func desktopEntry(cmd loginCommand) (string, error) {
	if err := cmd.check(); err != nil {
		return "", err
	}
	var exec []string
	for _, arg := range cmd.args() {
		exec = append(exec, desktopExecArg(arg))
	}
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=ccmux\n" +
		"Comment=Claude sign-in and local proxy for Claude Code\n" +
		"Exec=" + strings.Join(exec, " ") + "\n" +
		"Icon=ccmux\n" +
		"Terminal=false\n" +
		"X-GNOME-Autostart-enabled=true\n", nil
}

// desktopExecArg quotes one Exec argument per the Desktop Entry spec: inside
// double quotes, `"`, "`", `$` and `\` take a backslash; the Exec value is
// itself a string, whose `\` is written `\\`; and `%` is a field code, so a
// literal one is `%%`.
func desktopExecArg(arg string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range arg {
		switch r {
		case '"', '`', '$':
			b.WriteString(`\\`)
			b.WriteRune(r)
		case '\\':
			b.WriteString(`\\\\`)
		case '%':
			b.WriteString("%%")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// desktopEntryEnabled reads the [Desktop Entry] group's switches.
func desktopEntryEnabled(data []byte) bool {
	group := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			group = line
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || group != "[Desktop Entry]" {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case key == "Hidden" && value == "true":
			return false
		case key == "X-GNOME-Autostart-enabled" && value == "false":
			return false
		}
	}
	return true
}

// ---- macOS ----

// launchAgentLabel names the LaunchAgent (and its file, LABEL.plist).
const launchAgentLabel = "io.ccmux.tray"

// launchAgent is ~/Library/LaunchAgents/io.ccmux.tray.plist.
type launchAgent struct{ dir string }

func (l launchAgent) path() string { return filepath.Join(l.dir, launchAgentLabel+".plist") }

// Enabled reports whether the plist is there; launchd loads it at login.
func (l launchAgent) Enabled() (bool, error) {
	_, err := os.Stat(l.path())
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the start-at-login entry %s: %w", l.path(), err)
	}
	return true, nil
}

func (l launchAgent) Enable(cmd loginCommand) error {
	plist, err := launchAgentPlist(launchAgentLabel, cmd)
	if err != nil {
		return err
	}
	if err := writeEntry(l.path(), []byte(plist)); err != nil {
		return fmt.Errorf("writing the start-at-login entry %s: %w", l.path(), err)
	}
	return nil
}

func (l launchAgent) Disable() error {
	if err := os.Remove(l.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the start-at-login entry %s: %w", l.path(), err)
	}
	return nil
}

// launchAgentPlist is a LaunchAgent that runs cmd at login (RunAtLoad).
// ProgramArguments is an argv: no shell reads it, so only XML escaping applies.
func launchAgentPlist(label string, cmd loginCommand) (string, error) {
	if err := cmd.check(); err != nil {
		return "", err
	}
	var args strings.Builder
	for _, arg := range cmd.args() {
		args.WriteString("\t\t<string>" + xmlText(arg) + "</string>\n")
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + xmlText(label) + `</string>
	<key>ProgramArguments</key>
	<array>
` + args.String() + `	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>ProcessType</key>
	<string>Interactive</string>
</dict>
</plist>
`, nil
}

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ---- Windows ----

// runValueName is the value under HKCU\Software\Microsoft\Windows\CurrentVersion\Run.
const runValueName = "ccmux"

// runCommand is the Run value's command line: each path in double quotes,
// so one with spaces (C:\Program Files\…) is one argument. Inside quotes
// only a `"` and the backslashes before one are special to Windows' argument
// parsing; a path cannot end in a backslash, and Windows forbids `"` in file
// names, so a path with one is refused rather than escaped.
func runCommand(cmd loginCommand) (string, error) {
	if err := cmd.check(); err != nil {
		return "", err
	}
	if strings.Contains(cmd.exe, `"`) {
		return "", fmt.Errorf("the path of the ccmux binary %q contains a double quote", cmd.exe)
	}
	if strings.Contains(cmd.config, `"`) {
		return "", fmt.Errorf("the path of the config file %q contains a double quote", cmd.config)
	}
	line := `"` + cmd.exe + `"`
	if cmd.config != "" {
		line += ` --config "` + cmd.config + `"`
	}
	return line, nil
}
