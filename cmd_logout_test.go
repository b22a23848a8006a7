package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ccmux/config"
)

func TestCLILogout(t *testing.T) {
	future := time.Now().Add(8 * time.Hour).UTC().Format(time.RFC3339)
	rec := func(id, extra string) string {
		return `"` + id + `":{"provider_id":"` + id + `","access_token":"at-SECRET","refresh_token":"rt-SECRET","expires_at":"` + future + `","enterprise_url":null` + extra + `}`
	}
	claude := rec("anthropic-max", "")
	console := rec("console", `,"api_key":"sk-ant-SECRET","managed_by":"ccmux"`)
	gemini := rec("gemini", "")
	tests := []struct {
		name       string
		tokens     []string // records in oauth_tokens.json
		args       []string
		code       int
		stdout     string
		stderr     []string
		leftStored []string // ids still in the file after
	}{
		{"nothing stored", nil, nil, 0, "Not signed in to anthropic-max; nothing to remove.", nil, nil},
		{"nothing stored, named", []string{gemini}, []string{"--provider", "anthropic-max"}, 0, "Not signed in to anthropic-max;", nil, []string{"gemini"}},
		{"signed in", []string{claude, gemini}, nil, 0, "Signed out of anthropic-max.", nil, []string{"gemini"}},
		{"a console key ccmux stored", []string{console, claude}, []string{"--provider", "console"}, 0, "Signed out of console.", nil, []string{"anthropic-max"}},
		{"a typo", []string{claude}, []string{"--provider", "anthropic-mx"}, 2, "",
			[]string{"ccmux logout: --provider anthropic-mx: no login is stored under that id, and it is not an oauth_provider in ", "(configured: anthropic-max)"}, []string{"anthropic-max"}},
		{"another app's login", []string{claude, gemini}, []string{"--provider", "gemini"}, 1, "",
			[]string{"gemini", "ccmux leaves it alone"}, []string{"anthropic-max", "gemini"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := isolateHome(t)
			dir := filepath.Join(home, ".claude-code-mux")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config.DefaultTOML), 0o600); err != nil {
				t.Fatal(err)
			}
			store := filepath.Join(dir, "oauth_tokens.json")
			if tt.tokens != nil {
				if err := os.WriteFile(store, []byte("{"+strings.Join(tt.tokens, ",")+"}"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := runCLI(t, append([]string{"logout"}, tt.args...)...)
			ok := r.code == tt.code && strings.Contains(r.stdout, tt.stdout)
			for _, want := range tt.stderr {
				ok = ok && strings.Contains(r.stderr, want)
			}
			if tt.code != 0 && strings.Count(r.stderr, "\n") != 1 {
				ok = false
			}
			if !ok {
				t.Errorf("exit %d, want %d with %q on stdout and %q on stderr\nstdout: %s\nstderr: %s", r.code, tt.code, tt.stdout, tt.stderr, r.stdout, r.stderr)
			}
			data, _ := os.ReadFile(store)
			for _, id := range []string{"anthropic-max", "console", "gemini"} {
				if left := strings.Contains(string(data), `"`+id+`"`); left != slices.Contains(tt.leftStored, id) {
					t.Errorf("after logout, %s stored: %v, want %v", id, left, !left)
				}
			}
		})
	}
}
