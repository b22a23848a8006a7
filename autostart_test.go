package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ccmux/internal/testsupport"
)

// autostartHome is a home directory for `ccmux autostart`, and the
// environment of a ccmux run there whose temp dir is not where the test
// binary was built.
func autostartHome(t *testing.T) (home string, env []string) {
	home = t.TempDir()
	return home, []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CONFIG_DIRS=" + filepath.Join(home, "etc-xdg"),
		"TMPDIR=" + t.TempDir(),
	}
}

// `ccmux autostart on` writes an entry that runs this binary, with --config
// and the absolute path when the config file is not the default one.
func TestCLIAutostartOnRecordsTheConfig(t *testing.T) {
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		t.Skip("the XDG entry is checked on Linux")
	}
	bin := testsupport.Binary(t)
	home, env := autostartHome(t)
	entry := filepath.Join(home, ".config", "autostart", "ccmux.desktop")
	custom := filepath.Join(home, "My Configs", "work.toml")
	os.MkdirAll(filepath.Dir(custom), 0o700)
	writeConfigAt(t, custom)
	defaultFile := filepath.Join(home, ".claude-code-mux", "config.toml")
	os.MkdirAll(filepath.Dir(defaultFile), 0o700)
	writeConfigAt(t, defaultFile)

	for _, tt := range []struct {
		name string
		args []string
		env  []string
		exec string
	}{
		{"default config", []string{"autostart", "on"}, nil, `"` + bin + `"`},
		{"--config after the command", []string{"autostart", "on", "--config", custom}, nil, `"` + bin + `" "--config" "` + custom + `"`},
		{"--config before the command", []string{"--config", custom, "autostart", "on"}, nil, `"` + bin + `" "--config" "` + custom + `"`},
		{"relative --config", []string{"autostart", "on", "--config", "My Configs/work.toml"}, nil, `"` + bin + `" "--config" "` + custom + `"`},
		{"CCMUX_CONFIG", []string{"autostart", "on"}, []string{"CCMUX_CONFIG=" + custom}, `"` + bin + `" "--config" "` + custom + `"`},
		{"--config naming the default file", []string{"autostart", "on", "--config", defaultFile}, nil, `"` + bin + `"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runBinary(t, home, append(env, tt.env...), tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			data, err := os.ReadFile(entry)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "\nExec="+tt.exec+"\n") {
				t.Errorf("entry does not have Exec=%s:\n%s", tt.exec, data)
			}
			if !strings.Contains(r.stdout, "ccmux will start when you log in ("+bin) {
				t.Errorf("stdout = %q", r.stdout)
			}
			if r := runBinary(t, home, env, "autostart", "status"); r.stdout != "Start at login: on\n" {
				t.Errorf("autostart status with the entry = %q (%s)", r.stdout, r.stderr)
			}
		})
	}
	if r := runBinary(t, home, env, "autostart", "off"); r.code != 0 {
		t.Fatalf("autostart off: exit %d: %s", r.code, r.stderr)
	}
	if r := runBinary(t, home, env, "autostart", "status"); r.stdout != "Start at login: off\n" {
		t.Errorf("autostart status after off = %q", r.stdout)
	}
	// A config that would not start is refused now, not at the next login.
	r := runBinary(t, home, env, "autostart", "on", "--config", filepath.Join(home, "missing.toml"))
	if r.code != 1 || !strings.Contains(r.stderr, "missing.toml") {
		t.Errorf("autostart on with a missing config: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Errorf("an entry was written for a missing config: %v", err)
	}
}

// writeConfigAt writes the default config to path.
func writeConfigAt(t *testing.T, path string) {
	t.Helper()
	if err := os.Rename(writeConfig(t, t.TempDir(), 13457, ""), path); err != nil {
		t.Fatal(err)
	}
}

// The built binary refuses to start at login from Go's build cache, a
// `go run` folder or the OS temp dir (also through a symlink), in one line
// that names it and says to build or install first; no entry is written.
func TestCLIAutostartRefusesTemporaryBinaries(t *testing.T) {
	bin := testsupport.Binary(t)
	buildDir := filepath.Dir(bin)
	linkedTemp := filepath.Join(t.TempDir(), "tmp")
	if err := os.Symlink(os.TempDir(), linkedTemp); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	home, env := autostartHome(t)
	goRun := filepath.Join(home, "go-build2231", "b001", "exe", "ccmux")
	os.MkdirAll(filepath.Dir(goRun), 0o755)
	if err := os.Link(bin, goRun); err != nil {
		t.Skipf("no hard links here: %v", err)
	}

	for _, tt := range []struct {
		name string
		exe  string // the binary to run
		env  []string
		why  string
	}{
		{"built in the OS temp dir", bin, []string{"TMPDIR=" + os.TempDir()}, "temporary directory"},
		{"temp dir through a symlink", bin, []string{"TMPDIR=" + linkedTemp}, "temporary directory"},
		{"inside GOCACHE", bin, []string{"GOCACHE=" + buildDir}, "Go's build cache"},
		{"a go run folder", goRun, nil, "`go run` build"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.exe, "autostart", "on")
			cmd.Dir, cmd.Env = home, append(append([]string{}, env...), tt.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("autostart on: %v, want exit status 1\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 {
				t.Errorf("stderr is not one line:\n%s", msg)
			}
			for _, want := range []string{tt.exe, tt.why, "go build", "go install"} {
				if !strings.Contains(msg, want) {
					t.Errorf("refusal %q lacks %q", msg, want)
				}
			}
			if _, err := os.Stat(filepath.Join(home, ".config", "autostart", "ccmux.desktop")); !os.IsNotExist(err) {
				t.Errorf("an entry was written: %v", err)
			}
		})
	}
}
