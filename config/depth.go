package config

import (
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
)

// MaxKeyDepth bounds how deeply a config may nest keys: tables, inline
// tables, arrays and the parts of dotted keys each count one level. A real
// config nests four at most (models[0].mappings[0].provider); the TOML
// decoder's cost grows with the square of the depth and the checks that
// name keys with it, so a few KB nested thousands deep took minutes.
const MaxKeyDepth = 32

// depthProblem scans data, before the TOML decoder sees it, for nesting
// deeper than MaxKeyDepth: open brackets and braces plus the dots of the
// key or value at hand, outside strings and comments. It counts a table
// header's brackets too, so it may see a level or two more than the key
// has; the exact rule is checked on the decoded keys (deepKeys). It
// returns nil when data nests no deeper.
func depthProblem(data []byte) *Problem {
	depth, dots, line := 0, 0, 1
	top := ""       // the statement's first key, to name in the error
	atStart := true // at the start of a statement (a key may follow)
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch c {
		case '\n':
			line++
			dots = 0
			if depth == 0 {
				atStart = true
			}
			continue
		case '#':
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
			continue
		case '"', '\'':
			i, line = skipString(data, i, line)
			continue
		case '{', '[':
			if atStart && depth == 0 {
				top = "" // a table header: its first key is named below
			}
			depth++
			dots = 0
		case '}', ']':
			if depth > 0 {
				depth--
			}
			dots = 0
		case '=', ',':
			dots = 0
			atStart = false
		case '.':
			dots++
		case ' ', '\t', '\r':
			continue
		default:
			if atStart {
				// A bare key starts the statement or header: remember it.
				j := i
				for j < len(data) && isBareKeyChar(data[j]) {
					j++
				}
				if j > i {
					top = string(data[i:j])
					atStart = false
					i = j - 1
					continue
				}
			}
		}
		if depth+dots >= MaxKeyDepth {
			return &Problem{Line: line, Key: clipKey(top), Msg: fmt.Sprintf("nested deeper than %d levels; ccmux refuses keys nested that deep (a config needs four at most)", MaxKeyDepth)}
		}
	}
	return nil
}

// skipString returns the index of the last byte of the string starting at
// data[i] (basic "…", literal '…', or their multi-line forms between
// three quotes) and the line it ends on. An unterminated string ends at the line's
// end (single-line) or at the end of data: the decoder reports it.
func skipString(data []byte, i, line int) (int, int) {
	q := data[i]
	if i+2 < len(data) && data[i+1] == q && data[i+2] == q {
		// Multi-line: up to the next three quotes not escaped.
		for j := i + 3; j < len(data); j++ {
			switch {
			case data[j] == '\n':
				line++
			case q == '"' && data[j] == '\\':
				if j+1 < len(data) && data[j+1] == '\n' {
					line++
				}
				j++
			case data[j] == q && j+2 < len(data) && data[j+1] == q && data[j+2] == q:
				// A string may end with up to two more quotes ("""a"""").
				j += 2
				for j+1 < len(data) && data[j+1] == q {
					j++
				}
				return j, line
			}
		}
		return len(data), line
	}
	for j := i + 1; j < len(data); j++ {
		switch {
		case data[j] == '\n':
			return j - 1, line
		case q == '"' && data[j] == '\\':
			j++
		case data[j] == q:
			return j, line
		}
	}
	return len(data), line
}

func isBareKeyChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// deepKeys reports the first decoded key with more than MaxKeyDepth parts
// (a table header and a dotted key under it add up, which depthProblem
// cannot see).
func (v *validator) deepKeys(md toml.MetaData) bool {
	for _, k := range md.Keys() {
		if len(k) > MaxKeyDepth {
			name := k[:3].String() + ".…"
			v.problems = append(v.problems, Problem{Line: v.line(k.String()), Key: name,
				Msg: fmt.Sprintf("nested %d levels deep; ccmux refuses keys nested deeper than %d (a config needs four at most)", len(k), MaxKeyDepth)})
			return true
		}
	}
	return false
}

// clipKey keeps a key short enough for one line of an error.
func clipKey(k string) string {
	if len(k) > 64 {
		return k[:64] + "…"
	}
	return strings.TrimSpace(k)
}
