package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svc, err := e.startService(ctx, cfg, log)
	if err != nil {
		return err
	}
	reloads := hangups(ctx)
	if err := svc.proxy.Start(ctx); err != nil {
		if ctx.Err() != nil {
			// The signal came while the listener opened: a stop like any
			// other, not a failure to listen ("operation was canceled").
			log.Info("stopping")
			return svc.stop()
		}
		svc.stop()
		return err
	}
	log.Info("proxy listening", "addr", svc.proxy.Addr(), "base_url", cfg.BaseURL())
	defer e.reloader(cfg, svc).follow(ctx, reloads)()
	<-ctx.Done()
	log.Info("stopping")
	return svc.stop()
}
