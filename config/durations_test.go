package config

import (
	"errors"
	"strings"
	"testing"
)

// Every duration key has a range checked at load, with the key's line: a
// number that overflows a time.Duration (api_timeout_ms =
// 18446744073710 was ~0.45 ms) is refused instead of wrapping.
func TestDurationRanges(t *testing.T) {
	timeouts := func(kv string) string { return "[server.timeouts]\n" + kv + "\n" + base }
	poll := func(n string) string { return base + "\n[oauth.anthropic-max]\nusage_poll_seconds = " + n + "\n" }
	tests := []struct {
		name, toml string
		line       int    // 0: accepted
		key, msg   string // of the one problem
	}{
		{"api timeout overflowing", timeouts("api_timeout_ms = 18446744073710"), 2, "server.timeouts.api_timeout_ms", "want milliseconds from 1 to 86400000 (24 hours), or 0 for the built-in 10m0s; got 18446744073710"},
		{"connect timeout over a day", timeouts("connect_timeout_ms = 86400001"), 2, "server.timeouts.connect_timeout_ms", "got 86400001"},
		{"stream idle negative", timeouts("stream_idle_timeout_ms = -1"), 2, "server.timeouts.stream_idle_timeout_ms", "or 0 for the built-in 5m0s; got -1"},
		{"usage poll overflowing", poll("18446744073710"), 12, "oauth.anthropic-max.usage_poll_seconds", "want seconds from 60 to 86400 (24 hours), or 0 to turn polling off; got 18446744073710"},
		{"usage poll every second", poll("1"), 12, "oauth.anthropic-max.usage_poll_seconds", "got 1"},
		{"usage poll negative", poll("-5"), 12, "oauth.anthropic-max.usage_poll_seconds", "got -5"},
		{"a day of timeouts", timeouts("api_timeout_ms = 86400000\nconnect_timeout_ms = 1\nstream_idle_timeout_ms = 0"), 0, "", ""},
		{"usage poll off", poll("0"), 0, "", ""},
		{"usage poll a minute", poll("60"), 0, "", ""},
		{"usage poll a day", poll("86400"), 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.toml", []byte(tt.toml))
			if tt.line == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("got %v, want one problem", err)
			}
			if p := ce.Problems[0]; p.Line != tt.line || p.Key != tt.key || !strings.Contains(p.Msg, tt.msg) {
				t.Errorf("got line %d %s: %s\nwant line %d %s: …%s…", p.Line, p.Key, p.Msg, tt.line, tt.key, tt.msg)
			}
		})
	}
}
