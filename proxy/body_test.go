package proxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"ccmux/proxy/internal/fakeanthropic"
)

// splitReader returns its bytes in reads whose sizes come from next;
// asked calls its func, when set, with the bytes it returned so far, at
// each read.
type splitReader struct {
	b     []byte
	next  func() int
	sent  int
	asked func(sent int)
}

func (r *splitReader) Read(p []byte) (int, error) {
	if r.asked != nil {
		r.asked(r.sent)
	}
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), max(r.next(), 1))], r.b)
	r.b = r.b[k:]
	r.sent += k
	return k, nil
}

// grownCopies is what a body of n bytes copied when its buffer grew by
// copying (before segments): all of it, each time it was full.
func grownCopies(n int, limit int64) int {
	copied := 0
	for c := min(limit, firstBodyChunk); c < int64(n); c = min(limit, bodyGrowth*c) {
		copied += int(c)
	}
	return copied
}

// segmentBodies are the bodies the segment tests read: Claude Code's and
// hostile shapes.
func segmentBodies() map[string][]byte {
	const mb = 1 << 20
	many := func(open, item, close string, size int) []byte {
		return []byte(open + strings.Repeat(item, size/len(item)) + "1" + close)
	}
	return map[string][]byte{
		"claude code 200 KB": fakeanthropic.RequestBody(200<<10, "claude-sonnet-4-5", true),
		"claude code 400 KB": fakeanthropic.RequestBody(400<<10, "claude-sonnet-4-5", true),
		"claude code 1 MB":   fakeanthropic.RequestBody(mb, "claude-sonnet-4-5", false),
		"one 1 MB string":    []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat(`a\"`, mb/3) + `"}]}`),
		"deep nesting":       many(`{"model":"m","messages":[`, strings.Repeat("[", 500)+"1"+strings.Repeat("]", 500)+",", "]}", mb),
		"too deep":           many(`{"model":"m","messages":[`, strings.Repeat("[", 300)+"1"+strings.Repeat("]", 300)+",", strings.Repeat("[", 600)+"]}", 200<<10),
		"many tiny messages": many(`{"messages":[`, `{"role":"user","content":"a"},`, `],"model":"m"}`, mb),
		"no model":           many(`{"messages":[`, "1,", "]}", 300<<10),
		"broken at the end":  many(`{"model":"m","messages":[`, "1,", "]]", 300<<10),
		"a tag after a long system": []byte(`{"system":[{"type":"text","text":"` + strings.Repeat("x", 40<<10) +
			`"},{"type":"text","text":"<CCM-SUBAGENT-MODEL>haiku</CCM-SUBAGENT-MODEL> go` + strings.Repeat("y", 40<<10) +
			`"}],"model":"m","messages":[` +
			strings.Repeat(`{"role":"user","content":"hello"},`, 4000) + `1]}`),
	}
}

// TestReadBodyInSegments reads bodies in reads of many sizes and checks
// that their segments give what the whole body gives: the routing fields,
// the subagent tag, the bytes sent upstream with and without a new model,
// and that the segment switches copy only the carries: under a tenth of a
// Claude Code body, and no more than a growing buffer copied for any. The
// buffers count against the body budget, at most four times what the
// client sent at any read (64 KiB before the first switch), and all of
// them go back when the body is released.
func TestReadBodyInSegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	reads := map[string]func() int{
		"1-byte":   func() int { return 1 },
		"100-byte": func() int { return 100 },
		"16 KiB":   func() int { return 16 << 10 },
		"random":   func() int { return 1 + rng.IntN(40<<10) },
	}
	for name, body := range segmentBodies() {
		for readName, next := range reads {
			if readName == "1-byte" && len(body) > 300<<10 {
				continue // a million reads take too long under -race
			}
			for _, declared := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s in %s reads, declared length %v", name, readName, declared), func(t *testing.T) {
					h := &handler{s: &Server{}}
					src := &splitReader{b: body, next: next}
					src.asked = func(sent int) {
						if held := h.s.held.Load(); held > 4*max(int64(sent), firstBodyChunk) {
							t.Fatalf("%d bytes held for the %d the client sent", held, sent)
						}
					}
					r := httptest.NewRequest("POST", "/v1/messages", src)
					r.ContentLength = -1
					limit := int64(MaxBodyBytes + 1)
					if declared {
						r.ContentLength, limit = int64(len(body)), int64(len(body))
					}
					var scan routingScan
					p, ok := h.readBody(&exchange{ResponseWriter: httptest.NewRecorder()}, r, &scan)
					if !ok {
						t.Fatal("readBody failed")
					}
					checkSegments(t, body, p, &scan)
					t.Logf("%d segments, %d bytes copied (a growing buffer: %d)", len(p.bufs), p.copied, grownCopies(len(body), limit))
					p.release()
					if held := h.s.held.Load(); held != 0 {
						t.Fatalf("%d bytes still held after the body was released", held)
					}
					if grown := grownCopies(len(body), limit); p.copied > grown {
						t.Errorf("the segment switches copied %d bytes; a growing buffer copied %d", p.copied, grown)
					}
					if strings.HasPrefix(name, "claude code") && p.copied > len(body)/10 {
						t.Errorf("the segment switches copied %d bytes of a %d-byte body, want under a tenth", p.copied, len(body))
					}
				})
			}
		}
	}
}

// checkSegments fails t when the body read into p in segments, scan having
// stepped over them, does not give what body whole gives.
func checkSegments(t *testing.T, body []byte, p *payload, scan *routingScan) {
	t.Helper()
	if got := bytes.Join(p.segs, nil); !bytes.Equal(got, body) {
		t.Fatalf("the segments hold %d bytes that differ from the %d of the body", len(got), len(body))
	}
	if p.size != len(body) {
		t.Fatalf("size %d, want %d", p.size, len(body))
	}
	f, err := scan.finishBody(p)
	sameScan(t, body, "the segments' scan", f, err)
	if err != nil {
		return
	}
	tag := p.subagentTag(&f)
	if want := findSubagentTag(body, &f); !reflect.DeepEqual(tag, want) {
		t.Fatalf("subagent tag %+v, want %+v", tag, want)
	}
	for _, model := range []string{f.Model, "claude-sonnet-4-5-20250929"} {
		c := Candidate{Model: model, quoted: quoteJSON(model)}
		want := body // the model asked for goes as the client wrote it
		if model != f.Model || f.modelStart < 0 {
			want = rewriteModel(nil, body, &f, c.quoted)
		}
		sent := sentFor(p, &f, c)
		if sent.size() != int64(len(want)) {
			t.Fatalf("model %q: size %d, want %d", model, sent.size(), len(want))
		}
		r := sent.reader(nil)
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, want) {
			t.Fatalf("model %q: the upstream gets %d bytes that differ from the %d of the rewritten body", model, len(got), len(want))
		}
		if !bytes.Equal(sent.bytes(), want) {
			t.Fatalf("model %q: the body's copy differs from the rewritten body", model)
		}
	}
	if tag.Model != "" {
		// As messages does for a subagent: the tags go, from the body
		// joined once.
		wantF, gotF := f, f
		want := tag.strip(append([]byte(nil), body...), &wantF)
		p.set(tag.strip(p.bytes(), &gotF))
		if got := bytes.Join(p.segs, nil); !bytes.Equal(got, want) || gotF != wantF {
			t.Fatalf("stripped the tag to %.200q, %+v; want %.200q, %+v", got, gotF, want, wantF)
		}
	}
}

// readInSegments reads body into a payload as readBody does, in reads of
// the given sizes and segments of at most the given sizes past their
// carries, or twice the carry (the last of each repeats), stepping scan
// after each read
// (guarded: through advance's bound).
func readInSegments(body []byte, reads, segs []int, guarded bool) (*payload, *routingScan) {
	var scan routingScan
	p := newPayload(0, nil)
	p.segs[0] = p.segs[0][:0:min(max(segs[0], 1), cap(p.segs[0]))]
	for k, j := 0, 0; p.size < len(body); k = min(k+1, len(reads)-1) {
		if len(p.room()) == 0 {
			j = min(j+1, len(segs)-1)
			keep, size := p.nextSegment(&scan, int64(len(body)))
			p.cut(keep, size)
			i := len(p.segs) - 1
			// Room for at least the carry again, so that a large element
			// is not carried over and over, as in nextSegment.
			if n := len(p.segs[i]) + max(segs[j], len(p.segs[i]), 1); n < cap(p.segs[i]) {
				p.segs[i] = p.segs[i][:len(p.segs[i]):n]
			}
		}
		room := p.room()
		p.filled(copy(room[:min(len(room), max(reads[k], 1))], body[p.size:]))
		if p.size == len(body) {
			break
		}
		if guarded {
			scan.advance(p.last())
		} else {
			scan.step(p.last())
		}
	}
	return p, &scan
}

// FuzzSegmentedScan checks that a body read in segments of any sizes, the
// carries cut wherever the checkpoints fall, gives what it gives whole:
// the routing fields (the one-shot scanner is the oracle), the subagent
// tag and the bytes sent upstream.
func FuzzSegmentedScan(f *testing.F) {
	for _, s := range scanSeeds() {
		f.Add(s, []byte{1}, []byte{5})
		f.Add(s, []byte{7, 1, 30}, []byte{40, 3, 200})
		f.Add(s, []byte{200, 3}, []byte{255})
	}
	f.Fuzz(func(t *testing.T, data, split, segSplit []byte) {
		reads, segs := fuzzSizes(data, split), fuzzSizes(data, segSplit)
		for _, guarded := range []bool{false, true} {
			p, scan := readInSegments(data, reads, segs, guarded)
			checkSegments(t, data, p, scan)
			p.release()
		}
	})
}

// BenchmarkReadBody reads a Claude Code body as it comes in 16 KiB reads,
// with its declared length: the segments (or, before them, a buffer grown
// by copying), the scan steps and the last scan.
func BenchmarkReadBody(b *testing.B) {
	const read = 16 << 10
	for _, size := range []int{200 << 10, 400 << 10, 1 << 20} {
		body := fakeanthropic.RequestBody(size, "claude-sonnet-4-5", true)
		b.Run(sizeName(size), func(b *testing.B) {
			h := &handler{s: &Server{}}
			w := &exchange{ResponseWriter: httptest.NewRecorder()}
			r := httptest.NewRequest("POST", "/v1/messages", nil)
			r.ContentLength = int64(len(body))
			src := &chunkReader{n: read}
			r.Body = io.NopCloser(src)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				src.b = body
				var scan routingScan
				p, ok := h.readBody(w, r, &scan)
				if !ok {
					b.Fatal("readBody failed")
				}
				if _, err := scan.finishBody(p); err != nil {
					b.Fatal(err)
				}
				p.release()
			}
		})
	}
}
