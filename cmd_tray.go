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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svc, err := e.startService(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.stop()
	// The tray's logins are the running config's: a reload may change them.
	logins := func() ([]string, string) { return trayLogins(svc.proxy) }
	return tray.Run(ctx, tray.Options{
		Config:     cfg,
		ConfigPath: cfg.Path,
		Reload:     e.reloader(cfg, svc),
		Reloads:    hangups(ctx),
		LogPath:    logPath,
		Auth:       &trayAuth{client: svc.client, logins: logins},
		Proxy:      svc.proxy,
		Usage:      trayUsage{srv: svc.proxy, tracker: svc.usage},
		Logger:     log,
		Version:    version,
	})
}
