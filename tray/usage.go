package tray

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Limit is one usage window of a Claude subscription: 5-hour, weekly, …
type Limit struct {
	Name        string    // five_hour, seven_day, seven_day_opus, or Anthropic's name for another
	Utilization float64   // a fraction: 0.42 is 42 %
	ResetsAt    time.Time // zero when not known
	Status      string    // allowed, allowed_warning, rejected ("" when not known)
}

// Usage is what is known of the subscription's limits.
type Usage struct {
	Provider     string    // the provider's name in the config, e.g. claude-max
	UpdatedAt    time.Time // zero until a number came
	LimitedUntil time.Time // non-zero while the subscription is spent
	Fallback     string    // the provider requests go to while it is spent, "" for none
	Windows      []Limit
}

// UsageSource is what the tray needs to show the subscriptions' limits.
type UsageSource interface {
	// Usage returns the current numbers of login (a token-store id); false
	// when it is no subscription to show limits for.
	Usage(login string) (Usage, bool)
	// Changed receives when the numbers may have changed.
	Changed() <-chan struct{}
}

// Thresholds at which a window is told about, once per reset period.
const (
	warnAt   = 0.80
	urgentAt = 0.95
	// iconWarnAt gives the icon its warning look.
	iconWarnAt = 0.90
	// staleAfter: older numbers show their age.
	staleAfter = 15 * time.Minute
)

// Spent reports whether the window refuses requests until it resets.
func (l Limit) Spent() bool { return l.Status == "rejected" || l.Utilization >= 1 }

// LimitLabel names a window for people: "5-hour limit", "Weekly limit",
// "Weekly (Opus)"; a window ccmux does not know keeps Anthropic's name.
func LimitLabel(name string) string {
	switch name {
	case "five_hour":
		return "5-hour limit"
	case "seven_day":
		return "Weekly limit"
	}
	for prefix, label := range map[string]string{"five_hour_": "5-hour", "seven_day_": "Weekly"} {
		if rest, ok := strings.CutPrefix(name, prefix); ok && rest != "" {
			return fmt.Sprintf("%s (%s)", label, titleWords(rest))
		}
	}
	return name
}

// shortLabel is the label inside a sentence: "5-hour", "weekly", "weekly (Opus)".
func shortLabel(name string) string {
	l := strings.TrimSuffix(LimitLabel(name), " limit")
	if strings.HasPrefix(l, "Weekly") {
		l = "weekly" + strings.TrimPrefix(l, "Weekly")
	}
	return l
}

// titleWords turns oauth_apps into "OAuth apps" style words: first letter up.
func titleWords(s string) string {
	s = strings.ReplaceAll(s, "_", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// percent is the utilization in whole percent, rounded down so that 99.6 %
// never reads "100%" before the window is really spent.
func percent(u float64) int {
	return int(math.Floor(u*100 + 1e-9))
}

// resetWhen is a reset time as people read it: "18:00" today, "Mon 09:00"
// within the week, "12 Jan 09:00" later.
func resetWhen(t, now time.Time, loc *time.Location) string {
	// The usage endpoint says 17:59:59.6 for the 18:00 the headers say.
	t, now = t.Round(time.Minute).In(loc), now.In(loc)
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	if d := t.Sub(now); d > 0 && d < 6*24*time.Hour {
		return t.Format("Mon 15:04")
	}
	return t.Format("2 Jan 15:04")
}

// menuLine is a window's menu item: "5-hour limit: 42% · resets 18:00".
func menuLine(l Limit, now time.Time, loc *time.Location) string {
	s := fmt.Sprintf("%s: %d%%", LimitLabel(l.Name), percent(l.Utilization))
	if !l.ResetsAt.IsZero() {
		s += " · resets " + resetWhen(l.ResetsAt, now, loc)
	}
	return s
}

// StatusLines are the lines `ccmux status` prints for u, indented:
// "  5-hour limit: 42% used, resets 18:00".
func StatusLines(u Usage, now time.Time, loc *time.Location) []string {
	if len(u.Windows) == 0 && u.LimitedUntil.IsZero() {
		return []string{"  Usage: not known yet"}
	}
	// A terminal's reader may be on another machine or in another zone
	// than the one the times are written in: name it.
	when := func(t time.Time) string { return resetWhen(t, now, loc) + " " + t.In(loc).Format("MST") }
	var out []string
	if !u.LimitedUntil.IsZero() {
		out = append(out, fmt.Sprintf("  %s: limit reached until %s", u.Provider, when(u.LimitedUntil)))
	}
	for _, l := range u.Windows {
		s := fmt.Sprintf("  %s: %d%% used", LimitLabel(l.Name), percent(l.Utilization))
		if !l.ResetsAt.IsZero() {
			s += ", resets " + when(l.ResetsAt)
		}
		out = append(out, s)
	}
	if age := now.Sub(u.UpdatedAt); !u.UpdatedAt.IsZero() && age > staleAfter {
		out = append(out, fmt.Sprintf("  (as of %s, %s ago)", when(u.UpdatedAt), ago(age)))
	}
	return out
}

// ago writes an age to the minute, hour or day: "12 min", "3 h", "2 days".
func ago(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
}

// tightest is the window closest to its limit (spent first), or false when none.
func tightest(ws []Limit) (Limit, bool) {
	var best Limit
	found := false
	for _, l := range ws {
		if !found || (l.Spent() && !best.Spent()) || (l.Spent() == best.Spent() && l.Utilization > best.Utilization) {
			best, found = l, true
		}
	}
	return best, found
}

// maxLimitLines is how many usage lines the menu has room for.
const maxLimitLines = 6

const usageUnknown = "Usage: not known yet"

// limitLines are the menu's usage lines: one per window, then the numbers'
// age when they are old (say, restored from the last run).
func limitLines(l loginState, now time.Time, loc *time.Location) (out [maxLimitLines]string) {
	if !l.hasUsage {
		return out
	}
	u := l.usage
	if len(u.Windows) == 0 {
		out[0] = usageUnknown
		return out
	}
	n := 0
	for _, w := range u.Windows {
		if n == maxLimitLines-1 {
			break
		}
		out[n] = menuLine(w, now, loc)
		n++
	}
	if age := now.Sub(u.UpdatedAt); !u.UpdatedAt.IsZero() && age > staleAfter {
		out[n] = fmt.Sprintf("Numbers from %s (%s ago)", resetWhen(u.UpdatedAt, now, loc), ago(age))
	}
	return out
}

// spentLine is the status line while the subscription is spent:
// "claude-max: limit reached until 18:00"; "" otherwise.
func spentLine(l loginState, now time.Time, loc *time.Location) string {
	u := l.usage
	if !l.hasUsage || u.LimitedUntil.IsZero() || !now.Before(u.LimitedUntil) {
		return ""
	}
	return fmt.Sprintf("%s: limit reached until %s", u.Provider, resetWhen(u.LimitedUntil, now, loc))
}

// usageWarning is when the icon takes its warning look: a window at 90 %
// or more, or the subscription spent.
func usageWarning(l loginState, now time.Time) bool {
	if !l.hasUsage {
		return false
	}
	if !l.usage.LimitedUntil.IsZero() && now.Before(l.usage.LimitedUntil) {
		return true
	}
	for _, w := range l.usage.Windows {
		if w.Spent() || w.Utilization >= iconWarnAt {
			return true
		}
	}
	return false
}
