package main

import (
	"fmt"
	"io"

	"github.com/pkg/browser"
)

// dashboardHelp ends `ccmux help dashboard`.
const dashboardHelp = `The dashboard is a page the running proxy serves at its address (GET /):
logins and their usage windows, the last requests, and 30 days of totals
per model at API list prices. It answers only this machine.
`

func runDashboard(e *env, args []string) error {
	cfg, err := e.commandConfig(flags("dashboard"), args)
	if err != nil {
		return err
	}
	if !probeProxy(cfg).ccmux {
		return fmt.Errorf("no ccmux answers at %s: start it (ccmux, or ccmux start), then run ccmux dashboard again", cfg.BaseURL())
	}
	url := cfg.BaseURL() + "/"
	fmt.Fprintf(e.stdout, "Opening the dashboard: %s\n", url)
	// pkg/browser copies the opener's output to ours; it has nothing to say.
	browser.Stdout, browser.Stderr = io.Discard, io.Discard
	if err := browser.OpenURL(url); err != nil {
		return fmt.Errorf("could not open a browser (%w); open %s yourself", err, url)
	}
	return nil
}
