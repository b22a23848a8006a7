package auth

import "time"

// Bounds on what a usage source (an answer's rate-limit headers, the usage
// endpoint, the snapshot) may make ccmux keep. A subscription has a
// handful of windows with short names; anything past these is not one.
const (
	// MaxWindows is how many usage windows are kept per login.
	MaxWindows = 16
	// MaxWindowName bounds a window's name, in bytes.
	MaxWindowName = 64
	// MaxResetAhead bounds how far ahead a reset time is believed: the
	// longest window is a week. A later one (reset: 9999999999, the year
	// 2286) would keep a subscription refused for centuries.
	MaxResetAhead = 7 * 24 * time.Hour
)

// CapReset returns t, or now + MaxResetAhead when t is later than that.
func CapReset(t, now time.Time) time.Time {
	if limit := now.Add(MaxResetAhead); t.After(limit) {
		return limit
	}
	return t
}

// ValidWindowName reports whether name may name a window: 1 to
// MaxWindowName letters, digits, '_', '-' or '.'.
func ValidWindowName(name string) bool {
	if name == "" || len(name) > MaxWindowName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// BoundWindows sorts ws (SortWindows) and keeps the first MaxWindows with
// valid names, each reset capped at now + MaxResetAhead. It reuses ws.
func BoundWindows(ws []UsageWindow, now time.Time) []UsageWindow {
	out := ws[:0]
	for _, w := range ws {
		if !ValidWindowName(w.Name) {
			continue
		}
		if w.ResetsAt != nil {
			t := CapReset(*w.ResetsAt, now)
			w.ResetsAt = &t
		}
		out = append(out, w)
	}
	SortWindows(out)
	if len(out) > MaxWindows {
		clear(out[MaxWindows:])
		out = out[:MaxWindows]
	}
	return out
}
