package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/proxy"
	"ccmux/tray"
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

// trayUsage shows the tray's login's limits from the proxy's tracker.
type trayUsage struct {
	srv     *proxy.Server
	tracker *proxy.UsageTracker
	login   string
}

func (u trayUsage) Usage() (tray.Usage, bool) {
	for _, p := range u.srv.UsageReport() {
		if p.Login == u.login {
			tu := toTrayUsage(p)
			// Who serves instead matters only once a limit is reached.
			if !tu.LimitedUntil.IsZero() || slices.ContainsFunc(tu.Windows, tray.Limit.Spent) {
				tu.Fallback = u.srv.Fallback(u.login)
			}
			return tu, true
		}
	}
	return tray.Usage{}, false
}

func (u trayUsage) Changed() <-chan struct{} { return u.tracker.Changed() }

func toTrayUsage(p proxy.ProviderUsage) tray.Usage {
	tu := tray.Usage{Provider: p.Provider}
	if p.UpdatedAt != nil {
		tu.UpdatedAt = *p.UpdatedAt
	}
	if p.LimitedUntil != nil {
		tu.LimitedUntil = *p.LimitedUntil
	}
	for _, w := range p.Windows {
		tu.Windows = append(tu.Windows, toTrayLimit(w))
	}
	return tu
}

func toTrayLimit(w auth.UsageWindow) tray.Limit {
	l := tray.Limit{Name: w.Name, Utilization: w.Utilization, Status: w.Status}
	if w.ResetsAt != nil {
		l.ResetsAt = *w.ResetsAt
	}
	return l
}

// statusUsage returns the usage lines `ccmux status` prints under each
// login: from the running proxy's GET /api/usage, or, when none answers,
// from the usage endpoint directly.
func statusUsage(cfg *config.Config, client *auth.Client, proxyRuns bool, accounts []auth.Account) map[string][]string {
	out := map[string][]string{}
	now := time.Now()
	logins := subscriptionLogins(cfg)
	if proxyRuns {
		// Another program on the port (claude-code-mux) has no /api/usage:
		// then ask the usage endpoint as if no proxy ran.
		if report, err := proxyUsage(cfg); err == nil {
			for _, p := range report {
				if _, done := out[p.Login]; !done {
					out[p.Login] = tray.StatusLines(toTrayUsage(p), now, time.Local)
				}
			}
			return out
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, a := range accounts {
		if a.APIKey || !slices.Contains(logins, a.ProviderID) {
			continue
		}
		name := a.ProviderID
		for _, p := range cfg.Providers {
			if p.IsOAuth() && p.OAuthProvider == a.ProviderID {
				name = p.Name
				break
			}
		}
		ws, err := client.Usage(ctx, a.ProviderID, false) // status writes nothing: no refresh
		if err != nil {
			out[a.ProviderID] = []string{"  Usage: could not be read (" + err.Error() + ")"}
			continue
		}
		u := tray.Usage{Provider: name, UpdatedAt: now}
		for _, w := range ws {
			u.Windows = append(u.Windows, toTrayLimit(w))
		}
		out[a.ProviderID] = tray.StatusLines(u, now, time.Local)
	}
	return out
}

// proxyUsage asks the running proxy for GET /api/usage.
func proxyUsage(cfg *config.Config) ([]proxy.ProviderUsage, error) {
	req, err := http.NewRequest(http.MethodGet, cfg.BaseURL()+"/api/usage", nil)
	if err != nil {
		return nil, err
	}
	if key, err := cfg.ServerAPIKey(); err == nil && key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/usage answered %s", resp.Status)
	}
	var body struct {
		Providers []proxy.ProviderUsage `json:"providers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, errors.New("GET /api/usage answered something that is not its JSON")
	}
	return body.Providers, nil
}
