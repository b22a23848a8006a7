package main

import (
	"time"

	"ccmux/internal/wake"
)

// watchWake runs the sleep and network-change detector until the service
// stops (e.wake, or the system's): a pooled upstream connection may be dead
// after either without knowing it, and the background work's timers did
// not count the sleep.
func (e *env) watchWake(s *service) {
	d := e.wake
	if d == nil {
		d = &wake.Detector{}
	}
	d.OnChange = s.resumed
	s.wakeDone = make(chan struct{})
	go func() {
		defer close(s.wakeDone)
		d.Run(s.ctx)
	}()
}

// resumed is what the service does when the machine slept or its network
// changed: the next upstream requests dial anew, and the token refresher
// and the usage poller run once, a little later (auth.Client.Resume).
// Requests never wait for any of it.
func (s *service) resumed(c wake.Change) {
	msg, attrs := "the network changed; closing upstream connections and checking the logins", []any{"network_changed", true}
	if c.Slept > 0 {
		msg, attrs = "the machine slept; closing upstream connections and checking the logins", []any{"slept", c.Slept.Round(time.Second), "network_changed", c.Network}
	}
	s.log.Info(msg, attrs...)
	s.proxy.CloseUpstreamConns()
	s.client.Resume()
}
