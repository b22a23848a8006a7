package testsupport

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// browserEnv marks a process the stub browser's xdg-open started.
const browserEnv = "CCMUX_TEST_STUB_BROWSER"

// StubBrowser puts an xdg-open in dir that follows the URL it is given, as
// a browser whose user clicks "Authorize" would, and returns the
// environment that puts it first on PATH. The xdg-open is the test binary
// itself, so its TestMain must call ActAsBrowser first. (pkg/browser runs
// xdg-open on Linux only.)
func StubBrowser(tb testing.TB, dir string) []string {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "xdg-open")); err != nil && !os.IsExist(err) {
		tb.Fatal(err)
	}
	return []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"), browserEnv + "=1"}
}

// ActAsBrowser, called first in TestMain, makes a test binary that
// StubBrowser's xdg-open started follow its URL and exit.
func ActAsBrowser() {
	if os.Getenv(browserEnv) != "1" || filepath.Base(os.Args[0]) != "xdg-open" {
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "stub xdg-open: want one URL")
		os.Exit(2)
	}
	if _, _, err := Follow(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "stub xdg-open:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Follow GETs u, following redirects as a browser does, and returns the
// final status and body.
func Follow(u string) (int, string, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
