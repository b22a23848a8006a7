package main

import (
	"fmt"
	"slices"
	"strings"

	"ccmux/config"
	"ccmux/proxy"
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
	fmt.Fprintf(w, "Proxy: %s (%s)\n", cfg.Addr(), cfg.BaseURL())
	fmt.Fprintf(w, "Claude Code: %s\n", config.RunHint(cfg.Path))
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
				fmt.Fprintf(w, "    warning: %v\n", cfg.Locate(err))
			}
		}
	}
	router, err := proxy.NewRouter(cfg)
	if err != nil {
		return err
	}
	if len(cfg.Models) > 0 {
		fmt.Fprintf(w, "Models:\n")
		for _, m := range cfg.Models {
			reached := router.Serves(m.Name)
			var skipped []string
			for _, mp := range m.ByPriority() {
				if !slices.ContainsFunc(reached, func(c proxy.Candidate) bool { return c.Provider == mp.Provider && c.Model == mp.ActualModel }) {
					skipped = append(skipped, mp.Provider+":"+mp.ActualModel)
				}
			}
			fmt.Fprintf(w, "  %s -> %s", m.Name, candidates(reached))
			if len(skipped) > 0 {
				fmt.Fprintf(w, " (skipped: %s)", strings.Join(skipped, ", "))
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "Rules:\n")
	for _, r := range []struct{ key, model string }{
		{"router.default", cfg.Router.Default},
		{"router.background", cfg.Router.Background},
		{"router.think", cfg.Router.Think},
		{"router.websearch", cfg.Router.WebSearch},
		{"router.long_context", cfg.Router.LongContext},
	} {
		if r.model != "" {
			fmt.Fprintf(w, "  %s %s -> %s\n", r.key, r.model, candidates(router.Serves(r.model)))
		}
	}
	fmt.Fprintf(w, "Tokens: %s\n", tokens)
	return nil
}

// candidates names where a model goes, in order, as provider:model.
func candidates(cs []proxy.Candidate) string {
	if len(cs) == 0 {
		return "no provider (requests for it go to router.default)"
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Provider + ":" + c.Model
	}
	return strings.Join(names, ", ")
}

func modelList(globs []string) string {
	if len(globs) == 0 {
		return "models by mapping only"
	}
	return "models " + strings.Join(globs, " ")
}
