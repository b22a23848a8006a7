// Package testsupport is the one home of what the tests of every ccmux
// package share: the real ccmux binary built once per test process, a
// goroutine-safe buffer, a free port, polling with a deadline, a stub
// browser. Only tests import it; it imports no ccmux package, so any may.
package testsupport

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	// startEnv is the environment before any test's t.Setenv: a test that
	// moved HOME must not send the go command to an empty build and
	// module cache there.
	startEnv = os.Environ()

	once sync.Once
	dir  string // holds the binary; "" until built
	path string
	err  error
)

// Binary builds the ccmux command once per test process and returns its path.
// A build failure fails the test with the compiler's output. The binary is in
// the OS temp dir, where start at login rightly refuses a binary: a test that
// turns start at login on runs it with TMPDIR set to another directory.
func Binary(tb testing.TB) string {
	tb.Helper()
	once.Do(build)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

func build() {
	goEnv := exec.Command("go", "env", "GOMOD")
	goEnv.Env = startEnv
	mod, e := goEnv.Output()
	if e != nil {
		err = fmt.Errorf("go env GOMOD: %w", e)
		return
	}
	if dir, err = os.MkdirTemp("", "ccmux-bin-"); err != nil {
		return
	}
	path = filepath.Join(dir, "ccmux")
	cmd := exec.Command("go", "build", "-o", path, "ccmux")
	cmd.Dir, cmd.Env = filepath.Dir(strings.TrimSpace(string(mod))), startEnv
	if out, e := cmd.CombinedOutput(); e != nil {
		err = fmt.Errorf("go build: %v\n%s", e, out)
	}
}

// Cleanup removes the built binary; call it from TestMain after m.Run, when
// no test is using it any more.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
