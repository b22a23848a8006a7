package main

import (
	"slices"
	"testing"
)

// On Windows variable names are case-insensitive: a stray
// anthropic_api_key is ANTHROPIC_API_KEY to Claude Code and is removed too
// (found in review). Elsewhere the case is kept: it is another variable.
func TestClaudeEnvFoldsCaseOnWindows(t *testing.T) {
	environ := []string{"PATH=/bin", "anthropic_api_key=wrong", "Anthropic_Base_Url=http://elsewhere"}
	got := claudeEnv(environ, "http://127.0.0.1:13456", "ccmux", true)
	want := []string{"PATH=/bin", "ANTHROPIC_BASE_URL=http://127.0.0.1:13456", "ANTHROPIC_AUTH_TOKEN=ccmux"}
	if !slices.Equal(got, want) {
		t.Errorf("Windows: %q, want %q", got, want)
	}
	got = claudeEnv(environ, "http://127.0.0.1:13456", "ccmux", false)
	want = append(slices.Clone(environ), "ANTHROPIC_BASE_URL=http://127.0.0.1:13456", "ANTHROPIC_AUTH_TOKEN=ccmux")
	if !slices.Equal(got, want) {
		t.Errorf("Unix: %q, want %q", got, want)
	}
}
