package tray

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/assets"
	"ccmux/auth"
)

var testLoc = time.FixedZone("test", 0)

// mon is Monday 5 Jan 2026, 15:00 in testLoc.
var mon = time.Date(2026, 1, 5, 15, 0, 0, 0, testLoc)

func usageState(u Usage) state {
	return one(loginState{login: apiKeyLogin("ada@example.com"), usage: u, hasUsage: true}, state{proxyOn: true, proxyAddr: "127.0.0.1:13456"})
}

func TestRenderUsage(t *testing.T) {
	now := mon
	r5 := now.Add(3 * time.Hour)                     // 18:00 today
	r7 := time.Date(2026, 1, 9, 9, 0, 0, 0, testLoc) // Friday
	fresh := Usage{Provider: "claude-max", UpdatedAt: now.Add(-time.Minute), Windows: []Limit{
		{Name: "five_hour", Utilization: 0.42, ResetsAt: r5, Status: "allowed"},
		{Name: "seven_day", Utilization: 0.13, ResetsAt: r7, Status: "allowed"},
		{Name: "seven_day_opus", Utilization: 0.80, ResetsAt: r7, Status: "allowed_warning"},
		{Name: "seven_day_oauth_apps", Utilization: 0.005},
		{Name: "7d_oi", Utilization: 0.5},
	}}
	tests := []struct {
		name    string
		st      state
		status  string
		lines   []string
		icon    assets.Icon
		tooltip string
	}{
		{
			name:   "numbers",
			st:     usageState(fresh),
			status: "Signed in as ada@example.com",
			lines: []string{"5-hour limit: 42% · resets 18:00", "Weekly limit: 13% · resets Fri 09:00", "Weekly (Opus): 80% · resets Fri 09:00",
				"Weekly (Oauth apps): 0%", "7d_oi: 50%"},
			icon:    assets.Active,
			tooltip: "Weekly (Opus): 80% · resets Fri 09:00",
		},
		{
			name:   "not known yet",
			st:     usageState(Usage{Provider: "claude-max"}),
			status: "Signed in as ada@example.com",
			lines:  []string{"Usage: not known yet"},
			icon:   assets.Active,
		},
		{
			name:   "90 % gives the icon its warning look",
			st:     usageState(Usage{Provider: "claude-max", UpdatedAt: now, Windows: []Limit{{Name: "five_hour", Utilization: 0.9, ResetsAt: r5}}}),
			status: "Signed in as ada@example.com",
			lines:  []string{"5-hour limit: 90% · resets 18:00"},
			icon:   assets.Warning, tooltip: "5-hour limit: 90% · resets 18:00",
		},
		{
			name: "spent",
			st: usageState(Usage{Provider: "claude-max", UpdatedAt: now, LimitedUntil: r5, Windows: []Limit{
				{Name: "five_hour", Utilization: 1, ResetsAt: r5, Status: "rejected"}, {Name: "seven_day", Utilization: 0.5, ResetsAt: r7}}}),
			status: "claude-max: limit reached until 18:00",
			lines:  []string{"5-hour limit: 100% · resets 18:00", "Weekly limit: 50% · resets Fri 09:00"},
			icon:   assets.Warning, tooltip: "5-hour limit: 100% · resets 18:00",
		},
		{
			name:   "old numbers show their age",
			st:     usageState(Usage{Provider: "claude-max", UpdatedAt: now.Add(-2 * time.Hour), Windows: []Limit{{Name: "seven_day", Utilization: 0.2, ResetsAt: r7}}}),
			status: "Signed in as ada@example.com",
			lines:  []string{"Weekly limit: 20% · resets Fri 09:00", "Numbers from 13:00 (2 h ago)"},
			icon:   assets.Active,
		},
		{
			name:   "signed out: no usage lines",
			st:     one(loginState{usage: fresh, hasUsage: true}, state{proxyOn: true}),
			status: "Not signed in",
			icon:   assets.SignedOut,
		},
		{
			name:   "no subscription to show",
			st:     one(loginState{login: apiKeyLogin("")}, state{proxyOn: true}),
			status: "Signed in",
			icon:   assets.Active,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := render(tt.st, now, testLoc)
			if v.Status != tt.status {
				t.Errorf("status %q, want %q", v.Status, tt.status)
			}
			var lines []string
			for _, l := range v.Limits {
				if l != "" {
					lines = append(lines, l)
				}
			}
			if strings.Join(lines, "|") != strings.Join(tt.lines, "|") {
				t.Errorf("usage lines\n got %q\nwant %q", lines, tt.lines)
			}
			if v.Icon != tt.icon {
				t.Errorf("icon %v, want %v", v.Icon, tt.icon)
			}
			if tt.tooltip != "" && !strings.Contains(v.Tooltip, tt.tooltip) {
				t.Errorf("tooltip %q lacks %q", v.Tooltip, tt.tooltip)
			}
		})
	}
}

func TestStatusLines(t *testing.T) {
	r5 := mon.Add(3 * time.Hour)
	u := Usage{Provider: "claude-max", UpdatedAt: mon.Add(-3 * 24 * time.Hour), LimitedUntil: r5, Windows: []Limit{
		{Name: "five_hour", Utilization: 0.999, ResetsAt: r5}, {Name: "seven_day", Utilization: 0.13}}}
	got := strings.Join(StatusLines(u, mon, testLoc), "\n")
	// A terminal's reader may be anywhere: every time names its zone.
	zone := r5.In(testLoc).Format("MST")
	want := "  claude-max: limit reached until 18:00 " + zone + "\n  5-hour limit: 99% used, resets 18:00 " + zone + "\n  Weekly limit: 13% used\n  (as of 2 Jan 15:00 " + zone + ", 3 days ago)"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := StatusLines(Usage{}, mon, testLoc); len(got) != 1 || got[0] != "  Usage: not known yet" {
		t.Errorf("unknown: %q", got)
	}
}

// fakeUsage is a UsageSource the test sets.
type fakeUsage struct {
	mu      sync.Mutex
	u       Usage
	changed chan struct{}
}

func (f *fakeUsage) Usage(string) (Usage, bool) { f.mu.Lock(); defer f.mu.Unlock(); return f.u, true }
func (f *fakeUsage) Changed() <-chan struct{}   { return f.changed }
func (f *fakeUsage) set(u Usage) {
	f.mu.Lock()
	f.u = u
	f.mu.Unlock()
	f.changed <- struct{}{}
}

// recordingNotifier keeps every notification.
type recordingNotifier struct {
	mu  sync.Mutex
	got []string
}

func (r *recordingNotifier) Notify(title, message string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, title+": "+message)
	return nil
}

func TestLimitNotificationsOncePerPeriod(t *testing.T) {
	now := mon
	clock := func() time.Time { return now }
	a := newApp(Options{Auth: newFakeAuth(nil), Proxy: &fakeProxy{}, Logger: slog.New(slog.DiscardHandler)}, nil, &fakeAutostart{}, nil)
	a.now, a.loc = clock, testLoc
	n := &recordingNotifier{}
	a.notes.close()
	a.notes = newNoteQueue(n, a.log)
	a.setLogins([]string{"anthropic-max"}, "anthropic-max", map[string]auth.Account{"anthropic-max": *apiKeyLogin("")})
	r5 := now.Add(3 * time.Hour)
	r7 := time.Date(2026, 1, 9, 9, 0, 0, 0, testLoc)
	step := func(u Usage) {
		t.Helper()
		a.noticeLimits("anthropic-max", u, true)
	}
	w := func(name string, u float64, reset time.Time) Limit {
		return Limit{Name: name, Utilization: u, ResetsAt: reset}
	}
	step(Usage{Windows: []Limit{w("five_hour", 0.5, r5), w("seven_day", 0.79, r7)}})
	step(Usage{Windows: []Limit{w("five_hour", 0.81, r5), w("seven_day", 0.80, r7)}})
	step(Usage{Windows: []Limit{w("five_hour", 0.85, r5), w("seven_day", 0.82, r7)}}) // nothing new
	step(Usage{Windows: []Limit{w("five_hour", 0.97, r5.Add(-400*time.Millisecond)), w("seven_day", 0.94, r7)}})
	step(Usage{Windows: []Limit{w("five_hour", 0.99, r5), w("seven_day", 0.95, r7)}})
	// Spent: the proxy routes to the API-key provider.
	step(Usage{Fallback: "api", LimitedUntil: r5, Windows: []Limit{{Name: "five_hour", Utilization: 1, ResetsAt: r5, Status: "rejected"}, w("seven_day", 0.95, r7)}})
	step(Usage{Fallback: "api", LimitedUntil: r5, Windows: []Limit{{Name: "five_hour", Utilization: 1, ResetsAt: r5, Status: "rejected"}, w("seven_day", 0.96, r7)}})
	// A new 5-hour period starts: its thresholds are told again.
	now = r5.Add(time.Minute)
	next5 := r5.Add(5 * time.Hour)
	step(Usage{Windows: []Limit{w("five_hour", 0.1, next5), w("seven_day", 0.96, r7)}})
	step(Usage{Windows: []Limit{w("five_hour", 0.96, next5), w("seven_day", 0.97, r7)}})
	// Spent with no other provider.
	step(Usage{LimitedUntil: next5, Windows: []Limit{{Name: "five_hour", Utilization: 1, ResetsAt: next5, Status: "rejected"}}})
	a.notes.close()
	<-a.notes.done
	want := []string{
		"Claude usage limit: Claude 5-hour limit at 81% — resets 18:00",
		"Claude usage limit: Claude weekly limit at 80% — resets Fri 09:00",
		"Claude usage limit: Claude 5-hour limit at 97% — resets 18:00",
		"Claude usage limit: Claude weekly limit at 95% — resets Fri 09:00",
		"Claude limit reached: Claude 5-hour limit reached — resets 18:00. Requests go to api until then.",
		"Claude usage limit: Claude 5-hour limit at 96% — resets 23:00",
		"Claude limit reached: Claude 5-hour limit reached — resets 23:00. Requests will fail until then.",
	}
	if strings.Join(n.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notifications:\n%s\nwant:\n%s", strings.Join(n.got, "\n"), strings.Join(want, "\n"))
	}
}

// The event loop shows new numbers as they come and re-renders by itself.
func TestUsageLinesFollowTheSource(t *testing.T) {
	src := &fakeUsage{changed: make(chan struct{}, 1)}
	h := newHarness(t, apiKeyLogin("ada@example.com"))
	h.usage = src
	h.run()
	h.waitView("usage not known yet", func(v view) bool { return v.Limits[0] == usageUnknown })
	reset := time.Now().Add(time.Hour)
	src.set(Usage{Provider: "claude-max", UpdatedAt: time.Now(), Windows: []Limit{{Name: "seven_day", Utilization: 0.95, ResetsAt: reset}}})
	v := h.waitView("the weekly line", func(v view) bool { return strings.HasPrefix(v.Limits[0], "Weekly limit: 95%") })
	if v.Icon != assets.Warning {
		t.Errorf("icon %v at 95%%, want the warning look", v.Icon)
	}
	n := h.waitNote("Claude usage limit")
	if !strings.HasPrefix(n.message, "Claude weekly limit at 95% — resets ") {
		t.Errorf("notification %q", n.message)
	}
	h.noMoreNotes()
}

// The usage poll after sign-in can answer before the loop hears of the
// sign-in itself: the numbers that came in while signed out are told once
// the sign-in arrives (seen as a lost notification in the real binary).
func TestUsageBeforeSignInIsToldAfterIt(t *testing.T) {
	src := &fakeUsage{changed: make(chan struct{}, 1)}
	h := newHarness(t, nil)
	h.usage = src
	h.run()
	reset := time.Now().Add(time.Hour)
	src.set(Usage{Provider: "claude-max", UpdatedAt: time.Now(), Windows: []Limit{{Name: "five_hour", Utilization: 0.95, ResetsAt: reset}}})
	h.noMoreNotes() // signed out: nothing to tell yet
	h.auth.events <- auth.Event{Kind: auth.SignedIn, ProviderID: "anthropic-max", Email: "ada@example.com", APIKey: true}
	h.waitNote("Signed in to Claude")
	n := h.waitNote("Claude usage limit")
	if !strings.HasPrefix(n.message, "Claude 5-hour limit at 95% — resets ") {
		t.Errorf("notification %q", n.message)
	}
	h.noMoreNotes()
}
