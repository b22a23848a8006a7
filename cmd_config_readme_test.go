package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"ccmux/config"
)

// readmeBlockAfter is the first ``` block after the README text marker.
func readmeBlockAfter(t *testing.T, marker string) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), marker)
	if !ok {
		t.Fatalf("README.md no longer says %q", marker)
	}
	_, rest, _ = strings.Cut(rest, "```\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("no ``` block after %q in README.md", marker)
	}
	return block
}

// The README's two `config check` examples are the real output (issue 17,
// item 16; found in review: nothing compared them): the default config,
// and the default with auth_type misspelt, provider_type = "antropic" and
// port = 70000.
func TestREADMEConfigCheckExamplesAreReal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the README shows Unix paths")
	}
	wantDefault := readmeBlockAfter(t, "The default config, as it is:")
	wantBroken := readmeBlockAfter(t, "`auth_type` misspelt, `provider_type = \"antropic\"` and `port = 70000` (exit status 1):")
	home := isolateHome(t)
	dir := t.TempDir()
	t.Chdir(dir)

	r := runCLI(t, "config", "check")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := strings.ReplaceAll(r.stdout, filepath.Join(home, ".claude-code-mux", "config.toml"), "config.toml")
	got = strings.ReplaceAll(got, home, "/home/you")
	if want := wantDefault; got != want {
		t.Errorf("config check of the default config:\n%s\nREADME.md shows:\n%s", got, want)
	}

	bad := config.DefaultTOML
	for _, edit := range [][2]string{
		{"\nauth_type = \"oauth\"", "\nauth_typ = \"oauth\""},
		{"\nprovider_type = \"anthropic\"", "\nprovider_type = \"antropic\""},
		{"\nport = 13456", "\nport = 70000"},
	} {
		if !strings.Contains(bad, edit[0]) {
			t.Fatalf("the default config has no %q", edit[0])
		}
		bad = strings.Replace(bad, edit[0], edit[1], 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "config", "check", "--config", "config.toml")
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	if want := wantBroken; r.stderr != want {
		t.Errorf("config check of the broken config:\n%s\nREADME.md shows:\n%s", r.stderr, want)
	}
}
