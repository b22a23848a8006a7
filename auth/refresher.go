package auth

import (
	"context"
	"errors"
	"hash/fnv"
	"sort"
	"time"
)

const (
	// maxJitter spreads background refreshes so that tokens issued together
	// are not refreshed together.
	maxJitter = time.Minute
	// noProgressDelay is the wait after a pass that could not move a
	// login forward (e.g. the store lock failed), so errors never spin.
	noProgressDelay = 30 * time.Second
)

// RunRefresher keeps ccmux's own OAuth logins fresh until ctx is done: it
// sleeps until the next one needs attention (a jittered moment before it
// enters the 5-minute window, or its expiry, to announce it), refreshes it
// (sharing the refresh with any concurrent caller) and publishes events.
// With no such login it sleeps until a login, a logout, or a read of the
// store that finds one (another process's `ccmux login`) wakes it: an idle
// app sets no timer and never polls the file. API keys from console logins
// and logins other apps manage are never refreshed.
func (c *Client) RunRefresher(ctx context.Context) {
	c.mu.Lock()
	c.refresherOn = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.refresherOn, c.sleeping = false, false
		c.mu.Unlock()
	}()
	for {
		resumed := c.resumeSignal()
		next := c.refreshPass(ctx)
		c.mu.Lock()
		c.sleepUntil, c.sleeping = next, true
		c.mu.Unlock()
		if c.onSleep != nil {
			c.onSleep(next)
		}
		var wake <-chan time.Time // nil: no timer, wait for a nudge
		if !next.IsZero() {
			wake = c.clock.After(max(next.Sub(c.clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-c.wake:
		case <-resumed:
			// The machine slept or changed networks. The timer above
			// did not count the sleep: look again, against the wall
			// clock, after a short random wait (no burst on wake), or
			// sooner if its schedule comes first.
			select {
			case <-ctx.Done():
				return
			case <-c.clock.After(c.resumeDelay()):
			case <-wake:
			case <-c.wake:
			}
		}
		c.mu.Lock()
		c.sleeping = false
		c.mu.Unlock()
	}
}

// refreshable reports whether the refresher looks after r.
func (c *Client) refreshable(id string, r record) bool {
	return !r.opaque && r.APIKey == "" && r.RefreshToken != "" && c.owns(id, r)
}

// attention is when the refresher should next look at r: its refresh, or
// its expiry (to announce Expired on time), whichever comes first.
func (c *Client) attention(id string, r record, now time.Time) time.Time {
	due := c.dueAt(id, r, jitterFor(id, r.ExpiresAt))
	if r.ExpiresAt.After(now) {
		due = earliest(due, r.ExpiresAt)
	}
	return due
}

// sawRecords wakes a sleeping refresher when the store, read for any
// reason, holds a login it would look at before it means to wake.
func (c *Client) sawRecords(recs map[string]record) {
	c.mu.Lock()
	sleeping, until := c.refresherOn && c.sleeping, c.sleepUntil
	c.mu.Unlock()
	if !sleeping { // a pass reads the store itself
		return
	}
	now := c.clock.Now()
	for id, r := range recs {
		if !c.refreshable(id, r) {
			continue
		}
		if at := c.attention(id, r, now); until.IsZero() || at.Before(until) {
			c.nudge()
			return
		}
	}
}

// refreshPass refreshes whatever is due and returns when to look again
// (zero: nothing to look after).
func (c *Client) refreshPass(ctx context.Context) time.Time {
	now := c.clock.Now()
	var next time.Time
	recs, err := c.store.read(ctx)
	if err != nil {
		c.log.Warn("token refresher could not read the token store", "path", c.store.Path(), "err", err.Error())
		return now.Add(noProgressDelay)
	}
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := recs[id]
		if !c.refreshable(id, r) {
			continue
		}
		jitter := jitterFor(id, r.ExpiresAt)
		due := c.dueAt(id, r, jitter)
		if !now.Before(due) {
			_, err := c.refresh(ctx, id, "", refreshWindow+jitter)
			if ctx.Err() != nil {
				return now
			}
			if errors.Is(err, ErrSessionEnded) || errors.Is(err, ErrNoToken) || errors.Is(err, ErrNotOwned) {
				continue
			}
			if after, rerr := c.record(ctx, id); rerr == nil {
				r = after
			}
			if due = c.dueAt(id, r, jitterFor(id, r.ExpiresAt)); !due.After(now) {
				due = now.Add(noProgressDelay)
			}
		}
		c.noticeExpiry(id, r, now)
		if r.ExpiresAt.After(now) {
			due = earliest(due, r.ExpiresAt) // to announce Expired on time
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	return next
}

// dueAt is when r should be refreshed: jitter before the 5-minute window,
// or later if a failed refresh asked to back off.
func (c *Client) dueAt(id string, r record, jitter time.Duration) time.Time {
	due := r.ExpiresAt.Add(-refreshWindow - jitter)
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.health[id]; h != nil && h.nextAttempt.After(due) {
		due = h.nextAttempt
	}
	return due
}

// jitterFor is a stable [0, maxJitter) offset per login and expiry, so
// every process sharing the store picks the same moment (the file lock then
// makes one of them refresh) while different logins spread out.
func jitterFor(id string, expires time.Time) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	h.Write([]byte(expires.UTC().Format(time.RFC3339)))
	return time.Duration(h.Sum64() % uint64(maxJitter))
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
