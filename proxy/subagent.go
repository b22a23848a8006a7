package proxy

import (
	"bytes"
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

// The tag's two halves. claude-code-mux finds the tag with the regular
// expression <CCM-SUBAGENT-MODEL>(.*?)</CCM-SUBAGENT-MODEL>; findTags is the
// same search without a regexp engine (about 20 times faster on a 20 KB
// prompt), and FuzzSubagentStrip holds it to that expression.
const (
	tagOpen  = "<CCM-SUBAGENT-MODEL>"
	tagClose = "</CCM-SUBAGENT-MODEL>"
)

// subagentTag is what findSubagentTag found in a request body.
type subagentTag struct {
	Model string   // "" when the body has no usable tag
	cuts  [][2]int // body byte ranges holding the tags, in order
}

// findSubagentTag looks for the tag in system[1].text of body, whose
// routing fields f scanRouting filled in.
func findSubagentTag(body []byte, f *routingFields) subagentTag {
	// Nearly every request has no tag: one search over the system value
	// settles that. Encoders escape '<' and '>' (as \u003c, \u003e) but no
	// encoder escapes letters, so the name is always spelled out.
	if f.systemStart < 0 || !bytes.Contains(body[f.systemStart:f.systemEnd], []byte("CCM-SUBAGENT-MODEL")) {
		return subagentTag{}
	}
	start, end, ok := secondBlockText(body[:f.systemEnd], f.systemStart)
	if !ok {
		return subagentTag{}
	}
	raw := body[start:end]
	text, _, ok := decodeJSONString(raw, nil)
	if !ok {
		return subagentTag{}
	}
	model, spans := findTags(text)
	if model == "" {
		return subagentTag{}
	}
	// Both ends of a tag are ASCII ('<' and '>'), so they fall on the
	// boundaries of the characters or escapes the text was decoded from.
	marks := make([]int, 0, 2*len(spans))
	for _, sp := range spans {
		marks = append(marks, sp[0], sp[1])
	}
	_, at, _ := decodeJSONString(raw, marks)
	tag := subagentTag{Model: model}
	for i := range spans {
		tag.cuts = append(tag.cuts, [2]int{start + at[2*i], start + at[2*i+1]})
	}
	return tag
}

// subagentTag is findSubagentTag over a body in segments: the system
// value is read in place, or joined when it straddles two (see body.go),
// and the cuts count from the start of the body.
func (p *payload) subagentTag(f *routingFields) subagentTag {
	if f.systemStart < 0 {
		return subagentTag{}
	}
	system := p.span(f.systemStart, f.systemEnd)
	tag := findSubagentTag(system, &routingFields{systemEnd: len(system)})
	for i := range tag.cuts {
		tag.cuts[i][0] += f.systemStart
		tag.cuts[i][1] += f.systemStart
	}
	return tag
}

// findTags returns the name in the first tag of text and the spans of every
// tag, as the leftmost-first matches of claude-code-mux's expression: the
// shortest run after an opening half, not crossing a newline ("." does not
// match one), that a closing half ends.
func findTags(text []byte) (model string, spans [][2]int) {
	for pos := 0; ; {
		i := bytes.Index(text[pos:], []byte(tagOpen))
		if i < 0 {
			break
		}
		i += pos
		name := i + len(tagOpen)
		j := bytes.Index(text[name:], []byte(tagClose))
		if j < 0 {
			break // no closing half after this opening, nor after a later one
		}
		if nl := bytes.IndexByte(text[name:name+j], '\n'); nl >= 0 {
			pos = i + 1 // this opening cannot match; a later one may
			continue
		}
		if spans == nil {
			model = string(text[name : name+j])
		}
		end := name + j + len(tagClose)
		spans = append(spans, [2]int{i, end})
		pos = end
	}
	return model, spans
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
// For each index of text in marks (ascending), at gives the offset in raw of
// the character or escape that produced that byte, or of the closing quote
// for len(text); with marks, decoding stops once they are placed, and text
// is then cut short. ok is false for a malformed token. FuzzDecodeJSONString
// holds it to encoding/json.
func decodeJSONString(raw []byte, marks []int) (text []byte, at []int, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, nil, false
	}
	text = make([]byte, 0, len(raw))
	at = make([]int, 0, len(marks))
	// emit appends p, which came from raw[from:]: byte for byte when
	// literal, or all from one escape or character otherwise.
	emit := func(from int, p []byte, literal bool) {
		base := len(text)
		for len(at) < len(marks) && marks[len(at)] < base+len(p) {
			if literal {
				at = append(at, from+marks[len(at)]-base)
			} else {
				at = append(at, from)
			}
		}
		text = append(text, p...)
	}
	var esc [1]byte
	one := func(from int, c byte) { esc[0] = c; emit(from, esc[:], false) }
	var buf [utf8.UTFMax]byte
	last := len(raw) - 1
	for i := 1; i < last; {
		if len(marks) > 0 && len(at) == len(marks) {
			return text, at, true // every mark placed; the rest is not needed
		}
		c := raw[i]
		switch {
		case c == '\\':
			if i+1 >= last {
				return nil, nil, false
			}
			switch e := raw[i+1]; e {
			case '"', '\\', '/':
				one(i, e)
			case 'b':
				one(i, '\b')
			case 'f':
				one(i, '\f')
			case 'n':
				one(i, '\n')
			case 'r':
				one(i, '\r')
			case 't':
				one(i, '\t')
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
				emit(from, buf[:utf8.EncodeRune(buf[:], r)], false)
				i += size
				continue
			default:
				return nil, nil, false
			}
			i += 2
		case c == '"' || c < 0x20:
			return nil, nil, false
		case c < utf8.RuneSelf:
			// A run of plain ASCII is copied at once.
			j := i + 1
			for j < last && raw[j] >= 0x20 && raw[j] < utf8.RuneSelf && raw[j] != '\\' && raw[j] != '"' {
				j++
			}
			emit(i, raw[i:j], true)
			i = j
		default:
			r, size := utf8.DecodeRune(raw[i:last])
			if r == utf8.RuneError && size == 1 {
				emit(i, buf[:utf8.EncodeRune(buf[:], unicode.ReplacementChar)], false)
			} else {
				emit(i, raw[i:i+size], false)
			}
			i += size
		}
	}
	for len(at) < len(marks) {
		at = append(at, last)
	}
	return text, at, true
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
