// Package config owns ccmux's config.toml: the claude-code-mux schema plus [oauth.*],
// the built-in default, validation and where files live (~/.claude-code-mux).
// It reads files and the environment; it never touches the network or tokens.
package config

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Default values for keys a file may leave out.
const (
	DefaultHost                 = "127.0.0.1"
	DefaultPort                 = 13456
	DefaultBackgroundRegex      = "(?i)claude.*haiku"
	DefaultLongContextThreshold = 60000
	DefaultAnthropicBaseURL     = "https://api.anthropic.com"
)

// Config is one loaded config.toml.
type Config struct {
	Server    Server           `toml:"server"`
	Router    Router           `toml:"router"`
	Providers []Provider       `toml:"providers"`
	Models    []Model          `toml:"models"`
	OAuth     map[string]OAuth `toml:"oauth"`
	Dashboard Dashboard        `toml:"dashboard"`

	// Path is the file the config was read from ("" for the built-in default).
	Path string `toml:"-"`
	// Warnings are problems that do not stop ccmux, such as claude-code-mux
	// keys it accepts but ignores. Each is one sentence.
	Warnings []string `toml:"-"`

	lines map[string]int // each key's line in the file, for Locate
}

// Server is the [server] table.
type Server struct {
	Host string `toml:"host"`
	Port int    `toml:"port"`
	// APIKey, when set, must be sent by clients (x-api-key or Bearer).
	// "$NAME" reads the environment variable NAME; see ServerAPIKey.
	APIKey string `toml:"api_key"`
	// AllowedOrigins lists browser origins allowed to call the server.
	AllowedOrigins []string `toml:"allowed_origins"`

	// Accepted for claude-code-mux compatibility.
	LogLevel string   `toml:"log_level"`
	Timeouts Timeouts `toml:"timeouts"`
	Tracing  Tracing  `toml:"tracing"`
}

// Timeouts is [server.timeouts] (claude-code-mux). Zero means the built-in value.
type Timeouts struct {
	// APITimeoutMS bounds the wait for an upstream's response headers.
	APITimeoutMS int `toml:"api_timeout_ms"`
	// ConnectTimeoutMS bounds dialing an upstream.
	ConnectTimeoutMS int `toml:"connect_timeout_ms"`
	// StreamIdleTimeoutMS is the longest silence between upstream reads
	// once an answer started (default 300000); past it the answer ends
	// with an error instead of hanging.
	StreamIdleTimeoutMS int `toml:"stream_idle_timeout_ms"`
}

// Tracing is claude-code-mux's [server.tracing]; ccmux accepts and ignores it.
type Tracing struct {
	Enabled          bool   `toml:"enabled"`
	Path             string `toml:"path"`
	OmitSystemPrompt bool   `toml:"omit_system_prompt"`
}

// Router is the [router] table: rules that may replace the requested model.
type Router struct {
	Default              string `toml:"default"`
	Background           string `toml:"background"`
	BackgroundRegex      string `toml:"background_regex"`
	Think                string `toml:"think"`
	WebSearch            string `toml:"websearch"`
	LongContext          string `toml:"long_context"`
	LongContextThreshold int    `toml:"long_context_threshold"`
	AutoMapRegex         string `toml:"auto_map_regex"`
	// ThinkExemptModels are requested models the think rule leaves alone.
	ThinkExemptModels []string `toml:"think_exempt_models"`

	// PromptRules is claude-code-mux's prompt routing; accepted, not applied.
	PromptRules []PromptRule `toml:"prompt_rules"`
}

// PromptRule is one [[router.prompt_rules]] entry (claude-code-mux).
type PromptRule struct {
	Pattern    string `toml:"pattern"`
	Model      string `toml:"model"`
	StripMatch bool   `toml:"strip_match"`
}

// Auth types of a provider.
const (
	AuthAPIKey = "api_key"
	AuthOAuth  = "oauth"
)

// Provider is one [[providers]] entry.
type Provider struct {
	Name         string `toml:"name"`
	ProviderType string `toml:"provider_type"`
	// AuthType is "oauth" or "api_key" ("apikey" is accepted and normalised).
	AuthType string `toml:"auth_type"`
	// OAuthProvider is the token-store id used when AuthType is "oauth".
	OAuthProvider string `toml:"oauth_provider"`
	// APIKey is the key for AuthType "api_key"; "$NAME" reads the environment.
	APIKey  string `toml:"api_key"`
	BaseURL string `toml:"base_url"`
	// Enabled defaults to true when the key is absent.
	Enabled *bool `toml:"enabled"`
	// Models are names or globs (*, ?) forwarded unchanged to this provider.
	Models []string `toml:"models"`

	// AllowInsecure lets an OpenAI-type provider's base_url be http://
	// beyond loopback (a model server elsewhere on the LAN).
	AllowInsecure bool `toml:"allow_insecure"`

	// Accepted for claude-code-mux compatibility (Vertex AI providers).
	ProjectID string `toml:"project_id"`
	Location  string `toml:"location"`
}

// IsEnabled reports whether the provider takes requests.
func (p Provider) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// IsOAuth reports whether the provider authenticates with a stored OAuth token.
func (p Provider) IsOAuth() bool { return p.AuthType == AuthOAuth }

// Upstream returns the base URL requests go to: base_url when set, else the
// built-in URL of the provider's type (claude-code-mux's, for vendors), else
// "" for a type that has none.
func (p Provider) Upstream() string {
	if p.BaseURL != "" {
		return strings.TrimRight(p.BaseURL, "/")
	}
	if u, ok := openaiTypes[strings.ToLower(p.ProviderType)]; ok {
		return u
	}
	return anthropicTypes[strings.ToLower(p.ProviderType)]
}

// anthropicTypes maps each provider_type that speaks the Anthropic Messages
// API to its built-in base URL. The vendor URLs are the ones claude-code-mux
// uses for these types (src/providers/anthropic_compatible.rs), so a file
// without base_url sends each vendor's key to that vendor in both programs.
// "" means the type has no built-in URL and needs base_url. The types that
// speak OpenAI Chat Completions are in openaiTypes; others (vertex-ai)
// are loaded but skipped by the proxy, with a warning.
var anthropicTypes = map[string]string{
	"anthropic":            DefaultAnthropicBaseURL,
	"z.ai":                 "https://api.z.ai/api/anthropic",
	"zai":                  "https://api.z.ai/api/anthropic", // ccmux's spelling of z.ai
	"minimax":              "https://api.minimax.io/anthropic",
	"zenmux":               "https://zenmux.ai/api/anthropic",
	"kimi-coding":          "https://api.kimi.com/coding",
	"kimi":                 "",
	"anthropic-compatible": "",
}

// SpeaksAnthropic reports whether ccmux can forward Messages API requests to p.
func (p Provider) SpeaksAnthropic() bool {
	_, ok := anthropicTypes[strings.ToLower(p.ProviderType)]
	return ok
}

// RedactURL returns rawURL fit to print: user names, passwords and query
// values (where vendors sometimes take keys) are replaced by "xxxxx".
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Model is one [[models]] entry: a name clients send and where it goes.
type Model struct {
	Name     string    `toml:"name"`
	Mappings []Mapping `toml:"mappings"`
}

// ByPriority returns m's mappings in the order they are tried: lowest
// priority number first, equal priorities in file order.
func (m Model) ByPriority() []Mapping {
	maps := slices.Clone(m.Mappings)
	slices.SortStableFunc(maps, func(a, b Mapping) int { return cmp.Compare(a.Priority, b.Priority) })
	return maps
}

// Mapping sends a model to a provider as ActualModel; priority 1 is tried first.
type Mapping struct {
	ActualModel string `toml:"actual_model"`
	Priority    int    `toml:"priority"`
	Provider    string `toml:"provider"`

	// Accepted for claude-code-mux compatibility; not applied.
	InjectContinuationPrompt bool `toml:"inject_continuation_prompt"`
}

// OAuth is an [oauth.ID] table overriding fields of a login preset.
type OAuth struct {
	// Preset is "claude" (Pro/Max) or "console" (creates an API key).
	Preset       string   `toml:"preset"`
	ClientID     string   `toml:"client_id"`
	AuthorizeURL string   `toml:"authorize_url"`
	TokenURL     string   `toml:"token_url"`
	RedirectURI  string   `toml:"redirect_uri"`
	Scopes       []string `toml:"scopes"`
	APIKeyURL    string   `toml:"api_key_url"`
	// SuccessURL is where the browser goes after a loopback sign-in.
	SuccessURL string `toml:"success_url"`
	// UsageURL is the subscription's usage endpoint (see DefaultUsageURL).
	UsageURL string `toml:"usage_url"`
	// UsagePollSeconds is how often the usage endpoint is asked while
	// signed in; nil means DefaultUsagePollSeconds, 0 turns polling off.
	UsagePollSeconds *int `toml:"usage_poll_seconds"`
}

// Usage endpoint defaults for [oauth.ID].
const (
	DefaultUsageURL         = "https://api.anthropic.com/api/oauth/usage"
	DefaultUsagePollSeconds = 300
)

// UsagePoll is how often the usage endpoint of login id is polled; 0 means never.
func (c *Config) UsagePoll(id string) time.Duration {
	secs := DefaultUsagePollSeconds
	if o, ok := c.OAuth[id]; ok && o.UsagePollSeconds != nil {
		secs = *o.UsagePollSeconds
	}
	return time.Duration(max(secs, 0)) * time.Second
}

// Provider returns the provider named name (exact match) and whether it exists.
func (c *Config) Provider(name string) (Provider, bool) {
	for _, p := range c.Providers {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// Model returns the [[models]] entry whose name equals name, ignoring case.
func (c *Config) Model(name string) (Model, bool) {
	for _, m := range c.Models {
		if strings.EqualFold(m.Name, name) {
			return m, true
		}
	}
	return Model{}, false
}

// Addr is the proxy's listen address, host:port.
func (c *Config) Addr() string {
	host := c.Server.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s:%d", host, c.Server.Port)
}

// BaseURL is what clients set ANTHROPIC_BASE_URL to.
func (c *Config) BaseURL() string {
	host := c.Server.Host
	switch host {
	case "0.0.0.0", "":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return fmt.Sprintf("http://%s:%d", host, c.Server.Port)
}

// DefaultOAuthProvider is the token-store id `ccmux login` uses without
// --provider: the first of ClaudeOAuthIDs, else "anthropic-max".
func (c *Config) DefaultOAuthProvider() string {
	if ids := c.ClaudeOAuthIDs(); len(ids) > 0 {
		return ids[0]
	}
	return "anthropic-max"
}

// ClaudeOAuthIDs are the token-store ids of the Claude OAuth providers, in
// file order without repeats: provider_type "anthropic" with auth_type
// "oauth" and an [oauth.ID] preset, if any, of "claude" or "console". Other
// OAuth providers (gemini, openai) name logins that other apps manage.
func (c *Config) ClaudeOAuthIDs() []string {
	var ids []string
	for _, p := range c.Providers {
		if _, ok := c.claudePreset(p); ok && !slices.Contains(ids, p.OAuthProvider) {
			ids = append(ids, p.OAuthProvider)
		}
	}
	return ids
}

// EnabledClaudeOAuthIDs are the ClaudeOAuthIDs an enabled OAuth provider
// uses: the logins requests need.
func (c *Config) EnabledClaudeOAuthIDs() []string {
	return slices.DeleteFunc(c.ClaudeOAuthIDs(), func(id string) bool {
		return !slices.ContainsFunc(c.Providers, func(p Provider) bool {
			return p.IsEnabled() && p.IsOAuth() && p.OAuthProvider == id
		})
	})
}

// EnabledSubscriptionLogins are the SubscriptionLogin ids of the enabled
// providers, in file order without repeats: the logins whose usage limits
// ccmux polls and shows.
func (c *Config) EnabledSubscriptionLogins() []string {
	var ids []string
	for i, p := range c.Providers {
		if id := c.SubscriptionLogin(i); id != "" && p.IsEnabled() && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// OAuthIDs are the oauth_provider ids the providers name, Claude's or
// another app's, in file order without repeats.
func (c *Config) OAuthIDs() []string {
	var ids []string
	for _, p := range c.Providers {
		if p.IsOAuth() && p.OAuthProvider != "" && !slices.Contains(ids, p.OAuthProvider) {
			ids = append(ids, p.OAuthProvider)
		}
	}
	return ids
}

// claudePreset reports whether p is a Claude OAuth provider and with which
// [oauth.ID] preset ("" when the table does not set one, meaning claude).
func (c *Config) claudePreset(p Provider) (preset string, ok bool) {
	if !p.IsOAuth() || p.OAuthProvider == "" || !strings.EqualFold(p.ProviderType, "anthropic") {
		return "", false
	}
	preset = c.OAuth[p.OAuthProvider].Preset
	return preset, preset == "" || preset == "claude" || preset == "console"
}

// SubscriptionLogin is the token-store id of providers[i] when it is a
// Claude subscription (one of ClaudeOAuthIDs whose preset is not
// "console"): the logins that have usage limits. Otherwise "".
func (c *Config) SubscriptionLogin(i int) string {
	p := c.Providers[i]
	if preset, ok := c.claudePreset(p); !ok || preset == "console" {
		return ""
	}
	return p.OAuthProvider
}

// ServerAPIKey returns server.api_key with "$NAME" resolved.
func (c *Config) ServerAPIKey() (string, error) {
	return Resolve(c.Server.APIKey, "server.api_key")
}

// ProviderAPIKey returns providers[i].api_key with "$NAME" resolved.
func (c *Config) ProviderAPIKey(i int) (string, error) {
	return Resolve(c.Providers[i].APIKey, fmt.Sprintf("providers[%d].api_key", i))
}

// Resolve returns value, or the environment variable it names when it has the
// form "$NAME". key names the setting in the error for a missing variable.
func Resolve(value, key string) (string, error) {
	name, ok := strings.CutPrefix(value, "$")
	if !ok || name == "" {
		return value, nil
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "{"), "}")
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return "", &EnvError{Name: name, Key: key}
	}
	return v, nil
}

// EnvError reports a "$NAME" value whose variable is not set.
type EnvError struct {
	Name string // the variable
	Key  string // the setting, e.g. providers[0].api_key
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("environment variable %s (%s) is not set", e.Name, e.Key)
}

// MatchGlob reports whether name matches pattern, ignoring case, where "*"
// matches any run of characters (slashes included) and "?" any one character.
func MatchGlob(pattern, name string) bool {
	p, n := strings.ToLower(pattern), strings.ToLower(name)
	// Iterative matcher with one backtrack point: linear in practice, no recursion.
	pi, ni, star, mark := 0, 0, -1, 0
	for ni < len(n) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == n[ni]):
			pi++
			ni++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ni
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
