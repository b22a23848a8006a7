package tray

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// makeFile creates an empty file at path, with its directories.
func makeFile(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	return link
}

// A binary in Go's build cache or the OS temp dir is gone by the next login
// (or the next `go clean -cache`): start at login refuses it, naming it and
// saying to build or install first, whichever way a symlink points.
func TestTemporaryDirsRefuseTheirBinaries(t *testing.T) {
	root := t.TempDir()
	cache := filepath.Join(root, "cache", "go-build-cache")
	temp := filepath.Join(root, "var", "folders", "T")
	os.MkdirAll(cache, 0o755)
	os.MkdirAll(temp, 0o755)
	linkedTemp := symlink(t, temp, filepath.Join(root, "tmp-link"))
	linkedCache := symlink(t, cache, filepath.Join(root, "cache-link"))
	installed := makeFile(t, filepath.Join(root, "home", "bin", "ccmux"))
	symlink(t, installed, filepath.Join(temp, "ccmux-link"))

	for _, tt := range []struct {
		name string
		dirs tempDirs
		exe  string
		why  string // "" for accepted
	}{
		{"go run's binary in the build cache", tempDirs{goCache: cache}, makeFile(t, filepath.Join(cache, "3f", "3f2a-d", "ccmux")), "Go's build cache"},
		{"build cache reached through a symlink", tempDirs{goCache: linkedCache}, filepath.Join(cache, "ab", "ccmux"), "Go's build cache"},
		{"binary path through a symlinked cache", tempDirs{goCache: cache}, filepath.Join(linkedCache, "ab", "ccmux"), "Go's build cache"},
		{"binary in the temp dir", tempDirs{temp: temp}, makeFile(t, filepath.Join(temp, "ccmux-bin-1", "ccmux")), "temporary directory"},
		{"temp dir given as a symlink", tempDirs{temp: linkedTemp}, filepath.Join(temp, "ccmux-bin-1", "ccmux"), "temporary directory"},
		{"binary path through a symlinked temp dir", tempDirs{temp: temp}, filepath.Join(linkedTemp, "ccmux-bin-1", "ccmux"), "temporary directory"},
		{"binary not built yet in the temp dir", tempDirs{temp: linkedTemp}, filepath.Join(temp, "not", "there", "ccmux"), "temporary directory"},
		{"installed binary", tempDirs{goCache: cache, temp: temp}, installed, ""},
		{"a sibling whose name starts like the temp dir", tempDirs{temp: temp}, filepath.Join(temp+"x", "ccmux"), ""},
		{"a symlink in the temp dir to an installed binary", tempDirs{temp: temp}, filepath.Join(temp, "ccmux-link"), ""},
		{"the temp dir is the root", tempDirs{temp: string(filepath.Separator)}, installed, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.dirs.check(tt.exe)
			switch {
			case tt.why == "" && err != nil:
				t.Errorf("refused %s: %v", tt.exe, err)
			case tt.why == "":
			case err == nil:
				t.Errorf("accepted %s, want a refusal", tt.exe)
			default:
				msg := err.Error()
				for _, want := range []string{tt.exe, tt.why, "go build", "go install"} {
					if !strings.Contains(msg, want) {
						t.Errorf("refusal %q lacks %q", msg, want)
					}
				}
				if regexp.MustCompile(`[.:;] [A-Z]|\n`).MatchString(msg) {
					t.Errorf("refusal %q is more than one sentence", msg)
				}
			}
		})
	}
}

// `go env GOCACHE` without running go: the variable, the `go env -w` file,
// then the user cache dir.
func TestGoCacheDir(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the default cache dir is checked on Linux")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	goEnv := filepath.Join(home, "goenv")
	os.WriteFile(goEnv, []byte("GOPROXY=direct\nGOCACHE=/srv/gocache\n"), 0o644)
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"default", nil, filepath.Join(home, ".cache", "go-build")},
		{"GOCACHE", map[string]string{"GOCACHE": "/var/cache/go"}, "/var/cache/go"},
		{"go env -w", map[string]string{"GOENV": goEnv}, "/srv/gocache"},
		{"GOCACHE over go env -w", map[string]string{"GOENV": goEnv, "GOCACHE": "/var/cache/go"}, "/var/cache/go"},
		{"off", map[string]string{"GOCACHE": "off"}, ""},
		{"relative is ignored by go too", map[string]string{"GOCACHE": "cache"}, ""},
	} {
		got := goCacheDir(func(k string) string { return tt.env[k] })
		if got != tt.want {
			t.Errorf("%s: goCacheDir = %q, want %q", tt.name, got, tt.want)
		}
	}
	// The file `go env -w` writes by default, under the user config dir.
	makeFile(t, filepath.Join(home, ".config", "go", "env"))
	os.WriteFile(filepath.Join(home, ".config", "go", "env"), []byte("GOCACHE=/opt/gocache\n"), 0o644)
	if got := goCacheDir(func(string) string { return "" }); got != "/opt/gocache" {
		t.Errorf("with ~/.config/go/env: goCacheDir = %q, want /opt/gocache", got)
	}
}

// The entry passes --config with an absolute path for any config file but
// the default one, and refuses a binary in the OS temp dir or the build
// cache as this process finds them.
func TestNewLoginCommand(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	temp := t.TempDir()
	t.Setenv("TMPDIR", temp)
	t.Setenv("TMP", temp)
	t.Setenv("TEMP", temp)
	cache := t.TempDir()
	t.Setenv("GOCACHE", cache)
	exe := makeFile(t, filepath.Join(home, "bin", "ccmux"))
	wd, _ := os.Getwd()

	for _, tt := range []struct {
		config string
		want   []string
	}{
		{"", []string{exe}},
		{filepath.Join(home, ".claude-code-mux", "config.toml"), []string{exe}},
		{filepath.Join(home, "My Configs", "work.toml"), []string{exe, "--config", filepath.Join(home, "My Configs", "work.toml")}},
		{"work.toml", []string{exe, "--config", filepath.Join(wd, "work.toml")}},
	} {
		cmd, err := newLoginCommand(exe, tt.config)
		if err != nil {
			t.Errorf("newLoginCommand(%q, %q): %v", exe, tt.config, err)
			continue
		}
		if !slices.Equal(cmd.args(), tt.want) {
			t.Errorf("config %q: entry runs %q, want %q", tt.config, cmd.args(), tt.want)
		}
	}

	// `go run` builds in the temp dir: the refusal names go run.
	_, err := newLoginCommand(filepath.Join(temp, "go-build1/b001/exe/ccmux"), "")
	if err == nil || !strings.Contains(err.Error(), "`go run`") {
		t.Errorf("a go run binary in the temp dir: %v, want a refusal naming go run", err)
	}

	linkedTemp := symlink(t, temp, filepath.Join(t.TempDir(), "tmp"))
	for _, bad := range []string{
		makeFile(t, filepath.Join(temp, "ccmux")),
		filepath.Join(linkedTemp, "ccmux"),
		makeFile(t, filepath.Join(cache, "0a", "ccmux")),
		filepath.Join(home, "go-build2231", "b001", "exe", "ccmux"),
	} {
		if _, err := newLoginCommand(bad, ""); err == nil {
			t.Errorf("newLoginCommand(%q) succeeded, want a refusal", bad)
		}
	}
}

// An entry that passes --config is still ccmux's: the checkbox and
// `ccmux autostart status` show it as on.
func TestAnEntryWithTheConfigFlagIsOurs(t *testing.T) {
	cmd := loginCommand{exe: "/opt/ccmux/bin/ccmux", config: "/home/ada/My Configs/work.toml"}
	home := t.TempDir()
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(home, "cfg"), "XDG_CONFIG_DIRS": filepath.Join(home, "etc-xdg")}
	x := newXDGAutostart(func(k string) string { return env[k] }, home)
	l := launchAgent{dir: filepath.Join(home, "Library", "LaunchAgents")}
	for name, entry := range map[string]autostarter{"xdg": x, "launch agent": l} {
		if err := entry.Enable(cmd); err != nil {
			t.Fatal(err)
		}
		if on, err := entry.Enabled(); !on || err != nil {
			t.Errorf("%s: an entry with --config reads as on=%v (%v)", name, on, err)
		}
	}
	data, err := os.ReadFile(x.path())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `Exec="/opt/ccmux/bin/ccmux" "--config" "/home/ada/My Configs/work.toml"`) {
		t.Errorf("the desktop entry does not pass the config:\n%s", data)
	}
}
