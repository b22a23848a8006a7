package history

import (
	"log/slog"
	"strings"
	"testing"

	"ccmux/internal/testsupport"
)

// Records dropped on a full queue are also told in the log (once per
// batch of drops), not only on the dashboard.
func TestDropsAreLogged(t *testing.T) {
	logs := &testsupport.Buffer{}
	s := &Store{queue: make(chan item, 2), log: slog.New(slog.NewTextHandler(logs, nil))}
	for range 5 {
		s.Record(Request{})
	}
	s.reportDrops()
	s.reportDrops() // nothing new: no second line
	if got := logs.String(); strings.Count(got, "level=WARN") != 1 || !strings.Contains(got, "dropped=3") {
		t.Errorf("log: %q", got)
	}
	s.Record(Request{})
	s.reportDrops()
	if got := logs.String(); strings.Count(got, "level=WARN") != 2 || !strings.Contains(got, "dropped=1 ") {
		t.Errorf("log after one more drop: %q", got)
	}
}
