package auth

import (
	"testing"
	"time"

	"ccmux/config"
)

// Whether a stored login counts as expired, and whether requests can still
// use it, is decided here once for `ccmux status` and the tray.
func TestAccountExpiryRules(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name            string
		a               Account
		expired, usable bool
	}{
		{"valid token", Account{ExpiresAt: now.Add(time.Hour)}, false, true},
		{"expired, will refresh", Account{ExpiresAt: now.Add(-time.Hour)}, true, true},
		{"expiring this instant", Account{ExpiresAt: now}, true, true},
		{"expired, refresh failed", Account{ExpiresAt: now.Add(-time.Hour), LastError: "invalid_grant"}, true, false},
		{"valid, last refresh failed", Account{ExpiresAt: now.Add(time.Hour), LastError: "503"}, false, true},
		{"API key", Account{APIKey: true, LastError: "x"}, false, true},
		{"another app's", Account{Foreign: true, ExpiresAt: now.Add(time.Hour)}, false, false},
	}
	for _, tt := range tests {
		if got := tt.a.Expired(now); got != tt.expired {
			t.Errorf("%s: Expired = %v, want %v", tt.name, got, tt.expired)
		}
		if got := tt.a.Usable(now); got != tt.usable {
			t.Errorf("%s: Usable = %v, want %v", tt.name, got, tt.usable)
		}
	}
}

func TestSignedInEverywhere(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cfg, err := config.Parse("c.toml", []byte(config.DefaultTOML+`
[[providers]]
name = "off"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "anthropic-off"
enabled = false
models = []
`))
	if err != nil {
		t.Fatal(err)
	}
	fine := Account{ProviderID: "anthropic-max", ExpiresAt: now.Add(time.Hour)}
	failed := Account{ProviderID: "anthropic-max", ExpiresAt: now.Add(-time.Hour), LastError: "invalid_grant"}
	foreign := Account{ProviderID: "anthropic-max", Foreign: true}
	other := Account{ProviderID: "gemini", ExpiresAt: now.Add(time.Hour)}
	tests := []struct {
		name     string
		accounts []Account
		want     bool
	}{
		{"signed in (a disabled provider's login is not needed)", []Account{fine}, true},
		{"nothing stored", nil, false},
		{"only another login", []Account{other}, false},
		{"session ended", []Account{failed}, false},
		{"another app's record under the id", []Account{foreign}, false},
	}
	for _, tt := range tests {
		if got := SignedInEverywhere(cfg, tt.accounts, now); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
