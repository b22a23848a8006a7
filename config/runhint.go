package config

import (
	"path/filepath"
	"runtime"
	"strings"
)

// RunHint says how to run Claude Code through the proxy of the config file
// at path: `ccmux claude (or eval "$(ccmux env)", then claude)`. A bare
// ANTHROPIC_BASE_URL is not enough: without ANTHROPIC_AUTH_TOKEN Claude Code
// asks for a login of its own. A config file other than the default is
// named with --config, so the commands reach this file's proxy.
func RunHint(path string) string {
	ccmux := "ccmux"
	if path != "" {
		abs, err := filepath.Abs(path)
		if def, derr := DefaultPath(); err != nil || derr != nil || abs != def {
			if err != nil {
				abs = path
			}
			ccmux += " --config " + shellQuote(abs)
		}
	}
	shell := `eval "$(` + ccmux + ` env)"`
	if runtime.GOOS == "windows" {
		shell = ccmux + " env | Invoke-Expression"
	}
	return ccmux + " claude (or " + shell + ", then claude)"
}

// shellQuote quotes s for sh and PowerShell alike when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/\\@%+=,") == "" {
		return s
	}
	if runtime.GOOS == "windows" {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
