package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/pkg/browser"

	"ccmux/config"
)

// dashboardHelp ends `ccmux help dashboard`.
const dashboardHelp = `The dashboard is a page the running proxy serves at its address (GET /):
logins and their usage windows, the last requests, and 30 days of totals
per model at API list prices. It answers only this machine. With
server.api_key set, this command asks the proxy (with the key) for a
one-time link, which the browser swaps for a session.
`

func runDashboard(e *env, args []string) error {
	cfg, err := e.commandConfig(flags("dashboard"), args)
	if err != nil {
		return err
	}
	if !probeProxy(cfg).ccmux {
		return fmt.Errorf("no ccmux answers at %s: start it (ccmux, or ccmux start), then run ccmux dashboard again", cfg.BaseURL())
	}
	page := cfg.BaseURL() + "/"
	open := page
	code, err := dashboardCode(cfg)
	if err != nil {
		return err
	}
	if code != "" {
		open = page + "?code=" + url.QueryEscape(code)
	}
	fmt.Fprintf(e.stdout, "Opening the dashboard: %s\n", page)
	// pkg/browser copies the opener's output to ours; it has nothing to say.
	browser.Stdout, browser.Stderr = io.Discard, io.Discard
	if err := browser.OpenURL(open); err != nil {
		if code != "" {
			return fmt.Errorf("could not open a browser (%w); open %s yourself within a minute (the link works once)", err, open)
		}
		return fmt.Errorf("could not open a browser (%w); open %s yourself", err, open)
	}
	return nil
}

// dashboardCode asks the running proxy for a one-time dashboard code when
// server.api_key is set ("" when it is not: the page needs none).
func dashboardCode(cfg *config.Config) (string, error) {
	key, err := cfg.ServerAPIKey()
	if err != nil {
		return "", cfg.Locate(err)
	}
	if key == "" {
		return "", nil
	}
	req, err := http.NewRequest(http.MethodPost, cfg.BaseURL()+"/api/dashboard/session", strings.NewReader("{}"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", key)
	resp, err := statusClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("asking ccmux at %s for a dashboard link: %w", cfg.BaseURL(), err)
	}
	defer resp.Body.Close()
	var out struct {
		Code  string `json:"code"`
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return "", fmt.Errorf("ccmux at %s refused server.api_key from %s: the running proxy has another key; run ccmux reload, or restart it", cfg.BaseURL(), cfg.Path)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("ccmux at %s gave no dashboard link (%s %s): is it an older ccmux? Restart it", cfg.BaseURL(), resp.Status, out.Error.Message)
	}
	return out.Code, nil
}
