package tray

import (
	"log/slog"
	"strings"
	"testing"
)

// The tray's log says where the proxy listens, at start and after the
// proxy is turned off and on again.
func TestLogSaysWhereTheProxyListens(t *testing.T) {
	var logged strings.Builder
	h := newHarness(t, nil)
	h.proxy.addr = "127.0.0.1:23456"
	h.log = slog.New(slog.NewTextHandler(&syncWriter{w: &logged}, nil))
	h.run()
	h.waitView("the proxy on", proxyOn)
	h.click(clickProxy)
	h.waitView("the proxy off", func(v view) bool { return !v.ProxyChecked && v.ProxyEnabled })
	h.click(clickProxy)
	h.waitView("the proxy on again", proxyOn)
	h.cancel()
	<-h.done
	h.done <- nil // for the cleanup
	if n := strings.Count(logged.String(), `msg="proxy listening" addr=127.0.0.1:23456`); n != 2 {
		t.Errorf("the log names the listening address %d times, want 2:\n%s", n, logged.String())
	}
}
