package tray

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// trickyPaths are binary locations whose characters each quoting layer must survive.
var trickyPaths = []string{
	"/usr/local/bin/ccmux",
	"/home/ada/My Apps/ccmux",
	`/home/ada/"quoted"/ccmux`,
	"/home/ada/$HOME/`cmd`/ccmux",
	`/home/ada/back\slash/ccmux`,
	"/home/ada/100%/ccmux",
	"/home/ada/a&b<c>'d'/ccmux",
	"/home/ada/Über ünïcode/ccmux",
}

// execArgs splits a desktop entry's Exec value the way a launcher does
// (Desktop Entry spec, "Value types" then "The Exec key").
func execArgs(t *testing.T, value string) []string {
	t.Helper()
	// 1. The value is a string: \s \n \t \r \\ are escapes.
	var s strings.Builder
	for i := 0; i < len(value); i++ {
		if value[i] == '\\' && i+1 < len(value) {
			i++
			switch value[i] {
			case 's':
				s.WriteByte(' ')
			case 'n':
				s.WriteByte('\n')
			case 't':
				s.WriteByte('\t')
			case 'r':
				s.WriteByte('\r')
			case '\\':
				s.WriteByte('\\')
			default:
				t.Fatalf("Exec %q: invalid string escape \\%c", value, value[i])
			}
			continue
		}
		s.WriteByte(value[i])
	}
	// 2. Split into arguments; inside "…", a backslash quotes the next of " ` $ \.
	var args []string
	var cur strings.Builder
	in := s.String()
	quoted, have := false, false
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case quoted && c == '\\':
			i++
			if i == len(in) || !strings.ContainsRune("\"`$\\", rune(in[i])) {
				t.Fatalf("Exec %q: backslash before %q inside quotes", value, in[i:])
			}
			cur.WriteByte(in[i])
		case c == '"':
			quoted, have = !quoted, true
		case !quoted && c == ' ':
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		case !quoted && strings.ContainsRune("\t\n'\\><~|&;$*?#()`", rune(c)):
			t.Fatalf("Exec %q: reserved character %q outside quotes", value, c)
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if quoted {
		t.Fatalf("Exec %q: unterminated quote", value)
	}
	if have {
		args = append(args, cur.String())
	}
	// 3. Field codes: %% is a literal %; any other % code would be expanded.
	for i, a := range args {
		if strings.Contains(strings.ReplaceAll(a, "%%", ""), "%") {
			t.Fatalf("Exec %q: argument %q has a field code", value, a)
		}
		args[i] = strings.ReplaceAll(a, "%%", "%")
	}
	return args
}

// loginCommands are entries to write: each tricky binary path alone, and
// with a tricky config path.
func loginCommands() []loginCommand {
	var cmds []loginCommand
	for i, exe := range trickyPaths {
		cmds = append(cmds, loginCommand{exe: exe})
		cmds = append(cmds, loginCommand{exe: exe, config: trickyPaths[(i+1)%len(trickyPaths)] + ".toml"})
	}
	return cmds
}

func TestDesktopEntryExecRoundTrips(t *testing.T) {
	for _, cmd := range loginCommands() {
		entry, err := desktopEntry(cmd)
		if err != nil {
			t.Fatalf("desktopEntry(%q): %v", cmd.args(), err)
		}
		if !strings.HasPrefix(entry, "[Desktop Entry]\n") || !strings.Contains(entry, "\nType=Application\n") ||
			!strings.Contains(entry, "\nX-GNOME-Autostart-enabled=true\n") ||
			!strings.Contains(entry, "\nIcon=ccmux\n") { // the icon the packages install; session managers show it
			t.Errorf("entry for %q lacks required keys:\n%s", cmd.args(), entry)
		}
		var execLine string
		for _, line := range strings.Split(entry, "\n") {
			if v, ok := strings.CutPrefix(line, "Exec="); ok {
				execLine = v
			}
		}
		want := []string{cmd.exe}
		if cmd.config != "" {
			want = append(want, "--config", cmd.config)
		}
		if args := execArgs(t, execLine); !slices.Equal(args, want) {
			t.Errorf("Exec=%s runs %q, want %q", execLine, args, want)
		}
	}
}

func TestRefusesTemporaryAndRelativeBinaries(t *testing.T) {
	for _, cmd := range []loginCommand{
		{exe: "/tmp/go-build1234567/b001/exe/ccmux"},
		{exe: `C:\Users\ada\AppData\Local\Temp\go-build987\b001\exe\ccmux.exe`},
		{exe: "ccmux"},
		{exe: "./bin/ccmux"},
		{exe: "/home/ada/bin/cc\nmux"},
		{exe: "/home/ada/bin/ccmux", config: "ccmux.toml"},
		{exe: "/home/ada/bin/ccmux", config: "/home/ada/cc\nmux.toml"},
		{exe: "/home/ada/bin/\xe8/ccmux"},
		{exe: "/home/ada/bin/ccmux", config: "/home/ada/\xe8.toml"},
	} {
		if _, err := desktopEntry(cmd); err == nil {
			t.Errorf("desktopEntry(%q) succeeded, want a refusal", cmd.args())
		}
		if _, err := launchAgentPlist(launchAgentLabel, cmd); err == nil {
			t.Errorf("launchAgentPlist(%q) succeeded, want a refusal", cmd.args())
		}
		if _, err := runCommand(cmd); err == nil {
			t.Errorf("runCommand(%q) succeeded, want a refusal", cmd.args())
		}
	}
	_, err := desktopEntry(loginCommand{exe: "/tmp/go-build1234567/b001/exe/ccmux"})
	if err == nil || !strings.Contains(err.Error(), "go build") || !strings.Contains(err.Error(), "go install") {
		t.Errorf("go-build refusal %q does not say to build or install first", err)
	}
}

func TestLaunchAgentPlist(t *testing.T) {
	for _, cmd := range loginCommands() {
		plist, err := launchAgentPlist(launchAgentLabel, cmd)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Dict struct {
				Keys    []string `xml:"key"`
				Strings []string `xml:"string"`
				Array   struct {
					Strings []string `xml:"string"`
				} `xml:"array"`
				True *struct{} `xml:"true"`
			} `xml:"dict"`
		}
		if err := xml.Unmarshal([]byte(plist), &doc); err != nil {
			t.Fatalf("plist for %q is not XML: %v\n%s", cmd.args(), err, plist)
		}
		d := doc.Dict
		if strings.Join(d.Keys, ",") != "Label,ProgramArguments,RunAtLoad,ProcessType" || d.True == nil {
			t.Errorf("plist keys %v (RunAtLoad true: %v)", d.Keys, d.True != nil)
		}
		if len(d.Strings) == 0 || d.Strings[0] != launchAgentLabel {
			t.Errorf("Label = %v", d.Strings)
		}
		want := []string{cmd.exe}
		if cmd.config != "" {
			want = append(want, "--config", cmd.config)
		}
		if !slices.Equal(d.Array.Strings, want) {
			t.Errorf("ProgramArguments = %q, want %q", d.Array.Strings, want)
		}
	}
}

func TestRunCommandQuotesThePaths(t *testing.T) {
	for _, tt := range []struct {
		cmd  loginCommand
		want string
	}{
		{loginCommand{exe: `C:\Program Files\ccmux\ccmux.exe`}, `"C:\Program Files\ccmux\ccmux.exe"`},
		{loginCommand{exe: `C:\Program Files\ccmux\ccmux.exe`, config: `C:\Users\Ada Lovelace\ccmux & co\config.toml`},
			`"C:\Program Files\ccmux\ccmux.exe" --config "C:\Users\Ada Lovelace\ccmux & co\config.toml"`},
	} {
		got, err := runCommand(tt.cmd)
		if err != nil || got != tt.want {
			t.Errorf("runCommand(%q) = %q, %v; want %q", tt.cmd.args(), got, err, tt.want)
		}
	}
	// Windows forbids " in file names; anything else would end the quoted argument early.
	if _, err := runCommand(loginCommand{exe: `C:\ccmux\ccmux.exe`, config: `C:\a"b\config.toml`}); err == nil {
		t.Error("a config path with a double quote was written")
	}
}

func TestXDGAutostart(t *testing.T) {
	home := t.TempDir()
	sys := filepath.Join(home, "etc-xdg")
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(home, "cfg"), "XDG_CONFIG_DIRS": sys}
	x := newXDGAutostart(func(k string) string { return env[k] }, home)
	file := filepath.Join(home, "cfg", "autostart", "ccmux.desktop")
	enabled := func() bool {
		t.Helper()
		on, err := x.Enabled()
		if err != nil {
			t.Fatal(err)
		}
		return on
	}

	if enabled() {
		t.Fatal("enabled before anything was written")
	}
	if err := x.Enable(loginCommand{exe: "/opt/ccmux/bin/ccmux"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil || !enabled() {
		t.Fatalf("after Enable: file %v, enabled %v", err, enabled())
	}
	if err := x.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) || enabled() {
		t.Fatalf("after Disable: file still there (%v) or enabled", err)
	}
	if err := x.Disable(); err != nil {
		t.Errorf("Disable twice: %v", err)
	}

	// Hidden=true and X-GNOME-Autostart-enabled=false count as off.
	for _, body := range []string{"Hidden=true", "X-GNOME-Autostart-enabled=false"} {
		os.WriteFile(file, []byte("[Desktop Entry]\nType=Application\nExec=/opt/ccmux\n"+body+"\n"), 0o644)
		if enabled() {
			t.Errorf("an entry with %s counts as on", body)
		}
	}
	os.Remove(file)

	// A system-wide entry is on until the user's directory hides it.
	os.MkdirAll(filepath.Join(sys, "autostart"), 0o755)
	os.WriteFile(filepath.Join(sys, "autostart", "ccmux.desktop"), []byte("[Desktop Entry]\nType=Application\nExec=/usr/bin/ccmux\n"), 0o644)
	if !enabled() {
		t.Fatal("a system-wide entry counts as off")
	}
	if err := x.Disable(); err != nil {
		t.Fatal(err)
	}
	if enabled() {
		t.Fatal("Disable did not hide the system-wide entry")
	}
	if err := x.Enable(loginCommand{exe: "/usr/bin/ccmux"}); err != nil || !enabled() {
		t.Fatalf("Enable over a hidden system entry: %v, enabled %v", err, enabled())
	}
}

func TestXDGDefaults(t *testing.T) {
	x := newXDGAutostart(func(string) string { return "" }, "/home/ada")
	if x.path() != "/home/ada/.config/autostart/ccmux.desktop" {
		t.Errorf("default path %q", x.path())
	}
	if len(x.configDirs) != 1 || x.configDirs[0] != "/etc/xdg" {
		t.Errorf("default config dirs %q", x.configDirs)
	}
}

func TestLaunchAgentFiles(t *testing.T) {
	l := launchAgent{dir: filepath.Join(t.TempDir(), "Library", "LaunchAgents")}
	if on, _ := l.Enabled(); on {
		t.Fatal("on before Enable")
	}
	if err := l.Enable(loginCommand{exe: "/Applications/ccmux.app/Contents/MacOS/ccmux", config: "/Users/ada/ccmux.toml"}); err != nil {
		t.Fatal(err)
	}
	if on, _ := l.Enabled(); !on {
		t.Fatal("off after Enable")
	}
	if err := l.Disable(); err != nil {
		t.Fatal(err)
	}
	if on, _ := l.Enabled(); on {
		t.Fatal("on after Disable")
	}
}

// The Exec line survives any path a check lets through, read back as the
// Desktop Entry spec says a launcher reads it.
func FuzzDesktopExecRoundTrip(f *testing.F) {
	for i, p := range trickyPaths {
		f.Add(p, trickyPaths[(i+3)%len(trickyPaths)])
	}
	f.Add("/a b/ccmux", "")
	f.Fuzz(func(t *testing.T, exe, config string) {
		cmd := loginCommand{exe: exe, config: config}
		entry, err := desktopEntry(cmd)
		if err != nil {
			return // refused paths are checked elsewhere
		}
		if strings.Count(entry, "\nExec=") != 1 {
			t.Fatalf("entry has %d Exec lines:\n%s", strings.Count(entry, "\nExec="), entry)
		}
		for _, line := range strings.Split(entry, "\n") {
			if v, ok := strings.CutPrefix(line, "Exec="); ok {
				if got := execArgs(t, v); !slices.Equal(got, cmd.args()) {
					t.Fatalf("Exec=%s runs %q, want %q", v, got, cmd.args())
				}
			}
		}
	})
}
