package fakeanthropic

import (
	"net/http"
	"strconv"
	"time"
)

// Window is one usage window for Unified: its short name as in the headers
// (5h, 7d, 7d_opus, …), utilization as a fraction, reset time and status.
type Window struct {
	Name        string
	Utilization float64
	Reset       time.Time
	Status      string
}

// Unified returns the anthropic-ratelimit-unified-* headers a Claude
// subscription's answer carries: the overall status and reset, the
// representative claim (the first window's long name) and each window's
// utilization, reset and status.
func Unified(status string, reset time.Time, windows ...Window) http.Header {
	h := http.Header{}
	h.Set("anthropic-ratelimit-unified-status", status)
	if !reset.IsZero() {
		h.Set("anthropic-ratelimit-unified-reset", strconv.FormatInt(reset.Unix(), 10))
	}
	for i, w := range windows {
		p := "anthropic-ratelimit-unified-" + w.Name + "-"
		h.Set(p+"utilization", strconv.FormatFloat(w.Utilization, 'f', -1, 64))
		if !w.Reset.IsZero() {
			h.Set(p+"reset", strconv.FormatInt(w.Reset.Unix(), 10))
		}
		if w.Status != "" {
			h.Set(p+"status", w.Status)
		}
		if i == 0 {
			claim := map[string]string{"5h": "five_hour", "7d": "seven_day"}[w.Name]
			if claim == "" {
				claim = w.Name
			}
			h.Set("anthropic-ratelimit-unified-representative-claim", claim)
		}
	}
	return h
}
