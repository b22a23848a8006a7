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

// TestHasSignatureInParts: the search over a body in parts finds the prefix
// wherever bytes.Contains over the joined parts does, for every way of
// cutting a body into up to four parts, empty and one-byte ones included.
func TestHasSignatureInParts(t *testing.T) {
	p := signaturePrefix
	for _, body := range []string{
		"", p, "ab" + p + "cd", "x" + p[:5] + "x" + p[5:], p[:len(p)-1] + "x" + p[1:],
		"ccmux-ccmux-openai:", strings.Repeat("x", 30) + p[:len(p)-1],
	} {
		for i := 0; i <= len(body); i++ {
			for j := i; j <= len(body); j++ {
				for k := j; k <= len(body); k++ {
					parts := [][]byte{[]byte(body[:i]), []byte(body[i:j]), []byte(body[j:k]), []byte(body[k:])}
					if got, want := HasSignature(parts), strings.Contains(body, p); got != want {
						t.Fatalf("%q cut at %d, %d and %d: %v, want %v", body, i, j, k, got, want)
					}
				}
			}
		}
	}
}
