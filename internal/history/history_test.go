package history

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

var utc = time.UTC

func open(t testing.TB, path string, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(path, Options{Now: now, Location: utc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func req(at time.Time, model string, in, out int64) Request {
	return Request{Time: at, Model: model, Provider: "claude-max", ModelSent: model, Status: 200,
		TTFB: 120 * time.Millisecond, Duration: 2 * time.Second, TokensKnown: true, Input: in, Output: out, CacheRead: 1000, CacheWrite: 10}
}

func TestRecordQueryAndRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", FileName)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, utc)
	s := open(t, path, func() time.Time { return now })
	s.Record(req(now.Add(-48*time.Hour), "claude-opus-4-5", 10, 20))
	s.Record(req(now.Add(-time.Hour), "claude-opus-4-5", 1, 2))
	s.Record(req(now, "claude-haiku-4-5-20251001", 3, 4))
	s.Record(Request{Time: now, Model: "claude-x", Provider: "p", Status: 502, Duration: time.Second}) // no tokens
	s.RecordUsage(UsageSample{Time: now, Login: "claude-max", Window: "five_hour", Utilization: 0.42, ResetsAt: now.Add(time.Hour)})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}

	s = open(t, path, func() time.Time { return now }) // history survives a restart
	ctx := context.Background()
	got, err := s.Requests(ctx, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Model != "claude-x" || got[0].Input != nil || got[1].Model != "claude-haiku-4-5-20251001" || *got[1].Input != 3 || *got[1].TTFBMS != 120 {
		t.Fatalf("newest two = %+v", got)
	}
	older, err := s.Requests(ctx, 10, got[1].ID)
	if err != nil || len(older) != 2 || older[0].ID >= got[1].ID {
		t.Fatalf("page before %d = %+v, %v", got[1].ID, older, err)
	}
	stats, err := s.Stats(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]DayModel{
		"claude-opus-4-5":           {Day: "2026-12-06", Model: "claude-opus-4-5", Requests: 1, Input: 1, Output: 2, CacheRead: 1000, CacheWrite: 10},
		"claude-haiku-4-5-20251001": {Day: "2026-12-06", Model: "claude-haiku-4-5-20251001", Requests: 1, Input: 3, Output: 4, CacheRead: 1000, CacheWrite: 10},
		"claude-x":                  {Day: "2026-12-06", Model: "claude-x", Requests: 1},
	}
	if len(stats) != len(want) {
		t.Fatalf("stats for today = %+v", stats)
	}
	for _, d := range stats {
		if d != want[d.Model] {
			t.Errorf("stats %s = %+v, want %+v", d.Model, d, want[d.Model])
		}
	}
	if all, _ := s.Stats(ctx, 30); len(all) != 4 {
		t.Errorf("30 days of stats = %+v", all)
	}
	usage, err := s.Usage(ctx, now.Add(-7*24*time.Hour))
	if err != nil || len(usage) != 1 || usage[0].Points[0].Utilization != 0.42 || usage[0].Points[0].ResetsAt == nil {
		t.Fatalf("usage = %+v, %v", usage, err)
	}
}

func TestPrune(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, utc)
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{Now: func() time.Time { return now }, Location: utc, Retention: func() int { return 2 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Record(req(now.Add(-72*time.Hour), "old", 1, 1))
	s.Record(req(now.Add(-time.Hour), "new", 1, 1))
	s.RecordUsage(UsageSample{Time: now.Add(-72 * time.Hour), Login: "l", Window: "w"})
	s.Flush()
	s.prune()
	ctx := context.Background()
	if got, _ := s.Requests(ctx, 10, 0); len(got) != 1 || got[0].Model != "new" {
		t.Errorf("after pruning to 2 days: %+v", got)
	}
	if got, _ := s.Stats(ctx, 30); len(got) != 1 || got[0].Model != "new" {
		t.Errorf("stats after pruning to 2 days: %+v", got)
	}
	if got, _ := s.Usage(ctx, time.Time{}); len(got) != 0 {
		t.Errorf("usage after pruning: %+v", got)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	// A store whose writer does not run: the queue fills and Record
	// returns at once, counting what it dropped.
	s := &Store{queue: make(chan item, 2)}
	for range 5 {
		s.Record(Request{})
	}
	s.RecordUsage(UsageSample{})
	if s.Dropped() != 4 {
		t.Errorf("dropped %d, want 4", s.Dropped())
	}
	var none *Store
	none.Record(Request{}) // history off: nothing happens
	if got, err := none.Requests(context.Background(), 10, 0); err != nil || len(got) != 0 {
		t.Errorf("nil store answers %v, %v", got, err)
	}
}

func TestUnusableDatabase(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, []byte("this is not a SQLite database, it is a text file of some length........................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	notFile := filepath.Join(dir, "dir.db")
	os.Mkdir(notFile, 0o700)
	for _, path := range []string{corrupt, notFile} {
		s, err := Open(path, Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(%s) succeeded", path)
			continue
		}
		t.Logf("%s: %v", filepath.Base(path), err)
	}
}

func TestPriceOf(t *testing.T) {
	for _, c := range []struct {
		model string
		in    float64
		ok    bool
	}{
		{"claude-opus-4-5-20251101", 5, true},
		{"claude-opus-4-1-20250805", 15, true},
		{"claude-opus-4-20250514", 15, true},
		{"claude-sonnet-4-5-20250929", 3, true},
		{"Claude-Haiku-4-5", 1, true},
		{"glm-4.6", 0, false},
	} {
		p, _, ok := PriceOf(c.model, nil)
		if ok != c.ok || p.Input != c.in {
			t.Errorf("PriceOf(%s) = %v, %v; want input %v, %v", c.model, p, ok, c.in, c.ok)
		}
	}
	if p, own, ok := PriceOf("glm-4.6", []PriceRule{{"glm-*", Price{Input: 0.6}}}); !ok || !own || p.Input != 0.6 {
		t.Errorf("override: %v %v", p, ok)
	}
	cost := Price{Input: 3, Output: 15, CacheWrite: 3.75, CacheRead: 0.3}.Cost(DayModel{Input: 1e6, Output: 1e6, CacheWrite: 1e6, CacheRead: 1e6})
	if cost != 22.05 {
		t.Errorf("cost = %v", cost)
	}
}

// BenchmarkRecord is the cost on the request path: a queue send.
func BenchmarkRecord(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), FileName), nil)
	r := req(time.Now(), "claude-sonnet-4-5-20250929", 1000, 200)
	r.Failover = "claude-max"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Record(r)
		if i%4096 == 4095 {
			b.StopTimer()
			s.Flush() // keep the queue from filling: measure the send, not a drop
			b.StartTimer()
		}
	}
}

// fill stores n requests spread over days days before now, 5 models.
func fill(t testing.TB, s *Store, n, days int, now time.Time) {
	models := []string{"claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805", "glm-4.6"}
	step := time.Duration(days) * 24 * time.Hour / time.Duration(n)
	for i := range n {
		r := req(now.Add(-time.Duration(n-i)*step), models[i%len(models)], int64(i%5000), int64(i%900))
		r.Provider = "claude-max-subscription"
		r.Input, r.CacheRead, r.CacheWrite = 3, 45000+int64(i%10000), int64(i%3000)
		s.Record(r)
		if i%4096 == 4095 {
			s.Flush()
		}
	}
	s.Flush()
}

// TestStoreAtScale stores 30 days at 5,000 requests a day (150,000): the
// file must stay under 60 MB, and the dashboard's queries fast.
func TestStoreAtScale(t *testing.T) {
	if testing.Short() || testsupport.Race {
		t.Skip("stores 150,000 requests: too slow with -race or -short (run go test ./internal/history)")
	}
	now := time.Now()
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path, func() time.Time { return now })
	start := time.Now()
	fill(t, s, 150_000, 30, now)
	t.Logf("stored 150,000 requests in %v", time.Since(start).Round(time.Millisecond))
	if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	mb := float64(fi.Size()) / 1e6
	fmt.Printf("history: 30 days at 5,000 requests/day: %.1f MB\n", mb)
	if mb > 60 {
		t.Errorf("the database is %.1f MB, want ≤ 60 MB", mb)
	}
	ctx := context.Background()
	for _, q := range []struct {
		name  string
		limit time.Duration
		run   func() error
	}{
		{"stats?days=30", 50 * time.Millisecond, func() error { _, err := s.Stats(ctx, 30); return err }},
		{"requests?limit=50", 50 * time.Millisecond, func() error { _, err := s.Requests(ctx, 50, 0); return err }},
	} {
		best := time.Hour
		for range 5 {
			t0 := time.Now()
			if err := q.run(); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(t0))
		}
		fmt.Printf("history: %s over 150,000 requests: %v\n", q.name, best)
		if best > q.limit {
			t.Errorf("%s took %v, want ≤ %v", q.name, best, q.limit)
		}
	}
}
