package main

import (
	"context"
	"log/slog"
	"slices"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/proxy"
)

// subscriptionLogins are the token-store ids of the enabled Claude
// subscription providers (OAuth, not a console login), in config order.
func subscriptionLogins(cfg *config.Config) []string {
	var ids []string
	for i, p := range cfg.Providers {
		if id := cfg.SubscriptionLogin(i); id != "" && p.IsEnabled() && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
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
		client.RunUsagePoller(ctx, subscriptionLogins(cfg), tracker.ObserveUsage)
	}()
	return tracker, func() {
		<-done
		if err := tracker.Save(); err != nil {
			log.Warn("could not save the usage numbers", "err", err)
		}
	}
}
