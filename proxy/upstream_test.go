package proxy

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"testing"

	"ccmux/auth"
	"ccmux/proxy/internal/fakeanthropic"
)

func TestUpstreamHeader(t *testing.T) {
	client := func() http.Header {
		return http.Header{
			"Anthropic-Version": {"2023-06-01"},
			"Anthropic-Beta":    {"claude-code-20250219,interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14"},
			"User-Agent":        {"claude-cli/2.0.14 (external, cli)"},
			"X-App":             {"cli"},
			"Content-Type":      {"application/json"},
			"Accept":            {"application/json"},
			"Authorization":     {"Bearer client-secret"},
			"X-Api-Key":         {"client-key"},
			"X-Provider":        {"max"},
			"Connection":        {"keep-alive, X-Hop"},
			"X-Hop":             {"1"},
			"Keep-Alive":        {"timeout=5"},
			"Te":                {"trailers"},
			"Upgrade":           {"h2c"},
			"Proxy-Connection":  {"keep-alive"},
			"Content-Length":    {"12"},
		}
	}
	endToEnd := map[string][]string{
		"Anthropic-Version": {"2023-06-01"},
		"User-Agent":        {"claude-cli/2.0.14 (external, cli)"},
		"X-App":             {"cli"},
		"Content-Type":      {"application/json"},
		"Accept":            {"application/json"},
	}
	tests := []struct {
		name   string
		in     http.Header
		cred   auth.Credential
		expect map[string][]string // every header the upstream gets
	}{
		{
			name: "api key provider",
			in:   client(),
			cred: auth.Credential{Value: "sk-ant-provider", APIKey: true},
			expect: merge(endToEnd, map[string][]string{
				"X-Api-Key":      {"sk-ant-provider"},
				"Anthropic-Beta": {"claude-code-20250219,interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14"},
			}),
		},
		{
			name: "oauth provider merges the beta flag once",
			in:   client(),
			cred: auth.Credential{Value: "sk-ant-oat01-token"},
			expect: merge(endToEnd, map[string][]string{
				"Authorization":  {"Bearer sk-ant-oat01-token"},
				"Anthropic-Beta": {"claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14,oauth-2025-04-20"},
			}),
		},
		{
			name: "oauth keeps an existing oauth beta and adds a missing version",
			in:   http.Header{"Anthropic-Beta": {"oauth-2025-04-20, x"}, "User-Agent": {"curl/8"}},
			cred: auth.Credential{Value: "tok"},
			expect: map[string][]string{
				"Authorization":     {"Bearer tok"},
				"Anthropic-Beta":    {"oauth-2025-04-20,x"},
				"Anthropic-Version": {"2023-06-01"},
				"User-Agent":        {"curl/8"},
			},
		},
		{
			name: "oauth with no beta header",
			in:   http.Header{"Anthropic-Version": {"2024-01-01"}},
			cred: auth.Credential{Value: "tok"},
			expect: map[string][]string{
				"Authorization":     {"Bearer tok"},
				"Anthropic-Beta":    {"oauth-2025-04-20"},
				"Anthropic-Version": {"2024-01-01"},
			},
		},
		{
			name:   "console login key is sent as x-api-key",
			in:     http.Header{"Authorization": {"Bearer c"}},
			cred:   auth.Credential{Value: "sk-ant-api03-created", APIKey: true},
			expect: map[string][]string{"X-Api-Key": {"sk-ant-api03-created"}},
		},
		{
			name:   "no user agent is invented",
			in:     http.Header{},
			cred:   auth.Credential{Value: "k", APIKey: true},
			expect: map[string][]string{"X-Api-Key": {"k"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := upstreamHeader(tt.in, tt.cred)
			// An empty User-Agent is how net/http is told to send none
			// (TestNoHeaderInvented checks the wire).
			if ua, ok := got["User-Agent"]; ok && len(ua) == 1 && ua[0] == "" {
				delete(got, "User-Agent")
			}
			if !reflect.DeepEqual(map[string][]string(got), tt.expect) {
				t.Errorf("got  %v\nwant %v", got, tt.expect)
			}
		})
	}
}

func merge(a, b map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestCopyResponseHeader(t *testing.T) {
	src := http.Header{
		"Request-Id":                             {"req_1"},
		"Retry-After":                            {"7"},
		"Connection":                             {"close, X-Private"},
		"X-Private":                              {"p"},
		"Keep-Alive":                             {"x"},
		"Content-Type":                           {"application/json"},
		"Anthropic-Ratelimit-Requests-Remaining": {"0"},
	}
	dst := http.Header{}
	copyResponseHeader(dst, src)
	want := http.Header{
		"Request-Id":                             {"req_1"},
		"Retry-After":                            {"7"},
		"Content-Type":                           {"application/json"},
		"Anthropic-Ratelimit-Requests-Remaining": {"0"},
	}
	if !reflect.DeepEqual(dst, want) {
		t.Errorf("got %v, want %v", dst, want)
	}
}

func TestUpstreamURL(t *testing.T) {
	tests := []struct{ base, in, want string }{
		{"https://api.anthropic.com", "/v1/messages?beta=true", "https://api.anthropic.com/v1/messages?beta=true"},
		{"https://api.z.ai/api/anthropic/", "/v1/messages", "https://api.z.ai/api/anthropic/v1/messages"},
		{"http://127.0.0.1:9", "/v1/messages/count_tokens", "http://127.0.0.1:9/v1/messages/count_tokens"},
	}
	for _, tt := range tests {
		base, _ := url.Parse(tt.base)
		in, _ := url.Parse(tt.in)
		if got := upstreamURL(base, in).String(); got != tt.want {
			t.Errorf("upstreamURL(%s, %s) = %s, want %s", tt.base, tt.in, got, tt.want)
		}
	}
}

func TestFailoverStatuses(t *testing.T) {
	for status, want := range map[int]bool{
		200: false, 400: false, 401: false, 403: false, 404: false, 413: false,
		429: true, 500: true, 502: true, 503: true, 504: true, 529: true,
	} {
		if got := failover(status); got != want {
			t.Errorf("failover(%d) = %v, want %v", status, got, want)
		}
	}
}

// writeSizes records the size of every write to upstream connections.
type writeSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (w *writeSizes) take() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sizes
	w.sizes = nil
	return s
}

type countingConn struct {
	net.Conn
	w *writeSizes
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.w.mu.Lock()
	c.w.sizes = append(c.w.sizes, len(p))
	c.w.mu.Unlock()
	return c.Conn.Write(p)
}

// TestUpstreamRequestWrites counts the writes (system calls) a request
// with its model rewritten costs on the upstream connection: a small one
// leaves in one write with its headers; a large one is never written in
// scraps around the model name.
func TestUpstreamRequestWrites(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	cfg := mustConfig(t, rewriteTOML(up.URL))
	writes := &writeSizes{}
	h := startProxy(t, cfg, func(s *Server) {
		s.upstreamOnce.Do(func() { s.upstream = newUpstreamClient(DefaultConnectTimeout, nil) })
		dial := s.upstream.h1.DialContext
		s.upstream.h1.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, w: writes}, nil
		}
	})
	for _, size := range []int{1 << 10, 400 << 10} {
		body := fakeanthropic.RequestBody(size, "claude-sonnet-4-5", false)
		resp := h.post("/v1/messages", string(body), nil)
		if got := readAll(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d bytes: status %d: %s", size, resp.StatusCode, got)
		}
		reqs := up.Requests()
		if sent := reqs[len(reqs)-1].Body; !bytes.Contains(sent, []byte(`"claude-sonnet-4-5-20250929"`)) {
			t.Fatalf("%d bytes: the model was not rewritten: %.100s", size, sent)
		}
		sizes := writes.take()
		if size == 1<<10 {
			if len(sizes) != 1 {
				t.Errorf("%d bytes: the request took %d writes %v, want 1 (headers and body together)", size, len(sizes), sizes)
			}
			continue
		}
		// The first write is the headers, the last the body's tail.
		for i := 1; i < len(sizes)-1; i++ {
			if sizes[i] < 4<<10 {
				t.Errorf("%d bytes: write %d of %d is %d bytes %v; the body should go in full buffers", size, i+1, len(sizes), sizes[i], sizes)
				break
			}
		}
	}
}
