package proxy

import (
	"bytes"
	"regexp"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// claude-code-mux lets a Claude Code subagent pick its model by writing
// <CCM-SUBAGENT-MODEL>NAME</CCM-SUBAGENT-MODEL> in its prompt, which Claude
// Code sends as the second block of the system prompt. ccmux reads it the
// way claude-code-mux's router does (src/router/mod.rs): only in
// system[1].text, the first tag's NAME is the model, every tag is removed
// from the forwarded text, the rule comes right after websearch, and when
// websearch wins the tags stay. Unlike claude-code-mux, an empty NAME does
// not route to the model "".

// subagentPattern is claude-code-mux's regular expression: "." stops at a
// newline in both RE2 and Rust's regex, so a NAME spans one line.
var subagentPattern = regexp.MustCompile(`<CCM-SUBAGENT-MODEL>(.*?)</CCM-SUBAGENT-MODEL>`)

// subagentTag is what findSubagentTag found in a request body.
type subagentTag struct {
	Model string   // "" when the body has no usable tag
	cuts  [][2]int // body byte ranges holding the tags, in order
}

// findSubagentTag looks for the tag in system[1].text of body, whose
// routing fields f scanRouting filled in.
func findSubagentTag(body []byte, f *routingFields) subagentTag {
	if f.systemStart < 0 {
		return subagentTag{}
	}
	start, end, ok := secondBlockText(body[:f.systemEnd], f.systemStart)
	if !ok {
		return subagentTag{}
	}
	raw := body[start:end]
	// Cheap test first: the tag is spelled out unless the client escaped
	// its letters, which only a \u escape can do.
	if !bytes.Contains(raw, []byte("SUBAGENT-MODEL")) && !bytes.Contains(raw, []byte(`\u`)) {
		return subagentTag{}
	}
	text, at, ok := decodeJSONString(raw)
	if !ok {
		return subagentTag{}
	}
	matches := subagentPattern.FindAllSubmatchIndex(text, -1)
	if len(matches) == 0 || matches[0][3] == matches[0][2] {
		return subagentTag{}
	}
	tag := subagentTag{Model: string(text[matches[0][2]:matches[0][3]])}
	for _, m := range matches {
		// Both ends of a match are ASCII ('<' and '>'), so they fall on the
		// boundaries of the characters or escapes the text was decoded from.
		tag.cuts = append(tag.cuts, [2]int{start + at[m[0]], start + at[m[1]]})
	}
	return tag
}

// strip removes the tags from body in place and returns the shortened body,
// with f's offsets moved to match. Every other byte stays as it was.
func (t subagentTag) strip(body []byte, f *routingFields) []byte {
	if len(t.cuts) == 0 {
		return body
	}
	w := t.cuts[0][0]
	for i, c := range t.cuts {
		next := len(body)
		if i+1 < len(t.cuts) {
			next = t.cuts[i+1][0]
		}
		w += copy(body[w:], body[c[1]:next])
	}
	removed := len(body) - w
	// The tags lie inside the system value, which model is a sibling of.
	if f.modelStart > f.systemStart {
		f.modelStart -= removed
		f.modelEnd -= removed
	}
	f.systemEnd -= removed
	return body[:w]
}

// secondBlockText returns the span of the "text" string token (quotes
// included) of the second element of the array at body[at:], if there is one.
func secondBlockText(body []byte, at int) (start, end int, ok bool) {
	s := scanner{b: body, i: at}
	if !s.consume('[') {
		return 0, 0, false
	}
	s.ws()
	if s.skipValue(2) != nil {
		return 0, 0, false
	}
	s.ws()
	if !s.consume(',') {
		return 0, 0, false
	}
	s.ws()
	if !s.consume('{') {
		return 0, 0, false
	}
	s.ws()
	if s.consume('}') {
		return 0, 0, false
	}
	for {
		s.ws()
		k, err := s.key()
		if err != nil {
			return 0, 0, false
		}
		s.ws()
		if !s.consume(':') {
			return 0, 0, false
		}
		s.ws()
		if string(k) == "text" && s.peek() == '"' {
			// The last "text" wins, as in encoding/json.
			start = s.i
			if _, err := s.skipString(); err != nil {
				return 0, 0, false
			}
			end, ok = s.i, true
		} else if s.skipValue(3) != nil {
			return 0, 0, false
		}
		s.ws()
		if s.consume(',') {
			continue
		}
		return start, end, ok && s.consume('}')
	}
}

// decodeJSONString decodes a JSON string token (quotes included) as
// encoding/json does: invalid UTF-8 and unpaired surrogates become U+FFFD.
// at[i] is the offset in raw of the character or escape that produced
// text[i]; at[len(text)] is the offset of the closing quote. ok is false for
// a malformed token. FuzzDecodeJSONString holds it to encoding/json.
func decodeJSONString(raw []byte) (text []byte, at []int, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, nil, false
	}
	text = make([]byte, 0, len(raw))
	at = make([]int, 0, len(raw))
	emit := func(from int, p ...byte) {
		for range p {
			at = append(at, from)
		}
		text = append(text, p...)
	}
	var buf [utf8.UTFMax]byte
	last := len(raw) - 1
	for i := 1; i < last; {
		c := raw[i]
		switch {
		case c == '\\':
			if i+1 >= last {
				return nil, nil, false
			}
			switch e := raw[i+1]; e {
			case '"', '\\', '/':
				emit(i, e)
			case 'b':
				emit(i, '\b')
			case 'f':
				emit(i, '\f')
			case 'n':
				emit(i, '\n')
			case 'r':
				emit(i, '\r')
			case 't':
				emit(i, '\t')
			case 'u':
				r, ok := hex4(raw[i+2 : last])
				if !ok {
					return nil, nil, false
				}
				from, size := i, 6
				if utf16.IsSurrogate(r) {
					r2, ok := rune(-1), false
					if len(raw[i+6:last]) >= 2 && raw[i+6] == '\\' && raw[i+7] == 'u' {
						r2, ok = hex4(raw[i+8 : last])
					}
					if dec := utf16.DecodeRune(r, r2); ok && dec != unicode.ReplacementChar {
						r, size = dec, 12
					} else {
						r = unicode.ReplacementChar
					}
				}
				emit(from, buf[:utf8.EncodeRune(buf[:], r)]...)
				i += size
				continue
			default:
				return nil, nil, false
			}
			i += 2
		case c == '"' || c < 0x20:
			return nil, nil, false
		case c < utf8.RuneSelf:
			emit(i, c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:last])
			if r == utf8.RuneError && size == 1 {
				emit(i, buf[:utf8.EncodeRune(buf[:], unicode.ReplacementChar)]...)
			} else {
				emit(i, raw[i:i+size]...)
			}
			i += size
		}
	}
	return text, append(at, last), true
}

// hex4 parses the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
