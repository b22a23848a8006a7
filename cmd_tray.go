package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"ccmux/tray"
)

func runTray(e *env, args []string) error {
	cfg, err := e.commandConfig(flags("tray"), args)
	if err != nil {
		return err
	}
	if err := tray.Available(); err != nil {
		fmt.Fprintf(e.stderr, "ccmux: no system tray available (%v); running headless — use `ccmux login`/`ccmux status`\n", err)
		return e.serveHeadless(cfg)
	}
	log, logPath, closeLog, err := e.fileLogger()
	if err != nil {
		return err
	}
	defer closeLog()
	log.Info("starting the tray", "version", version, "config", cfg.Path)
	client, err := e.newAuth(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	refresher := make(chan struct{})
	go func() { client.RunRefresher(ctx); close(refresher) }()
	defer func() { stop(); <-refresher; drainTokens(client, log) }()
	srv := newProxy(cfg, client, log)
	tracker, stopLimits := startLimits(ctx, cfg, client, srv, log)
	defer func() { stop(); stopLimits() }()
	return tray.Run(ctx, tray.Options{
		Config:     cfg,
		ConfigPath: cfg.Path,
		LogPath:    logPath,
		Auth:       &trayAuth{client: client, provider: cfg.DefaultOAuthProvider()},
		Proxy:      srv,
		Usage:      trayUsage{srv: srv, tracker: tracker, login: cfg.DefaultOAuthProvider()},
		Logger:     log,
		Version:    version,
	})
}
