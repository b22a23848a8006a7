package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"ccmux/auth"
	"ccmux/config"
	"ccmux/proxy"
	"ccmux/tray"
)

// `ccmux status` exit statuses, for scripts.
const (
	statusNotRunning  exitStatus = 3
	statusNotSignedIn exitStatus = 4
)

func runStatus(e *env, args []string) error {
	cfg, err := e.commandConfig(flags("status"), args)
	if err != nil {
		return err
	}
	client, err := e.newAuth(cfg, e.logger())
	if err != nil {
		return err
	}
	accounts, err := client.Accounts()
	if err != nil {
		return err
	}
	w := e.stdout
	var foreign []string
	signedIn := 0
	for _, a := range accounts {
		if a.Foreign {
			foreign = append(foreign, a.ProviderID)
		} else {
			signedIn++
		}
	}
	if signedIn == 0 {
		fmt.Fprintf(w, "Not signed in (run ccmux login).\n")
	}
	probe := probeProxy(cfg)
	running := probe.ccmux && !probe.otherConfig
	if running {
		// The running proxy knows refresh failures it has not written to
		// the store (one cut short when its client gave up, a backoff in
		// progress): its view of the logins wins.
		accounts = withProxyRefreshErrors(cfg, accounts)
	}
	usage := statusUsage(cfg, client, running, accounts)
	now := time.Now()
	for _, a := range accounts {
		if a.Foreign {
			continue
		}
		who := a.Email
		if who == "" {
			who = "signed in"
		} else {
			who = "signed in as " + who
		}
		exp := "expires in " + humanDuration(a.ExpiresAt.Sub(now))
		switch {
		case a.APIKey:
			exp = "API key"
		case a.ExpiresAt.IsZero():
			exp = "no expiry"
		case a.Expired(now) && a.Usable(now):
			// Lazily refreshed: the proxy renews it on its next request.
			exp = "token expired " + statusTime(a.ExpiresAt) + "; it is refreshed on the next request"
		case a.Expired(now):
			// Not signed in any more, whatever the file says: say why.
			exp = "token expired " + statusTime(a.ExpiresAt) + " and refreshing it fails: " + a.LastError
			if a.Email != "" {
				exp += " (" + a.Email + ")"
			}
			who = ""
		}
		if who == "" {
			fmt.Fprintf(w, "%s: %s\n", a.ProviderID, exp)
		} else {
			fmt.Fprintf(w, "%s: %s, %s\n", a.ProviderID, who, exp)
		}
		if a.LastError != "" && !a.Expired(now) {
			fmt.Fprintf(w, "  last refresh failed: %s\n", a.LastError)
		}
		for _, line := range usage[a.ProviderID] {
			fmt.Fprintln(w, line)
		}
	}
	printMissingLogins(w, cfg, accounts)
	for _, id := range foreign {
		fmt.Fprintf(w, "%s: managed by another app (ccmux leaves it alone)\n", id)
	}
	proxyState := "not running"
	switch {
	case probe.otherConfig:
		proxyState = fmt.Sprintf("another ccmux answers here, running %s, not %s (stop it, or give this config another port)", probe.config, cfg.Path)
	case probe.ccmux && probe.config != "":
		proxyState = "ccmux answering (config " + probe.config + ")"
	case probe.ccmux:
		proxyState = "ccmux answering"
	case probe.answers:
		proxyState = "another program answers here, not ccmux (claude-code-mux?)"
	}
	fmt.Fprintf(w, "Proxy: %s — %s\n", cfg.BaseURL(), proxyState)
	switch {
	case !running:
		return statusNotRunning
	case !auth.SignedInEverywhere(cfg, accounts, now):
		return statusNotSignedIn
	}
	return nil
}

const statusHelp = `Exit status:
  0  the proxy answers and you are signed in (or no OAuth provider is configured)
  3  the proxy is not running (whether or not you are signed in), or what
     answers on its address is another program or a ccmux running another
     config file
  4  the proxy answers, but an enabled OAuth provider is not signed in or its
     session ended (the token expired and refreshing it fails: status asks
     the running proxy, which knows failures not yet in the token file)
  1  the config or the token store could not be read
`

// humanDuration writes d for people, to the minute: "7 h 59 min",
// "25 min", "1 day 5 h", "3 days", "less than a minute".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60
	plural := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", mins)
	case d < 24*time.Hour && mins == 0:
		return fmt.Sprintf("%d h", hours)
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h %d min", hours, mins)
	case days < 3 && hours > 0:
		return plural(days, "day") + fmt.Sprintf(" %d h", hours)
	default:
		return plural(days, "day")
	}
}

// proxyProbe is what answers /health at the configured address.
type proxyProbe struct {
	answers     bool   // something answers 200
	ccmux       bool   // and says it is ccmux
	config      string // the config file that ccmux runs on, when it says
	otherConfig bool   // and that file is not the one this command reads
}

func probeProxy(cfg *config.Config) proxyProbe {
	resp, err := statusClient.Get(cfg.BaseURL() + "/health")
	if err != nil {
		return proxyProbe{}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return proxyProbe{}
	}
	var health struct {
		Service string `json:"service"`
		Config  string `json:"config"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&health)
	p := proxyProbe{answers: true, ccmux: health.Service == "ccmux", config: health.Config}
	p.otherConfig = p.ccmux && p.config != "" && !sameFile(p.config, cfg.Path)
	return p
}

// sameFile reports whether the config file a running ccmux names (an
// absolute path) is ours: the same path, or the same file by another name.
func sameFile(running, ours string) bool {
	if abs, err := filepath.Abs(ours); err == nil && abs == running {
		return true
	}
	a, errA := os.Stat(running)
	b, errB := os.Stat(ours)
	return errA == nil && errB == nil && os.SameFile(a, b)
}

// statusTime writes a moment in the local time zone, naming the zone.
func statusTime(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// withProxyRefreshErrors adds to accounts the refresh failures the running
// proxy reports in GET /api/oauth/tokens. An older ccmux that does not
// report them, or an answer that cannot be read, leaves accounts as they are.
func withProxyRefreshErrors(cfg *config.Config, accounts []auth.Account) []auth.Account {
	resp, err := getProxy(cfg, "/api/oauth/tokens")
	if err != nil {
		return accounts
	}
	defer resp.Body.Close()
	var logins []struct {
		ProviderID       string `json:"provider_id"`
		LastRefreshError string `json:"last_refresh_error"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&logins) != nil {
		return accounts
	}
	out := slices.Clone(accounts)
	for _, l := range logins {
		for i := range out {
			if out[i].ProviderID == l.ProviderID && !out[i].Foreign && l.LastRefreshError != "" {
				out[i].LastError = l.LastRefreshError
			}
		}
	}
	return out
}

// statusClient asks the local proxy whether it answers; never used upstream.
var statusClient = &http.Client{Timeout: 2 * time.Second}

// statusUsage returns the usage lines `ccmux status` prints under each
// login: from the running proxy's GET /api/usage, or, when none answers,
// from the usage endpoint directly.
func statusUsage(cfg *config.Config, client *auth.Client, proxyRuns bool, accounts []auth.Account) map[string][]string {
	out := map[string][]string{}
	now := time.Now()
	logins := cfg.EnabledSubscriptionLogins()
	if proxyRuns {
		// Another program on the port (claude-code-mux) has no /api/usage:
		// then ask the usage endpoint as if no proxy ran.
		if report, err := proxyUsage(cfg); err == nil {
			for _, p := range report {
				if _, done := out[p.Login]; !done {
					out[p.Login] = withLimitSource(tray.StatusLines(toTrayUsage(p), now, time.Local), p)
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

// withLimitSource says where a limit came from: only a refused request's
// rate-limit headers set one (a week ahead at most), so a user can tell it
// from the usage endpoint's numbers below it.
func withLimitSource(lines []string, p proxy.ProviderUsage) []string {
	if p.LimitedUntil != nil && len(lines) > 0 {
		lines[0] += " (from the rate-limit headers of a refused request)"
	}
	return lines
}

// getProxy asks the running proxy for path, with server.api_key when set.
func getProxy(cfg *config.Config, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, cfg.BaseURL()+path, nil)
	if err != nil {
		return nil, err
	}
	if key, err := cfg.ServerAPIKey(); err == nil && key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	return statusClient.Do(req)
}

// proxyUsage asks the running proxy for GET /api/usage.
func proxyUsage(cfg *config.Config) ([]proxy.ProviderUsage, error) {
	resp, err := getProxy(cfg, "/api/usage")
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
