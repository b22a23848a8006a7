package proxy

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Almost all of a Claude Code request's bytes are inside strings, and the
// files in its history put an escaped quote every few dozen bytes (JSON in
// a tool result, one every few bytes): finding the quotes is what the
// routing scan spends its time on. bytes.IndexByte is fast over a long run
// but costs a call and its set-up for each quote, a dozen thousand of
// them in a 400 KB conversation, so stringEnd first reads the next sixteen
// bytes itself, eight at a time, and takes every quote in them from one
// mask; only when they hold none does it ask bytes.IndexByte.

const (
	swarLow7  = 0x7f7f7f7f7f7f7f7f
	swarHighs = 0x8080808080808080
	swarQuote = '"' * 0x0101010101010101
)

// stringEnd returns the offset just past the closing quote of the string
// whose contents start at b[i] (after its opening quote), or -1 when b
// ends before it. A quote closes the string when an even number of
// backslashes precede it, counted back no further than i: what a reader
// going byte by byte and skipping the byte after each backslash finds.
func stringEnd(b []byte, i int) int {
	start := i
	for {
		if i+16 <= len(b) {
			w := b[i : i+16 : i+16]
			t0 := quoteBits(binary.LittleEndian.Uint64(w[:8]))
			t1 := quoteBits(binary.LittleEndian.Uint64(w[8:]))
			if t0|t1 != 0 {
				for ; t0 != 0; t0 &= t0 - 1 {
					if q := i + bits.TrailingZeros64(t0)>>3; closes(b, start, q) {
						return q + 1
					}
				}
				for ; t1 != 0; t1 &= t1 - 1 {
					if q := i + 8 + bits.TrailingZeros64(t1)>>3; closes(b, start, q) {
						return q + 1
					}
				}
				i += 16
				continue
			}
			i += 16
		}
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		q := i + j
		if closes(b, start, q) {
			return q + 1
		}
		i = q + 1
	}
}

// quoteBits returns w, eight bytes read little-endian, with the high bit
// of each byte that is a '"' set and every other bit clear. Unlike the
// usual has-zero-byte trick no borrow crosses bytes, so every bit set
// is a quote, not only the lowest.
func quoteBits(w uint64) uint64 {
	x := w ^ swarQuote // a quote's byte is now zero
	return ^((x&swarLow7 + swarLow7) | x) & swarHighs
}

// closes reports whether the quote at b[q] ends the string whose contents
// start at start: an even number of backslashes precede it.
func closes(b []byte, start, q int) bool {
	k := q
	for k > start && b[k-1] == '\\' {
		k--
	}
	return (q-k)&1 == 0
}
