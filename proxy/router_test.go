package proxy

import (
	"errors"
	"strings"
	"testing"
)

const routerTOML = `
[router]
default = "claude-sonnet-4-5"
background = "fast"
background_regex = "(?i)claude.*haiku"
think = "thinker"
websearch = "searcher"
long_context = "big"
long_context_threshold = 1000
auto_map_regex = "^gpt-"
think_exempt_models = ["claude-opus-*"]

[[providers]]
name = "max"
auth_type = "oauth"
oauth_provider = "anthropic-max"
models = ["claude-*"]

[[providers]]
name = "api"
auth_type = "api_key"
api_key = "$TEST_KEY"
models = ["claude-sonnet-*", "glm-4.6"]

[[providers]]
name = "off"
auth_type = "api_key"
api_key = "k"
enabled = false
models = ["claude-*"]

[[providers]]
name = "vertex"
provider_type = "vertex-ai"
auth_type = "api_key"
api_key = "k"
models = ["claude-*"]

[[models]]
name = "fast"
[[models.mappings]]
actual_model = "claude-haiku-4-5-20251001"
priority = 2
provider = "api"
[[models.mappings]]
actual_model = "claude-haiku-4-5"
priority = 1
provider = "max"

[[models]]
name = "Thinker"
[[models.mappings]]
actual_model = "claude-opus-4-1"
priority = 1
provider = "max"

[[models]]
name = "searcher"
[[models.mappings]]
actual_model = "claude-sonnet-4-5"
priority = 1
provider = "api"

[[models]]
name = "big"
[[models.mappings]]
actual_model = "claude-sonnet-4-5[1m]"
priority = 1
provider = "api"
`

func TestRouter(t *testing.T) {
	r, err := NewRouter(mustConfig(t, routerTOML))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		req   RouteRequest
		rule  string
		model string   // after rules and default
		want  []string // provider:model in order
	}{
		{"glob, file order, model unchanged", RouteRequest{Model: "claude-sonnet-4-5-20250929"}, "", "claude-sonnet-4-5-20250929",
			[]string{"max:claude-sonnet-4-5-20250929", "api:claude-sonnet-4-5-20250929"}},
		{"glob matches one provider", RouteRequest{Model: "claude-opus-4-1"}, "", "claude-opus-4-1", []string{"max:claude-opus-4-1"}},
		{"glob is case-insensitive", RouteRequest{Model: "Claude-Opus-4-1"}, "", "Claude-Opus-4-1", []string{"max:Claude-Opus-4-1"}},
		{"exact name in models list", RouteRequest{Model: "glm-4.6"}, "", "glm-4.6", []string{"api:glm-4.6"}},
		{"[[models]] mappings by priority", RouteRequest{Model: "fast"}, "", "fast", []string{"max:claude-haiku-4-5", "api:claude-haiku-4-5-20251001"}},
		{"[[models]] name is case-insensitive", RouteRequest{Model: "THINKER"}, "", "THINKER", []string{"max:claude-opus-4-1"}},
		{"unknown model falls back to default once", RouteRequest{Model: "mystery"}, "default", "claude-sonnet-4-5",
			[]string{"max:claude-sonnet-4-5", "api:claude-sonnet-4-5"}},
		{"websearch rule", RouteRequest{Model: "claude-opus-4-1", WebSearch: true, Thinking: true, EstimatedTokens: 5000}, "websearch", "searcher",
			[]string{"api:claude-sonnet-4-5"}},
		{"think rule", RouteRequest{Model: "claude-sonnet-4-5", Thinking: true, EstimatedTokens: 5000}, "think", "thinker",
			[]string{"max:claude-opus-4-1"}},
		{"think exempt model", RouteRequest{Model: "claude-opus-4-1", Thinking: true}, "", "claude-opus-4-1", []string{"max:claude-opus-4-1"}},
		{"long_context rule over threshold", RouteRequest{Model: "claude-3-5-haiku", EstimatedTokens: 1001}, "long_context", "big",
			[]string{"api:claude-sonnet-4-5[1m]"}},
		{"long_context at threshold does not apply", RouteRequest{Model: "claude-opus-4-1", EstimatedTokens: 1000}, "", "claude-opus-4-1",
			[]string{"max:claude-opus-4-1"}},
		{"background rule", RouteRequest{Model: "claude-3-5-haiku-20241022"}, "background", "fast",
			[]string{"max:claude-haiku-4-5", "api:claude-haiku-4-5-20251001"}},
		{"auto_map rule", RouteRequest{Model: "gpt-4o"}, "auto_map", "claude-sonnet-4-5",
			[]string{"max:claude-sonnet-4-5", "api:claude-sonnet-4-5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for pass := 0; pass < 2; pass++ { // the second pass is answered from the cache
				rt, err := r.Route(tt.req)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, c := range rt.Candidates {
					got = append(got, c.Provider+":"+c.Model)
				}
				if rt.Rule != tt.rule || !strings.EqualFold(rt.Model, tt.model) || strings.Join(got, " ") != strings.Join(tt.want, " ") {
					t.Errorf("pass %d: got rule %q model %q candidates %v, want %q %q %v", pass, rt.Rule, rt.Model, got, tt.rule, tt.model, tt.want)
				}
			}
		})
	}
}

func TestRouterRulesUnsetDoNothing(t *testing.T) {
	r, err := NewRouter(mustConfig(t, `
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "max"
auth_type = "oauth"
oauth_provider = "anthropic-max"
models = ["claude-*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := r.Route(RouteRequest{Model: "claude-3-5-haiku", Thinking: true, WebSearch: true, EstimatedTokens: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if rt.Rule != "" || rt.Model != "claude-3-5-haiku" {
		t.Errorf("unset rules changed the model: rule %q model %q", rt.Rule, rt.Model)
	}
}

func TestRouterNotFound(t *testing.T) {
	cfg := mustConfig(t, `
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "max"
auth_type = "oauth"
oauth_provider = "anthropic-max"
models = ["claude-*"]
`)
	// A default that no longer resolves (e.g. its provider was switched off after loading).
	cfg.Providers[0].ProviderType = "gemini"
	r, err := NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Route(RouteRequest{Model: "claude-x"})
	var re *RouteError
	if !errors.As(err, &re) || re.Model != "claude-x" || !strings.Contains(err.Error(), `"claude-x"`) {
		t.Fatalf("want a RouteError naming the model, got %v", err)
	}
}

func TestRouterPin(t *testing.T) {
	t.Setenv("TEST_KEY", "k")
	r, err := NewRouter(mustConfig(t, routerTOML))
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := r.Route(RouteRequest{Model: "fast"})
	tests := []struct {
		pin, want, err string
	}{
		{"api", "api:claude-haiku-4-5-20251001", ""},
		{"max", "max:claude-haiku-4-5", ""},
		{"nope", "", `"nope", which is not a provider`},
		{"off", "", "disabled"},
		{"vertex", "", "of a provider_type ccmux does not serve"},
	}
	for _, tt := range tests {
		got, err := r.Pin(rt, tt.pin)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Pin(%s): want error containing %q, got %v", tt.pin, tt.err, err)
			}
			continue
		}
		if err != nil || len(got.Candidates) != 1 || got.Candidates[0].Provider+":"+got.Candidates[0].Model != tt.want {
			t.Errorf("Pin(%s) = %+v, %v; want %s", tt.pin, got.Candidates, err, tt.want)
		}
	}
	// A provider outside the candidates gets the routed name.
	rt2, _ := r.Route(RouteRequest{Model: "claude-opus-4-1"})
	got, err := r.Pin(rt2, "api")
	if err != nil || got.Candidates[0].Model != "claude-opus-4-1" {
		t.Errorf("pinning a provider outside the candidates: %+v, %v", got.Candidates, err)
	}
}
