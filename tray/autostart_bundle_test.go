package tray

import (
	"encoding/xml"
	"strings"
	"testing"
)

// The release's ccmux.app keeps its binary in Contents/MacOS; the login item
// must run that binary, wherever the bundle was moved to.
func TestLaunchAgentRunsTheBundleBinary(t *testing.T) {
	for _, exe := range []string{
		"/Applications/ccmux.app/Contents/MacOS/ccmux",
		"/Users/ada/Applications/My Tools/ccmux.app/Contents/MacOS/ccmux",
	} {
		plist, err := launchAgentPlist(launchAgentLabel, loginCommand{exe: exe})
		if err != nil {
			t.Fatalf("launchAgentPlist(%q): %v", exe, err)
		}
		var doc struct {
			Args []string `xml:"dict>array>string"`
		}
		if err := xml.Unmarshal([]byte(plist), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Args) != 1 || doc.Args[0] != exe {
			t.Errorf("ProgramArguments = %q, want [%q]", doc.Args, exe)
		}
	}
}

// An app opened from ~/Downloads without being moved runs from a random
// read-only copy that is gone after a reboot: a login item must not point there.
func TestLaunchAgentRefusesATranslocatedBundle(t *testing.T) {
	exe := "/private/var/folders/x1/abc123/T/AppTranslocation/0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0/d/ccmux.app/Contents/MacOS/ccmux"
	_, err := launchAgentPlist(launchAgentLabel, loginCommand{exe: exe})
	if err == nil {
		t.Fatalf("launchAgentPlist(%q) succeeded, want a refusal", exe)
	}
	if !strings.Contains(err.Error(), "move ccmux.app to /Applications") {
		t.Errorf("refusal %q does not say what to do", err)
	}
}
