package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// In Chromium, with server.api_key set: the address alone shows the locked
// page; the tray's one-time link opens the dashboard and leaves the
// address bar as /; the link works once; a page on another loopback port
// still reads and changes nothing, though the browser now holds a session.
func TestDashboardKeyInBrowser(t *testing.T) {
	ctx := browser(t)
	h := startKeyedDashboard(t)

	if err := within(ctx, chromedp.Navigate(h.base+"/")); err != nil {
		t.Fatal(err)
	}
	locked, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(locked, "ccmux dashboard") || strings.Contains(locked, csrf()) || strings.Contains(locked, "ccmux-csrf") {
		t.Errorf("the address alone: %q, want the locked page without the token", locked)
	}

	code := h.srv.DashboardCode()
	if err := within(ctx, chromedp.Navigate(h.base+"/?code="+code), chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="1"]`))); err != nil {
		t.Fatalf("opening the one-time link: %v", err)
	}
	where, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " cookie=" + document.cookie`))
	if where != h.base+"/ cookie=" {
		t.Errorf("after the link: %q, want %s/ and no script-readable cookie", where, h.base)
	}
	msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("action-message").textContent`))
	if msg != "" {
		t.Errorf("the page says %q", msg)
	}

	otherOriginBlocked(t, ctx, h.base)

	// The link a second time (another browser profile would have no
	// session): the server refuses the code.
	if resp, c := openCode(t, h, code); resp.StatusCode != http.StatusForbidden || c != nil {
		t.Errorf("the link's second use: %d, cookie %v", resp.StatusCode, c != nil)
	}
}
