package main

import (
	"fmt"
	"slices"
	"strings"

	"ccmux/auth"
)

func runLogout(e *env, args []string) error {
	fs := flags("logout")
	provider := fs.String("provider", "", "sign out of the token-store `ID` (default: the config's first Claude oauth_provider)")
	cfg, err := e.commandConfig(fs, args)
	if err != nil {
		return err
	}
	if *provider == "" {
		*provider = cfg.DefaultOAuthProvider()
	}
	client, err := e.newAuth(cfg, e.logger())
	if err != nil {
		return err
	}
	accounts, err := client.Accounts()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(accounts, func(a auth.Account) bool { return a.ProviderID == *provider })
	configured := cfg.OAuthIDs()
	switch {
	case i < 0 && !slices.Contains(configured, *provider):
		// A typo must not read as a successful sign-out.
		if len(configured) == 0 {
			return usageError{fmt.Sprintf("--provider %s: no login is stored under that id, and %s configures no oauth_provider", *provider, cfg.Path)}
		}
		return usageError{fmt.Sprintf("--provider %s: no login is stored under that id, and it is not an oauth_provider in %s (configured: %s)", *provider, cfg.Path, strings.Join(configured, ", "))}
	case i < 0:
		fmt.Fprintf(e.stdout, "Not signed in to %s; nothing to remove.\n", *provider)
		return nil
	}
	// Logout refuses another app's login with its own sentence.
	if err := client.Logout(*provider); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Signed out of %s.\n", *provider)
	return nil
}
