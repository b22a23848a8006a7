package config

import (
	"sort"
	"time"
)

// Ranges of the duration keys. Beyond them a number is a mistake, and one
// big enough wraps around when it becomes a time.Duration
// (api_timeout_ms = 18446744073710 was 0.45 ms).
const (
	// MaxTimeoutMS bounds [server.timeouts] *_ms keys: 24 hours.
	MaxTimeoutMS = 24 * 60 * 60 * 1000
	// MinUsagePollSeconds and MaxUsagePollSeconds bound [oauth.ID]
	// usage_poll_seconds other than 0 (off): a minute to a day. The usage
	// endpoint answers 429 to a client asking more often than every minute.
	MinUsagePollSeconds = 60
	MaxUsagePollSeconds = 24 * 60 * 60
)

// durations checks that every duration key is in its range.
func (v *validator) durations() {
	t := v.cfg.Server.Timeouts
	for _, d := range []struct {
		key string
		ms  int
		def time.Duration // the built-in value 0 stands for
	}{
		{"server.timeouts.api_timeout_ms", t.APITimeoutMS, 10 * time.Minute},
		{"server.timeouts.connect_timeout_ms", t.ConnectTimeoutMS, 10 * time.Second},
		{"server.timeouts.stream_idle_timeout_ms", t.StreamIdleTimeoutMS, 5 * time.Minute},
	} {
		if d.ms < 0 || d.ms > MaxTimeoutMS {
			v.fail(d.key, "want milliseconds from 1 to %d (24 hours), or 0 for the built-in %s; got %d", MaxTimeoutMS, d.def, d.ms)
		}
	}
	ids := make([]string, 0, len(v.cfg.OAuth))
	for id := range v.cfg.OAuth {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := v.cfg.OAuth[id].UsagePollSeconds
		if p != nil && *p != 0 && (*p < MinUsagePollSeconds || *p > MaxUsagePollSeconds) {
			v.fail("oauth."+id+".usage_poll_seconds", "want seconds from %d to %d (24 hours), or 0 to turn polling off; got %d", MinUsagePollSeconds, MaxUsagePollSeconds, *p)
		}
	}
}
