package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/internal/testsupport"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParseUnifiedAllFields(t *testing.T) {
	h := header(
		"anthropic-ratelimit-unified-status", "allowed_warning",
		"anthropic-ratelimit-unified-reset", "1767376800",
		"anthropic-ratelimit-unified-representative-claim", "five_hour",
		"anthropic-ratelimit-unified-5h-utilization", "0.42",
		"anthropic-ratelimit-unified-5h-reset", "1767376800",
		"anthropic-ratelimit-unified-5h-status", "allowed_warning",
		"anthropic-ratelimit-unified-7d-utilization", "0.13",
		"anthropic-ratelimit-unified-7d-reset", "1767603600",
		"anthropic-ratelimit-unified-7d-status", "allowed",
		"anthropic-ratelimit-unified-overage-status", "rejected",
		"anthropic-ratelimit-unified-overage-reset", "1767603600",
		"anthropic-ratelimit-unified-overage-disabled-reason", "org_level_disabled",
		"anthropic-ratelimit-unified-fallback-percentage", "0.5", // not a window field: ignored
		"content-type", "application/json",
	)
	r, ok := parseUnified(h)
	if !ok {
		t.Fatal("want a reading")
	}
	reset5h, reset7d := time.Unix(1767376800, 0).UTC(), time.Unix(1767603600, 0).UTC()
	if r.Status != "allowed_warning" || !r.Reset.Equal(reset5h) || r.RepresentativeClaim != "five_hour" {
		t.Errorf("status, reset, claim: %q %v %q", r.Status, r.Reset, r.RepresentativeClaim)
	}
	if r.Overage != (overage{Status: "rejected", Reset: reset7d, DisabledReason: "org_level_disabled"}) {
		t.Errorf("overage: %+v", r.Overage)
	}
	want := []auth.UsageWindow{
		{Name: "five_hour", Utilization: 0.42, ResetsAt: &reset5h, Status: "allowed_warning"},
		{Name: "seven_day", Utilization: 0.13, ResetsAt: &reset7d, Status: "allowed"},
	}
	checkWindows(t, r.Windows, want)
	if r.rejected() {
		t.Error("nothing is rejected here")
	}
}

func checkWindows(t *testing.T, got, want []auth.UsageWindow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("windows: got %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Utilization != w.Utilization || g.Status != w.Status ||
			(g.ResetsAt == nil) != (w.ResetsAt == nil) || (g.ResetsAt != nil && !g.ResetsAt.Equal(*w.ResetsAt)) {
			t.Errorf("window %d: got %+v (%v), want %+v (%v)", i, g, g.ResetsAt, w, w.ResetsAt)
		}
	}
}

func TestParseUnifiedUnknownWindows(t *testing.T) {
	h := header(
		"anthropic-ratelimit-unified-7d_oi-utilization", "0.5",
		"anthropic-ratelimit-unified-7d_opus-utilization", "1.0",
		"anthropic-ratelimit-unified-7d_opus-status", "rejected",
		"anthropic-ratelimit-unified-1m_haiku-utilization", "0.01",
	)
	r, ok := parseUnified(h)
	if !ok {
		t.Fatal("want a reading")
	}
	checkWindows(t, r.Windows, []auth.UsageWindow{
		{Name: "1m_haiku", Utilization: 0.01},
		{Name: "seven_day_oi", Utilization: 0.5},
		{Name: "seven_day_opus", Utilization: 1, Status: "rejected"},
	})
	if !r.rejected() {
		t.Error("a rejected window makes the reading rejected")
	}
}

func TestParseUnifiedGarbageIgnored(t *testing.T) {
	h := header(
		"anthropic-ratelimit-unified-status", "maybe",
		"anthropic-ratelimit-unified-reset", "tomorrow",
		"anthropic-ratelimit-unified-5h-utilization", "NaN",
		"anthropic-ratelimit-unified-5h-reset", "-1",
		"anthropic-ratelimit-unified-5h-status", "ALLOWED!",
		"anthropic-ratelimit-unified-7d-utilization", "1e400",
		"anthropic-ratelimit-unified-7d-reset", "99999999999999",
		"anthropic-ratelimit-unified--utilization", "0.5",
		"anthropic-ratelimit-unified-5h-colour", "blue",
		"anthropic-ratelimit-unified-"+strings.Repeat("x", 100)+"-utilization", "0.5",
		"anthropic-ratelimit-requests-remaining", "0",
	)
	if r, ok := parseUnified(h); ok {
		t.Errorf("garbage gave a reading: %+v", r)
	}
	// Good values next to garbage are kept.
	h.Set("anthropic-ratelimit-unified-7d-utilization", "0.25")
	r, ok := parseUnified(h)
	if !ok || r.Status != "" || !r.Reset.IsZero() {
		t.Fatalf("got %+v, %v", r, ok)
	}
	checkWindows(t, r.Windows, []auth.UsageWindow{{Name: "seven_day", Utilization: 0.25}})
	if _, ok := parseUnified(http.Header{}); ok {
		t.Error("no headers gave a reading")
	}
}

// clock is a fake time source for the tracker.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memStore is a UsageStore in memory.
type memStore struct {
	mu    sync.Mutex
	data  []byte
	saves int
}

func (m *memStore) LoadUsage() ([]byte, error) { m.mu.Lock(); defer m.mu.Unlock(); return m.data, nil }
func (m *memStore) SaveUsage(d []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data, m.saves = append([]byte(nil), d...), m.saves+1
	return nil
}
func (m *memStore) get() string { m.mu.Lock(); defer m.mu.Unlock(); return string(m.data) }

func newTestTracker(store UsageStore) (*UsageTracker, *clock) {
	c := &clock{t: time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)}
	tr := NewUsageTracker(store, nil)
	tr.now = c.now
	return tr, c
}

func rejected429(reset time.Time) http.Header {
	return header(
		"anthropic-ratelimit-unified-status", "rejected",
		"anthropic-ratelimit-unified-reset", unix(reset),
		"anthropic-ratelimit-unified-representative-claim", "five_hour",
		"anthropic-ratelimit-unified-5h-utilization", "1.0",
		"anthropic-ratelimit-unified-5h-status", "rejected",
		"anthropic-ratelimit-unified-5h-reset", unix(reset),
	)
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestSpentSkipRestoreCycle(t *testing.T) {
	tr, c := newTestTracker(nil)
	reset := c.now().Add(3 * time.Hour)
	// A plain 429 (no unified headers) marks nothing.
	if _, spent := tr.ObserveAnswer("anthropic-max", 429, header("retry-after", "30")); spent {
		t.Fatal("a plain 429 marked the login spent")
	}
	if _, spent := tr.SpentUntil("anthropic-max"); spent {
		t.Fatal("spent after a plain 429")
	}
	// A 200 with a warning status marks nothing either.
	tr.ObserveAnswer("anthropic-max", 200, header("anthropic-ratelimit-unified-status", "allowed_warning", "anthropic-ratelimit-unified-5h-utilization", "0.95"))
	if _, spent := tr.SpentUntil("anthropic-max"); spent {
		t.Fatal("spent after an allowed answer")
	}
	until, spent := tr.ObserveAnswer("anthropic-max", 429, rejected429(reset))
	if !spent || !until.Equal(reset) {
		t.Fatalf("ObserveAnswer = %v, %v; want spent until %v", until, spent, reset)
	}
	c.add(3*time.Hour - time.Second)
	if got, spent := tr.SpentUntil("anthropic-max"); !spent || !got.Equal(reset) {
		t.Fatalf("a second before the reset: %v, %v", got, spent)
	}
	u, _ := tr.Login("anthropic-max")
	if u.LimitedUntil == nil || !u.LimitedUntil.Equal(reset) || u.Source != SourceHeaders {
		t.Errorf("login usage: %+v", u)
	}
	if _, spent := tr.SpentUntil("other-login"); spent {
		t.Error("another login is spent too")
	}
	c.add(time.Second)
	if _, spent := tr.SpentUntil("anthropic-max"); spent {
		t.Fatal("still spent at the reset time")
	}
	u, _ = tr.Login("anthropic-max")
	if u.LimitedUntil != nil || len(u.Windows) != 1 || u.Windows[0].Utilization != 0 || u.Windows[0].ResetsAt != nil {
		t.Errorf("after the reset the window should read 0 with no reset time: %+v", u)
	}
}

func TestSpentRestoredEarlyByUsageAPI(t *testing.T) {
	tr, c := newTestTracker(nil)
	reset := c.now().Add(3 * time.Hour)
	tr.ObserveAnswer("anthropic-max", 429, rejected429(reset))
	// The endpoint still says spent: stays spent.
	tr.ObserveUsage("anthropic-max", []auth.UsageWindow{{Name: "five_hour", Utilization: 1, Status: "rejected", ResetsAt: &reset}})
	if _, spent := tr.SpentUntil("anthropic-max"); !spent {
		t.Fatal("restored while the endpoint still says spent")
	}
	tr.ObserveUsage("anthropic-max", []auth.UsageWindow{{Name: "five_hour", Utilization: 0.1, Status: "allowed"}, {Name: "seven_day", Utilization: 0.5, Status: "allowed"}})
	if _, spent := tr.SpentUntil("anthropic-max"); spent {
		t.Fatal("still spent after the endpoint said allowed")
	}
	u, _ := tr.Login("anthropic-max")
	if u.Source != SourceUsageAPI || len(u.Windows) != 2 {
		t.Errorf("%+v", u)
	}
}

func TestSpentUntilWithoutResetHeader(t *testing.T) {
	tr, c := newTestTracker(nil)
	// No overall reset: the rejected window's reset is used.
	wreset := c.now().Add(time.Hour)
	until, spent := tr.ObserveAnswer("a", 429, header(
		"anthropic-ratelimit-unified-7d-status", "rejected", "anthropic-ratelimit-unified-7d-reset", unix(wreset)))
	if !spent || !until.Equal(wreset) {
		t.Errorf("window reset: %v %v", until, spent)
	}
	// Nothing but retry-after.
	until, spent = tr.ObserveAnswer("b", 429, header("anthropic-ratelimit-unified-status", "rejected", "retry-after", "600"))
	if !spent || !until.Equal(c.now().Add(10*time.Minute)) {
		t.Errorf("retry-after: %v %v", until, spent)
	}
	// A reset in the past still skips the login briefly rather than never.
	until, spent = tr.ObserveAnswer("c", 429, rejected429(c.now().Add(-time.Hour)))
	if !spent || !until.Equal(c.now().Add(spentFallback)) {
		t.Errorf("past reset: %v %v", until, spent)
	}
}

func TestUsageSnapshotPersists(t *testing.T) {
	store := &memStore{}
	tr, c := newTestTracker(store)
	reset := c.now().Add(3 * time.Hour)
	tr.ObserveAnswer("anthropic-max", 429, rejected429(reset))
	testsupport.Eventually(t, "the snapshot", 5*time.Second, func() bool { return strings.Contains(store.get(), `"limited_until"`) })
	if err := tr.Save(); err != nil {
		t.Fatal(err)
	}
	// Headers of later answers are not written on every request.
	saves := store.saves
	for i := 0; i < 50; i++ {
		tr.ObserveAnswer("anthropic-max", 200, header("anthropic-ratelimit-unified-status", "allowed", "anthropic-ratelimit-unified-7d-utilization", "0.5"))
	}
	testsupport.Eventually(t, "saves to settle", 5*time.Second, func() bool { tr.mu.Lock(); defer tr.mu.Unlock(); return !tr.saving })
	if extra := store.saves - saves; extra > 1 {
		t.Errorf("%d saves for 50 answers within a minute; want at most 1 (the restoration)", extra)
	}
	tr.Save()

	// A new run restores it, age included.
	tr2, c2 := newTestTracker(store)
	c2.add(time.Hour)
	if err := tr2.Restore(); err != nil {
		t.Fatal(err)
	}
	u, ok := tr2.Login("anthropic-max")
	if !ok || !u.UpdatedAt.Equal(c.now()) || len(u.Windows) != 2 {
		t.Fatalf("restored: %+v", u)
	}
	// Garbage is an error, not a crash.
	store.SaveUsage([]byte("{not json"))
	tr3, _ := newTestTracker(store)
	if err := tr3.Restore(); err == nil {
		t.Error("a corrupt snapshot: want an error")
	}
}

// A user who never signed in gets no snapshot file in the shared directory.
func TestUsageSnapshotNotWrittenWhenNothingIsKnown(t *testing.T) {
	store := &memStore{}
	tr, _ := newTestTracker(store)
	if err := tr.Save(); err != nil {
		t.Fatal(err)
	}
	if store.saves != 0 {
		t.Errorf("%d saves with nothing known, want 0", store.saves)
	}
}
