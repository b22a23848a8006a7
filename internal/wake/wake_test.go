package wake

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock the test moves by hand, each clock on its own.
type fakeClock struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

func (c *fakeClock) Now() (time.Time, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall, c.mono
}

// advance moves the wall clock by wall and the monotonic one by mono.
func (c *fakeClock) advance(wall, mono time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall, c.mono = c.wall.Add(wall), c.mono+mono
}

// fakeAddrs is an address list the test sets.
type fakeAddrs struct {
	mu    sync.Mutex
	addrs []string
	err   error
}

func (f *fakeAddrs) set(err error, cidrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs, f.err = cidrs, err
}

func (f *fakeAddrs) list() ([]net.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []net.Addr
	for _, c := range f.addrs {
		ip, n, err := net.ParseCIDR(c)
		if err != nil {
			panic(err)
		}
		n.IP = ip
		out = append(out, n)
	}
	return out, nil
}

func newDetector() (*Detector, *fakeClock, *fakeAddrs, *[]Change) {
	clock := &fakeClock{wall: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	addrs := &fakeAddrs{}
	addrs.set(nil, "127.0.0.1/8", "192.168.1.20/24", "fe80::1/64")
	var seen []Change
	d := &Detector{Clock: clock, Addrs: addrs.list, OnChange: func(c Change) { seen = append(seen, c) }}
	return d, clock, addrs, &seen
}

func TestSleepIsNoticed(t *testing.T) {
	tests := []struct {
		name       string
		wall, mono time.Duration
		slept      time.Duration
	}{
		{"awake, 10 s", 10 * time.Second, 10 * time.Second, 0},
		{"awake, a busy machine checked late", 40 * time.Second, 40 * time.Second, 0},
		{"clock adjusted by 2 s", 12 * time.Second, 10 * time.Second, 0},
		{"clock set back", -time.Hour, 10 * time.Second, 0},
		{"slept an hour", time.Hour, time.Second, time.Hour - time.Second},
		{"slept 20 s", 30 * time.Second, 10 * time.Second, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, clock, _, seen := newDetector()
			if c := d.Check(); c != (Change{}) {
				t.Fatalf("the first check (the baseline) reported %+v", c)
			}
			clock.advance(tt.wall, tt.mono)
			c := d.Check()
			if c.Slept != tt.slept || c.Network {
				t.Errorf("Check = %+v, want Slept %s", c, tt.slept)
			}
			if want := tt.slept > 0; (len(*seen) == 1) != want || len(*seen) > 1 {
				t.Errorf("OnChange calls %v, want one: %v", *seen, want)
			}
			// The next check compares with this one: a sleep is reported once.
			clock.advance(10*time.Second, 10*time.Second)
			if c := d.Check(); c != (Change{}) {
				t.Errorf("the check after reported %+v", c)
			}
		})
	}
}

func TestNetworkChangeIsNoticed(t *testing.T) {
	d, clock, addrs, seen := newDetector()
	d.Check()
	step := func(want bool, what string) {
		t.Helper()
		clock.advance(10*time.Second, 10*time.Second)
		n := len(*seen)
		c := d.Check()
		if c.Network != want || c.Slept != 0 || (len(*seen) > n) != want {
			t.Errorf("%s: Check = %+v, OnChange calls %d → %d, want Network %v", what, c, n, len(*seen), want)
		}
	}
	step(false, "nothing changed")
	addrs.set(nil, "fe80::1/64", "192.168.1.20/24", "127.0.0.1/8", "192.168.1.20/24")
	step(false, "the same set in another order, one listed twice")
	addrs.set(nil, "127.0.0.1/8", "10.0.0.7/8", "fe80::1/64")
	step(true, "another Wi-Fi: another address")
	step(false, "then nothing")
	addrs.set(errors.New("netlink: busy"), "")
	step(false, "the addresses could not be read")
	addrs.set(nil, "127.0.0.1/8", "10.0.0.7/8", "fe80::1/64")
	step(false, "read again, unchanged")
	addrs.set(nil, "127.0.0.1/8", "::1/128")
	step(true, "offline (loopback only)")
	addrs.set(nil, "127.0.0.1/8")
	step(false, "loopback changes are not a network change")
	addrs.set(nil, "127.0.0.1/8", "192.168.1.20/24")
	step(true, "back online")
}

// Run checks at once (the baseline) and stops with its context.
func TestRunStopsWithContext(t *testing.T) {
	d, _, addrs, _ := newDetector()
	read := make(chan struct{}, 1)
	d.Addrs = func() ([]net.Addr, error) {
		select {
		case read <- struct{}{}:
		default:
		}
		return addrs.list()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not check at start")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}

// The system clock's two readings agree while the machine is awake.
func TestSystemClock(t *testing.T) {
	w1, m1 := systemClock.Now()
	w2, m2 := systemClock.Now()
	if skew := w2.Sub(w1) - (m2 - m1); skew > time.Second || skew < -time.Second {
		t.Errorf("wall and monotonic clocks differ by %s between two reads", skew)
	}
	if m2 < m1 {
		t.Errorf("the monotonic reading went back: %s then %s", m1, m2)
	}
}
