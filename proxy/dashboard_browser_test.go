package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ccmux/internal/history"
	"ccmux/internal/testsupport"
)

// browser starts headless Chromium (Debian's chromium) for the test. In CI
// (CI=true) a missing browser fails the test; elsewhere it skips.
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed: the dashboard tests need it in CI (apt-get install chromium)")
		}
		t.Skip("chromium is not installed; skipping the dashboard's browser tests (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// The first run starts the browser and must not have a deadline (it
	// would stop the browser); the test's steps get one.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	return ctx
}

// within runs steps with a deadline (the browser's own context has none:
// it would stop the browser).
func within(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// openDashboard loads the page and waits for its first data.
func openDashboard(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	if err := within(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="1"]`))); err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
}

func TestDashboardInBrowser(t *testing.T) {
	ctx := browser(t)
	d := startDashboard(t)
	d.send(t)
	d.srv.RecordUsage("anthropic-max")
	d.srv.History.Flush()
	openDashboard(t, ctx, d.base)

	// The three requests, newest first, with their models and tokens.
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll("#requests tbody tr")].map(tr =>
		[tr.querySelector(".model").textContent, tr.children[2].textContent, tr.children[3].textContent, tr.querySelector(".input").textContent, tr.querySelector(".output").textContent])`))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"claude-haiku-4-5", "api", "claude-haiku-4-5", "25", "6"},
		{"claude-sonnet-4-5", "claude-max", "claude-sonnet-4-5", "25", "6"},
		{"claude-opus-4-5", "claude-max", "claude-opus-4-5", "25", "6"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("requests on the page = %q, want %q", rows, want)
	}

	// The usage bars show the fake subscription's numbers.
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll('.login[data-provider="claude-max"] .window')].map(w =>
		[w.dataset.window, w.querySelector(".pct").textContent + " " + w.querySelector(".fill").style.width]))`))
	if err != nil {
		t.Fatal(err)
	}
	if bars["five_hour"] != "42% 42%" || bars["seven_day"] != "17% 17%" {
		t.Errorf("usage bars = %v, want five_hour 42%%, seven_day 17%%", bars)
	}
	charts, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#usage-charts .uplot").length`))
	if charts != 1 {
		t.Errorf("%d usage charts, want 1 (uPlot)", charts)
	}

	// A page from another origin (another loopback port) can neither read
	// nor change anything.
	otherOriginBlocked(t, ctx, d.base)
	d.admin.fakeAdmin.mu.Lock()
	calls := slices.Clone(d.admin.calls)
	d.admin.fakeAdmin.mu.Unlock()
	if !d.admin.signedIn("anthropic-max") || slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "delete") }) {
		t.Errorf("another origin's page signed out: %v", calls)
	}

	// Sign out signs out, and the card then offers Sign in.
	openDashboard(t, ctx, d.base)
	if err := within(ctx, chromedp.Click(chromedp.CSS(`button.signout[data-login="anthropic-max"]`))); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(wait, chromedp.WaitVisible(chromedp.CSS(`button.signin[data-login="anthropic-max"]`))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("logins").outerHTML + document.getElementById("action-message").outerHTML`))
		t.Fatalf("after Sign out (signed in: %v): %v\n%s", d.admin.signedIn("anthropic-max"), err, html)
	}
	if d.admin.signedIn("anthropic-max") {
		t.Error("Sign out left the login signed in")
	}
}

// otherOriginBlocked opens evilPage (served from another loopback port)
// in the browser and checks that each of its reads and changes of the
// dashboard at base was blocked.
func otherOriginBlocked(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, evilPage, base)
	}))
	defer evil.Close()
	if err := within(ctx, chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS(`body[data-done="1"]`))); err != nil {
		t.Fatal(err)
	}
	results, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`window.results`))
	if err != nil {
		t.Fatal(err)
	}
	for what, got := range results {
		if got != "blocked" {
			t.Errorf("another origin's %s: %s", what, got)
		}
	}
	if len(results) < 6 {
		t.Errorf("the other origin's page ran %d checks: %v", len(results), results)
	}
}

// evilPage is another origin's page trying the dashboard's reads and
// actions; each result is "blocked" or what got through.
const evilPage = `<!doctype html><body><script>
const P = %q;
window.results = {};
async function attempt(name, f) {
  try { const r = await f(); window.results[name] = r === undefined ? "blocked" : "got through: " + r; }
  catch (e) { window.results[name] = "blocked"; }
}
(async () => {
  await attempt("read page", async () => (await fetch(P + "/")).text());
  await attempt("read state", async () => (await fetch(P + "/api/dashboard")).text());
  await attempt("read requests", async () => (await fetch(P + "/api/requests")).text());
  await attempt("read stats", async () => (await fetch(P + "/api/stats")).text());
  await attempt("json sign out", async () => (await fetch(P + "/api/dashboard/signout", {method: "POST",
    headers: {"Content-Type": "application/json", "X-Ccmux-Csrf": "guess"}, body: '{"provider_id":"anthropic-max"}'})).status);
  await attempt("simple sign out", async () => { await fetch(P + "/api/dashboard/signout", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: '{"provider_id":"anthropic-max"}'}); });
  await attempt("admin delete", async () => { await fetch(P + "/api/oauth/tokens/delete", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: '{"provider_id":"anthropic-max"}'}); });
  await attempt("frame", () => new Promise((resolve) => {
    const f = document.createElement("iframe");
    f.src = P + "/";
    f.onload = () => { try { resolve(f.contentDocument && f.contentDocument.body ? f.contentDocument.body.innerHTML.length + " bytes" : undefined); } catch (e) { resolve(undefined); } };
    document.body.append(f);
    setTimeout(() => resolve(undefined), 3000);
  }));
  document.body.dataset.done = "1";
})();
</script></body>`

// fillHistory stores n requests over the last days days and a week of
// usage samples.
func fillHistory(t testing.TB, st *history.Store, n, days int) {
	now := time.Now()
	models := []string{"claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "glm-4.6"}
	providers := []string{"claude-max", "claude-max", "claude-max", "zai"}
	step := time.Duration(days) * 24 * time.Hour / time.Duration(n)
	for i := range n {
		m := i % len(models)
		if i%7 == 3 {
			m = 1
		}
		r := history.Request{Time: now.Add(-time.Duration(n-i) * step), Model: models[m], Provider: providers[m], ModelSent: models[m],
			Status: 200, TTFB: time.Duration(300+i%900) * time.Millisecond, Duration: time.Duration(2+i%40) * time.Second,
			TokensKnown: true, Input: int64(3 + i%20), Output: int64(80 + i%1500), CacheRead: int64(20000 + i%60000), CacheWrite: int64(i % 4000)}
		if i%50 == 7 {
			r.Failover, r.Provider = "claude-max → api", "api"
		}
		st.Record(r)
		if i%4096 == 4095 {
			st.Flush()
		}
	}
	for h := 7 * 24; h >= 0; h-- {
		at := now.Add(-time.Duration(h) * time.Hour)
		five := float64((7*24-h)%5) * 0.21
		week := float64(7*24-h) / (7 * 24) * 0.63
		st.RecordUsage(history.UsageSample{Time: at, Login: "anthropic-max", Window: "five_hour", Utilization: min(five, 1), ResetsAt: at.Add(3 * time.Hour)})
		st.RecordUsage(history.UsageSample{Time: at, Login: "anthropic-max", Window: "seven_day", Utilization: week, ResetsAt: now.Add(24 * time.Hour)})
	}
	st.Flush()
}

// TestDashboardFirstPaint loads the page over 100,000 stored requests: its
// first paint must come within 300 ms. With CCMUX_SCREENSHOT=1 it also
// writes assets/screenshots/dashboard.png.
func TestDashboardFirstPaint(t *testing.T) {
	if testsupport.Race {
		t.Skip("times the page over 100,000 stored requests: meaningless with -race (run go test ./proxy -run TestDashboardFirstPaint)")
	}
	ctx := browser(t)
	d := startDashboard(t)
	fillHistory(t, d.srv.History, 100_000, 30)
	d.send(t)
	d.srv.RecordUsage("anthropic-max")
	d.srv.History.Flush()

	// The best of five loads: on a busy machine one load can wait for a core.
	best, bestLoaded := time.Hour, time.Hour
	for range 5 {
		start := time.Now()
		openDashboard(t, ctx, d.base)
		loaded := time.Since(start)
		paint, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(performance.getEntriesByName("first-contentful-paint")[0] || performance.getEntriesByName("first-paint")[0] || {startTime: -1}).startTime`))
		if err != nil {
			t.Fatal(err)
		}
		if paint < 0 {
			t.Fatal("the browser reported no paint timing")
		}
		best, bestLoaded = min(best, time.Duration(paint*float64(time.Millisecond))), min(bestLoaded, loaded)
	}
	fmt.Printf("dashboard over 100,000 stored requests: first paint %v, data shown %v\n", best.Round(time.Millisecond), bestLoaded.Round(time.Millisecond))
	if best > 300*time.Millisecond {
		t.Errorf("first paint after %v, want ≤ 300 ms", best)
	}

	if os.Getenv("CCMUX_SCREENSHOT") == "1" {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(1440, 2350)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join("..", "assets", "screenshots", "dashboard.png")
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
}
