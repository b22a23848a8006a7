package auth

import (
	"math/rand/v2"
	"time"
)

// maxResumeDelay bounds the random wait before the background work runs
// after a Resume: machines waking together (a fleet of laptops opened at
// 9:00) spread their token and usage requests over it.
const maxResumeDelay = 30 * time.Second

// Resume tells the background work that the machine woke from sleep or
// moved to another network. After a random wait of up to 30 seconds
// (Options.ResumeDelay), RunRefresher looks at every login again, against
// the wall clock (its own timer did not count the sleep), and
// RunUsagePoller asks once for each login; then both go back to their
// schedule. A usage endpoint that answered 429 is not asked before its
// Retry-After. Requests never wait for this: a token that expired during
// the sleep is refreshed by the first request that needs it.
func (c *Client) Resume() {
	c.mu.Lock()
	close(c.resumed)
	c.resumed = make(chan struct{})
	c.mu.Unlock()
}

// resumeSignal is closed by the next Resume. A loop takes it before doing
// its work, so a Resume that comes during the work is not missed.
func (c *Client) resumeSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resumed
}

// resumeDelay is the wait before the background work runs after a Resume.
func (c *Client) resumeDelay() time.Duration {
	if c.resumeWait != nil {
		return min(max(c.resumeWait(), 0), maxResumeDelay)
	}
	return rand.N(maxResumeDelay)
}
