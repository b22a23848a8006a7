package proxy

import (
	"net/http"
	"strings"
	"testing"

	"ccmux/config"
)

// claude-code-mux's own config files, as it writes and ships them, route in
// ccmux: vendors go to the URLs claude-code-mux uses for them, types ccmux
// cannot speak are skipped, and its first-run file starts the proxy.

func TestClaudeCodeMuxExampleConfigRoutesToVendorURLs(t *testing.T) {
	cfg, err := config.Load("../config/testdata/ccm-default.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Config: cfg, Tokens: newFakeTokens()}
	st, err := s.prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		req      RouteRequest
		provider string
		model    string
		url      string
		fallback string // the openrouter model tried next, as in claude-code-mux ("" for none)
	}{
		{RouteRequest{Model: "glm-4.6"}, "zai coding plan", "glm-4.6", "https://api.z.ai/api/anthropic", "z-ai/glm-4.6"},
		{RouteRequest{Model: "claude-haiku-4-5"}, "zai coding plan", "glm-4.5-air", "https://api.z.ai/api/anthropic", "z-ai/glm-4.5-air"},
		{RouteRequest{Model: "glm-4.6", Thinking: true}, "kimi-for-coding", "claude-sonnet-4-5-20250929", "https://api.kimi.com/coding", ""},
	}
	for _, tt := range tests {
		rt, err := st.router.Route(tt.req)
		if err != nil {
			t.Errorf("%+v: %v", tt.req, err)
			continue
		}
		want := 1
		if tt.fallback != "" {
			want = 2
		}
		if len(rt.Candidates) != want {
			t.Errorf("%+v: candidates %+v, want %d", tt.req, rt.Candidates, want)
			continue
		}
		c := rt.Candidates[0]
		if c.Provider != tt.provider || c.Model != tt.model || st.upstreams[c.Index].String() != tt.url {
			t.Errorf("%+v: goes to %s as %s at %v; want %s as %s at %s", tt.req, c.Provider, c.Model, st.upstreams[c.Index], tt.provider, tt.model, tt.url)
		}
		if tt.fallback != "" {
			// The openrouter mapping is served now, through Chat Completions.
			c := rt.Candidates[1]
			if c.Provider != "openrouter" || c.Model != tt.fallback || st.upstreams[c.Index].String() != "https://openrouter.ai/api/v1" {
				t.Errorf("%+v: falls back to %s as %s at %v", tt.req, c.Provider, c.Model, st.upstreams[c.Index])
			}
		}
	}
}

func TestClaudeCodeMuxFirstRunConfigServes(t *testing.T) {
	cfg, err := config.Load("../config/testdata/ccm-first-run.toml")
	if err != nil {
		t.Fatal(err)
	}
	h := testHandler(t, cfg, nil)
	if w := do(h, http.MethodGet, "/health", "localhost", local, nil, ""); w.Code != http.StatusOK {
		t.Errorf("/health: %d", w.Code)
	}
	w := do(h, http.MethodPost, "/v1/messages", "localhost", local, jsonCT, `{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[]}`)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `claude-sonnet-4-5`) {
		t.Errorf("a request with no provider configured: %d %s", w.Code, w.Body)
	}
}
