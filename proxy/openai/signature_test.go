package openai

import (
	"bytes"
	"strings"
	"testing"
)

// TestHasSignaturePrefix: the 'x'-anchored search finds the prefix
// wherever bytes.Contains does, at the body's ends too, and nothing more.
func TestHasSignaturePrefix(t *testing.T) {
	if strings.IndexByte(signaturePrefix, 'x') != len("ccmu") {
		t.Fatalf("signaturePrefix %q changed: hasSignaturePrefix anchors on its 'x'", signaturePrefix)
	}
	p := signaturePrefix
	for _, body := range []string{
		"", "x", "xx", p, p[:len(p)-1], p[1:], "x" + p, p + "x", "xxxxx" + p + "xxxx",
		`{"signature":"` + p + `abc"}`, `{"signature":"ccmux-openai"}`, "ccmuxccmux-openai:",
		"ccmux-openaix:", strings.Repeat("ccmux-", 100), strings.Repeat("x", 100) + p[:len(p)-1],
	} {
		if got, want := hasSignaturePrefix([]byte(body)), bytes.Contains([]byte(body), []byte(p)); got != want {
			t.Errorf("hasSignaturePrefix(%q) = %v, want %v", body, got, want)
		}
	}
}
