package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"ccmux/config"
)

// placeholderAuthToken is what Claude Code gets as ANTHROPIC_AUTH_TOKEN when
// the proxy needs no key: with a token set it does not ask for a login of its
// own, and the proxy replaces the credential with the provider's anyway.
const placeholderAuthToken = "ccmux"

// clientToken is the ANTHROPIC_AUTH_TOKEN Claude Code gets: server.api_key,
// or the placeholder when the proxy needs no key.
func clientToken(cfg *config.Config) (string, error) {
	token, err := cfg.ServerAPIKey()
	if err != nil {
		return "", cfg.Locate(err) // as config check says it
	}
	if token == "" {
		token = placeholderAuthToken
	}
	return token, nil
}

const envHelp = `Prints the variables that point Claude Code (or an SDK) at this proxy:
ANTHROPIC_BASE_URL, and ANTHROPIC_AUTH_TOKEN set to server.api_key when the
proxy needs one, else to a placeholder; it also unsets ANTHROPIC_API_KEY, which
Claude Code would send instead of the token. Use it as
  eval "$(ccmux env)"                       # sh, bash, zsh
  ccmux env --shell fish | source           # fish
  ccmux env --shell powershell | Invoke-Expression
The shell defaults to fish when $SHELL is fish, powershell on Windows, else sh.
`

func runEnv(e *env, args []string) error {
	fs := flags("env")
	shell := fs.String("shell", defaultShell(), "print for `SHELL`: sh, fish or powershell")
	cfg, err := e.commandConfig(fs, args)
	if err != nil {
		return err
	}
	token, err := clientToken(cfg)
	if err != nil {
		return err
	}
	vars := [][2]string{{"ANTHROPIC_BASE_URL", cfg.BaseURL()}, {"ANTHROPIC_AUTH_TOKEN", token}}
	for _, v := range vars {
		switch *shell {
		case "sh", "bash", "zsh":
			fmt.Fprintf(e.stdout, "export %s=%s\n", v[0], quotePOSIX(v[1]))
		case "fish":
			fmt.Fprintf(e.stdout, "set -gx %s %s;\n", v[0], quotePOSIX(v[1]))
		case "powershell", "pwsh":
			fmt.Fprintf(e.stdout, "$env:%s = '%s'\n", v[0], strings.ReplaceAll(v[1], "'", "''"))
		default:
			return usageError{fmt.Sprintf("--shell: want sh, fish or powershell, got %q", *shell)}
		}
	}
	// A key left in the shell would be sent instead of the token.
	switch *shell {
	case "sh", "bash", "zsh":
		fmt.Fprintln(e.stdout, "unset ANTHROPIC_API_KEY")
	case "fish":
		fmt.Fprintln(e.stdout, "set -e ANTHROPIC_API_KEY;")
	case "powershell", "pwsh":
		fmt.Fprintln(e.stdout, "Remove-Item Env:ANTHROPIC_API_KEY -ErrorAction SilentlyContinue")
	}
	return nil
}

// defaultShell guesses the shell the output is for.
func defaultShell() string {
	if runtime.GOOS == "windows" {
		return "powershell"
	}
	if filepath.Base(os.Getenv("SHELL")) == "fish" {
		return "fish"
	}
	return "sh"
}

// quotePOSIX single-quotes s for sh and fish: each quote inside closes the
// quoted part, is escaped with a backslash, and reopens it, which both
// shells read back as one quote.
func quotePOSIX(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/[]@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
