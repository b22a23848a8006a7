package auth

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The usage endpoint's answer is bounded like the headers: at most
// MaxWindows windows with sane names, the 5-hour and weekly ones kept, and
// no reset believed past a week from now (resets_at in 2286 read as 2286).
func TestUsageEndpointBounded(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	var b strings.Builder
	b.WriteString(`{"five_hour":{"utilization":42.0,"resets_at":"2286-11-20T17:46:39+00:00"},`)
	b.WriteString(`"seven_day":{"utilization":13.0,"resets_at":"2026-01-05T09:00:00+00:00"},`)
	fmt.Fprintf(&b, `"%s":{"utilization":1.0,"resets_at":"2026-01-05T09:00:00+00:00"},`, strings.Repeat("n", MaxWindowName+1))
	for i := range 5000 {
		fmt.Fprintf(&b, `"w%04d":{"utilization":1.0,"resets_at":"2026-01-05T09:00:00+00:00"},`, i)
	}
	b.WriteString(`"x":null}`)
	e.srv.SetUsage(b.String())
	before := time.Now()
	ws, err := e.c.Usage(context.Background(), "anthropic-max", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != MaxWindows || ws[0].Name != "five_hour" || ws[1].Name != "seven_day" {
		t.Fatalf("got %d windows starting %+v, want %d starting five_hour, seven_day", len(ws), ws[:min(2, len(ws))], MaxWindows)
	}
	for _, w := range ws {
		if len(w.Name) > MaxWindowName {
			t.Errorf("a window named with %d bytes was kept", len(w.Name))
		}
	}
	if r := ws[0].ResetsAt; r == nil || r.After(time.Now().Add(MaxResetAhead)) || r.Before(before.Add(MaxResetAhead)) {
		t.Errorf("five_hour resets at %v, want a week from now", r)
	}
}

func TestCapReset(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	for _, tt := range []struct{ in, want time.Time }{
		{now.Add(time.Hour), now.Add(time.Hour)},
		{now.Add(MaxResetAhead), now.Add(MaxResetAhead)},
		{time.Unix(9999999999, 0), now.Add(MaxResetAhead)},
		{now.Add(-time.Hour), now.Add(-time.Hour)},
	} {
		if got := CapReset(tt.in, now); !got.Equal(tt.want) {
			t.Errorf("CapReset(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
