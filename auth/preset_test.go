package auth

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsThePresets keeps the README's "OAuth endpoints" table in
// step with the one in preset.go: the release and every value.
func TestREADMEListsThePresets(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	if !strings.Contains(readme, claudeCodeRelease) {
		t.Errorf("README.md does not name the release the OAuth values follow (%s)", claudeCodeRelease)
	}
	v := releaseValues
	for _, want := range []string{ClientID, v.claudeAuthorize, v.consoleAuthorize, v.token, v.manualRedirect, v.success, v.apiKey, strings.Join(v.scopes, " ")} {
		if !strings.Contains(readme, "`"+want+"`") {
			t.Errorf("README.md does not list %s", want)
		}
	}
}
