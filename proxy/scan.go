package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// routingFields are the only parts of a Messages API request body that
// routing reads. The body itself is never unmarshalled: scanRouting walks the
// bytes once and remembers where the model value sits so that rewriteModel can
// splice in another name and leave every other byte as the client sent it.
type routingFields struct {
	Model        string // "" when the body names none
	Stream       bool
	ThinkingType string // thinking.type, e.g. "enabled"
	WebSearch    bool   // a tools[].type starts with "web_search"

	// modelStart and modelEnd delimit the model value, quotes included;
	// modelStart is -1 when the key is absent. objectStart is the offset of
	// the top-level '{' and empty reports whether that object has no keys.
	modelStart, modelEnd int
	objectStart          int
	empty                bool
	// systemStart and systemEnd delimit the system value, for the
	// subagent tag (subagent.go); systemStart is -1 when it is absent.
	systemStart, systemEnd int
}

// maxNesting bounds how deep the scanner follows arrays and objects, so a
// hostile body cannot exhaust the stack.
const maxNesting = 512

// errNotObject is returned for a body that is valid-looking but not a JSON object.
var errNotObject = errors.New("the request body must be a JSON object")

// scanRouting extracts routingFields from a JSON request body. It checks the
// structure it walks (brackets, strings, literals) and reports malformed JSON,
// but it does not validate every byte inside strings: the upstream does that.
// When a key occurs twice the last one wins, as in encoding/json.
func scanRouting(body []byte) (routingFields, error) {
	var r routingScan
	return r.finish(body, 0)
}

// routingScan is scanRouting taken in steps while the body arrives, so that
// when its last byte comes only the last read is left to scan (readBody).
// It remembers a checkpoint: an offset into the body and the fields found
// before it, taken after each top-level member and after each element of a
// top-level array (a conversation's messages). A step that runs out of bytes
// fails somewhere past the checkpoint; the next one starts there again.
// It holds offsets, never slices, into the whole body; a step is given the
// body's last segment and where that segment starts, and the segment must
// start at or before the checkpoint (readBody starts each one at it, see
// payload.cut). Any split of a body into steps gives what scanRouting gives.
type routingScan struct {
	f     routingFields // the fields found before at
	at    int           // the checkpoint's offset
	stage scanStage     // what starts at at
	kind  memberKind    // the top-level array at is inside (atElement)
	found bool          // a web_search tool came before at (atElement in tools)

	base    int // where the segment being scanned starts in the body
	tried   int // the body's length at the last step that ran out
	scanned int // the bytes the steps and finish started on, for the tests
}

// scanStage says where a routingScan's checkpoint sits.
type scanStage uint8

const (
	atStart   scanStage = iota // nothing scanned yet
	atMember                   // right after the ',' before a top-level member
	atElement                  // right after a ',' between a top-level array's elements
)

// memberKind is what a top-level member's value is scanned for.
type memberKind uint8

const (
	memberOther  memberKind = iota // skipped
	memberSystem                   // its range is kept (subagent.go)
	memberTools                    // its elements' types are read
)

// minScanStep is the fewest new bytes a step waits for: a small body is
// scanned once, whole, and a slow one in few steps.
const minScanStep = 4 << 10

// errShort is what a step's scanner returns for every error while the body
// is incomplete: any of them may just mean that bytes are still to come.
var errShort = errors.New("the request body is incomplete")

// advance scans what arrived of the body, seg being its last segment, which
// starts at byte base of the body. It scans only once as many new bytes
// came since its last step as that step scanned past its checkpoint (and
// at least minScanStep), so that a body whose bytes come one at a time, or
// an element of megabytes, is not rescanned over and over: the steps start
// on at most twice the body's bytes, and finish on at most the body once
// more.
func (r *routingScan) advance(seg []byte, base int) {
	if base+len(seg)-r.tried < max(r.tried-r.at, minScanStep) {
		return
	}
	r.step(seg, base)
}

// step is advance without its bound: readBody takes one when a segment is
// full, so that the next one starts as far on as the checkpoint can go.
func (r *routingScan) step(seg []byte, base int) {
	if base+len(seg) == r.tried {
		return // nothing new since the last step
	}
	r.scanned += base + len(seg) - r.at
	r.tried = base + len(seg)
	r.base = base
	r.run(seg, true)
}

// finish scans the rest of the complete body from the checkpoint, seg being
// its last segment, starting at byte base, and returns the fields, or the
// error scanRouting would give for a body in one segment (finishBody gives
// it for any).
func (r *routingScan) finish(seg []byte, base int) (routingFields, error) {
	r.scanned += base + len(seg) - r.at
	r.base = base
	return r.run(seg, false)
}

// run scans body, the segment starting at r.base, from the checkpoint,
// moving the checkpoint as it goes. The fields' offsets and the checkpoint
// count from the start of the whole body, s.i from the segment's. With
// short set the body may be incomplete: every error is errShort, and a
// checkpoint is taken only right after a ',' the scan consumed, since every
// decision before it read bytes that are there (a number or a white-space
// run cut by the end stops there and then finds no ','). Its fields and
// its success then mean nothing: more bytes may follow the closing '}'.
func (r *routingScan) run(body []byte, short bool) (routingFields, error) {
	s := scanner{b: body, i: r.at - r.base, short: short}
	f := r.f
	var err error
	switch r.stage {
	case atStart:
		f = routingFields{modelStart: -1, systemStart: -1}
		s.ws()
		if s.i >= len(s.b) {
			if short {
				return f, errShort
			}
			return f, errors.New("the request body is empty")
		}
		if s.b[s.i] != '{' {
			if short {
				return f, errShort // only the complete body says what is wrong
			}
			if err := s.skipValue(0); err != nil {
				return f, err
			}
			return f, errNotObject
		}
		f.objectStart = r.base + s.i
		f.empty = true
		s.i++
		s.ws()
		if s.peek() == '}' {
			s.i++
			return f, s.end()
		}
		err = r.member(&s, &f)
	case atMember:
		err = r.member(&s, &f)
	case atElement:
		err = r.elements(&s, &f, r.kind, r.found)
	}
	for err == nil {
		s.ws()
		if s.consume(',') {
			r.save(&s, &f, atMember, memberOther, false)
			err = r.member(&s, &f)
			continue
		}
		if s.consume('}') {
			return f, s.end()
		}
		return f, s.errorf("want ',' or '}' in the request object")
	}
	return f, err
}

// save moves the checkpoint to s.i, in a step: a final scan resumes nowhere.
func (r *routingScan) save(s *scanner, f *routingFields, stage scanStage, kind memberKind, found bool) {
	if s.short {
		r.f, r.at, r.stage, r.kind, r.found = *f, r.base+s.i, stage, kind, found
	}
}

// member scans one top-level member, key and value.
func (r *routingScan) member(s *scanner, f *routingFields) error {
	f.empty = false
	s.ws()
	key, err := s.key()
	if err != nil {
		return err
	}
	s.ws()
	if !s.consume(':') {
		return s.errorf("want ':' after an object key")
	}
	s.ws()
	switch string(key) {
	case "model":
		if s.peek() != '"' {
			return s.errorf("model must be a string")
		}
		start := s.i
		v, err := s.stringValue()
		if err != nil {
			return err
		}
		f.Model, f.modelStart, f.modelEnd = v, r.base+start, r.base+s.i
	case "stream":
		switch {
		case s.literal("true"):
			f.Stream = true
		case s.literal("false"), s.literal("null"):
			f.Stream = false
		default:
			return s.errorf("stream must be true or false")
		}
	case "thinking":
		t, err := s.objectType(1)
		if err != nil {
			return err
		}
		f.ThinkingType = t
	case "system":
		f.systemStart = r.base + s.i
		return r.value(s, f, memberSystem)
	case "tools":
		return r.value(s, f, memberTools)
	default:
		return r.value(s, f, memberOther)
	}
	return nil
}

// value scans a system, tools or skipped member's value; when it is an
// array, its elements get checkpoints.
func (r *routingScan) value(s *scanner, f *routingFields, kind memberKind) error {
	if s.peek() != '[' {
		if err := s.skipValue(1); err != nil {
			return err
		}
		r.ended(s, f, kind, false)
		return nil
	}
	s.i++
	s.ws()
	if s.consume(']') {
		r.ended(s, f, kind, false)
		return nil
	}
	return r.elements(s, f, kind, false)
}

// elements scans a top-level array from the start of an element to its
// closing ']'. found says whether a web_search tool came before.
func (r *routingScan) elements(s *scanner, f *routingFields, kind memberKind, found bool) error {
	for {
		s.ws()
		if kind == memberTools {
			t, err := s.objectType(2)
			if err != nil {
				return err
			}
			if strings.HasPrefix(t, "web_search") {
				found = true
			}
		} else if err := s.skipValue(2); err != nil {
			return err
		}
		s.ws()
		if s.consume(',') {
			r.save(s, f, atElement, kind, found)
			continue
		}
		if s.consume(']') {
			r.ended(s, f, kind, found)
			return nil
		}
		if kind == memberTools {
			return s.errorf("want ',' or ']' in tools")
		}
		return s.errorf("want ',' or ']' in an array")
	}
}

// ended records what a system or tools value that ends at s.i gave.
func (r *routingScan) ended(s *scanner, f *routingFields, kind memberKind, webSearch bool) {
	switch kind {
	case memberSystem:
		f.systemEnd = r.base + s.i
	case memberTools:
		f.WebSearch = webSearch
	}
}

// end checks that only white space follows the request object.
func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return s.errorf("unexpected data after the request object")
	}
	return nil
}

// scanner is a cursor over JSON bytes.
type scanner struct {
	b     []byte
	i     int
	short bool // b may be incomplete: every error is errShort (routingScan)
}

func (s *scanner) errorf(format string, args ...any) error {
	if s.short {
		return errShort
	}
	return fmt.Errorf("malformed JSON at byte %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// skipString moves past a string whose opening quote is at s.i and
// reports whether it contains a backslash escape.
func (s *scanner) skipString() (escaped bool, err error) {
	start := s.i
	if err := s.skipRawString(); err != nil {
		return false, err
	}
	return bytes.IndexByte(s.b[start:s.i], '\\') >= 0, nil
}

// skipRawString moves past a string whose opening quote is at s.i. Almost
// all of a 400 KB conversation's bytes are inside strings, read once
// (skipValue does not ask whether they hold escapes): stringEnd finds
// their ends (scan_string.go).
func (s *scanner) skipRawString() error {
	if !s.consume('"') {
		return s.errorf("want a string")
	}
	end := stringEnd(s.b, s.i)
	if end < 0 {
		s.i = len(s.b)
		return s.errorf("unterminated string")
	}
	s.i = end
	return nil
}

// stringValue reads a string token and returns its decoded value.
func (s *scanner) stringValue() (string, error) {
	start := s.i
	escaped, err := s.skipString()
	if err != nil {
		return "", err
	}
	raw := s.b[start:s.i]
	if !escaped {
		return string(raw[1 : len(raw)-1]), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("malformed JSON at byte %d: bad string escape", start)
	}
	return v, nil
}

// key reads an object key. An unescaped key (all of them, in practice) is
// returned as a slice of the body, so reading keys allocates nothing.
func (s *scanner) key() ([]byte, error) {
	if s.peek() != '"' {
		return nil, s.errorf("want a string key")
	}
	start := s.i
	escaped, err := s.skipString()
	if err != nil {
		return nil, err
	}
	if !escaped {
		return s.b[start+1 : s.i-1], nil
	}
	var v string
	if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
		return nil, fmt.Errorf("malformed JSON at byte %d: bad string escape", start)
	}
	return []byte(v), nil
}

// objectType reads a value and, when it is an object, returns its "type"
// string (the last one, like encoding/json). Any other value yields "".
func (s *scanner) objectType(depth int) (string, error) {
	if s.peek() != '{' {
		return "", s.skipValue(depth)
	}
	if depth >= maxNesting {
		return "", s.errorf("nested too deeply")
	}
	s.i++
	s.ws()
	if s.consume('}') {
		return "", nil
	}
	typ := ""
	for {
		s.ws()
		k, err := s.key()
		if err != nil {
			return "", err
		}
		s.ws()
		if !s.consume(':') {
			return "", s.errorf("want ':' after an object key")
		}
		s.ws()
		isType := string(k) == "type"
		if isType && s.peek() == '"' {
			if typ, err = s.stringValue(); err != nil {
				return "", err
			}
		} else {
			if isType {
				typ = ""
			}
			if err := s.skipValue(depth + 1); err != nil {
				return "", err
			}
		}
		s.ws()
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return typ, nil
		}
		return "", s.errorf("want ',' or '}' in an object")
	}
}

// skipValue moves past one JSON value of any kind.
func (s *scanner) skipValue(depth int) error {
	if depth >= maxNesting {
		return s.errorf("nested too deeply")
	}
	switch c := s.peek(); {
	case c == '"':
		return s.skipRawString()
	case c == '{':
		s.i++
		s.ws()
		if s.consume('}') {
			return nil
		}
		for {
			s.ws()
			if err := s.skipRawString(); err != nil {
				return err
			}
			s.ws()
			if !s.consume(':') {
				return s.errorf("want ':' after an object key")
			}
			s.ws()
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.consume(',') {
				continue
			}
			if s.consume('}') {
				return nil
			}
			return s.errorf("want ',' or '}' in an object")
		}
	case c == '[':
		s.i++
		s.ws()
		if s.consume(']') {
			return nil
		}
		for {
			s.ws()
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.consume(',') {
				continue
			}
			if s.consume(']') {
				return nil
			}
			return s.errorf("want ',' or ']' in an array")
		}
	case c == '-' || (c >= '0' && c <= '9'):
		start := s.i
		for s.i < len(s.b) && strings.IndexByte("-+.eE0123456789", s.b[s.i]) >= 0 {
			s.i++
		}
		if s.i == start+1 && c == '-' {
			return s.errorf("bad number")
		}
		return nil
	case s.literal("true"), s.literal("false"), s.literal("null"):
		return nil
	case s.i >= len(s.b):
		return s.errorf("unexpected end of input")
	default:
		return s.errorf("unexpected character %q", c)
	}
}

// rewriteModel appends to dst the body with its model value replaced by
// quoted (a JSON string, quotes included), or with a model key inserted
// when the body had none. Every other byte is copied unchanged.
func rewriteModel(dst, body []byte, f *routingFields, quoted []byte) []byte {
	head, mid, tail := spliceModel(body, f, quoted)
	dst = append(dst, head...)
	dst = append(dst, mid...)
	return append(dst, tail...)
}

// spliceModel cuts body around its model value: head, the replacement
// (quoted, with a "model" key when the body had none) and tail, which
// together are the rewritten body. head and tail share body's bytes, so a
// request is sent without copying it.
func spliceModel(body []byte, f *routingFields, quoted []byte) (head, mid, tail []byte) {
	at, end, mid := modelSplice(f, quoted)
	return body[:at], mid, body[end:]
}

// modelSplice says how to give a body another model: its bytes from at to
// end (the model value, or nothing) become mid.
func modelSplice(f *routingFields, quoted []byte) (at, end int, mid []byte) {
	if f.modelStart < 0 {
		at := f.objectStart + 1
		mid = append([]byte(`"model":`), quoted...)
		if !f.empty {
			mid = append(mid, ',')
		}
		return at, at, mid
	}
	return f.modelStart, f.modelEnd, quoted
}

// quoteJSON returns s as a JSON string literal.
func quoteJSON(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// estimateTokens is the cheap input-token estimate used by the long_context
// rule and the local count_tokens answer: about one token per four bytes of
// request JSON, size being the body's length. It over-counts JSON punctuation and under-counts non-Latin
// text, which is the right side to err on for choosing a long-context model.
func estimateTokens(size int) int {
	return (size + 3) / 4
}
