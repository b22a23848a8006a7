package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"ccmux/config/configtest"
)

// These tests hold ccmux to its promise of sharing config.toml with
// claude-code-mux: the vendors resolve where claude-code-mux sends them,
// files claude-code-mux writes load in ccmux, and files ccmux writes or
// documents load and route in claude-code-mux (configtest.ClaudeCodeMux).

func TestVendorTypesResolveToClaudeCodeMuxURLs(t *testing.T) {
	tests := []struct {
		typ, baseURL, want string
	}{
		// The built-in URLs of claude-code-mux's src/providers/anthropic_compatible.rs.
		{"z.ai", "", "https://api.z.ai/api/anthropic"},
		{"zai", "", "https://api.z.ai/api/anthropic"},
		{"minimax", "", "https://api.minimax.io/anthropic"},
		{"zenmux", "", "https://zenmux.ai/api/anthropic"},
		{"kimi-coding", "", "https://api.kimi.com/coding"},
		{"anthropic", "", "https://api.anthropic.com"},
		{"Anthropic", "", "https://api.anthropic.com"},
		{"z.ai", "http://127.0.0.1:9/zai/", "http://127.0.0.1:9/zai"},
		{"anthropic", "https://gateway.example/v1/", "https://gateway.example/v1"},
	}
	for _, tt := range tests {
		toml := base + "[[providers]]\nname = \"v\"\nprovider_type = \"" + tt.typ + "\"\nauth_type = \"apikey\"\napi_key = \"k\"\nmodels = []\n"
		if tt.baseURL != "" {
			toml += "base_url = \"" + tt.baseURL + "\"\n"
		}
		cfg, err := Parse("t.toml", []byte(toml))
		if err != nil {
			t.Errorf("%s: %v", tt.typ, err)
			continue
		}
		p, _ := cfg.Provider("v")
		if !p.SpeaksAnthropic() || p.Upstream() != tt.want {
			t.Errorf("%s base_url %q: SpeaksAnthropic %v, Upstream %q, want %q", tt.typ, tt.baseURL, p.SpeaksAnthropic(), p.Upstream(), tt.want)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("%s: warnings %v", tt.typ, cfg.Warnings)
		}
	}
}

func TestVendorKeysNeverGoToAnthropic(t *testing.T) {
	tests := []struct {
		name, provider string
		msg            string
	}{
		{"vendor with Anthropic's URL", "provider_type = \"z.ai\"\nbase_url = \"https://api.anthropic.com\"\n", `provider_type "z.ai" names a vendor, but its requests would go to api.anthropic.com`},
		{"vendor with Anthropic's URL, other spelling", "provider_type = \"minimax\"\nbase_url = \"https://API.Anthropic.com./v1/\"\n", "api.anthropic.com"},
		{"kimi has no built-in URL", "provider_type = \"kimi\"\n", `provider_type "kimi" has no built-in URL`},
		{"anthropic-compatible needs base_url", "provider_type = \"anthropic-compatible\"\n", "set base_url"},
	}
	for _, tt := range tests {
		toml := base + "[[providers]]\nname = \"v\"\nauth_type = \"apikey\"\napi_key = \"k\"\nmodels = []\n" + tt.provider
		_, err := Parse("t.toml", []byte(toml))
		if err == nil || !strings.Contains(err.Error(), "providers[1].base_url") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: got %v, want an error on providers[1].base_url saying %q", tt.name, err, tt.msg)
		}
	}
	// A disabled provider sends nothing, so it may be incomplete.
	if _, err := Parse("t.toml", []byte(base+"[[providers]]\nname = \"v\"\nprovider_type = \"kimi\"\napi_key = \"k\"\nenabled = false\nmodels = []\n")); err != nil {
		t.Errorf("disabled provider: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://api.z.ai/api/anthropic", "https://api.z.ai/api/anthropic"},
		{"https://user:s3cret@gw.example/v1", "https://xxxxx@gw.example/v1"},
		{"https://tok3n@gw.example", "https://xxxxx@gw.example"},
		{"https://gw.example/v1?key=s3cret&x=1", "https://gw.example/v1?key=xxxxx&x=xxxxx"},
		{"http://[::1", "(an unparsable URL)"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// claudeRequests are the model names Claude Code sends, with and without thinking.
var claudeRequests = []string{"claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101", "claude-haiku-4-5-20251001", "claude-sonnet-4-5"}

// assertWorksInClaudeCodeMux checks that data loads in claude-code-mux and
// that Claude Code's requests reach the subscription there.
func assertWorksInClaudeCodeMux(t *testing.T, name, data string) {
	t.Helper()
	ccm, err := configtest.LoadClaudeCodeMux([]byte(data), map[string]string{"ANTHROPIC_API_KEY": "k"})
	if err != nil {
		t.Errorf("%s does not load in claude-code-mux: %v", name, err)
		return
	}
	for _, model := range claudeRequests {
		for _, thinking := range []bool{false, true} {
			provider, actual, err := ccm.Route(model, thinking)
			if err != nil || provider != "claude-max" || actual == "" {
				t.Errorf("%s in claude-code-mux: %s (thinking %v) goes to %q as %q, %v; want claude-max", name, model, thinking, provider, actual, err)
			}
		}
	}
}

func TestDefaultConfigWorksInClaudeCodeMux(t *testing.T) {
	assertWorksInClaudeCodeMux(t, "the default config", DefaultTOML)
	assertWorksInClaudeCodeMux(t, "the default config with its examples uncommented", uncomment(DefaultTOML))
	for _, bad := range []string{`auth_type = "api_key"`, `= ""`} {
		if strings.Contains(DefaultTOML, bad) {
			t.Errorf("the default config contains %s, which claude-code-mux reads differently", bad)
		}
	}
}

// uncomment turns the default's commented examples into TOML.
func uncomment(s string) string {
	s = strings.ReplaceAll(s, "\n# [", "\n[")
	for _, k := range []string{"name", "provider_type", "auth_type", "api_key", "enabled", "models", "actual_model", "priority", "provider"} {
		s = strings.ReplaceAll(s, "\n# "+k+" =", "\n"+k+" =")
	}
	return s
}

func TestREADMEConfigsWorkInBoth(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("the README has no ```toml block")
	}
	t.Setenv("ANTHROPIC_API_KEY", "k")
	for i, b := range blocks {
		name := "README toml block " + string(rune('1'+i))
		text := b[1]
		if !strings.Contains(text, "[router]") {
			// A fragment (a provider, an [oauth.ID] table): it is meant to be
			// added to a whole file, so check it added to the default.
			text = DefaultTOML + "\n" + text
		}
		cfg, err := Parse(name, []byte(text))
		if err != nil {
			t.Errorf("%s does not load in ccmux: %v", name, err)
			continue
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("%s: warnings %v", name, cfg.Warnings)
		}
		assertWorksInClaudeCodeMux(t, name, text)
	}
}

func TestClaudeCodeMuxFirstRunConfigStartsWithAWarning(t *testing.T) {
	path := filepath.Join("testdata", "ccm-first-run.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := configtest.LoadClaudeCodeMux(data, nil); err != nil {
		t.Fatalf("the model of claude-code-mux refuses its own first-run file: %v", err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("ccmux refuses claude-code-mux's first-run config: %v", err)
	}
	joined := strings.Join(cfg.Warnings, "\n")
	for _, want := range []string{"router.default", `"placeholder-model"`, "set router.default to a model a provider serves"} {
		if !strings.Contains(joined, want) {
			t.Errorf("the warning does not say %q: %q", want, joined)
		}
	}
	// Any other name that resolves nowhere is still a mistake.
	if _, err := Parse("t.toml", []byte(strings.Replace(string(data), "placeholder-model", "placeholder-modle", 1))); err == nil {
		t.Error("an unresolved router.default other than the placeholder loads")
	}
}

func TestClaudeCodeMuxExampleConfigLoads(t *testing.T) {
	path := filepath.Join("testdata", "ccm-default.example.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ccm, err := configtest.LoadClaudeCodeMux(data, nil)
	if err != nil {
		t.Fatalf("the model of claude-code-mux refuses its example: %v", err)
	}
	if p, actual, err := ccm.Route("glm-4.6", false); p != "zai coding plan" || actual != "glm-4.6" || err != nil {
		t.Fatalf("claude-code-mux model routes glm-4.6 to %q %q %v", p, actual, err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("ccmux refuses claude-code-mux's example config: %v", err)
	}
	zai, _ := cfg.Provider("zai coding plan")
	if zai.Upstream() != "https://api.z.ai/api/anthropic" {
		t.Errorf("the z.ai provider goes to %q", zai.Upstream())
	}
	kimi, _ := cfg.Provider("kimi-for-coding")
	if kimi.Upstream() != "https://api.kimi.com/coding" {
		t.Errorf("the kimi provider goes to %q", kimi.Upstream())
	}
	// The openrouter provider is served, through Chat Completions.
	or := cfg.Providers[slices.IndexFunc(cfg.Providers, func(p Provider) bool { return p.ProviderType == "openrouter" })]
	if !or.SpeaksOpenAI() || or.Upstream() != "https://openrouter.ai/api/v1" {
		t.Errorf("the openrouter provider is not served at claude-code-mux's URL: %q", or.Upstream())
	}
	if joined := strings.Join(cfg.Warnings, "\n"); strings.Contains(joined, "openrouter") {
		t.Errorf("a warning about the openrouter provider: %q", joined)
	}
}

func TestPortableSpellingsWarn(t *testing.T) {
	tests := []struct{ name, toml, want string }{
		{"api_key spelling", base + "[[providers]]\nname = \"k\"\nauth_type = \"api_key\"\napi_key = \"k\"\nmodels = []\n",
			`providers[1].auth_type = "api_key": claude-code-mux reads only "apikey" or "oauth"`},
		{"empty think", strings.Replace(base, "[router]", "[router]\nthink = \"\"", 1), `router.think = "": ccmux treats it as unset, but claude-code-mux routes those requests to the model ""`},
		{"empty background", strings.Replace(base, "[router]", "[router]\nbackground = \"\"", 1), `router.background = ""`},
		{"empty websearch", strings.Replace(base, "[router]", "[router]\nwebsearch = \"\"", 1), `router.websearch = ""`},
	}
	for _, tt := range tests {
		cfg, err := Parse("t.toml", []byte(tt.toml))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if joined := strings.Join(cfg.Warnings, "\n"); !strings.Contains(joined, tt.want) {
			t.Errorf("%s: warnings %q lack %q", tt.name, joined, tt.want)
		}
	}
	// The spelling ccmux has always read still works.
	cfg, err := Parse("t.toml", []byte(tests[0].toml))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := cfg.Provider("k"); p.AuthType != AuthAPIKey {
		t.Errorf("auth_type api_key read as %q", p.AuthType)
	}
}

func TestForkKeysWarn(t *testing.T) {
	cfg, err := Parse("t.toml", []byte(strings.Replace(base, "[router]", "[router]\nsubagent = \"claude-haiku-4-5\"", 1)+`
[[router.rules]]
type = "model-prefix"
prefix = "gpt-"
model = "claude-sonnet-4-5"

[[models]]
name = "m"
[[models.mappings]]
actual_model = "x"
priority = 1
provider = "claude-max"
strip_beta_options = true
strip_specific_beta = ["context-1m-2025-08-07"]
`))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(cfg.Warnings, "\n")
	for _, want := range []string{"router.subagent", "router.rules", "models.mappings.strip_beta_options", "models.mappings.strip_specific_beta"} {
		if strings.Count(joined, want+" is a setting of a claude-code-mux fork") != 1 {
			t.Errorf("want one warning about %s in %q", want, joined)
		}
	}
}
