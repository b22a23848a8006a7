package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"ccmux/auth"
	"ccmux/config"
)

func runLogin(e *env, args []string) error {
	fs := flags("login")
	provider := fs.String("provider", "", "sign in to the token-store `ID` (default: the config's first Claude oauth_provider)")
	manual := fs.Bool("manual", false, "do not open a browser: print the URL and read the code#state you paste")
	console := fs.Bool("console", false, "create an Anthropic Console API key instead of using the subscription")
	cfg, err := e.commandConfig(fs, args)
	if err != nil {
		return err
	}
	if err := checkLoginProvider(cfg, *provider, *console); err != nil {
		return err
	}
	if *provider == "" && *console {
		*provider = consoleLoginID(cfg)
	} else if *provider == "" {
		*provider = cfg.DefaultOAuthProvider()
	}
	client, err := e.newAuth(cfg, slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !*manual {
		fmt.Fprintf(e.stderr, "Opening your browser to sign in (provider %s)…\n", *provider)
	}
	acct, err := client.Login(ctx, *provider, auth.LoginOptions{Console: *console, Manual: *manual, Out: e.stderr, In: e.stdin})
	if err != nil {
		return fmt.Errorf("signing in to %s: %w", *provider, err)
	}
	who := acct.Email
	if who == "" {
		who = "your account"
	}
	if !acct.APIKey {
		fmt.Fprintf(e.stdout, "Signed in to %s as %s.\n", *provider, who)
		return nil
	}
	fmt.Fprintf(e.stdout, "Signed in to %s as %s: an API key is stored under the id %s.\n", *provider, who, *provider)
	if !slices.Contains(cfg.ClaudeOAuthIDs(), *provider) {
		fmt.Fprintf(e.stdout, "To use it, set oauth_provider = %q on an auth_type = \"oauth\" provider in %s.\n", *provider, cfg.Path)
	}
	return nil
}

// checkLoginProvider refuses a --provider that no Claude OAuth provider of
// cfg uses and no [oauth.ID] table names: a typo would otherwise sign in
// under an id nothing reads. A console login may pick a new id (its API key
// is then wired in by hand, as login says).
func checkLoginProvider(cfg *config.Config, id string, console bool) error {
	configured := cfg.ClaudeOAuthIDs()
	if id == "" || console || slices.Contains(configured, id) {
		return nil
	}
	if _, ok := cfg.OAuth[id]; ok {
		return nil
	}
	if len(configured) == 0 {
		return usageError{fmt.Sprintf("--provider %s: %s configures no Claude oauth_provider; add a provider with auth_type = \"oauth\" and oauth_provider = %q first", id, cfg.Path, id)}
	}
	return usageError{fmt.Sprintf("--provider %s: not an oauth_provider of a Claude provider in %s (configured: %s)", id, cfg.Path, strings.Join(configured, ", "))}
}

// consoleLoginID is where `ccmux login --console` stores its API key
// without --provider: the first Claude OAuth provider whose [oauth.ID]
// preset is "console", else auth.ConsoleID — never the subscription's id.
func consoleLoginID(cfg *config.Config) string {
	for _, id := range cfg.ClaudeOAuthIDs() {
		if cfg.OAuth[id].Preset == "console" {
			return id
		}
	}
	return auth.ConsoleID
}
