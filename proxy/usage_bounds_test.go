package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/auth"
	"ccmux/proxy/internal/fakeanthropic"
)

// 20 answers each naming 8,000 distinct windows leave at most
// auth.MaxWindows kept (the 5-hour and weekly ones among them), and GET
// /api/usage and the snapshot stay small. Before, 160,003 windows were
// kept, /api/usage was 10.5 MB and the snapshot 21 MB.
func TestUsageWindowsBounded(t *testing.T) {
	sub := newUpstream(t)
	store := &memStore{}
	tr := NewUsageTracker(store, nil)
	h := startProxy(t, mustConfig(t, subscriptionTOML(0, sub.URL)), func(s *Server) { s.Usage, s.Admin = tr, &fakeAdmin{} })
	h.tokens.set("anthropic-max", "sub-token")
	reset := time.Now().Add(2 * time.Hour)
	const answers, perAnswer = 20, 8000
	for a := range answers {
		hdr := fakeanthropic.Unified("allowed", reset,
			fakeanthropic.Window{Name: "5h", Utilization: 0.42, Reset: reset, Status: "allowed"},
			fakeanthropic.Window{Name: "7d", Utilization: 0.13, Reset: reset, Status: "allowed"})
		for i := range perAnswer {
			hdr.Set(fmt.Sprintf("anthropic-ratelimit-unified-a%d_w%d-utilization", a, i), "0.5")
		}
		sub.Queue(fakeanthropic.Behavior{Header: hdr})
		resp := h.post("/v1/messages", sonnetBody, nil)
		if body := readAll(t, resp); resp.StatusCode != 200 {
			t.Fatalf("answer %d: %d %s", a, resp.StatusCode, body)
		}
	}
	u, _ := tr.Login("anthropic-max")
	if len(u.Windows) > auth.MaxWindows || len(u.Windows) < 2 || u.Windows[0].Name != "five_hour" || u.Windows[1].Name != "seven_day" {
		t.Fatalf("%d windows kept, want at most %d starting with five_hour and seven_day", len(u.Windows), auth.MaxWindows)
	}
	resp, err := h.client.Get(h.base + "/api/usage")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != 200 || len(body) > 4096 {
		t.Errorf("GET /api/usage: %d, %d bytes; want 200 and at most 4 KB", resp.StatusCode, len(body))
	}
	if err := tr.Save(); err != nil {
		t.Fatal(err)
	}
	if n := len(store.get()); n > 8192 {
		t.Errorf("the snapshot is %d bytes, want at most 8 KB", n)
	}
	t.Logf("%d answers × %d windows: %d kept, /api/usage %d bytes, snapshot %d bytes", answers, perAnswer, len(u.Windows), len(body), len(store.get()))
}

// Old windows make way: one whose reset passed over a week ago and that no
// answer names again is dropped, and past the cap the 5-hour and weekly
// windows stay, then the freshest.
func TestMergeWindowsBounds(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	old := []auth.UsageWindow{
		{Name: "five_hour", ResetsAt: at(time.Hour)},
		{Name: "seven_day", ResetsAt: at(24 * time.Hour)},
		{Name: "gone", ResetsAt: at(-8 * 24 * time.Hour)},
		{Name: "recent", ResetsAt: at(-time.Hour)},
		{Name: "no_reset"},
		{Name: strings.Repeat("x", auth.MaxWindowName+1)},
	}
	got := mergeWindows(old, nil, now)
	var names []string
	for _, w := range got {
		names = append(names, w.Name)
	}
	if want := "five_hour seven_day no_reset recent"; strings.Join(names, " ") != want {
		t.Errorf("kept %v, want %s", names, want)
	}
	var fresh []auth.UsageWindow
	for i := range 2 * auth.MaxWindows {
		fresh = append(fresh, auth.UsageWindow{Name: "f" + strconv.Itoa(100+i), ResetsAt: at(time.Duration(i+1) * 365 * 24 * time.Hour)})
	}
	got = mergeWindows(old, fresh, now)
	if len(got) != auth.MaxWindows || got[0].Name != "five_hour" || got[1].Name != "seven_day" || got[2].Name != "f100" {
		t.Errorf("over the cap: %d windows starting %v", len(got), got[:3])
	}
	for _, w := range got {
		if w.ResetsAt != nil && w.ResetsAt.After(now.Add(auth.MaxResetAhead)) {
			t.Errorf("%s resets at %v, past a week from now", w.Name, w.ResetsAt)
		}
	}
}

// A 429 whose reset is centuries ahead (reset: 9999999999, the year 2286)
// marks the subscription spent for a week at most, and Retry-After says so;
// a snapshot from before this cap is bounded when restored.
func TestFarFutureResetCapped(t *testing.T) {
	sub := newUpstream(t)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	setup, tr := withTracker(c)
	h := startProxy(t, mustConfig(t, subscriptionThenKey(sub.URL, "")), setup)
	h.tokens.set("anthropic-max", "sub-token")
	hdr := http.Header{}
	hdr.Set("anthropic-ratelimit-unified-status", "rejected")
	hdr.Set("anthropic-ratelimit-unified-reset", "9999999999")
	hdr.Set("anthropic-ratelimit-unified-5h-status", "rejected")
	hdr.Set("anthropic-ratelimit-unified-5h-reset", "9999999999")
	sub.Queue(fakeanthropic.Behavior{Status: 429, Header: hdr})
	resp := h.post("/v1/messages", sonnetBody, nil)
	readAll(t, resp)
	week := strconv.Itoa(int(auth.MaxResetAhead / time.Second))
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != week {
		t.Errorf("got %d with Retry-After %q, want 429 and %s (a week)", resp.StatusCode, resp.Header.Get("Retry-After"), week)
	}
	u, _ := tr.Login("anthropic-max")
	limit := c.now().Add(auth.MaxResetAhead)
	if u.LimitedUntil == nil || !u.LimitedUntil.Equal(limit) {
		t.Errorf("limited until %v, want %v", u.LimitedUntil, limit)
	}
	if len(u.Windows) != 1 || u.Windows[0].ResetsAt == nil || !u.Windows[0].ResetsAt.Equal(limit) {
		t.Errorf("windows %+v, want five_hour resetting in a week", u.Windows)
	}

	// An older ccmux's snapshot: 2286 and a thousand windows.
	snap := struct {
		Logins []LoginUsage `json:"logins"`
	}{}
	far := time.Unix(9999999999, 0).UTC()
	old := LoginUsage{Login: "anthropic-max", LimitedUntil: &far}
	for i := range 1000 {
		old.Windows = append(old.Windows, auth.UsageWindow{Name: fmt.Sprintf("w%d", i), ResetsAt: &far})
	}
	snap.Logins = append(snap.Logins, old)
	data, _ := json.Marshal(snap)
	store := &memStore{data: data}
	tr2, c2 := newTestTracker(store)
	if err := tr2.Restore(); err != nil {
		t.Fatal(err)
	}
	u, _ = tr2.Login("anthropic-max")
	if limit := c2.now().Add(auth.MaxResetAhead); u.LimitedUntil == nil || u.LimitedUntil.After(limit) || len(u.Windows) != auth.MaxWindows {
		t.Errorf("restored: limited until %v with %d windows; want at most %v and %d", u.LimitedUntil, len(u.Windows), limit, auth.MaxWindows)
	}
}

// A rejected 429 with no reset but a Retry-After too large for a Duration
// is a week, not a wrapped-around number.
func TestHugeRetryAfterCapped(t *testing.T) {
	tr, c := newTestTracker(nil)
	until, spent := tr.ObserveAnswer("anthropic-max", 429, header("anthropic-ratelimit-unified-status", "rejected", "retry-after", "9223372036854"))
	if want := c.now().Add(auth.MaxResetAhead); !spent || !until.Equal(want) {
		t.Errorf("spent %v until %v, want until %v", spent, until, want)
	}
}
