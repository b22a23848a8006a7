package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"ccmux/proxy/internal/fakeanthropic"
)

// scanRoutingOneShot is scanRouting as it was before it could be taken in
// steps (150bec5): the oracle routingScan's steps are checked against, error
// messages and offsets included.
func scanRoutingOneShot(body []byte) (routingFields, error) {
	f := routingFields{modelStart: -1, systemStart: -1}
	s := scanner{b: body}
	s.ws()
	if s.i >= len(s.b) {
		return f, errors.New("the request body is empty")
	}
	if s.b[s.i] != '{' {
		if err := s.skipValue(0); err != nil {
			return f, err
		}
		return f, errNotObject
	}
	f.objectStart = s.i
	f.empty = true
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			f.empty = false
			s.ws()
			key, err := s.key()
			if err != nil {
				return f, err
			}
			s.ws()
			if !s.consume(':') {
				return f, s.errorf("want ':' after an object key")
			}
			s.ws()
			switch string(key) {
			case "model":
				if s.peek() != '"' {
					return f, s.errorf("model must be a string")
				}
				start := s.i
				v, err := s.stringValue()
				if err != nil {
					return f, err
				}
				f.Model, f.modelStart, f.modelEnd = v, start, s.i
			case "stream":
				switch {
				case s.literal("true"):
					f.Stream = true
				case s.literal("false"), s.literal("null"):
					f.Stream = false
				default:
					return f, s.errorf("stream must be true or false")
				}
			case "thinking":
				t, err := s.objectType(1)
				if err != nil {
					return f, err
				}
				f.ThinkingType = t
			case "system":
				f.systemStart = s.i
				if err := s.skipValue(1); err != nil {
					return f, err
				}
				f.systemEnd = s.i
			case "tools":
				ws, err := s.toolsWebSearch()
				if err != nil {
					return f, err
				}
				f.WebSearch = ws
			default:
				if err := s.skipValue(1); err != nil {
					return f, err
				}
			}
			s.ws()
			if s.consume(',') {
				continue
			}
			if s.consume('}') {
				break
			}
			return f, s.errorf("want ',' or '}' in the request object")
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return f, s.errorf("unexpected data after the request object")
	}
	return f, nil
}

// scanInSteps scans body the way readBody does when it arrives in reads of
// the given sizes (the last one repeats): a step after each read, in a fresh
// buffer each time, the old one scribbled over, as if the buffer had grown.
// guarded says whether the steps go through advance's rescan bound or run
// after every read.
func scanInSteps(body []byte, reads []int, guarded bool) (routingFields, error, int) {
	var r routingScan
	var old []byte
	for n, k := 0, 0; n < len(body); k = min(k+1, len(reads)-1) {
		n = min(n+max(reads[k], 1), len(body))
		buf := append(make([]byte, 0, n), body[:n]...)
		for i := range old {
			old[i] = '['
		}
		old = buf
		if n == len(body) {
			break
		}
		if guarded {
			r.advance(buf, 0)
		} else {
			r.scanned += len(buf) - r.at
			r.run(buf, true)
		}
	}
	f, err := r.finish(append([]byte(nil), body...), 0)
	for i := range old {
		old[i] = '['
	}
	return f, err, r.scanned
}

// sameScan fails t when the stepped scan's answer differs from the one-shot scan's.
func sameScan(t *testing.T, body []byte, what string, f routingFields, err error) {
	t.Helper()
	wantF, wantErr := scanRoutingOneShot(body)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("%s of %.200q: error %v, want %v", what, body, err, wantErr)
	}
	if !reflect.DeepEqual(f, wantF) {
		t.Fatalf("%s of %.200q: fields %+v, want %+v", what, body, f, wantF)
	}
}

func scanSeeds() [][]byte {
	var seeds [][]byte
	for _, s := range []string{
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","thinking":{"type":"enabled","budget_tokens":2048},"tools":[{"type":"web_search_20250305","name":"web_search"}]}`,
		`{"tools":[{"name":"Bash","input_schema":{"type":"object"}}],"model":"a\"b\\"}`,
		`{"mod\u0065l":"x","model":"y"}`, `{}`, `[]`, `{"a":[1,-2.5e3,true,false,null,{"b":"c"}]}`,
		`{"thinking":{"type":1}}`, `{"stream":null}`, `{"model":"\ud83d\ude00"}`, `null`, ` null `,
		`{"system":[{"type":"text","text":"a\"b"},{"type":"text","text":"<ccmux-subagent-model>x</ccmux-subagent-model>"}],"messages":[1,22,333,[4],{"a":5}],"tools":[{"type":"web_search_1"},{"type":"x"}],"model":"m"}`,
		`{"messages":[1,2,3],"messages":[4,5}`, `{"tools":[{"type":"web_search"},{"type":}]}`, `{"a":[1,2] ,"b":[3, 4 ] } `,
		`{"a":[1,2]} x`, `{"a":[1,2],}`, `{"a":[1,2,]}`, `{"a":[-]}`, `{"a":[tru]}`, `{"model":"m\q"}`, `{"system":[1,2],"system":"s"}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	for _, size := range []int{1 << 10, 6 << 10, 24 << 10} {
		seeds = append(seeds, fakeanthropic.RequestBody(size, "claude-sonnet-4-5", size > 4<<10))
	}
	return seeds
}

// fuzzSizes turns fuzzed bytes into the sizes of a body's reads (or
// segments), cycled through. Each step copies the body, so a large one gets
// larger sizes (at most about 256 steps), or the fuzzer stalls on it.
func fuzzSizes(body, split []byte) []int {
	if len(split) == 0 {
		split = []byte{0}
	}
	scale := max(1, len(body)/256)
	sizes := make([]int, len(split))
	for i, b := range split {
		sizes[i] = (int(b) + 1) * scale
	}
	return sizes
}

// FuzzIncrementalScan checks that scanning a body in steps, split anywhere,
// gives exactly what scanning it whole gives: the same fields and offsets,
// the same error at the same byte.
func FuzzIncrementalScan(f *testing.F) {
	for _, s := range scanSeeds() {
		f.Add(s, []byte{1})
		f.Add(s, []byte{7, 1, 30})
		f.Add(s, []byte{200, 3})
	}
	f.Fuzz(func(t *testing.T, data, split []byte) {
		reads := fuzzSizes(data, split)
		got, err, _ := scanInSteps(data, reads, false)
		sameScan(t, data, "steps", got, err)
		got, err, _ = scanInSteps(data, reads, true)
		sameScan(t, data, "guarded steps", got, err)
	})
}

// TestIncrementalScanBounded checks that a body arriving in tiny reads is not
// scanned over and over: whatever its shape, the steps and the final scan
// start on at most three times its bytes.
func TestIncrementalScanBounded(t *testing.T) {
	const size = 1 << 20
	many := func(open, item, close string) []byte {
		return []byte(open + strings.Repeat(item, size/len(item)) + "1" + close)
	}
	bodies := map[string][]byte{
		"claude code":        fakeanthropic.RequestBody(size, "claude-sonnet-4-5", true),
		"one huge string":    []byte(`{"messages":[{"role":"user","content":"` + strings.Repeat(`a\"`, size/3) + `"}]}`),
		"many tiny elements": many(`{"messages":[`, "1,", "]}"),
		"one huge element":   many(`{"messages":[[`, "1,", "]]}"),
		"many members":       many(`{`, `"a":1,`, `"a":1}`),
		"huge tools":         many(`{"tools":[`, `{"type":"x"},`, `]}`),
		"not an object":      many(`[`, "1,", "]"),
		"broken at the end":  many(`{"messages":[`, "1,", "]]"),
	}
	for name, body := range bodies {
		for _, read := range []int{1, 100, 16 << 10} {
			t.Run(fmt.Sprintf("%s in %d-byte reads", name, read), func(t *testing.T) {
				var r routingScan
				for n := read; n < len(body); n += read {
					r.advance(body[:n], 0)
				}
				f, err := r.finish(body, 0)
				sameScan(t, body, "steps", f, err)
				if r.scanned > 3*len(body) {
					t.Errorf("scanned %d bytes of a %d-byte body (%.1fx)", r.scanned, len(body), float64(r.scanned)/float64(len(body)))
				}
				t.Logf("scanned %.2fx the body", float64(r.scanned)/float64(len(body)))
			})
		}
	}
}

// chunkReader returns its bytes in reads of at most n.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// TestReadBodyScansAsItReads checks that readBody scans a Claude Code body
// as its reads come in, declared length or not, so that only the last read
// is left to scan when it is complete.
func TestReadBodyScansAsItReads(t *testing.T) {
	body := fakeanthropic.RequestBody(400<<10, "claude-sonnet-4-5", true)
	const read = 16 << 10
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("declared length %v", declared), func(t *testing.T) {
			h := &handler{s: &Server{}}
			r := httptest.NewRequest("POST", "/v1/messages", &chunkReader{b: body, n: read})
			r.ContentLength = -1
			if declared {
				r.ContentLength = int64(len(body))
			}
			var scan routingScan
			p, ok := h.readBody(&exchange{ResponseWriter: httptest.NewRecorder()}, r, &scan)
			if !ok {
				t.Fatal("readBody failed")
			}
			defer p.release()
			if left := p.size - scan.at; left > 2*read {
				t.Errorf("%d bytes of %d left to scan after the last read, want at most %d", left, p.size, 2*read)
			}
			f, err := scan.finishBody(p)
			sameScan(t, body, "readBody's scan", f, err)
			if scan.scanned > len(body)*3/2 {
				t.Errorf("scanned %d bytes of a %d-byte body", scan.scanned, len(body))
			}
		})
	}
}

// toolsWebSearch, for the oracle, reads the tools value and reports whether any tool's type
// starts with "web_search" (web_search_20250305 and later versions).
func (s *scanner) toolsWebSearch() (bool, error) {
	if s.peek() != '[' {
		return false, s.skipValue(1)
	}
	s.i++
	s.ws()
	if s.consume(']') {
		return false, nil
	}
	found := false
	for {
		s.ws()
		t, err := s.objectType(2)
		if err != nil {
			return false, err
		}
		if strings.HasPrefix(t, "web_search") {
			found = true
		}
		s.ws()
		if s.consume(',') {
			continue
		}
		if s.consume(']') {
			return found, nil
		}
		return false, s.errorf("want ',' or ']' in tools")
	}
}
