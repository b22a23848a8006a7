package wake

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// In a network namespace of its own (root only), an address added is
// reported by watch, and the next Check finds the network changed.
func TestWatchReportsAnAddressChange(t *testing.T) {
	ip, err := exec.LookPath("ip")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and ip(8) to make a network namespace")
	}
	type result struct {
		change Change
		err    error
		skip   string
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, in its own namespace, ends with
		// this goroutine. Commands run from it start in that namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{skip: "cannot make a network namespace: " + err.Error()}
			return
		}
		d := &Detector{Clock: &fakeClock{wall: time.Now()}}
		d.Check()
		changes, watching, stop := watch()
		defer stop()
		if !watching {
			done <- result{err: errors.New("watch could not open the kernel's reports")}
			return
		}
		if out, err := exec.Command(ip, "addr", "add", "10.7.7.7/8", "dev", "lo").CombinedOutput(); err != nil {
			done <- result{skip: "ip addr add: " + string(out)}
			return
		}
		select {
		case <-changes:
		case <-time.After(10 * time.Second):
			done <- result{err: errors.New("no report of the new address within 10 s")}
			return
		}
		done <- result{change: d.Check()}
	}()
	r := <-done
	switch {
	case r.skip != "":
		t.Skip(r.skip)
	case r.err != nil:
		t.Fatal(r.err)
	case !r.change.Network:
		t.Errorf("Check after the new address = %+v, want Network", r.change)
	}
}

// The timerfd that reports a resume opens and arms (setting the clock,
// which would fire it, needs privileges a test must not use).
func TestClockChangesOpens(t *testing.T) {
	f, err := clockChanges()
	if err != nil {
		t.Fatalf("timerfd: %v", err)
	}
	defer f.Close()
	if err := armClock(f); err != nil {
		t.Errorf("re-arming: %v", err)
	}
}

// The kernel's reports are closed when Run returns: a service started and
// stopped many times (the tray's Start/Stop) keeps no descriptor open.
func TestRunClosesItsFiles(t *testing.T) {
	count := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip(err)
		}
		return len(fds)
	}
	before := count()
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { (&Detector{Addrs: func() ([]net.Addr, error) { return nil, nil }}).Run(ctx); close(done) }()
		cancel()
		<-done
	}
	if after := count(); after > before {
		t.Errorf("%d descriptors open after 5 runs, %d before", after, before)
	}
}
