package tray

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"ccmux/auth"
)

// fakeReloader answers each Reload with the next of its results, moving
// the fake proxy to addr when one succeeds with it set.
type fakeReloader struct {
	proxy   *fakeProxy
	results chan reloadResult
}

type reloadResult struct {
	changed, addr string
	err           error
}

func (r *fakeReloader) Reload(context.Context) (string, error) {
	res := <-r.results
	if res.err == nil && res.addr != "" {
		r.proxy.mu.Lock()
		r.proxy.addr = res.addr
		r.proxy.mu.Unlock()
	}
	return res.changed, res.err
}

func startWithReloader(t *testing.T) (*harness, *fakeReloader) {
	t.Helper()
	h := newHarness(t, nil)
	h.reloads = make(chan struct{})
	r := &fakeReloader{proxy: h.proxy, results: make(chan reloadResult, 1)}
	h.reload = r
	return h.run(), r
}

// Reload config: an invalid file is told with the first line of what
// `ccmux config check` prints; a valid one that moves the proxy changes the
// "Proxy on" line. SIGHUP (Options.Reloads) does the same as the click.
func TestReloadConfig(t *testing.T) {
	h, r := startWithReloader(t)
	h.waitView("the proxy on, Reload config enabled", func(v view) bool { return proxyOn(v) && v.ReloadEnabled })

	checkErr := "/home/ada/.claude-code-mux/config.toml: line 3: server.port: want an integer, got a string\n/home/ada/.claude-code-mux/config.toml: line 9: providers[0].models: want an array, got a string"
	r.results <- reloadResult{err: errors.New(checkErr)}
	h.click(clickReload)
	n := h.waitNote("Config not reloaded")
	if want, _, _ := strings.Cut(checkErr, "\n"); n.message != want {
		t.Errorf("notification text %q, want the first line of the config check error %q", n.message, want)
	}
	h.waitView("Reload config enabled again", func(v view) bool { return v.ReloadEnabled && v.Proxy == "Proxy on 127.0.0.1:13456" })

	r.results <- reloadResult{changed: "2 providers; the proxy moved to 127.0.0.1:14000", addr: "127.0.0.1:14000"}
	h.reloads <- struct{}{} // SIGHUP
	n = h.waitNote("Config reloaded")
	if n.message != "2 providers; the proxy moved to 127.0.0.1:14000." {
		t.Errorf("notification text %q", n.message)
	}
	h.waitView("the new address", func(v view) bool { return v.Proxy == "Proxy on 127.0.0.1:14000" && v.ReloadEnabled })
}

// A reload may name another login (oauth_provider changed): the tray shows
// that login, or "Not signed in" when it has none.
func TestReloadFollowsTheConfiguredLogin(t *testing.T) {
	h, r := startWithReloader(t)
	h.waitView("signed out", func(v view) bool { return v.Status == "Not signed in" && v.ReloadEnabled })

	h.auth.set([]string{"anthropic-team"}, "anthropic-team", map[string]auth.Account{
		"anthropic-team": {ProviderID: "anthropic-team", Email: "team@example.com", ExpiresAt: time.Now().Add(8 * time.Hour)}})
	r.results <- reloadResult{changed: "1 provider"}
	h.click(clickReload)
	h.waitNote("Config reloaded")
	h.waitView("the new login", func(v view) bool {
		return strings.HasPrefix(v.Status, "Signed in as team@example.com") && v.SignIn == labelSignOut && v.ReloadEnabled
	})

	h.auth.set([]string{"anthropic-team"}, "anthropic-team", nil)
	r.results <- reloadResult{changed: "1 provider"}
	h.click(clickReload)
	h.waitNote("Config reloaded")
	h.waitView("signed out again", func(v view) bool { return v.Status == "Not signed in" && v.SignIn == labelSignIn && v.ReloadEnabled })
	h.noMoreNotes()
}

// A long first line is cut to its first sentence.
func TestFirstLine(t *testing.T) {
	long := "config file /x/config.toml is not a regular file. " + strings.Repeat("more words ", 40)
	if got := firstLine(long); got != "config file /x/config.toml is not a regular file." {
		t.Errorf("firstLine = %q", got)
	}
	if got := firstLine("one\ntwo"); got != "one" {
		t.Errorf("firstLine = %q", got)
	}
}
