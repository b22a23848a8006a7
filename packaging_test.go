package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The Linux packages' metadata, as the files that make them say it: the
// .deb's Maintainer carries an e-mail address (Debian policy: "Name
// <address>") and a Homepage, and the menu entry has exactly one main
// category of the Desktop Menu spec, Development.
func TestPackagingMetadata(t *testing.T) {
	gr, err := os.ReadFile(".goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	nfpm := string(gr[strings.Index(string(gr), "\nnfpms:"):])
	if !regexp.MustCompile(`(?m)^    maintainer: [^<\n]+ <[^@\s>]+@[^@\s>]+\.[a-z]+>$`).MatchString(nfpm) {
		t.Error(".goreleaser.yaml: the nfpm maintainer has no e-mail address (want \"Name <user@host>\")")
	}
	if !regexp.MustCompile(`(?m)^    homepage: \S+`).MatchString(nfpm) {
		t.Error(".goreleaser.yaml: the nfpm config has no homepage")
	}

	desktop, err := os.ReadFile("packaging/linux/ccmux.desktop")
	if err != nil {
		t.Fatal(err)
	}
	main := map[string]bool{"AudioVideo": true, "Audio": true, "Video": true, "Development": true, "Education": true,
		"Game": true, "Graphics": true, "Network": true, "Office": true, "Science": true, "Settings": true, "System": true, "Utility": true}
	m := regexp.MustCompile(`(?m)^Categories=(.*)$`).FindStringSubmatch(string(desktop))
	if m == nil {
		t.Fatal("ccmux.desktop has no Categories")
	}
	var mains []string
	for _, c := range strings.Split(strings.TrimSuffix(m[1], ";"), ";") {
		if main[c] {
			mains = append(mains, c)
		}
	}
	if len(mains) != 1 || mains[0] != "Development" {
		t.Errorf("ccmux.desktop: main categories %q, want exactly Development", mains)
	}
}
