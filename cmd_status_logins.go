package main

import (
	"fmt"
	"io"
	"slices"

	"ccmux/auth"
	"ccmux/config"
)

// printMissingLogins lists the config's Claude logins that have no login of
// ccmux's in accounts, each with the command that signs it in. The one
// login of a config that has no login at all is left to the line that
// says "Not signed in" already.
func printMissingLogins(w io.Writer, cfg *config.Config, accounts []auth.Account) {
	ids := cfg.EnabledClaudeOAuthIDs()
	signedIn := slices.ContainsFunc(accounts, func(a auth.Account) bool { return !a.Foreign })
	if len(ids) < 2 && !signedIn {
		return
	}
	for _, id := range ids {
		if slices.ContainsFunc(accounts, func(a auth.Account) bool { return a.ProviderID == id && !a.Foreign }) {
			continue
		}
		fmt.Fprintf(w, "%s: not signed in (run ccmux login --provider %s)\n", id, id)
	}
}
