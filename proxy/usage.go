package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"ccmux/auth"
)

// unifiedPrefix starts the rate-limit headers Anthropic sends with answers
// to a Claude subscription's (OAuth) requests.
const unifiedPrefix = "Anthropic-Ratelimit-Unified-"

// unifiedReading is what one answer's anthropic-ratelimit-unified-* headers say.
type unifiedReading struct {
	Status              string    // allowed, allowed_warning, rejected
	Reset               time.Time // when the binding limit resets; zero if not sent
	RepresentativeClaim string    // the window that binds, e.g. five_hour
	Windows             []auth.UsageWindow
	Overage             overage // pay-as-you-go beyond the plan, when sent
}

// overage is the anthropic-ratelimit-unified-overage-* headers.
type overage struct {
	Status         string
	Reset          time.Time
	DisabledReason string
}

// rejected reports whether the answer says the subscription refuses requests.
func (u unifiedReading) rejected() bool {
	if u.Status == "rejected" {
		return true
	}
	for _, w := range u.Windows {
		if w.Status == "rejected" {
			return true
		}
	}
	return false
}

// parseUnified reads the anthropic-ratelimit-unified-* headers: status,
// reset, representative-claim, and for every window <w> (5h, 7d and any
// that appear later) <w>-utilization (a fraction), <w>-reset (Unix seconds)
// and <w>-status. Values that do not parse are ignored. ok is false when
// the answer carries no usable unified header. It reads the headers once
// and keeps at most auth.MaxWindows windows (the 5-hour and weekly ones
// always): an answer naming thousands is not believed past that.
func parseUnified(h http.Header) (r unifiedReading, ok bool) {
	// A window is made only for a value that parsed, so every one made is
	// reported; an answer with no window headers makes no map.
	var windows map[string]*auth.UsageWindow
	window := func(short string) *auth.UsageWindow {
		name := auth.WindowName(short)
		w := windows[name]
		if w == nil {
			if len(windows) >= auth.MaxWindows && name != "five_hour" && name != "seven_day" || !auth.ValidWindowName(name) {
				return nil
			}
			if windows == nil {
				windows = map[string]*auth.UsageWindow{}
			}
			w = &auth.UsageWindow{Name: name}
			windows[name] = w
		}
		return w
	}
	for key, vals := range h {
		rest, found := strings.CutPrefix(key, unifiedPrefix)
		if !found || len(vals) == 0 {
			continue
		}
		v := strings.TrimSpace(vals[0])
		field := strings.ToLower(rest)
		switch field {
		case "status":
			if validStatus(v) {
				r.Status, ok = v, true
			}
			continue
		case "reset":
			if t, good := unixTime(v); good {
				r.Reset, ok = t, true
			}
			continue
		case "representative-claim":
			if v != "" && len(v) <= 64 {
				r.RepresentativeClaim, ok = auth.WindowName(v), true
			}
			continue
		case "overage-status":
			if validStatus(v) {
				r.Overage.Status, ok = v, true
			}
			continue
		case "overage-reset":
			if t, good := unixTime(v); good {
				r.Overage.Reset, ok = t, true
			}
			continue
		case "overage-disabled-reason":
			if v != "" && len(v) <= 64 {
				r.Overage.DisabledReason, ok = v, true
			}
			continue
		}
		i := strings.LastIndexByte(field, '-')
		if i <= 0 || i > 32 {
			continue
		}
		short, attr := field[:i], field[i+1:]
		switch attr {
		case "utilization":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 100 || f != f {
				continue
			}
			if w := window(short); w != nil {
				w.Utilization = f
			}
		case "reset":
			t, good := unixTime(v)
			if !good {
				continue
			}
			if w := window(short); w != nil {
				w.ResetsAt = &t
			}
		case "status":
			if !validStatus(v) {
				continue
			}
			if w := window(short); w != nil {
				w.Status = v
			}
		default:
			continue
		}
		ok = true
	}
	for _, w := range windows {
		r.Windows = append(r.Windows, *w)
	}
	auth.SortWindows(r.Windows)
	if len(r.Windows) > auth.MaxWindows { // the two known ones came late
		r.Windows = r.Windows[:auth.MaxWindows]
	}
	return r, ok
}

// capResets bounds every reset time the reading holds at
// auth.MaxResetAhead from now.
func (u *unifiedReading) capResets(now time.Time) {
	if !u.Reset.IsZero() {
		u.Reset = auth.CapReset(u.Reset, now)
	}
	if !u.Overage.Reset.IsZero() {
		u.Overage.Reset = auth.CapReset(u.Overage.Reset, now)
	}
	for i, w := range u.Windows {
		if w.ResetsAt != nil {
			t := auth.CapReset(*w.ResetsAt, now)
			u.Windows[i].ResetsAt = &t
		}
	}
}

func validStatus(v string) bool {
	switch v {
	case "allowed", "allowed_warning", "rejected":
		return true
	}
	return false
}

// unixTime reads Unix seconds between 2001 and 2286 (anything else is garbage).
func unixTime(v string) (time.Time, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1e9 || n >= 1e10 {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}
