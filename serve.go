package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/proxy"
)

// service is one run of the proxy with what keeps it serving: the auth
// client, the token refresher and the usage poller. `ccmux start`, the tray
// and `ccmux claude` start and stop it the same way.
type service struct {
	client *auth.Client
	proxy  *proxy.Server
	usage  *proxy.UsageTracker
	log    *slog.Logger

	ctx       context.Context // ends with stop
	cancel    context.CancelFunc
	refresher chan struct{} // closed when RunRefresher returns
	wakeDone  chan struct{} // closed when the wake detector returns

	// poll asks the usage endpoint for the logins ids until ctx ends
	// (auth.Client.RunUsagePoller; tests put a recorder here).
	poll       func(ctx context.Context, ids []string, report func(string, []auth.UsageWindow))
	pollMu     sync.Mutex
	polled     []string           // the logins the poller asks about
	stopPoll   context.CancelFunc // ends the running poller
	pollerDone chan struct{}      // closed when it has returned

	signingIn atomic.Bool // a dashboard Sign in waits for the browser
}

// startService opens the token store, wires the proxy to it, and runs the
// token refresher and the usage poller until ctx ends or stop is called.
// Listening is the caller's: the headless commands start the proxy at
// once, the tray when its box is checked.
func (e *env) startService(ctx context.Context, cfg *config.Config, log *slog.Logger) (*service, error) {
	client, err := e.newAuth(cfg, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &service{client: client, proxy: newProxy(cfg, client, log), log: log, ctx: ctx, cancel: cancel,
		refresher: make(chan struct{}), poll: client.RunUsagePoller}
	s.usage = startLimits(s.proxy, log)
	s.proxy.History = openHistory(s.proxy, log)
	s.proxy.Dashboard = &proxy.Dashboard{SignIn: s.signIn}
	s.pollFor(cfg)
	go func() { client.RunRefresher(ctx); close(s.refresher) }()
	e.watchWake(s)
	return s, nil
}

// pollFor has the usage poller ask about cfg's Claude subscription logins:
// at start, and after a reload that changed them (the poller then starts
// over, asking each login at once).
func (s *service) pollFor(cfg *config.Config) {
	ids := cfg.EnabledSubscriptionLogins()
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if s.ctx.Err() != nil || (s.pollerDone != nil && slices.Equal(ids, s.polled)) {
		return
	}
	s.waitPollerLocked()
	ctx, stop := context.WithCancel(s.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.poll(ctx, ids, func(id string, ws []auth.UsageWindow) {
			s.usage.ObserveUsage(id, ws)
			s.proxy.RecordUsage(id)
		})
	}()
	s.polled, s.stopPoll, s.pollerDone = ids, stop, done
}

// waitPollerLocked ends the running poller, if any, and waits for it.
func (s *service) waitPollerLocked() {
	if s.pollerDone != nil {
		s.stopPoll()
		<-s.pollerDone
		s.pollerDone = nil
	}
}

// stop stops the listener, if it runs, giving requests 5 seconds to
// finish; then the refresher and the poller. It waits up to 10 seconds for
// token refreshes in flight (drainTokens) and saves the usage numbers.
func (s *service) stop() error {
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.proxy.Stop(shutdown)
	s.cancel()
	<-s.refresher
	if s.wakeDone != nil {
		<-s.wakeDone
	}
	drainTokens(s.client, s.log)
	s.pollMu.Lock()
	s.waitPollerLocked()
	s.pollMu.Unlock()
	if err := s.usage.Save(); err != nil {
		s.log.Warn("could not save the usage numbers", "err", err)
	}
	if err := s.proxy.History.Close(); err != nil {
		s.log.Warn("could not close the history database", "err", err)
	}
	return err
}

// newAuth opens the token store and returns the auth client.
func (e *env) newAuth(cfg *config.Config, log *slog.Logger) (*auth.Client, error) {
	path, err := config.TokenPath()
	if err != nil {
		return nil, err
	}
	return auth.NewClient(cfg, auth.NewStore(path), auth.Options{Logger: log, ResumeDelay: e.resumeDelay}), nil
}

// newProxy wires the proxy server to the auth client.
func newProxy(cfg *config.Config, client *auth.Client, log *slog.Logger) *proxy.Server {
	return &proxy.Server{
		Config:  cfg,
		Tokens:  client,
		Admin:   oauthAdmin{client},
		Logger:  log,
		Version: version,
	}
}

// drainTokens waits, up to 10 seconds, for token refreshes in flight: the
// endpoint has rotated the refresh token, so exiting before the answer is
// stored would lose the login.
func drainTokens(client *auth.Client, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Drain(ctx); err != nil {
		log.Warn("stopped before a token refresh finished; sign in again if requests fail", "err", err)
	}
}

// startLimits gives srv a usage tracker, restored from the last run's
// snapshot (the service's stop saves it again).
func startLimits(srv *proxy.Server, log *slog.Logger) *proxy.UsageTracker {
	path, err := config.TokenPath()
	var store proxy.UsageStore
	if err == nil {
		store = auth.NewStore(path)
	}
	tracker := proxy.NewUsageTracker(store, log)
	if err := tracker.Restore(); err != nil {
		log.Warn("could not restore the last usage numbers", "err", err)
	}
	srv.Usage = tracker
	return tracker
}
