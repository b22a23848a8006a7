package config

import (
	"strings"
	"testing"
	"time"
)

func TestUsagePollSeconds(t *testing.T) {
	cfg, err := Parse("config.toml", []byte(DefaultTOML+"\n[oauth.anthropic-max]\nusage_url = \"http://127.0.0.1:1/usage\"\nusage_poll_seconds = 0\n\n[oauth.other]\nusage_poll_seconds = 60\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.UsagePoll("anthropic-max"); got != 0 {
		t.Errorf("usage_poll_seconds = 0: got %v, want off", got)
	}
	if got := cfg.UsagePoll("other"); got != time.Minute {
		t.Errorf("usage_poll_seconds = 60: got %v", got)
	}
	if got := cfg.UsagePoll("unset"); got != 300*time.Second {
		t.Errorf("default: got %v, want 5m", got)
	}
	if got := cfg.OAuth["anthropic-max"].UsageURL; got != "http://127.0.0.1:1/usage" {
		t.Errorf("usage_url: %q", got)
	}
	_, err = Parse("config.toml", []byte(DefaultTOML+"\n[oauth.anthropic-max]\nusage_poll_seconds = -5\n"))
	if err == nil || !strings.Contains(err.Error(), "oauth.anthropic-max.usage_poll_seconds") {
		t.Errorf("a negative interval: got %v, want an error naming the key", err)
	}
}
