package main

import (
	"fmt"
	"strings"

	"ccmux/config"
)

func runConfig(e *env, args []string) error {
	if _, err := parseSubcommand(flags("config"), args, "check"); err != nil {
		return err
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if err := startable(cfg); err != nil {
		return err
	}
	tokens, _ := config.TokenPath()
	w := e.stdout
	fmt.Fprintf(w, "%s is valid.\n", cfg.Path)
	fmt.Fprintf(w, "Proxy: %s (set ANTHROPIC_BASE_URL=%s)\n", cfg.Addr(), cfg.BaseURL())
	fmt.Fprintf(w, "Providers:\n")
	for i, p := range cfg.Providers {
		state := ""
		if !p.IsEnabled() {
			state = " (disabled)"
		}
		how := "api key"
		if p.IsOAuth() {
			how = "oauth " + p.OAuthProvider
		}
		upstream := config.RedactURL(p.Upstream())
		if !p.Serves() {
			upstream = fmt.Sprintf("skipped (ccmux does not serve provider_type %q)", p.ProviderType)
			if p.IsOAuth() {
				upstream = fmt.Sprintf("skipped (ccmux does not serve provider_type %q with auth_type = \"oauth\")", p.ProviderType)
			}
		}
		fmt.Fprintf(w, "  %s: %s, %s, %s%s\n", p.Name, upstream, how, modelList(p.Models), state)
		if p.IsEnabled() && !p.IsOAuth() {
			if _, err := cfg.ProviderAPIKey(i); err != nil {
				fmt.Fprintf(w, "    warning: %v\n", err)
			}
		}
	}
	if len(cfg.Models) > 0 {
		fmt.Fprintf(w, "Models:\n")
		for _, m := range cfg.Models {
			var to []string
			for _, mp := range m.ByPriority() {
				to = append(to, mp.Provider+":"+mp.ActualModel)
			}
			fmt.Fprintf(w, "  %s -> %s\n", m.Name, strings.Join(to, ", "))
		}
	}
	fmt.Fprintf(w, "Default model: %s\n", cfg.Router.Default)
	fmt.Fprintf(w, "Tokens: %s\n", tokens)
	return nil
}

func modelList(globs []string) string {
	if len(globs) == 0 {
		return "models by mapping only"
	}
	return "models " + strings.Join(globs, " ")
}
