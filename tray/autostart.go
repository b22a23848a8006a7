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
)

// AutostartEnabled reports whether ccmux starts at login.
func AutostartEnabled() (bool, error) { return platformAutostart().Enabled() }

// EnableAutostart registers exe (an absolute path) to start at login. It
// refuses a temporary `go run` binary, which is gone by the next login.
func EnableAutostart(exe string) error { return platformAutostart().Enable(exe) }

// DisableAutostart removes the start-at-login entry.
func DisableAutostart() error { return platformAutostart().Disable() }

// checkExecutable says in words why exe cannot be started at login, or nil.
func checkExecutable(exe string) error {
	if !filepath.IsAbs(exe) && !isWindowsAbs(exe) {
		return fmt.Errorf("start at login needs the absolute path of the ccmux binary, got %q", exe)
	}
	for _, part := range strings.FieldsFunc(exe, func(r rune) bool { return r == '/' || r == '\\' }) {
		if strings.HasPrefix(part, "go-build") {
			return fmt.Errorf("%s is a temporary `go run` build that will be gone by your next login: build or install ccmux first (go build -o ~/bin/ccmux . or go install), then run `ccmux autostart on` with that binary", exe)
		}
	}
	// macOS runs a downloaded, unsigned app that was never moved from a
	// read-only random copy (App Translocation), gone after the next reboot.
	if strings.Contains(exe, "/AppTranslocation/") {
		return fmt.Errorf("%s is a temporary copy macOS made because ccmux.app was opened where it was downloaded: move ccmux.app to /Applications, open it from there, then turn on start at login", exe)
	}
	if strings.IndexFunc(exe, unicode.IsControl) >= 0 {
		return fmt.Errorf("the path of the ccmux binary %q contains a control character; move it to a plain path first", exe)
	}
	return nil
}

func isWindowsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// writeFileAtomic replaces name with data so a crash never leaves half a file.
func writeFileAtomic(name string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
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
func (x xdgAutostart) Enable(exe string) error {
	entry, err := desktopEntry(exe)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(x.path(), []byte(entry), 0o644); err != nil {
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
			if err := writeFileAtomic(x.path(), []byte(hidden), 0o644); err != nil {
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

// desktopEntry is the XDG autostart file that runs exe.
func desktopEntry(exe string) (string, error) {
	if err := checkExecutable(exe); err != nil {
		return "", err
	}
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=ccmux\n" +
		"Comment=Claude sign-in and local proxy for Claude Code\n" +
		"Exec=" + desktopExecArg(exe) + "\n" +
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

func (l launchAgent) Enable(exe string) error {
	plist, err := launchAgentPlist(launchAgentLabel, exe)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.path(), []byte(plist), 0o644); err != nil {
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

// launchAgentPlist is a LaunchAgent that runs exe at login (RunAtLoad).
func launchAgentPlist(label, exe string) (string, error) {
	if err := checkExecutable(exe); err != nil {
		return "", err
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + xmlText(label) + `</string>
	<key>ProgramArguments</key>
	<array>
		<string>` + xmlText(exe) + `</string>
	</array>
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

// runCommand is the Run value's command line: the quoted path, so a path
// with spaces (C:\Program Files\…) is one argument.
func runCommand(exe string) (string, error) {
	if err := checkExecutable(exe); err != nil {
		return "", err
	}
	if strings.Contains(exe, `"`) {
		return "", fmt.Errorf("the path of the ccmux binary %q contains a double quote", exe)
	}
	return `"` + exe + `"`, nil
}
