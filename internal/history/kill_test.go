package history

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// TestKilledProcessLosesAtMostASecond runs a child process that records
// 100 requests and then is killed (SIGKILL, no Close): the records are in
// the database within a second of being recorded, and stay after the kill.
func TestKilledProcessLosesAtMostASecond(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGKILL")
	}
	path := filepath.Join(t.TempDir(), FileName)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledChild$")
	cmd.Env = append(os.Environ(), "CCMUX_HISTORY_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "recorded" {
	}
	recorded := time.Now()

	s := open(t, path, nil)
	count := func() int {
		var n int
		s.db.QueryRow(`SELECT count(*) FROM requests`).Scan(&n)
		return n
	}
	limit := time.Second
	if testsupport.Race {
		limit = 20 * time.Second // the race detector slows SQLite (translated to Go) many times
	}
	for count() < 100 {
		if time.Since(recorded) > limit {
			t.Fatalf("%d of 100 records committed %v after they were recorded", count(), limit)
		}
		time.Sleep(10 * time.Millisecond) // polling the file another process writes
	}
	t.Logf("committed %v after recording", time.Since(recorded).Round(time.Millisecond))
	cmd.Process.Kill()
	cmd.Wait()
	s.Close()
	s = open(t, path, nil)
	if got, _ := s.Requests(context.Background(), 500, 0); len(got) != 100 {
		t.Errorf("after the kill: %d requests, want 100", len(got))
	}
}

// TestKilledChild is the child of TestKilledProcessLosesAtMostASecond.
func TestKilledChild(t *testing.T) {
	path := os.Getenv("CCMUX_HISTORY_CHILD")
	if path == "" {
		t.Skip("run by TestKilledProcessLosesAtMostASecond")
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		s.Record(req(time.Now(), "claude-sonnet-4-5", int64(i), 1))
	}
	os.Stdout.WriteString("recorded\n")
	select {} // until killed
}
