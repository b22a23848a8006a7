package main

import (
	"context"
	"log/slog"
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

	cancel    context.CancelFunc
	refresher chan struct{} // closed when RunRefresher returns
	stopUsage func()        // waits for the poller, saves the numbers
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
	s := &service{client: client, proxy: newProxy(cfg, client, log), log: log, cancel: cancel, refresher: make(chan struct{})}
	s.usage, s.stopUsage = startLimits(ctx, cfg, client, s.proxy, log)
	go func() { client.RunRefresher(ctx); close(s.refresher) }()
	return s, nil
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
	drainTokens(s.client, s.log)
	s.stopUsage()
	return err
}

// newAuth opens the token store and returns the auth client.
func (e *env) newAuth(cfg *config.Config, log *slog.Logger) (*auth.Client, error) {
	path, err := config.TokenPath()
	if err != nil {
		return nil, err
	}
	return auth.NewClient(cfg, auth.NewStore(path), auth.Options{Logger: log}), nil
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
// snapshot, and polls the usage endpoint into it until ctx ends. The
// returned function waits for the poller and writes the snapshot.
func startLimits(ctx context.Context, cfg *config.Config, client *auth.Client, srv *proxy.Server, log *slog.Logger) (*proxy.UsageTracker, func()) {
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
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.RunUsagePoller(ctx, cfg.EnabledSubscriptionLogins(), tracker.ObserveUsage)
	}()
	return tracker, func() {
		<-done
		if err := tracker.Save(); err != nil {
			log.Warn("could not save the usage numbers", "err", err)
		}
	}
}
