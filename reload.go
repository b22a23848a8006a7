package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/proxy"
)

// reloadHelp ends `ccmux help start` and `ccmux help tray`.
const reloadHelp = `Reload: SIGHUP (or the tray's Reload config) reads the config file again.
A valid file applies to new requests while open streams finish as they
began; a new server.host or port moves the proxy there once the new
address is bound. An invalid file keeps the running config; the log (and
the tray, in a notification) says why, as ccmux config check does.
`

// reloader re-reads the config file a running ccmux started with and
// applies it to the proxy and the auth client: SIGHUP and the tray's
// "Reload config" both come here. The usage tracker, the token refresher
// and the log keep running as they are; the log's level follows
// server.log_level unless --log-level set it.
type reloader struct {
	path   string // the file start read (--config, CCMUX_CONFIG or the default)
	srv    *proxy.Server
	client *auth.Client
	log    *slog.Logger
	level  *slog.LevelVar // the log's level; nil or levelFixed: left alone
	// levelFixed: --log-level was given, and wins over the file.
	levelFixed bool
	// applied, when set, hears of each config a reload applied (the
	// service's usage poller follows the subscription logins in it).
	applied func(cfg *config.Config)
	mu      sync.Mutex // one reload at a time: two would race to move the listener
}

// reloader is the reloader of the service start or the tray runs.
func (e *env) reloader(cfg *config.Config, svc *service) *reloader {
	return &reloader{path: cfg.Path, srv: svc.proxy, client: svc.client, log: svc.log,
		level: &e.level, levelFixed: e.logLevelFlag != "", applied: svc.pollFor}
}

// Reload reads the file again, checks it as `ccmux config check` does and
// applies it; it returns what changed, in a few words. On an error the
// running config stays, the error is logged once and returned as config
// check words it.
func (r *reloader) Reload(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, oldAddr := r.srv.CurrentConfig(), r.srv.Addr()
	cfg, err := config.Load(r.path)
	if err == nil {
		err = startable(cfg)
	}
	moved := false
	if err == nil {
		moved, err = r.srv.Reload(ctx, cfg)
	}
	if err != nil {
		r.log.Error("config not reloaded; the running config stays", "path", r.path, "err", err)
		r.srv.NoteReload("", err)
		return "", err
	}
	r.client.SetConfig(cfg)
	if r.applied != nil {
		r.applied(cfg)
	}
	if r.level != nil && !r.levelFixed {
		if lv, err := config.ParseLogLevel(cfg.Server.LogLevel); err == nil { // Load checked it
			r.level.Set(lv)
		}
	}
	for _, w := range cfg.Warnings {
		r.log.Warn("config warning", "path", r.path, "warning", w)
	}
	d := diffConfigs(old, cfg)
	attrs := []any{"path", r.path, "providers", d.providers}
	if len(d.added) > 0 {
		attrs = append(attrs, "added", d.added)
	}
	if len(d.removed) > 0 {
		attrs = append(attrs, "removed", d.removed)
	}
	if d.defaultModel != "" {
		attrs = append(attrs, "default_model", d.defaultModel)
	}
	if moved {
		attrs = append(attrs, "moved_from", oldAddr, "addr", r.srv.Addr())
	}
	r.log.Info("config reloaded", attrs...)
	summary := d.summary(moved, r.srv.Addr())
	r.srv.NoteReload(summary, nil)
	return summary, nil
}

// startable is what `ccmux config check` adds to loading the file: the
// proxy cannot start without its own key, unlike a provider's missing key
// (that provider alone fails), so it is an error, not a warning.
func startable(cfg *config.Config) error {
	if _, err := cfg.ServerAPIKey(); err != nil {
		return cfg.Locate(err)
	}
	return nil
}

// configDiff is what a reload changed, at a glance.
type configDiff struct {
	providers      int      // enabled providers now
	added, removed []string // enabled provider names
	defaultModel   string   // router.default when it changed
}

func diffConfigs(old, cfg *config.Config) configDiff {
	before, now := enabledProviders(old), enabledProviders(cfg)
	d := configDiff{providers: len(now)}
	for _, n := range now {
		if !slices.Contains(before, n) {
			d.added = append(d.added, n)
		}
	}
	for _, n := range before {
		if !slices.Contains(now, n) {
			d.removed = append(d.removed, n)
		}
	}
	if old.Router.Default != cfg.Router.Default {
		d.defaultModel = cfg.Router.Default
	}
	return d
}

func enabledProviders(cfg *config.Config) []string {
	var names []string
	for _, p := range cfg.Providers {
		if p.IsEnabled() {
			names = append(names, p.Name)
		}
	}
	return names
}

// summary is the diff for a notification: "3 providers (added kimi); the
// proxy moved to 127.0.0.1:14000".
func (d configDiff) summary(moved bool, addr string) string {
	s := fmt.Sprintf("%d providers", d.providers)
	if d.providers == 1 {
		s = "1 provider"
	}
	var what []string
	if len(d.added) > 0 {
		what = append(what, "added "+strings.Join(d.added, ", "))
	}
	if len(d.removed) > 0 {
		what = append(what, "removed "+strings.Join(d.removed, ", "))
	}
	if len(what) > 0 {
		s += " (" + strings.Join(what, "; ") + ")"
	}
	if d.defaultModel != "" {
		s += "; default model " + d.defaultModel
	}
	if moved {
		s += "; the proxy moved to " + addr
	}
	return s
}

// hangups delivers a value for each SIGHUP until ctx ends; never where
// there is no SIGHUP (Windows). Call it before the proxy starts: an
// unhandled SIGHUP ends the process.
func hangups(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	notifyHangup(sig)
	out := make(chan struct{})
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-sig:
				select {
				case out <- struct{}{}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// follow reloads on each value of reloads until ctx ends (headless: no
// tray to tell, the log says how it went). wait returns once it stopped.
func (r *reloader) follow(ctx context.Context, reloads <-chan struct{}) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-reloads:
				r.Reload(ctx)
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { <-done }
}
