package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"ccmux/internal/testsupport"
)

// base is a valid config the validation cases add to.
const base = `
[router]
default = "claude-sonnet-4-5"

[[providers]]
name = "claude-max"
auth_type = "oauth"
oauth_provider = "anthropic-max"
models = ["claude-*"]
`

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name string
		toml string
		line int    // expected line of the problem (0: none expected)
		key  string // expected key
		msg  string // substring of the message
	}{
		{"syntax error", base + "[server\nport = 1\n", 11, "", "expected '.' or ']'"},
		{"wrong type", "[server]\nport = \"x\"\n" + base, 2, "server.port", `want an integer, got the string "x"`},
		{"wrong type bool", base + "enabled = \"yes\"\n", 10, "providers[0].enabled", "want a boolean"},
		{"unknown top-level table", base + "[servr]\nport = 1\n", 10, "servr", `unknown key "servr"`},
		{"unknown key typo", base + "auth_typ = \"oauth\"\n", 10, "providers[0].auth_typ", `unknown key "auth_typ"`},
		{"unknown key in mapping", base + "[[models]]\nname = \"m\"\n[[models.mappings]]\nactual_model = \"x\"\nprovider = \"claude-max\"\npriority = 1\nbogus = 2\n", 16, "models[0].mappings[0].bogus", `unknown key "bogus"`},
		{"mapping unknown provider", base + "[[models]]\nname = \"m\"\n[[models.mappings]]\nactual_model = \"x\"\nprovider = \"nope\"\npriority = 1\n", 14, "models[0].mappings[0].provider", `no provider named "nope"`},
		{"mapping disabled provider", base + "[[providers]]\nname = \"off\"\napi_key = \"k\"\nenabled = false\n[[models]]\nname = \"m\"\n[[models.mappings]]\nactual_model = \"x\"\nprovider = \"off\"\npriority = 1\n", 18, "models[0].mappings[0].provider", `provider "off" is disabled`},
		{"oauth without oauth_provider", "[router]\ndefault = \"claude-x\"\n[[providers]]\nname = \"p\"\nauth_type = \"oauth\"\nmodels = [\"claude-*\"]\n", 5, "providers[0].auth_type", `needs oauth_provider`},
		{"bad auth_type", base + "[[providers]]\nname = \"p\"\nauth_type = \"oath\"\n", 12, "providers[1].auth_type", `want "oauth" or "apikey", got "oath"`},
		{"api_key provider without key", base + "[[providers]]\nname = \"p\"\nauth_type = \"api_key\"\n", 10, "providers[1].api_key", `needs an api_key`},
		{"bad background_regex", "[router]\nbackground_regex = \"(\"\n" + strings.Replace(base, "[router]", "", 1), 2, "router.background_regex", "invalid regular expression"},
		{"bad auto_map_regex", strings.Replace(base, "[router]", "[router]\nauto_map_regex = \"[a-\"", 1), 3, "router.auto_map_regex", "invalid regular expression"},
		{"bad prompt rule regex", base + "[[router.prompt_rules]]\npattern = \"*\"\nmodel = \"x\"\n", 11, "router.prompt_rules[0].pattern", "invalid regular expression"},
		{"port zero", "[server]\nport = -1\n" + base, 2, "server.port", "want a port from 1 to 65535, got -1"},
		{"port too big", "[server]\nport = 65536\n" + base, 2, "server.port", "got 65536"},
		{"duplicate provider", base + "[[providers]]\nname = \"claude-max\"\napi_key = \"k\"\n", 11, "providers[1].name", `provider "claude-max" is defined twice`},
		{"duplicate model ignoring case", base + "[[models]]\nname = \"Fast\"\n[[models.mappings]]\nactual_model = \"x\"\nprovider = \"claude-max\"\n[[models]]\nname = \"fast\"\n[[models.mappings]]\nactual_model = \"x\"\nprovider = \"claude-max\"\n", 16, "models[1].name", `model "fast" is defined twice`},
		{"default resolves to nothing", strings.Replace(base, "claude-sonnet-4-5", "gpt-5", 1), 3, "router.default", `model "gpt-5" is neither`},
		{"default missing", strings.Replace(base, "default = \"claude-sonnet-4-5\"", "", 1), 2, "router.default", "set a default model"},
		{"default only on disabled provider", strings.Replace(base, "models = [", "enabled = false\nmodels = [", 1), 3, "router.default", "neither"},
		{"think resolves to nothing", strings.Replace(base, "[router]", "[router]\nthink = \"o3\"", 1), 3, "router.think", `model "o3" is neither`},
		{"model without mappings", base + "[[models]]\nname = \"m\"\n", 10, "models[0].mappings", "has no [[models.mappings]]"},
		{"bad base_url", base + "base_url = \"api.example.com\"\n", 10, "providers[0].base_url", "want an http:// or https:// URL"},
		{"bad oauth preset", base + "[oauth.anthropic-max]\npreset = \"max\"\n", 11, "oauth.anthropic-max.preset", `want "claude" or "console"`},
		{"bad allowed origin", "[server]\nallowed_origins = [\"example.com\"]\n" + base, 2, "server.allowed_origins[0]", "want an origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.toml", []byte(tt.toml))
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Parse: got %v, want a *config.Error", err)
			}
			for _, p := range cerr.Problems {
				if p.Key == tt.key && p.Line == tt.line && strings.Contains(p.Msg, tt.msg) {
					if !strings.HasPrefix(cerr.Error(), "test.toml: ") {
						t.Errorf("error does not name the file: %q", cerr.Error())
					}
					return
				}
			}
			t.Errorf("no problem {line %d, key %q, msg ~%q} in:\n%v", tt.line, tt.key, tt.msg, err)
		})
	}
}

func TestBadFileListsEveryProblem(t *testing.T) {
	data, err := os.ReadFile("../testdata/bad.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("testdata/bad.toml", data)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v, want *Error", err)
	}
	// Every line marked "problem" in the file is reported at that line.
	want := map[int]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "# problem") {
			want[i+1] = true
		}
	}
	got := map[int]bool{}
	for _, p := range cerr.Problems {
		got[p.Line] = true
	}
	for line := range want {
		if !got[line] {
			t.Errorf("line %d is marked as a problem but not reported; got:\n%v", line, err)
		}
	}
	if len(cerr.Problems) < len(want) {
		t.Errorf("got %d problems, want at least %d", len(cerr.Problems), len(want))
	}
}

func TestSeedConfigLoadsUnchanged(t *testing.T) {
	cfg, err := Load("../testdata/seed.toml")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := cfg.Model("CLAUDE-SONNET-4.5")
	if !ok || len(m.Mappings) != 2 {
		t.Fatalf("model claude-sonnet-4.5: got %+v, %v", m, ok)
	}
	if got := m.Mappings[0]; got.ActualModel != "claude-sonnet-4-5-20250929" || got.Provider != "claude-max" || got.Priority != 1 {
		t.Errorf("first mapping = %+v", got)
	}
	p, _ := cfg.Provider("claude-max")
	if !p.IsOAuth() || p.OAuthProvider != "anthropic-max" || !p.IsEnabled() {
		t.Errorf("claude-max = %+v", p)
	}
	if api, _ := cfg.Provider("anthropic-api"); api.AuthType != AuthAPIKey {
		t.Errorf(`auth_type "apikey" not normalised: %q`, api.AuthType)
	}
	if or, _ := cfg.Provider("openrouter"); or.IsEnabled() || or.AuthType != AuthAPIKey {
		t.Errorf("openrouter = %+v", or)
	}
	if cfg.Server.Timeouts.ConnectTimeoutMS != 10000 || cfg.Server.Port != 13456 {
		t.Errorf("server = %+v", cfg.Server)
	}
	if cfg.DefaultOAuthProvider() != "anthropic-max" {
		t.Errorf("DefaultOAuthProvider = %q", cfg.DefaultOAuthProvider())
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := Default()
	if cfg.Server.Host != "127.0.0.1" || cfg.Server.Port != 13456 {
		t.Errorf("server = %s", cfg.Addr())
	}
	p, ok := cfg.Provider("claude-max")
	if !ok || !p.IsOAuth() || p.OAuthProvider != "anthropic-max" {
		t.Fatalf("claude-max = %+v", p)
	}
	for _, model := range []string{"claude-opus-4-1-20250805", "claude-sonnet-4-5", "claude-haiku-4-5-20251001"} {
		if !cfg.resolves(model) {
			t.Errorf("%s does not reach the subscription", model)
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	// The commented examples are valid TOML once uncommented.
	uncommented := strings.ReplaceAll(DefaultTOML, "\n# [", "\n[")
	for _, k := range []string{"name", "provider_type", "auth_type", "api_key", "enabled", "models", "actual_model", "priority", "provider"} {
		uncommented = strings.ReplaceAll(uncommented, "\n# "+k+" =", "\n"+k+" =")
	}
	if _, err := Parse("uncommented", []byte(uncommented)); err != nil {
		t.Errorf("the default's examples do not load when uncommented: %v", err)
	}
	if !strings.Contains(uncommented, "\nname = \"anthropic-api\"") {
		t.Errorf("the default has no API-key provider example")
	}
}

func TestResolveEnv(t *testing.T) {
	t.Setenv("CCMUX_TEST_KEY", "from-env")
	t.Setenv("CCMUX_TEST_EMPTY", "")
	tests := []struct {
		value, want, err string
	}{
		{"plain", "plain", ""},
		{"", "", ""},
		{"$CCMUX_TEST_KEY", "from-env", ""},
		{"${CCMUX_TEST_KEY}", "from-env", ""},
		{"$CCMUX_TEST_MISSING", "", "environment variable CCMUX_TEST_MISSING (providers[0].api_key) is not set"},
		{"$CCMUX_TEST_EMPTY", "", "environment variable CCMUX_TEST_EMPTY (providers[0].api_key) is not set"},
	}
	for _, tt := range tests {
		got, err := Resolve(tt.value, "providers[0].api_key")
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %q", tt.value, got, err, tt.want, tt.err)
		}
	}
	cfg, err := Parse("t", []byte(base+"[[providers]]\nname = \"k\"\napi_key = \"$CCMUX_TEST_MISSING\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.ProviderAPIKey(1); err == nil || err.Error() != "environment variable CCMUX_TEST_MISSING (providers[1].api_key) is not set" {
		t.Errorf("ProviderAPIKey(1) error = %v", err)
	}
	cfg.Server.APIKey = "$CCMUX_TEST_KEY"
	if got, err := cfg.ServerAPIKey(); got != "from-env" || err != nil {
		t.Errorf("ServerAPIKey = %q, %v", got, err)
	}
}

func TestFirstRunCreatesDefault(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("CCMUX_CONFIG", "")
	path, isDefault, err := ResolvePath("")
	if err != nil || !isDefault || path != filepath.Join(home, ".claude-code-mux", "config.toml") {
		t.Fatalf("ResolvePath = %q, %v, %v", path, isDefault, err)
	}
	cfg, created, err := LoadOrCreate(path, isDefault)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate = %v, created %v", err, created)
	}
	if cfg.Path != path {
		t.Errorf("Path = %q", cfg.Path)
	}
	testsupport.AssertMode(t, filepath.Dir(path), 0o700)
	testsupport.AssertMode(t, path, 0o600)

	// The second run reads what is there and never overwrites it.
	if err := os.WriteFile(path, []byte(strings.Replace(DefaultTOML, "port = 13456", "port = 14000", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, created, err = LoadOrCreate(path, isDefault)
	if err != nil || created || cfg.Server.Port != 14000 {
		t.Fatalf("second LoadOrCreate = port %d, created %v, %v", cfg.Server.Port, created, err)
	}
}

func TestExplicitMissingFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, created, err := LoadOrCreate(path, false)
	if err == nil || created || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v, created %v", err, created)
	}
	if _, statErr := os.Stat(path); statErr == nil {
		t.Errorf("an explicit --config path was created")
	}
}

func TestPathPrecedence(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	tests := []struct {
		flag, env, want string
		isDefault       bool
	}{
		{"/from/flag.toml", "/from/env.toml", "/from/flag.toml", false},
		{"", "/from/env.toml", "/from/env.toml", false},
		{"", "", filepath.Join(home, ".claude-code-mux", "config.toml"), true},
	}
	for _, tt := range tests {
		t.Setenv("CCMUX_CONFIG", tt.env)
		got, isDefault, err := ResolvePath(tt.flag)
		if err != nil || got != tt.want || isDefault != tt.isDefault {
			t.Errorf("ResolvePath(%q) with CCMUX_CONFIG=%q = %q, %v, %v; want %q, %v", tt.flag, tt.env, got, isDefault, err, tt.want, tt.isDefault)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"claude-*", "claude-sonnet-4-5", true},
		{"claude-*", "Claude-Opus-4", true},
		{"claude-*", "gpt-5", false},
		{"*", "anything/with/slashes", true},
		{"z-ai/*", "z-ai/glm-4.6", true},
		{"glm-4.?", "glm-4.6", true},
		{"glm-4.?", "glm-4.10", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"*-haiku-*", "claude-haiku-4-5", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"", "", true},
		{"", "x", false},
	}
	for _, tt := range tests {
		if got := MatchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestAddresses(t *testing.T) {
	tests := []struct {
		host     string
		port     int
		addr     string
		baseURL  string
		wantWarn bool
	}{
		{"127.0.0.1", 13456, "127.0.0.1:13456", "http://127.0.0.1:13456", false},
		{"::1", 8080, "[::1]:8080", "http://[::1]:8080", false},
		{"0.0.0.0", 1, "0.0.0.0:1", "http://127.0.0.1:1", false},
	}
	for _, tt := range tests {
		c := &Config{Server: Server{Host: tt.host, Port: tt.port}}
		if c.Addr() != tt.addr || c.BaseURL() != tt.baseURL {
			t.Errorf("%s:%d: Addr %q BaseURL %q", tt.host, tt.port, c.Addr(), c.BaseURL())
		}
	}
}

func TestClaudeCodeMuxExtrasAreAcceptedWithWarnings(t *testing.T) {
	cfg, err := Parse("t", []byte(base+`
[server.tracing]
enabled = true

[[router.prompt_rules]]
pattern = "(?i)commit"
model = "claude-haiku-4-5"

[[providers]]
name = "gem"
provider_type = "gemini"
auth_type = "oauth"
oauth_provider = "gemini-cli"

[[providers]]
name = "vertex"
provider_type = "vertex-ai"
api_key = "k"
`))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(cfg.Warnings, "\n")
	for _, want := range []string{"server.tracing", "router.prompt_rules", `provider_type "gemini" with auth_type = "oauth"`, `provider_type "vertex-ai"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("no warning about %s in %q", want, joined)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, seed := range []string{base, DefaultTOML, "[server]\nport = 70000\n", "[[models]]\n[[models.mappings]]\n", "a = [", "[[providers]]\nname=1"} {
		f.Add([]byte(seed))
	}
	if data, err := os.ReadFile("../testdata/bad.toml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", cfg != nil, err)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}

// A password in a base_url is never printed, by config check or a validation error.
// TestBaseURLPasswordNotInErrors: a validation error about base_url never
// prints the password it may carry.
func TestBaseURLPasswordNotInErrors(t *testing.T) {
	_, err := Parse("c.toml", []byte("[[providers]]\nname = \"gw\"\nauth_type = \"api_key\"\napi_key = \"k\"\nbase_url = \"ftp://user:hunter2@gw.example\"\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("validation error %v", err)
	}
}

// Settings that must not be accepted: each is one error naming the key.
func TestUnsafeSettingsRefused(t *testing.T) {
	tests := []struct {
		name, toml, key string // key "" means the file is fine
	}{
		{"LAN host without a key", "[server]\nhost = \"0.0.0.0\"\n", "server.host"},
		{"LAN address without a key", "[server]\nhost = \"192.168.1.20\"\n", "server.host"},
		{"LAN host with a key", "[server]\nhost = \"0.0.0.0\"\napi_key = \"s3cret\"\n", ""},
		{"localhost", "[server]\nhost = \"localhost\"\n", ""},
		{"IPv6 loopback", "[server]\nhost = \"::1\"\n", ""},
		{"bracketed IPv6 loopback", "[server]\nhost = \"[::1]\"\n", ""},
		{"another loopback address", "[server]\nhost = \"127.0.0.2\"\n", ""},
		{"port 0", "[server]\nport = 0\n", "server.port"},
		{"port left out", "[server]\nhost = \"127.0.0.1\"\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.toml", []byte(tt.toml+base))
			switch {
			case tt.key == "" && err != nil:
				t.Errorf("want no error, got %v", err)
			case tt.key != "" && (err == nil || !strings.Contains(err.Error(), tt.key)):
				t.Errorf("want an error naming %s, got %v", tt.key, err)
			}
		})
	}
}

// Type errors are all listed, in file order, with the array index and in
// TOML's words (the decoder alone stops at the first and names Go types).
func TestTypeErrorsListedInFileOrder(t *testing.T) {
	data := "[server]\nport = \"x\"\n" + base + "provider_type = 3\n[[providers]]\nname = \"b\"\nenabled = 1\n[[models]]\nname = \"m\"\n[[models.mappings]]\nactual_model = \"a\"\nprovider = \"b\"\npriority = \"1\"\n"
	_, err := Parse("c.toml", []byte(data))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want a config error, got %v", err)
	}
	want := []Problem{
		{Line: 2, Key: "server.port", Msg: `want an integer, got the string "x"`},
		{Line: 12, Key: "providers[0].provider_type", Msg: "want a string, got the integer 3"},
		{Line: 15, Key: "providers[1].enabled", Msg: "want a boolean (true or false), got the integer 1"},
		{Line: 21, Key: "models[0].mappings[0].priority", Msg: `want an integer, got the string "1"`},
	}
	if len(cerr.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(cerr.Problems), len(want), err)
	}
	for i, p := range cerr.Problems {
		if p != want[i] {
			t.Errorf("problem %d: %+v, want %+v", i, p, want[i])
		}
	}
}

// Only Claude subscriptions have usage limits: not a console login, not
// another app's OAuth provider (gemini), not an API-key provider.
func TestSubscriptionLogin(t *testing.T) {
	cfg, err := Parse("c.toml", []byte(`
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "gemini"
provider_type = "gemini"
auth_type = "oauth"
oauth_provider = "gemini"
models = ["gemini-2.5-pro"]
[[providers]]
name = "max"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-max"
models = ["claude-*"]
[[providers]]
name = "console"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-console"
models = []
[[providers]]
name = "api"
provider_type = "anthropic"
auth_type = "apikey"
api_key = "k"
models = []
[oauth.anthropic-console]
preset = "console"
`))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", "anthropic-max", "", ""} {
		if got := cfg.SubscriptionLogin(i); got != want {
			t.Errorf("providers[%d] (%s): %q, want %q", i, cfg.Providers[i].Name, got, want)
		}
	}
}

// The logins requests need are the Claude ones an enabled provider uses;
// OAuthIDs lists every oauth_provider, another app's too.
func TestOAuthIDs(t *testing.T) {
	cfg, err := Parse("c.toml", []byte(`
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "gemini"
provider_type = "gemini"
auth_type = "oauth"
oauth_provider = "gemini"
models = ["gemini-2.5-pro"]
[[providers]]
name = "max"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-max"
models = ["claude-*"]
[[providers]]
name = "max-again"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-max"
models = []
[[providers]]
name = "off"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-off"
enabled = false
models = []
[[providers]]
name = "console"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-console"
models = []
[[providers]]
name = "api"
provider_type = "anthropic"
auth_type = "apikey"
api_key = "k"
models = []
[oauth.anthropic-console]
preset = "console"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		got, want []string
	}{
		{"OAuthIDs", cfg.OAuthIDs(), []string{"gemini", "anthropic-max", "anthropic-off", "anthropic-console"}},
		{"ClaudeOAuthIDs", cfg.ClaudeOAuthIDs(), []string{"anthropic-max", "anthropic-off", "anthropic-console"}},
		{"EnabledClaudeOAuthIDs", cfg.EnabledClaudeOAuthIDs(), []string{"anthropic-max", "anthropic-console"}},
		{"EnabledSubscriptionLogins", cfg.EnabledSubscriptionLogins(), []string{"anthropic-max"}},
	} {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestMappingsByPriority(t *testing.T) {
	m := Model{Name: "m", Mappings: []Mapping{
		{Provider: "c", Priority: 3}, {Provider: "a1", Priority: 1}, {Provider: "b", Priority: 2}, {Provider: "a2", Priority: 1}, {Provider: "zero"},
	}}
	var got []string
	for _, mp := range m.ByPriority() {
		got = append(got, mp.Provider)
	}
	if want := []string{"zero", "a1", "a2", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
	if m.Mappings[0].Provider != "c" {
		t.Error("ByPriority reordered the config's own mappings")
	}
}
