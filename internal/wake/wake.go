// Package wake notices that the machine slept or moved to another network,
// by comparing the clocks and the local addresses with the last look, and
// tells its caller. It never touches connections or tokens itself.
package wake

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"
)

const (
	// DefaultSlack is how far the wall clock may run ahead of the
	// monotonic one between two looks before it counts as a sleep: more
	// than a clock adjustment (NTP slews a few ms a second), less than
	// the shortest sleep worth acting on.
	DefaultSlack = 5 * time.Second
	// settle is the wait after the kernel reports a change before Check
	// looks: an interface coming up brings several addresses, and a
	// resume a clock change and then new addresses, in one burst.
	settle = time.Second
	// pollEvery is how often Run looks where the kernel does not report a
	// resume and an address change (or those reports could not be
	// opened): the delay before a wake is noticed. Each look wakes the
	// process, 4 to 6 context switches in Go's runtime: measured on Linux
	// (a busy 2-core machine), an idle ccmux woke 0.43 times a second
	// with a look every 10 s, 0.19 every 30 s, 0.03 without.
	pollEvery = time.Minute
	// watchedEvery is how often Run looks besides the kernel's reports: a
	// safety net that costs an idle process next to nothing.
	watchedEvery = 5 * time.Minute
)

// Clock reads two clocks at the same instant: the wall clock, which runs
// on while the machine sleeps, and a monotonic one, which stops (Go's
// timers run on it, so they do not count the sleep).
type Clock interface {
	Now() (wall time.Time, monotonic time.Duration)
}

// Change is what a Detector noticed since its last look.
type Change struct {
	// Slept is how far the wall clock ran ahead of the monotonic one: about
	// how long the machine slept (0: it did not).
	Slept time.Duration
	// Network is set when the set of local addresses changed.
	Network bool
}

// Detector looks for a sleep or a network change each time Check runs.
// Run calls Check when the kernel says the clock was set (a resume counts)
// or an address changed, where it can (Linux), and every Every.
type Detector struct {
	// Clock is the time source; nil means the system's.
	Clock Clock
	// Addrs lists the local addresses; nil means net.InterfaceAddrs.
	Addrs func() ([]net.Addr, error)
	// Every is how often Run checks besides the kernel's reports; 0 means
	// every minute, or 5 minutes where the kernel reports changes.
	Every time.Duration
	// Slack is how far the wall clock may run ahead of the monotonic one
	// without counting as a sleep; 0 means DefaultSlack.
	Slack time.Duration
	// OnChange is called, from Check, with what changed.
	OnChange func(Change)

	mu      sync.Mutex
	checked bool      // a first look set the baseline
	wall    time.Time // the last look's clocks
	mono    time.Duration
	addrs   []string // the last set of addresses read, sorted; nil when unknown
}

// Run checks until ctx is done: at once (the baseline), a second after
// each change the kernel reports, and every Every. Each check wakes the
// process (several context switches in Go's runtime), so Every is long
// where the kernel reports changes.
func (d *Detector) Run(ctx context.Context) {
	d.Check()
	changes, watching, stop := watch()
	defer stop()
	every := d.Every
	if every <= 0 {
		every = pollEvery
		if watching {
			every = watchedEvery
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var settled <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.Check()
		case <-changes:
			if settled == nil {
				settled = time.After(settle)
			}
		case <-settled:
			settled = nil
			d.Check()
		}
	}
}

// Check compares the clocks and the local addresses with the last check's
// and, when the machine slept or the addresses changed, calls OnChange and
// returns what changed. The first check only sets the baseline. A failed
// read of the addresses counts as no change (and the next good read as the
// new baseline).
func (d *Detector) Check() Change {
	clock := d.Clock
	if clock == nil {
		clock = systemClock
	}
	wall, mono := clock.Now()
	addrs, err := d.readAddrs()

	d.mu.Lock()
	var ch Change
	if d.checked {
		slack := d.Slack
		if slack <= 0 {
			slack = DefaultSlack
		}
		if ahead := wall.Sub(d.wall) - (mono - d.mono); ahead > slack {
			ch.Slept = ahead
		}
		ch.Network = err == nil && d.addrs != nil && !slices.Equal(addrs, d.addrs)
	}
	d.checked, d.wall, d.mono = true, wall, mono
	if err == nil {
		d.addrs = addrs
	}
	d.mu.Unlock()

	if (ch.Slept > 0 || ch.Network) && d.OnChange != nil {
		d.OnChange(ch)
	}
	return ch
}

// readAddrs is the sorted set of local addresses, loopback left out (it
// never changes with the network).
func (d *Detector) readAddrs() ([]string, error) {
	list := d.Addrs
	if list == nil {
		list = net.InterfaceAddrs
	}
	as, err := list()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(as))
	for _, a := range as {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.IsLoopback() {
			continue
		}
		out = append(out, a.String())
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// systemClock reads Go's clocks: time.Now carries both, and Sub between
// two of its readings uses the monotonic one.
var systemClock Clock = goClock{start: time.Now()}

type goClock struct{ start time.Time }

func (c goClock) Now() (time.Time, time.Duration) {
	t := time.Now()
	return t.Round(0), t.Sub(c.start)
}
