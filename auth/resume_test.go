package auth

import (
	"context"
	"testing"
	"time"
)

// After a suspend the refresher's timer has not counted the sleep; a
// Resume makes it look again, after the resume delay, against the wall
// clock: a token that expired during the sleep is refreshed then.
func TestResumeRefresherLooksAgain(t *testing.T) {
	e := newEnv(t, withFakeClock(), withResumeDelay(7*time.Second))
	events, stop := e.c.Subscribe()
	defer stop()
	e.signIn("anthropic-max")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.clock.drainArmed()
	<-e.c.wake // the sign-in's nudge: the refresher starts with a pass anyway
	go func() { e.c.RunRefresher(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	e.clock.waitArmed(t)

	e.clock.Jump(time.Hour) // the token (1 hour) expired while the machine slept
	if n := e.srv.RefreshCount(); n != 0 {
		t.Fatalf("%d refreshes before the resume", n)
	}
	e.c.Resume()
	e.clock.waitArmed(t) // the resume delay
	e.clock.Advance(7*time.Second - time.Millisecond)
	if n := e.srv.RefreshCount(); n != 0 {
		t.Fatalf("%d refreshes before the resume delay passed", n)
	}
	e.clock.Advance(time.Millisecond)
	nextEvent(t, events, Refreshed)
	if n := e.srv.RefreshCount(); n != 1 {
		t.Fatalf("%d refreshes after the resume, want 1", n)
	}
	e.clock.waitArmed(t) // back to its schedule
	if next := e.clock.NextTimer(); next.Sub(e.clock.Now()) < 50*time.Minute {
		t.Errorf("after the resume the refresher wakes again in %s, want its schedule (the new token's refresh)", next.Sub(e.clock.Now()))
	}
}

// A Resume makes the usage poller ask exactly once more, after the resume
// delay, and then go back to its schedule.
func TestResumePollsUsageOnce(t *testing.T) {
	e := newEnv(t, withFakeClock(), withResumeDelay(7*time.Second))
	e.cfg.OAuth["anthropic-max"] = withPoll(e.cfg.OAuth["anthropic-max"], 60)
	e.signIn("anthropic-max")
	got, stop := runPoller(t, e)
	defer stop()
	receive(t, got) // at start
	e.clock.waitArmed(t)

	e.clock.Jump(time.Hour)
	e.c.Resume()
	e.clock.waitArmed(t)
	e.clock.Advance(7*time.Second - time.Millisecond)
	if n := len(e.srv.UsageRequests()); n != 1 {
		t.Fatalf("%d usage requests before the resume delay passed, want 1", n)
	}
	e.clock.Advance(time.Millisecond)
	receive(t, got)
	e.clock.waitArmed(t)
	e.clock.Advance(60*time.Second - time.Millisecond)
	if n := len(e.srv.UsageRequests()); n != 2 {
		t.Fatalf("%d usage requests within the interval after the resume, want 2 (one at start, one after it)", n)
	}
	e.clock.Advance(time.Millisecond)
	receive(t, got)
	if n := len(e.srv.UsageRequests()); n != 3 {
		t.Fatalf("%d usage requests, want 3", n)
	}
}

// A Resume does not cut short the backoff a 429 asked for.
func TestResumeKeepsUsageBackoff(t *testing.T) {
	e := newEnv(t, withFakeClock(), withResumeDelay(0))
	e.cfg.OAuth["anthropic-max"] = withPoll(e.cfg.OAuth["anthropic-max"], 60)
	e.signIn("anthropic-max")
	e.srv.FailUsage(429, 1, "600")
	got, stop := runPoller(t, e)
	defer stop()
	e.clock.waitArmed(t) // the 429, then a wait of 600 s
	e.c.Resume()
	e.clock.waitArmed(t)
	e.clock.Advance(599 * time.Second)
	if n := len(e.srv.UsageRequests()); n != 1 {
		t.Fatalf("%d usage requests within the 429's Retry-After, want 1", n)
	}
	e.clock.Advance(time.Second)
	receive(t, got)
}

func runPoller(t *testing.T, e *env) (<-chan []UsageWindow, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan []UsageWindow, 16)
	done := make(chan struct{})
	e.clock.drainArmed()
	go func() {
		e.c.RunUsagePoller(ctx, []string{"anthropic-max"}, func(_ string, ws []UsageWindow) { got <- ws })
		close(done)
	}()
	return got, func() { cancel(); <-done }
}

func TestResumeDelayIsBounded(t *testing.T) {
	c := &Client{}
	for range 100 {
		if d := c.resumeDelay(); d < 0 || d >= maxResumeDelay {
			t.Fatalf("resume delay %s, want [0, %s)", d, maxResumeDelay)
		}
	}
	c.resumeWait = func() time.Duration { return time.Hour }
	if d := c.resumeDelay(); d != maxResumeDelay {
		t.Errorf("an injected delay of an hour gave %s, want it capped at %s", d, maxResumeDelay)
	}
}

// The resume delay does not hold back what the refresher had scheduled
// within it: a refresh due a second after a Resume with a 7-second delay
// comes after that second (found in review: the delay ignored the
// schedule, so a refresh or an Expired announcement came up to 30 s late).
func TestResumeDelayKeepsTheSchedule(t *testing.T) {
	e := newEnv(t, withFakeClock(), withResumeDelay(7*time.Second))
	events, stop := e.c.Subscribe()
	defer stop()
	e.signIn("anthropic-max")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	e.clock.drainArmed()
	<-e.c.wake
	go func() { e.c.RunRefresher(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	e.clock.waitArmed(t)
	due := e.clock.NextTimer()
	e.clock.Set(due.Add(-time.Second))
	e.c.Resume()
	e.clock.waitArmed(t) // the resume delay
	e.clock.Advance(time.Second)
	nextEvent(t, events, Refreshed)
}
