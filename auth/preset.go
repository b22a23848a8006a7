package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"

	"golang.org/x/oauth2"

	"ccmux/config"
)

// ClientID is Claude Code's public OAuth client id, used by both presets.
const ClientID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"

// claudeCodeRelease is the Claude Code release the values below were read
// from. They move between releases (claude.ai/oauth/authorize now fails at
// the consent step for some accounts): when they move again, change them
// here, the release with them, and the table in README.md's "OAuth
// endpoints". Every value can be overridden in [oauth.ID].
const claudeCodeRelease = "Claude Code 2.1.332"

// releaseValues are the OAuth values of claudeCodeRelease.
var releaseValues = struct {
	claudeAuthorize, consoleAuthorize, token, manualRedirect, success, apiKey string
	scopes                                                                    []string
}{
	claudeAuthorize:  "https://claude.com/cai/oauth/authorize",
	consoleAuthorize: "https://platform.claude.com/oauth/authorize",
	token:            "https://platform.claude.com/v1/oauth/token",
	manualRedirect:   "https://platform.claude.com/oauth/code/callback",
	success:          "https://platform.claude.com/oauth/code/success?app=claude-code",
	apiKey:           "https://api.anthropic.com/api/oauth/claude_cli/create_api_key",
	scopes: []string{"org:create_api_key", "user:profile", "user:inference",
		"user:sessions:claude_code", "user:mcp_servers", "user:file_upload"},
}

// Preset is an OAuth client configuration.
type Preset struct {
	Name         string // "claude" or "console"
	ClientID     string
	AuthorizeURL string
	TokenURL     string
	RedirectURI  string // manual (paste) flow only; loopback uses http://localhost:PORT/callback
	Scopes       []string
	// SuccessURL is where the browser goes after a loopback sign-in
	// succeeded; "" shows ccmux's own page instead.
	SuccessURL string
	APIKeyURL  string // console preset only: where the created API key comes from
	UsageURL   string // the subscription's 5-hour and weekly limits (GET, Bearer)
}

// Claude is the Pro/Max subscription preset.
func Claude() Preset {
	return Preset{
		Name:         "claude",
		ClientID:     ClientID,
		AuthorizeURL: releaseValues.claudeAuthorize,
		TokenURL:     releaseValues.token,
		RedirectURI:  releaseValues.manualRedirect,
		Scopes:       slices.Clone(releaseValues.scopes),
		SuccessURL:   releaseValues.success,
		UsageURL:     config.DefaultUsageURL,
	}
}

// Console is the preset that signs in to the Anthropic Console and then
// creates an API key with the access token.
func Console() Preset {
	return Preset{
		Name:         "console",
		ClientID:     ClientID,
		AuthorizeURL: releaseValues.consoleAuthorize,
		TokenURL:     releaseValues.token,
		RedirectURI:  releaseValues.manualRedirect,
		Scopes:       slices.Clone(releaseValues.scopes),
		SuccessURL:   releaseValues.success,
		APIKeyURL:    releaseValues.apiKey,
	}
}

// IsConsole reports whether the preset creates an API key after signing in.
func (p Preset) IsConsole() bool { return p.Name == "console" }

// PresetFor returns the preset for token-store id providerID: name ("claude",
// "console", or "" for the [oauth.ID] preset key, default "claude") with the
// fields set in [oauth.ID] of cfg (which may be nil) applied over it.
func PresetFor(cfg *config.Config, providerID, name string) (Preset, error) {
	var o config.OAuth
	if cfg != nil {
		o = cfg.OAuth[providerID]
	}
	if name == "" {
		name = o.Preset
	}
	var p Preset
	switch name {
	case "", "claude":
		p = Claude()
	case "console":
		p = Console()
	default:
		return Preset{}, fmt.Errorf("unknown login preset %q: want \"claude\" or \"console\"", name)
	}
	for _, f := range []struct {
		key  string
		val  string
		into *string
		url  bool
	}{
		{"client_id", o.ClientID, &p.ClientID, false},
		{"authorize_url", o.AuthorizeURL, &p.AuthorizeURL, true},
		{"token_url", o.TokenURL, &p.TokenURL, true},
		{"redirect_uri", o.RedirectURI, &p.RedirectURI, true},
		{"success_url", o.SuccessURL, &p.SuccessURL, true},
		{"api_key_url", o.APIKeyURL, &p.APIKeyURL, true},
		{"usage_url", o.UsageURL, &p.UsageURL, true},
	} {
		if f.val == "" {
			continue
		}
		if f.url {
			if u, err := url.Parse(f.val); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return Preset{}, fmt.Errorf("%s: oauth.%s.%s: want an http(s) URL, got %q", configPath(cfg), providerID, f.key, f.val)
			}
		}
		*f.into = f.val
	}
	if len(o.Scopes) > 0 {
		p.Scopes = append([]string(nil), o.Scopes...)
	}
	return p, nil
}

func configPath(cfg *config.Config) string {
	if cfg == nil || cfg.Path == "" {
		return "config"
	}
	return cfg.Path
}

// pkce is one login attempt's secrets: the verifier stays in this process,
// the state travels through the browser and must come back unchanged.
type pkce struct {
	verifier, state string
}

func newPKCE() pkce {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics on failure since Go 1.24)
	return pkce{verifier: oauth2.GenerateVerifier(), state: base64.RawURLEncoding.EncodeToString(b)}
}

// authCodeURL is the authorize URL for one attempt: code=true, client_id,
// response_type=code, redirect_uri, scope, S256 code_challenge and state.
func (p Preset) authCodeURL(redirectURI string, k pkce) string {
	c := oauth2.Config{
		ClientID:    p.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: p.AuthorizeURL, TokenURL: p.TokenURL},
		RedirectURL: redirectURI,
		Scopes:      p.Scopes,
	}
	return c.AuthCodeURL(k.state, oauth2.S256ChallengeOption(k.verifier), oauth2.SetAuthURLParam("code", "true"))
}
