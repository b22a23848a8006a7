package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/auth/authtest"
	"ccmux/config"
	"ccmux/internal/testsupport"
	"ccmux/internal/wake"
)

// wakeClock is a wake.Clock the test moves by hand, each clock on its own.
type wakeClock struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

func (c *wakeClock) Now() (time.Time, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall, c.mono
}

func (c *wakeClock) advance(wall, mono time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall, c.mono = c.wall.Add(wall), c.mono+mono
}

// wakeAddrs is a local address list the test sets.
type wakeAddrs struct {
	mu sync.Mutex
	ip net.IP
}

func (a *wakeAddrs) set(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ip = net.ParseIP(ip)
}

func (a *wakeAddrs) list() ([]net.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return []net.Addr{&net.IPNet{IP: a.ip, Mask: net.CIDRMask(24, 32)}}, nil
}

// A running service, told by its detector that the machine slept (wall
// clock +1 h, monotonic +1 s), closes its pooled upstream connections (the
// next request dials anew), runs the token refresher's check (a token that
// became due is refreshed without any request) and asks the usage endpoint
// once; a change of the local addresses does the same.
func TestServiceWakesAfterSleepAndNetworkChange(t *testing.T) {
	home := isolateHome(t)
	oauth := authtest.NewServer()
	defer oauth.Close()

	// The upstream counts the connections the proxy opens to it.
	var dials atomic.Int32
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	up.Start()
	defer up.Close()

	port := testsupport.FreePort(t)
	text := strings.Replace(config.DefaultTOML, "port = 13456", fmt.Sprintf("port = %d", port), 1)
	text = strings.Replace(text, `oauth_provider = "anthropic-max"`, fmt.Sprintf("oauth_provider = \"anthropic-max\"\nbase_url = %q", up.URL), 1)
	text += oauth.OAuthTOML("anthropic-max", "claude") + "usage_poll_seconds = 3600\n"
	cfg, err := config.Parse(home+"/config.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tokenPath, err := config.TokenPath()
	if err != nil {
		t.Fatal(err)
	}
	signIn(t, cfg, tokenPath, oauth)

	clock := &wakeClock{wall: time.Now()}
	addrs := &wakeAddrs{}
	addrs.set("192.168.1.20")
	detector := &wake.Detector{Clock: clock, Addrs: addrs.list, Every: time.Hour}
	detector.Check() // the baseline, before the service's own first check
	logs := &testsupport.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the service's log:\n%s", logs)
		}
	})
	e := &env{wake: detector, resumeDelay: func() time.Duration { return 0 }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := e.startService(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.stop()
	if err := svc.proxy.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, "the usage poll at start", 10*time.Second, func() bool { return len(oauth.UsageRequests()) == 1 })

	post := func() {
		t.Helper()
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/messages", port), "application/json",
			strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("proxy answered %d", resp.StatusCode)
		}
	}
	post()
	post()
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d upstream connections for two requests in a row, want 1 (kept alive)", n)
	}

	// The login becomes due while the machine sleeps: its expiry is now
	// 2 minutes away, but the refresher's timer (monotonic) is 55 away.
	setExpiry(t, tokenPath, time.Now().Add(2*time.Minute))
	refreshes := oauth.RefreshCount()

	clock.advance(time.Hour, time.Second)
	detector.Check()
	testsupport.Eventually(t, "the refresher's check after the wake", 10*time.Second, func() bool { return oauth.RefreshCount() == refreshes+1 })
	testsupport.Eventually(t, "one usage poll after the wake", 10*time.Second, func() bool { return len(oauth.UsageRequests()) == 2 })
	post()
	if n := dials.Load(); n != 2 {
		t.Errorf("%d upstream connections after the wake, want 2 (the pooled one closed, a new one dialed)", n)
	}
	if n := len(oauth.UsageRequests()); n != 2 {
		t.Errorf("%d usage polls, want 2 (one at start, one after the wake)", n)
	}
	if !strings.Contains(logs.String(), "the machine slept;") || !strings.Contains(logs.String(), "slept=59m59s") {
		t.Errorf("no log line for the wake:\n%s", logs)
	}

	// Another network: the same.
	addrs.set("10.0.0.7")
	clock.advance(10*time.Second, 10*time.Second)
	detector.Check()
	// At least one: under load a poll of the first wake can still be on
	// its way here; the exact count after one Resume is auth's test
	// (TestResume*), this one is about the wiring.
	testsupport.Eventually(t, "a usage poll after the network change", 30*time.Second, func() bool { return len(oauth.UsageRequests()) >= 3 })
	post()
	if n := dials.Load(); n != 3 {
		t.Errorf("%d upstream connections after the network change, want 3", n)
	}
	if !strings.Contains(logs.String(), "the network changed;") || !strings.Contains(logs.String(), "network_changed=true") {
		t.Errorf("no log line for the network change:\n%s", logs)
	}
	for _, s := range oauth.Secrets() {
		if strings.Contains(logs.String(), s) {
			t.Fatal("a token value appears in the log")
		}
	}
}

// signIn stores a login for anthropic-max from the fake OAuth server.
func signIn(t *testing.T, cfg *config.Config, tokenPath string, oauth *authtest.Server) {
	t.Helper()
	client := auth.NewClient(cfg, auth.NewStore(tokenPath), auth.Options{Logger: slog.New(slog.DiscardHandler)})
	u, state, err := client.Authorize("anthropic-max", "")
	if err != nil {
		t.Fatal(err)
	}
	loc, err := oauth.Approve(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Exchange(context.Background(), "anthropic-max", loc.Query().Get("code"), state); err != nil {
		t.Fatal(err)
	}
}

// setExpiry rewrites the stored expiry of anthropic-max behind the running
// client's back, as another process would.
func setExpiry(t *testing.T, path string, at time.Time) {
	t.Helper()
	var recs map[string]map[string]any
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &recs)
	}
	if err != nil {
		t.Fatal(err)
	}
	recs["anthropic-max"]["expires_at"] = at.UTC().Format(time.RFC3339)
	data, _ = json.Marshal(recs)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
