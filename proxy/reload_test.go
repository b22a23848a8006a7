package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"ccmux/config"
	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// providersTOML is a config whose api-key providers (name=URL pairs) all
// serve claude-*, tried in order.
func providersTOML(pairs ...string) string {
	var b strings.Builder
	b.WriteString("[router]\ndefault = \"claude-sonnet-4-5\"\n")
	for i := 0; i < len(pairs); i += 2 {
		fmt.Fprintf(&b, "[[providers]]\nname = %q\nauth_type = \"api_key\"\napi_key = \"$API_KEY\"\nbase_url = %q\nmodels = [\"claude-*\"]\n", pairs[i], pairs[i+1])
	}
	return b.String()
}

// reloadTo parses toml for a Reload of h's proxy, on the port it has.
func reloadTo(t *testing.T, toml string) *config.Config {
	t.Helper()
	cfg := mustConfig(t, toml)
	cfg.Server.Port = 0 // as startProxy set it: the same address
	return cfg
}

// A request in flight when the config is reloaded finishes with the config
// it started with — here failing over to its second provider, which the new
// config no longer has — while a request after the reload goes to the new
// provider.
func TestReloadKeepsTheConfigOfRequestsInFlight(t *testing.T) {
	t.Setenv("API_KEY", "k")
	a, b, c := newUpstream(t), newUpstream(t), newUpstream(t)
	h := startProxy(t, mustConfig(t, providersTOML("a", a.URL, "b", b.URL)))
	a.Queue(fakeanthropic.Behavior{Stall: true, Status: 529})

	type result struct {
		status int
		events []sseEvent
		err    error
	}
	inFlight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/messages", strings.NewReader(streamReq))
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.client.Do(req)
		if err != nil {
			inFlight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		inFlight <- result{status: resp.StatusCode, events: readEvents(t, resp.Body)}
	}()
	testsupport.Eventually(t, "the first request to reach provider a", 5*time.Second, func() bool { return len(a.Requests()) == 1 })

	next := reloadTo(t, providersTOML("c", c.URL))
	if moved, err := h.srv.Reload(context.Background(), next); err != nil || moved {
		t.Fatalf("Reload = %v, %v; want no move, no error", moved, err)
	}
	if h.srv.CurrentConfig() != next {
		t.Error("CurrentConfig is not the reloaded config")
	}
	resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("request after the reload: %d %s", resp.StatusCode, body)
	}
	if len(c.Requests()) != 1 || len(a.Requests()) != 1 || len(b.Requests()) != 0 {
		t.Fatalf("after the reload a, b, c got %d, %d, %d requests; want 1, 0, 1", len(a.Requests()), len(b.Requests()), len(c.Requests()))
	}

	a.Release() // a answers 529: the request in flight fails over to b, of its own config
	r := <-inFlight
	if r.err != nil || r.status != 200 {
		t.Fatalf("the request in flight: %d %v", r.status, r.err)
	}
	if names := eventNames(r.events); len(names) == 0 || names[len(names)-1] != "message_stop" {
		t.Fatalf("the stream in flight ended with %v, want a complete stream", names)
	}
	if len(b.Requests()) != 1 || len(c.Requests()) != 1 {
		t.Errorf("the request in flight went to b %d, c %d times; want b once", len(b.Requests()), len(c.Requests()))
	}
	if !strings.Contains(h.logs.String(), "provider=b") {
		t.Errorf("the log does not show the request served by b:\n%s", h.logs.String())
	}
}

// A reload to another port listens there first, then stops accepting on
// the old port, where a stream that was open finishes.
func TestReloadMovesTheListener(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	up.SetBehavior(fakeanthropic.Behavior{HoldOpen: true})
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	oldAddr := h.srv.Addr()
	stream := h.post("/v1/messages", streamReq, nil)
	defer stream.Body.Close()
	br := bufio.NewReader(stream.Body)
	readRawEvent(t, br) // message_start: the stream is open

	port := testsupport.FreePort(t)
	next := mustConfig(t, apiKeyTOML(up.URL))
	next.Server.Port = port
	moved, err := h.srv.Reload(context.Background(), next)
	if err != nil || !moved {
		t.Fatalf("Reload = %v, %v; want moved", moved, err)
	}
	newAddr := fmt.Sprintf("127.0.0.1:%d", port)
	if got := h.srv.Addr(); got != newAddr {
		t.Errorf("Addr = %s, want %s", got, newAddr)
	}
	if !h.srv.Running() {
		t.Error("not Running after the move")
	}
	resp, err := h.client.Get("http://" + newAddr + "/health")
	if err != nil {
		t.Fatalf("the new address does not answer: %v", err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("/health on the new address: %d %s", resp.StatusCode, body)
	}
	testsupport.Eventually(t, "the old address to refuse connections", 5*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", oldAddr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})

	up.Release() // the open stream finishes on the old connection
	evs := readEvents(t, br)
	if names := eventNames(evs); len(names) == 0 || names[len(names)-1] != "message_stop" {
		t.Fatalf("the stream open during the move ended with %v, want a complete stream", names)
	}
}

// Stop also ends the requests still open on a listener a reload moved away
// from, within its drain time.
func TestStopCutsStreamsLeftOnAMovedListener(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	up.SetBehavior(fakeanthropic.Behavior{HoldOpen: true})
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	stream := h.post("/v1/messages", streamReq, nil)
	defer stream.Body.Close()
	br := bufio.NewReader(stream.Body)
	readRawEvent(t, br)
	next := mustConfig(t, apiKeyTOML(up.URL))
	next.Server.Port = testsupport.FreePort(t)
	if moved, err := h.srv.Reload(context.Background(), next); err != nil || !moved {
		t.Fatalf("Reload = %v, %v; want moved", moved, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- h.srv.Stop(ctx) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waits for a stream on the old listener past its drain time")
	}
	evs := readEvents(t, br)
	if len(evs) != 1 || evs[0].name != "error" {
		t.Fatalf("after Stop the old listener's stream sent %v, want one error event", eventNames(evs))
	}
}

// A reload to a port in use keeps the old listener and the old config, and
// says why.
func TestReloadToABusyPortKeepsEverything(t *testing.T) {
	t.Setenv("API_KEY", "k")
	old, other := newUpstream(t), newUpstream(t)
	cfg := mustConfig(t, apiKeyTOML(old.URL))
	h := startProxy(t, cfg)
	oldAddr := h.srv.Addr()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	next := mustConfig(t, apiKeyTOML(other.URL))
	next.Server.Port = busy.Addr().(*net.TCPAddr).Port
	moved, err := h.srv.Reload(context.Background(), next)
	if err == nil || moved {
		t.Fatalf("Reload to a busy port = %v, %v; want an error", moved, err)
	}
	if !strings.Contains(err.Error(), "already in use") || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Errorf("error %q does not say the address is in use", err)
	}
	if h.srv.Addr() != oldAddr || h.srv.CurrentConfig() != cfg {
		t.Errorf("after the failed move: Addr %s, config changed %v; want %s, unchanged", h.srv.Addr(), h.srv.CurrentConfig() != cfg, oldAddr)
	}
	stillRoutesToOld(t, h, old, other, "failed")
}

// stillRoutesToOld checks that after a reload that did not happen (what
// it was: "failed", "refused") a request still goes to old, not to other.
func stillRoutesToOld(t *testing.T, h *harness, old, other *fakeanthropic.Upstream, what string) {
	t.Helper()
	resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("request after the %s reload: %d %s", what, resp.StatusCode, body)
	}
	if len(old.Requests()) != 1 || len(other.Requests()) != 0 {
		t.Errorf("old got %d, new got %d requests; want the old config to route", len(old.Requests()), len(other.Requests()))
	}
}

// A config the proxy cannot serve (here a server.api_key from an unset
// variable) is refused whole: the running config stays.
func TestReloadRefusesAConfigItCannotServe(t *testing.T) {
	t.Setenv("API_KEY", "k")
	old, other := newUpstream(t), newUpstream(t)
	cfg := mustConfig(t, apiKeyTOML(old.URL))
	h := startProxy(t, cfg)
	next := reloadTo(t, "[server]\napi_key = \"$CCMUX_RELOAD_TEST_UNSET\"\n"+apiKeyTOML(other.URL))
	if _, err := h.srv.Reload(context.Background(), next); err == nil || !strings.Contains(err.Error(), "CCMUX_RELOAD_TEST_UNSET") {
		t.Fatalf("Reload = %v, want an error naming the unset variable", err)
	}
	if h.srv.CurrentConfig() != cfg {
		t.Error("the refused config became current")
	}
	stillRoutesToOld(t, h, old, other, "refused")
}

// A new host that overlaps the bound address on the same port (127.0.0.1
// to localhost) cannot be bound beside it: the listener is closed first,
// and the stream open on it finishes.
func TestReloadToAnOverlappingAddress(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	up.SetBehavior(fakeanthropic.Behavior{HoldOpen: true})
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)))
	stream := h.post("/v1/messages", streamReq, nil)
	defer stream.Body.Close()
	br := bufio.NewReader(stream.Body)
	readRawEvent(t, br)

	port := h.srv.Addr()[strings.LastIndex(h.srv.Addr(), ":")+1:]
	next := mustConfig(t, apiKeyTOML(up.URL))
	next.Server.Host = "localhost"
	fmt.Sscan(port, &next.Server.Port)
	if moved, err := h.srv.Reload(context.Background(), next); err != nil || !moved {
		t.Fatalf("Reload to localhost on the same port = %v, %v; want moved", moved, err)
	}
	if h.srv.CurrentConfig() != next {
		t.Error("the new config is not current")
	}
	resp, err := h.client.Get("http://localhost:" + port + "/health")
	if err != nil {
		t.Fatalf("localhost:%s does not answer: %v", port, err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("/health: %d %s", resp.StatusCode, body)
	}
	up.Release()
	if names := eventNames(readEvents(t, br)); len(names) == 0 || names[len(names)-1] != "message_stop" {
		t.Fatalf("the stream open during the move ended with %v, want a complete stream", names)
	}
}

// What the usage tracker knows survives a reload: a spent subscription,
// renamed in the new config, is still skipped until its reset, and
// /api/usage reports it under its new name.
func TestReloadKeepsSpentSubscriptions(t *testing.T) {
	t.Setenv("API_KEY", "k")
	sub, key, key2 := newUpstream(t), newUpstream(t), newUpstream(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	setup, _ := withTracker(c)
	h := startProxy(t, mustConfig(t, subscriptionThenKey(sub.URL, key.URL)), setup)
	h.tokens.set("anthropic-max", "sub-token")
	reset := c.now().Add(2 * time.Hour)
	sub.Queue(fakeanthropic.Behavior{Status: 429, Header: spentHeaders(reset)})
	if resp := h.post("/v1/messages", sonnetBody, nil); readAll(t, resp) == "" || resp.StatusCode != 200 {
		t.Fatalf("the first request: %d", resp.StatusCode)
	}

	renamed := strings.Replace(subscriptionThenKey(sub.URL, key2.URL), `name = "claude-max"`, `name = "max-renamed"`, 1)
	if _, err := h.srv.Reload(context.Background(), reloadTo(t, renamed)); err != nil {
		t.Fatal(err)
	}
	if resp := h.post("/v1/messages", sonnetBody, nil); readAll(t, resp) == "" || resp.StatusCode != 200 {
		t.Fatalf("the request after the reload: %d", resp.StatusCode)
	}
	if sub.Served() != 1 || key2.Served() != 1 {
		t.Errorf("after the reload the spent subscription served %d requests (want 1, before it), the new API key %d (want 1)", sub.Served(), key2.Served())
	}
	report := h.srv.UsageReport()
	if len(report) != 1 || report[0].Provider != "max-renamed" || report[0].LimitedUntil == nil {
		t.Errorf("usage report after the reload = %+v, want max-renamed limited until its reset", report)
	}
}

// Reloads racing with requests (run with -race): every request is answered
// by one of the two configs' providers, none fails.
func TestReloadUnderRequests(t *testing.T) {
	t.Setenv("API_KEY", "k")
	a, b := newUpstream(t), newUpstream(t)
	a.Record, b.Record = false, false
	cfgA, cfgB := providersTOML("a", a.URL), providersTOML("b", b.URL)
	h := startProxy(t, mustConfig(t, cfgA))
	const workers, each, reloads = 4, 25, 20
	errs := make(chan error, workers*each)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < each; i++ {
				req, _ := http.NewRequest(http.MethodPost, h.base+"/v1/messages", strings.NewReader(sonnetBody))
				req.Header.Set("Content-Type", "application/json")
				resp, err := h.client.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	for i := 0; i < reloads; i++ {
		next := cfgA
		if i%2 == 0 {
			next = cfgB
		}
		if _, err := h.srv.Reload(context.Background(), reloadTo(t, next)); err != nil {
			t.Fatal(err)
		}
	}
	for w := 0; w < workers; w++ {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := a.Served() + b.Served(); got != workers*each {
		t.Errorf("the providers served %d requests, want %d", got, workers*each)
	}
}
