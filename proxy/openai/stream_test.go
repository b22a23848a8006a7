package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files from the translator's output")

var testTarget = Target{Provider: "up", Type: "openai", Model: "the-model"}

// translate feeds the upstream bytes in the given pieces and ends cleanly.
func translate(pieces ...[]byte) []byte {
	s := NewStream(testTarget)
	var out []byte
	for _, p := range pieces {
		out = append(out, s.Feed(p)...)
	}
	return append(out, s.End(nil)...)
}

func goldenStreams(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("testdata/*.sse")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no testdata/*.sse: %v", err)
	}
	return files
}

// TestStreamGolden translates each recorded upstream stream whole, cut at
// every byte boundary, and byte by byte, and wants the golden events each time.
func TestStreamGolden(t *testing.T) {
	for _, file := range goldenStreams(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".sse")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := translate(in)
			golden := strings.TrimSuffix(file, ".sse") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("translated stream differs from %s:\n%s", golden, got)
			}
			checkGrammar(t, got)
			for i := 1; i < len(in); i++ {
				if got := translate(in[:i], in[i:]); !bytes.Equal(got, want) {
					t.Fatalf("cut at byte %d:\n%s", i, got)
				}
			}
			pieces := make([][]byte, len(in))
			for i := range in {
				pieces[i] = in[i : i+1]
			}
			if got := translate(pieces...); !bytes.Equal(got, want) {
				t.Fatalf("byte by byte:\n%s", got)
			}
		})
	}
}

// FuzzRechunk: any chunking of the same upstream bytes gives the same
// Anthropic events; cuts says where the bytes are cut.
func FuzzRechunk(f *testing.F) {
	for _, file := range goldenStreams(f) {
		in, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(in, []byte{1, 7, 30, 2, 200})
	}
	f.Fuzz(func(t *testing.T, in, cuts []byte) {
		want := translate(in)
		var pieces [][]byte
		rest := in
		for _, c := range cuts {
			n := int(c)
			if n > len(rest) {
				break
			}
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		pieces = append(pieces, rest)
		if got := translate(pieces...); !bytes.Equal(got, want) {
			t.Fatalf("chunked %v:\n%s\nwhole:\n%s", cuts, got, want)
		}
		checkGrammar(t, want)
	})
}

// checkGrammar checks what any translated stream must hold: message_start
// first, then blocks that start once, stop once, and get deltas only
// while open, and an end that is message_delta + message_stop or one error.
func checkGrammar(t *testing.T, out []byte) {
	t.Helper()
	events := splitEvents(t, out)
	if len(events) == 0 {
		t.Fatal("no events")
	}
	last := events[len(events)-1]
	if last.name == "error" {
		events = events[:len(events)-1]
		for _, e := range events {
			if e.name == "message_stop" || e.name == "error" {
				t.Fatalf("%s before the final error", e.name)
			}
		}
		if len(events) == 0 {
			return
		}
	} else if last.name != "message_stop" || len(events) < 3 || events[len(events)-2].name != "message_delta" {
		t.Fatalf("the stream does not end with message_delta, message_stop:\n%s", out)
	}
	if events[0].name != "message_start" {
		t.Fatalf("first event %s", events[0].name)
	}
	open := map[int]bool{}
	started := 0
	for _, e := range events[1:] {
		var v struct {
			Index int `json:"index"`
		}
		if err := json.Unmarshal(e.data, &v); err != nil {
			t.Fatalf("event %s: %v: %s", e.name, err, e.data)
		}
		switch e.name {
		case "content_block_start":
			if v.Index != started {
				t.Fatalf("block %d started, want %d", v.Index, started)
			}
			open[v.Index] = true
			started++
		case "content_block_delta":
			if !open[v.Index] {
				t.Fatalf("delta for block %d, which is not open", v.Index)
			}
		case "content_block_stop":
			if !open[v.Index] {
				t.Fatalf("stop for block %d, which is not open", v.Index)
			}
			open[v.Index] = false
		case "message_delta", "message_stop":
			for i, o := range open {
				if o {
					t.Fatalf("%s while block %d is open", e.name, i)
				}
			}
		}
	}
}

type sseEvent struct {
	name string
	data []byte
}

func splitEvents(t *testing.T, out []byte) []sseEvent {
	t.Helper()
	var events []sseEvent
	for _, raw := range bytes.Split(bytes.TrimSuffix(out, []byte("\n\n")), []byte("\n\n")) {
		if len(raw) == 0 {
			continue
		}
		lines := bytes.Split(raw, []byte("\n"))
		if len(lines) != 2 || !bytes.HasPrefix(lines[0], []byte("event: ")) || !bytes.HasPrefix(lines[1], []byte("data: ")) {
			t.Fatalf("malformed event %q", raw)
		}
		events = append(events, sseEvent{string(lines[0][7:]), lines[1][6:]})
	}
	return events
}

// TestStreamEnd: a stream that breaks (a read error, or bytes cut in the
// middle of an event) ends with an error event and never message_stop,
// even with everything else in place.
func TestStreamEnd(t *testing.T) {
	in, _ := os.ReadFile("testdata/text.sse")
	upTo := bytes.Index(in, []byte("data: [DONE]")) // finish_reason and usage arrived
	for _, tc := range []struct {
		name string
		in   []byte
		err  error
		want string // the last event
	}{
		{"clean end without [DONE]", in[:upTo], nil, "message_stop"},
		{"read error", in[:upTo-40], errors.New("connection reset"), "error"},
		{"cut mid-event", in[:upTo-40], nil, "error"},
		{"nothing at all", nil, nil, "error"},
		{"only [DONE]", []byte("data: [DONE]\n\n"), nil, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStream(testTarget)
			out := append(bytes.Clone(s.Feed(tc.in)), s.End(tc.err)...)
			events := splitEvents(t, out)
			last := events[len(events)-1].name
			if last != tc.want {
				t.Fatalf("last event %s, want %s:\n%s", last, tc.want, out)
			}
			if tc.want == "error" && bytes.Contains(out, []byte("message_stop")) {
				t.Fatal("a broken stream said message_stop")
			}
		})
	}
}
