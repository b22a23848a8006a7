package tray

import (
	"fmt"
	"time"
)

// Levels of a window's notifications, told once each per reset period.
const (
	levelNone = iota
	level80
	level95
	levelSpent
)

// limitNote is what was told about one window: for which reset period,
// and how far.
type limitNote struct {
	resets time.Time
	level  int
}

// samePeriod reports whether two reset times name the same period. The
// headers give whole seconds and the usage endpoint fractions (17:59:59.6
// for 18:00:00), and no window is shorter than five hours.
func samePeriod(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -30*time.Minute && d < 30*time.Minute
}

// usageChanged is the usage source's change channel (nil without a source:
// a select never takes it).
func (a *app) usageChanged() <-chan struct{} {
	if a.usage == nil {
		return nil
	}
	return a.usage.Changed()
}

// refreshUsage reads the usage numbers into the state, tells what crossed a
// threshold (when tell), and arranges to look again at the next reset.
func (a *app) refreshUsage(tell bool) {
	if a.usage == nil {
		return
	}
	for i := range a.st.logins {
		l := &a.st.logins[i]
		l.usage, l.hasUsage = a.usage.Usage(l.id)
		if l.signedIn(a.now()) {
			a.noticeLimits(l.id, l.usage, tell)
		}
	}
	a.armUsageTimer()
}

// noticeLimits notifies, once per window per reset period, at 80 %, at
// 95 % and when the window is spent.
func (a *app) noticeLimits(id string, u Usage, tell bool) {
	now := a.now()
	limited := !u.LimitedUntil.IsZero() && now.Before(u.LimitedUntil)
	ws := u.Windows
	if limited && !anySpent(ws) {
		// Spent by the overall status alone: tell it on the tightest window.
		if l, ok := tightest(ws); ok {
			l.Status, l.ResetsAt = "rejected", u.LimitedUntil
			ws = append([]Limit{l}, ws...)
		}
	}
	told := a.newsOf(id).limits
	seen := map[string]bool{}
	for _, l := range ws {
		if seen[l.Name] {
			continue
		}
		seen[l.Name] = true
		level := levelNone
		switch {
		case l.Spent():
			level = levelSpent
		case l.Utilization >= urgentAt:
			level = level95
		case l.Utilization >= warnAt:
			level = level80
		}
		rec := told[l.Name]
		if !samePeriod(rec.resets, l.ResetsAt) {
			rec = limitNote{resets: l.ResetsAt}
		}
		if level > rec.level && tell {
			a.notifyLimit(id, u, l, level, limited)
		}
		rec.level = max(rec.level, level)
		told[l.Name] = rec
	}
}

func anySpent(ws []Limit) bool {
	for _, l := range ws {
		if l.Spent() {
			return true
		}
	}
	return false
}

func (a *app) notifyLimit(id string, u Usage, l Limit, level int, limited bool) {
	now := a.now()
	reset := l.ResetsAt
	if level == levelSpent && limited {
		reset = u.LimitedUntil
	}
	resets := ""
	if !reset.IsZero() {
		resets = " — resets " + resetWhen(reset, now, a.loc)
	}
	if level < levelSpent {
		a.notify(a.titled("Claude usage limit", id), fmt.Sprintf("Claude %s limit at %d%%%s", shortLabel(l.Name), percent(l.Utilization), resets))
		return
	}
	then := " Requests will fail until then."
	if u.Fallback != "" {
		then = fmt.Sprintf(" Requests go to %s until then.", u.Fallback)
	}
	a.notify(a.titled("Claude limit reached", id), fmt.Sprintf("Claude %s limit reached%s.%s", shortLabel(l.Name), resets, then))
}

// armUsageTimer wakes the loop at the next moment the usage lines change by
// themselves: a reset, the end of a spent period, numbers turning old.
func (a *app) armUsageTimer() {
	if a.usageTimer != nil {
		a.usageTimer.Stop()
		a.usageTimer, a.usageWake = nil, nil
	}
	now := a.now()
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, login := range a.st.logins {
		u := login.usage
		consider(u.LimitedUntil)
		for _, l := range u.Windows {
			consider(l.ResetsAt)
		}
		if !u.UpdatedAt.IsZero() {
			if stale := u.UpdatedAt.Add(staleAfter); stale.After(now) {
				consider(stale)
			} else {
				consider(now.Add(10 * time.Minute)) // the age shown grows
			}
		}
	}
	if next.IsZero() {
		return
	}
	a.usageTimer = time.NewTimer(next.Sub(now))
	a.usageWake = a.usageTimer.C
}
