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
	// maxIdle bounds the refresher's sleep, so a login made by another
	// process is picked up.
	maxIdle = time.Minute
	// noProgressDelay is the wait after a pass that could not move a
	// login forward (e.g. the store lock failed), so errors never spin.
	noProgressDelay = 30 * time.Second
)

// RunRefresher keeps every stored OAuth token fresh until ctx is done: it
// wakes a jittered moment before each token enters the 5-minute window,
// refreshes it (sharing the refresh with any concurrent caller) and publishes
// events. API keys from console logins need no refresh.
func (c *Client) RunRefresher(ctx context.Context) {
	for {
		wait := c.refreshPass(ctx).Sub(c.clock.Now())
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(max(wait, 0)):
		case <-c.wake:
		}
	}
}

// refreshPass refreshes whatever is due and returns when to look again.
func (c *Client) refreshPass(ctx context.Context) time.Time {
	now := c.clock.Now()
	next := now.Add(maxIdle)
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
		if r.APIKey != "" || r.RefreshToken == "" {
			continue
		}
		jitter := jitterFor(id, r.ExpiresAt)
		due := c.dueAt(id, r, jitter)
		if !now.Before(due) {
			_, err := c.refresh(ctx, id, "", refreshWindow+jitter)
			if ctx.Err() != nil {
				return now
			}
			if errors.Is(err, ErrSessionEnded) || errors.Is(err, ErrNoToken) {
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
		next = earliest(next, due)
		if r.ExpiresAt.After(now) {
			next = earliest(next, r.ExpiresAt) // to announce Expired on time
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
