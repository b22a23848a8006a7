//go:build unix

package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// A usage snapshot that is not a file (a named pipe, a symbolic link to
// /dev/zero) is logged and ignored: `ccmux start` still listens. Before, a
// pipe kept it from ever listening and /dev/zero grew it past 1.5 GB.
func TestCLIStartIgnoresABadUsageSnapshot(t *testing.T) {
	for _, tt := range []struct {
		name string
		make func(path string) error
		says string
	}{
		{"fifo", func(p string) error { return testsupport.Mkfifo(p, 0o600) }, "a named pipe (FIFO), not a regular file"},
		{"symlink to /dev/zero", func(p string) error { return os.Symlink("/dev/zero", p) }, "a device, not a regular file"},
		{"huge", func(p string) error { return os.WriteFile(p, make([]byte, 2<<20), 0o600) }, "over the 1048576 this file may have"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			dir := filepath.Join(home, ".claude-code-mux")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := tt.make(filepath.Join(dir, "ccmux_usage.json")); err != nil {
				t.Fatal(err)
			}
			port := testsupport.FreePort(t)
			cfg := writeConfigIn(t, dir, "config.toml", port)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, testsupport.Binary(t), "--config", cfg, "start")
			out := &testsupport.Buffer{}
			cmd.Env = append(os.Environ(), "HOME="+home, "CCMUX_CONFIG=")
			cmd.Stdout, cmd.Stderr, cmd.WaitDelay = out, out, 5*time.Second
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				cmd.Process.Signal(syscall.SIGTERM)
				<-exited
			}()
			testsupport.Eventually(t, "ccmux start to answer /health", 10*time.Second, func() bool {
				resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/health")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
			testsupport.Eventually(t, "the snapshot's problem logged", 5*time.Second, func() bool {
				return strings.Contains(out.String(), tt.says)
			})
		})
	}
}
