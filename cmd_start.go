package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"ccmux/config"
)

func runStart(e *env, args []string) error {
	cfg, err := e.commandConfig(flags("start"), args)
	if err != nil {
		return err
	}
	return e.serveHeadless(cfg)
}

// serveHeadless runs the proxy and the token refresher until SIGINT/SIGTERM.
func (e *env) serveHeadless(cfg *config.Config) error {
	log := e.logger()
	client, err := e.newAuth(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := newProxy(cfg, client, log)
	_, stopLimits := startLimits(ctx, cfg, client, srv, log)
	defer stopLimits()
	if err := srv.Start(ctx); err != nil {
		stop()
		return err
	}
	log.Info("proxy listening", "addr", srv.Addr(), "base_url", cfg.BaseURL())
	refresher := make(chan struct{})
	go func() { client.RunRefresher(ctx); close(refresher) }()
	<-ctx.Done()
	log.Info("stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Stop(shutdown)
	<-refresher
	drainTokens(client, log)
	return err
}
