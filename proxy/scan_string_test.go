package proxy

import (
	"strings"
	"testing"

	"ccmux/proxy/internal/fakeanthropic"
)

// plainStringEnd is stringEnd as a byte-by-byte reader: the oracle.
func plainStringEnd(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// sameStringEnd fails t when stringEnd(b, i) or stringEnd on any prefix of
// b (a body still arriving) differs from the byte-by-byte reader.
func sameStringEnd(t *testing.T, b []byte, i int) {
	t.Helper()
	for n := len(b); n >= i; n-- {
		if got, want := stringEnd(b[:n], i), plainStringEnd(b[:n], i); got != want {
			t.Fatalf("stringEnd(%q, %d) = %d, want %d", b[:n], i, got, want)
		}
	}
}

// TestStringEnd compares stringEnd with the byte-by-byte reader on every
// string of up to seven quotes, backslashes and '#' (a quote's byte plus
// one, which the usual has-zero-byte trick would take for a quote after
// a quote), at every offset
// from the start of the 16-byte blocks it reads, so that backslash runs
// cross every word and block boundary and end at the buffer's last byte.
func TestStringEnd(t *testing.T) {
	alphabet := []byte{'#', '\\', '"'}
	var patterns [][]byte
	for n, prev := 0, [][]byte{{}}; n <= 7; n++ {
		patterns = append(patterns, prev...)
		var next [][]byte
		for _, p := range prev {
			for _, c := range alphabet {
				next = append(next, append(append([]byte(nil), p...), c))
			}
		}
		prev = next
	}
	for pad := 0; pad <= 18; pad++ {
		for _, p := range patterns {
			b := []byte(strings.Repeat("x", pad))
			b = append(b, p...)
			sameStringEnd(t, b, 0)
			sameStringEnd(t, append(b, `tail"`...), 0)
			// A start after backslashes: they are not counted.
			sameStringEnd(t, append([]byte(`\\\`), b...), 3)
		}
	}
}

// TestStringEndLongRuns covers runs longer than a block: a closing quote
// far away, backslash runs of every length up to 40 before it, and a
// quote escaped across the 16-byte block boundary.
func TestStringEndLongRuns(t *testing.T) {
	for gap := 0; gap <= 70; gap++ {
		for run := 0; run <= 40; run++ {
			b := []byte(strings.Repeat("a", gap) + strings.Repeat(`\`, run) + `"b"`)
			sameStringEnd(t, b, 0)
		}
	}
	body := fakeanthropic.RequestBody(64<<10, "claude-sonnet-4-5", true)
	for i := 0; i < len(body); i++ {
		if got, want := stringEnd(body, i), plainStringEnd(body, i); got != want {
			t.Fatalf("stringEnd(body, %d) = %d, want %d", i, got, want)
		}
	}
}

// FuzzStringEnd compares stringEnd with the byte-by-byte reader.
func FuzzStringEnd(f *testing.F) {
	for _, s := range []string{``, `"`, `\"`, `\\"`, `a\"b\\\"c"d`, strings.Repeat(`a\"`, 20) + `"`,
		strings.Repeat(`\`, 15) + `""`, `{\"a\":\"b\",\"c\":[1,2]}"`} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, at uint8) {
		i := min(int(at), len(b))
		if got, want := stringEnd(b, i), plainStringEnd(b, i); got != want {
			t.Fatalf("stringEnd(%q, %d) = %d, want %d", b, i, got, want)
		}
	})
}

// TestSkipRawStringShort: a string cut anywhere by the end of what arrived
// is errShort in a step and "unterminated" in the final scan, at the end
// of the body, and the whole string is skipped to just past its quote.
func TestSkipRawStringShort(t *testing.T) {
	token := []byte(`"` + strings.Repeat(`a\"b\\`, 9) + `\\\"x\u0022"`)
	for n := 1; n < len(token); n++ {
		s := scanner{b: token[:n], short: true}
		if err := s.skipRawString(); err != errShort {
			t.Fatalf("step on %q: %v, want errShort", token[:n], err)
		}
		s = scanner{b: token[:n]}
		if err := s.skipRawString(); err == nil || s.i != n || !strings.Contains(err.Error(), "unterminated string") {
			t.Fatalf("final scan of %q: %v at %d, want unterminated string at %d", token[:n], err, s.i, n)
		}
	}
	s := scanner{b: append(token, ',')}
	if err := s.skipRawString(); err != nil || s.i != len(token) {
		t.Fatalf("skipRawString(%q) = %v at %d, want nil at %d", token, err, s.i, len(token))
	}
}
