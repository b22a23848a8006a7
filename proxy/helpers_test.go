package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// fakeTokens is a TokenSource whose tokens change on every forced refresh.
type fakeTokens struct {
	mu        sync.Mutex
	tokens    map[string]string // providerID → token; absent means not signed in
	apiKey    map[string]bool
	refreshes map[string]int
	refreshTo string // the token a forced refresh returns ("" fails the refresh)
}

func newFakeTokens() *fakeTokens {
	return &fakeTokens{tokens: map[string]string{}, apiKey: map[string]bool{}, refreshes: map[string]int{}}
}

func (f *fakeTokens) set(id, token string) {
	f.mu.Lock()
	f.tokens[id] = token
	f.mu.Unlock()
}

func (f *fakeTokens) Credential(_ context.Context, id string) (auth.Credential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tokens[id]
	if !ok {
		return auth.Credential{}, fmt.Errorf("not signed in to %s: %w", id, auth.ErrNoToken)
	}
	return auth.Credential{Value: t, APIKey: f.apiKey[id]}, nil
}

func (f *fakeTokens) ForceRefresh(_ context.Context, id string) (auth.Credential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes[id]++
	if f.refreshTo == "" {
		return auth.Credential{}, errors.New("refresh token rejected")
	}
	f.tokens[id] = f.refreshTo
	return auth.Credential{Value: f.refreshTo}, nil
}

func (f *fakeTokens) refreshCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes[id]
}

// harness is a started proxy in front of fake upstreams.
type harness struct {
	t      *testing.T
	srv    *Server
	base   string
	tokens *fakeTokens
	logs   *testsupport.Buffer
	client *http.Client
}

// mustConfig parses a config written for a test.
func mustConfig(t testing.TB, toml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(toml))
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// startProxy starts a Server for cfg on a free loopback port; each of
// setup may set more of its fields first.
func startProxy(t *testing.T, cfg *config.Config, setup ...func(*Server)) *harness {
	t.Helper()
	return startProxyWith(t, cfg, func(s *Server) {
		for _, f := range setup {
			f(s)
		}
	})
}

// startProxyWith is startProxy with set applied to the Server before it
// starts (nil for none).
func startProxyWith(t *testing.T, cfg *config.Config, set func(*Server)) *harness {
	t.Helper()
	cfg.Server.Port = 0 // the OS picks a free port
	logs := &testsupport.Buffer{}
	h := &harness{
		t:      t,
		tokens: newFakeTokens(),
		logs:   logs,
		client: &http.Client{Transport: &http.Transport{}},
	}
	h.srv = &Server{Config: cfg, Tokens: h.tokens, Logger: slog.New(slog.NewTextHandler(logs, nil)), Version: "test"}
	if set != nil {
		set(h.srv)
	}
	if err := h.srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.base = "http://" + h.srv.Addr()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.srv.Stop(ctx)
		h.client.CloseIdleConnections()
	})
	return h
}

// newUpstream starts a fake Anthropic upstream closed at the end of the test.
func newUpstream(t *testing.T) *fakeanthropic.Upstream {
	t.Helper()
	u := fakeanthropic.New()
	t.Cleanup(func() {
		u.Release()
		u.CloseClientConnections()
		u.Close()
	})
	return u
}

// post sends a Messages API request to the proxy.
func (h *harness) post(path, body string, header map[string]string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// readAll reads and closes a response body.
func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return string(b)
}

// apiError decodes Anthropic's error shape.
func apiError(t testing.TB, body string) (typ, msg string) {
	t.Helper()
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Type != "error" {
		t.Fatalf("want Anthropic's error shape, got %q", body)
	}
	return e.Error.Type, e.Error.Message
}

// sseEvent is one parsed event.
type sseEvent struct {
	name, data string
}

// readEvents parses a whole event stream.
func readEvents(t testing.TB, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	sc := bufio.NewScanner(r)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" || cur.data != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		}
	}
	return out
}

func eventNames(evs []sseEvent) []string {
	var names []string
	for _, e := range evs {
		names = append(names, e.name)
	}
	return names
}
