package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/internal/history"
	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// loginsAdmin is an OAuthAdmin whose Delete signs the login out.
type loginsAdmin struct {
	fakeAdmin
	mu       sync.Mutex
	accounts []auth.Account
}

func (a *loginsAdmin) Tokens() ([]auth.Account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.accounts), nil
}

func (a *loginsAdmin) Delete(id string) error {
	a.fakeAdmin.Delete(id)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.accounts = slices.DeleteFunc(a.accounts, func(x auth.Account) bool { return x.ProviderID == id })
	return nil
}

func (a *loginsAdmin) signedIn(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.ContainsFunc(a.accounts, func(x auth.Account) bool { return x.ProviderID == id })
}

// dashboardHarness is a proxy with history, a usage tracker and a signed-in
// subscription before an API-key provider, both on fake upstreams.
type dashboardHarness struct {
	*harness
	admin    *loginsAdmin
	sub, key *fakeanthropic.Upstream
	signIns  chan string
}

func startDashboard(t *testing.T) *dashboardHarness {
	t.Setenv("API_KEY", "k")
	d := &dashboardHarness{sub: newUpstream(t), key: newUpstream(t), signIns: make(chan string, 4),
		admin: &loginsAdmin{accounts: []auth.Account{{ProviderID: "anthropic-max", Email: "ada@example.com", ExpiresAt: time.Now().Add(8 * time.Hour)}}}}
	// A home of its own, so that the files are where ccmux keeps them
	// (~/.claude-code-mux), as the screenshot shows.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	dir := filepath.Join(home, ".claude-code-mux")
	store, err := history.Open(filepath.Join(dir, history.FileName), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := mustConfig(t, subscriptionThenKey(d.sub.URL, d.key.URL))
	cfg.Path = filepath.Join(dir, "config.toml")
	d.harness = startProxy(t, cfg, func(s *Server) {
		s.Admin, s.History, s.Usage = d.admin, store, NewUsageTracker(nil, nil)
		s.Dashboard = &Dashboard{SignIn: func(id string) error { d.signIns <- id; return nil }}
	})
	d.tokens.set("anthropic-max", "sub-token")
	return d
}

// usageHeaders are the fake subscription's answers' rate-limit headers:
// 42 % of the 5-hour window, 17 % of the weekly one.
func usageHeaders() http.Header {
	now := time.Now()
	return fakeanthropic.Unified("allowed", now.Add(3*time.Hour),
		fakeanthropic.Window{Name: "5h", Utilization: 0.42, Reset: now.Add(3 * time.Hour), Status: "allowed"},
		fakeanthropic.Window{Name: "7d", Utilization: 0.17, Reset: now.Add(4 * 24 * time.Hour), Status: "allowed"})
}

// send makes three requests: opus streamed, sonnet, and haiku failing over
// from the subscription (529) to the API key.
func (d *dashboardHarness) send(t *testing.T) {
	d.sub.SetBehavior(fakeanthropic.Behavior{Header: usageHeaders()})
	for _, body := range []string{
		`{"model":"claude-opus-4-5","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
	} {
		readAll(t, d.post("/v1/messages", body, nil))
	}
	d.sub.Queue(fakeanthropic.Behavior{Status: 529, Header: usageHeaders()})
	readAll(t, d.post("/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, nil))
	// A request is recorded after its answer went out (fdea3c6): the
	// client can read the whole answer before the record is queued.
	testsupport.Eventually(t, "the third request recorded", 10*time.Second, func() bool {
		d.srv.History.Flush()
		_, body := d.get(t, "/api/requests?limit=10", nil)
		return strings.Contains(body, `"model":"claude-haiku-4-5"`) // the last of the three
	})
}

func (d *dashboardHarness) get(t *testing.T, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, d.base+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAll(t, resp)
}

func TestRequestsAndStatsAPI(t *testing.T) {
	d := startDashboard(t)
	d.send(t)

	_, body := d.get(t, "/api/requests?limit=2", nil)
	var reqs struct{ Requests []map[string]any }
	if err := json.Unmarshal([]byte(body), &reqs); err != nil || len(reqs.Requests) != 2 {
		t.Fatalf("requests: %s (%v)", body, err)
	}
	newest := reqs.Requests[0]
	for _, f := range []string{"id", "time", "model", "provider", "model_sent", "status", "ttfb_ms", "duration_ms", "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "failover"} {
		if _, ok := newest[f]; !ok {
			t.Errorf("requests lack %q: %s", f, body)
		}
	}
	if newest["model"] != "claude-haiku-4-5" || newest["provider"] != "api" || newest["failover"] != "claude-max → api" {
		t.Errorf("newest = %v", newest)
	}
	_, body = d.get(t, "/api/requests?limit=10&before="+jsonNumber(reqs.Requests[1]["id"]), nil)
	if err := json.Unmarshal([]byte(body), &reqs); err != nil || len(reqs.Requests) != 1 || reqs.Requests[0]["model"] != "claude-opus-4-5" {
		t.Errorf("the page before: %s", body)
	}

	_, body = d.get(t, "/api/stats?days=30", nil)
	var stats struct {
		Stats []struct {
			Model      string   `json:"model"`
			Requests   int      `json:"requests"`
			Output     int      `json:"output_tokens"`
			APICostUSD *float64 `json:"api_cost_usd"`
			Price      string   `json:"price"`
		}
		PricesDate string `json:"prices_date"`
	}
	if err := json.Unmarshal([]byte(body), &stats); err != nil || len(stats.Stats) != 3 || stats.PricesDate == "" {
		t.Fatalf("stats: %s (%v)", body, err)
	}
	for _, s := range stats.Stats {
		if s.Requests != 1 || s.APICostUSD == nil || *s.APICostUSD <= 0 || s.Price != "list" {
			t.Errorf("stats row %+v", s)
		}
	}

	for path, want := range map[string]int{
		"/api/requests?limit=0":   400,
		"/api/requests?limit=x":   400,
		"/api/stats?days=-1":      400,
		"/api/usage/history":      200,
		"/api/dashboard":          200,
		"/api/dashboard/whatever": 404,
	} {
		if resp, body := d.get(t, path, nil); resp.StatusCode != want {
			t.Errorf("GET %s: %d %s, want %d", path, resp.StatusCode, body, want)
		}
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestStatsModelWithoutPrice(t *testing.T) {
	t.Setenv("FIRST_KEY", "k1")
	t.Setenv("SECOND_KEY", "k2")
	first, second := newUpstream(t), newUpstream(t)
	cfgText := twoProviders(first.URL, second.URL, "") + "[dashboard.prices.\"model-b\"]\ninput = 1.0\noutput = 2.0\n"
	h := startProxy(t, mustConfig(t, cfgText), func(s *Server) { s.History, s.Admin = openHistory(t), &fakeAdmin{} })
	readAll(t, h.post("/v1/messages", `{"model":"duo","max_tokens":16,"messages":[]}`, nil))
	first.SetBehavior(fakeanthropic.Behavior{Status: 500})
	readAll(t, h.post("/v1/messages", `{"model":"duo","max_tokens":16,"messages":[]}`, nil))
	// Each request is recorded just after its answer went out.
	var body string
	testsupport.Eventually(t, "both requests in the stats", 10*time.Second, func() bool {
		h.srv.History.Flush()
		resp, err := h.client.Get(h.base + "/api/stats")
		if err != nil {
			t.Fatal(err)
		}
		body = readAll(t, resp)
		return strings.Contains(body, `"model":"model-a"`) && strings.Contains(body, `"model":"model-b"`)
	})
	// model-a has no price: null and "no price", never 0; model-b is priced by the config.
	if !strings.Contains(body, `"model":"model-a","requests":1,"input_tokens":25,"output_tokens":6,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"api_cost_usd":null,"price":"no price"`) ||
		!strings.Contains(body, `"model":"model-b","requests":1,"input_tokens":25,"output_tokens":6,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"api_cost_usd":0.000037,"price":"config"`) {
		t.Errorf("stats: %s", body)
	}
}

var csrfMeta = regexp.MustCompile(`<meta name="ccmux-csrf" content="([0-9a-f]{64})">`)

func TestDashboardPageAndActions(t *testing.T) {
	d := startDashboard(t)
	resp, page := d.get(t, "/", map[string]string{"Sec-Fetch-Site": "none"})
	h := resp.Header
	if resp.StatusCode != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, h.Get("Content-Type"))
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers: %v", h)
	}
	m := csrfMeta.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page")
	}
	if strings.Contains(page, "<script>") || regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Errorf("the page has inline script")
	}
	if resp, _ := d.get(t, "/web/uplot/uPlot.iife.min.js", nil); resp.StatusCode != 200 || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("uPlot: %d", resp.StatusCode)
	}
	if resp, _ := d.get(t, "/web/../web.go", nil); resp.StatusCode != 404 {
		t.Errorf("a path out of web/: %d", resp.StatusCode)
	}

	// Another page of this machine (another port: same-site, not
	// same-origin) reads nothing, even a page that asks for it.
	for _, path := range []string{"/", "/api/dashboard"} {
		for _, site := range []string{"same-site", "cross-site"} {
			if resp, body := d.get(t, path, map[string]string{"Sec-Fetch-Site": site, "Origin": "http://127.0.0.1:1"}); resp.StatusCode != 403 || strings.Contains(body, m[1]) {
				t.Errorf("GET %s from a %s page: %d", path, site, resp.StatusCode)
			}
		}
	}

	post := func(path, token string, header map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, d.base+path, strings.NewReader(`{"provider_id":"anthropic-max"}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set(csrfHeader, token)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		token  string
		header map[string]string
	}{
		{"", nil},                      // no token
		{strings.Repeat("0", 64), nil}, // a wrong one
		{m[1], map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}},
	} {
		if status := post("/api/dashboard/signout", c.token, c.header); status != 403 || !d.admin.signedIn("anthropic-max") {
			t.Errorf("sign out with token %q, %v: %d", c.token, c.header, status)
		}
	}
	if status := post("/api/dashboard/signin", m[1], map[string]string{"Sec-Fetch-Site": "same-origin"}); status != 202 || <-d.signIns != "anthropic-max" {
		t.Errorf("sign in: %d", status)
	}
	if status := post("/api/dashboard/signout", m[1], map[string]string{"Sec-Fetch-Site": "same-origin"}); status != 200 || d.admin.signedIn("anthropic-max") {
		t.Errorf("sign out: %d", status)
	}
}

// With server.api_key set, the dashboard's session stands in for the key;
// without either, the history is closed.
func TestDashboardWithServerKey(t *testing.T) {
	t.Setenv("CCMUX_KEY", "s3cret")
	up := newUpstream(t)
	h := startProxy(t, mustConfig(t, "[server]\napi_key = \"$CCMUX_KEY\"\n"+subscriptionTOML(0, up.URL)), func(s *Server) { s.Admin, s.History = &fakeAdmin{}, openHistory(t) })
	get := func(path string, header map[string]string) int {
		req, _ := http.NewRequest(http.MethodGet, h.base+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		return resp.StatusCode
	}
	if got := get("/api/requests", nil); got != 401 {
		t.Errorf("without key or token: %d", got)
	}
	if got := get("/api/requests", map[string]string{csrfHeader: strings.Repeat("0", 64)}); got != 401 {
		t.Errorf("with a wrong token: %d", got)
	}
	// Any local program can read the page's token: alone it opens nothing;
	// the session from a one-time code does (dashsession_test.go).
	if got := get("/api/requests", map[string]string{csrfHeader: csrf()}); got != 401 {
		t.Errorf("with only the page's token: %d", got)
	}
	_, session := openCode(t, h, h.srv.DashboardCode())
	if got := get("/api/requests", map[string]string{"Cookie": session.Name + "=" + session.Value}); got != 200 {
		t.Errorf("with the dashboard's session: %d", got)
	}
	if got := get("/api/requests", map[string]string{"x-api-key": "s3cret"}); got != 200 {
		t.Errorf("with the key: %d", got)
	}
}
