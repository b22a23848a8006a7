package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"ccmux/config"
	"ccmux/proxy"
)

// The tray lists the enabled Claude logins in file order and follows the
// one that serves router.default first.
func TestTrayLogins(t *testing.T) {
	// second is a second subscription, with a mapping of the default
	// model at priority (none when priority < 0).
	second := func(priority int, enabled bool) string {
		p := `
[[providers]]
name = "claude-work"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "claude-work"
enabled = ` + map[bool]string{true: "true", false: "false"}[enabled] + `
models = []
`
		if priority >= 0 {
			p += `
[[models.mappings]]
actual_model = "claude-sonnet-4-5"
priority = ` + strconv.Itoa(priority) + `
provider = "claude-work"
`
		}
		return p
	}
	apiDefault := `
[[providers]]
name = "api"
provider_type = "anthropic"
auth_type = "api_key"
api_key = "sk-test"
enabled = true
models = ["gpt-*"]
`
	tests := []struct {
		name    string
		toml    string
		ids     []string
		primary string
	}{
		{"the default config", config.DefaultTOML, []string{"anthropic-max"}, "anthropic-max"},
		{"a second subscription after the first", config.DefaultTOML + second(2, true), []string{"anthropic-max", "claude-work"}, "anthropic-max"},
		{"the second serves the default model first", config.DefaultTOML + second(0, true), []string{"anthropic-max", "claude-work"}, "claude-work"},
		{"a disabled subscription is not listed", config.DefaultTOML + second(-1, false), []string{"anthropic-max"}, "anthropic-max"},
		{"the default model on an API key: the first login", strings.Replace(config.DefaultTOML, `default = "claude-sonnet-4-5"`, `default = "gpt-5"`, 1) + second(2, true) + apiDefault,
			[]string{"anthropic-max", "claude-work"}, "anthropic-max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("t.toml", []byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			ids, primary := trayLogins(&proxy.Server{Config: cfg})
			if !slices.Equal(ids, tt.ids) || primary != tt.primary {
				t.Errorf("trayLogins = %q, %q; want %q, %q", ids, primary, tt.ids, tt.primary)
			}
		})
	}
}
