package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
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
