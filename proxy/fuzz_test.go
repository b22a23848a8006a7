package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScanRouting checks the routing-field scanner against encoding/json:
// on valid JSON it must find the same fields, and rewriting the model must
// leave valid JSON that differs only in the model.
func FuzzScanRouting(f *testing.F) {
	for _, s := range scanSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := scanRouting(data)
		if !json.Valid(data) || !utf8.Valid(data) {
			return // only required not to panic
		}
		var top map[string]json.RawMessage
		// encoding/json decodes null into a nil map; it is not an object.
		if json.Unmarshal(data, &top) != nil || top == nil {
			if err == nil {
				t.Fatalf("accepted a non-object: %q", data)
			}
			return
		}
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "model must be a string") || strings.Contains(msg, "stream must be") || strings.Contains(msg, "nested too deeply") {
				return
			}
			t.Fatalf("rejected valid JSON %q: %v", data, err)
		}
		want := routingFields{}
		if raw, ok := top["model"]; ok {
			if json.Unmarshal(raw, &want.Model) != nil {
				t.Fatalf("accepted a non-string model: %q", data)
			}
		}
		if raw, ok := top["stream"]; ok {
			json.Unmarshal(raw, &want.Stream)
		}
		var thinking map[string]json.RawMessage
		if json.Unmarshal(top["thinking"], &thinking) == nil {
			json.Unmarshal(thinking["type"], &want.ThinkingType)
		}
		var tools []json.RawMessage
		if json.Unmarshal(top["tools"], &tools) == nil {
			for _, tool := range tools {
				var obj map[string]json.RawMessage
				var typ string
				if json.Unmarshal(tool, &obj) == nil && json.Unmarshal(obj["type"], &typ) == nil && strings.HasPrefix(typ, "web_search") {
					want.WebSearch = true
				}
			}
		}
		if got.Model != want.Model || got.Stream != want.Stream || got.ThinkingType != want.ThinkingType || got.WebSearch != want.WebSearch {
			t.Fatalf("scan of %q: got %+v, want %+v", data, got, want)
		}

		out := rewriteModel(nil, data, &got, quoteJSON("rewritten-model"))
		var after map[string]json.RawMessage
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("rewrite of %q gave invalid JSON %q: %v", data, out, err)
		}
		var m string
		if json.Unmarshal(after["model"], &m) != nil || m != "rewritten-model" {
			t.Fatalf("rewrite of %q: model %s", data, after["model"])
		}
		for k, v := range top {
			if k != "model" && !bytes.Equal(after[k], v) {
				t.Fatalf("rewrite changed %q: %s → %s", k, v, after[k])
			}
		}
	})
}

// FuzzEventReader checks that the SSE reader returns the input exactly,
// split into events that each end at their first blank line.
func FuzzEventReader(f *testing.F) {
	for _, s := range []string{
		"event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n",
		"event: a\r\ndata: b\r\n\r\n",
		"data: no end",
		"\n\n\n",
		"event: long\ndata: " + strings.Repeat("x", 100) + "\n\n",
		"event: x\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A tiny buffer exercises lines longer than the buffer.
		er := &eventReader{br: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		joined := data[:0]
		for {
			ev, err := er.Next()
			if err != nil {
				switch {
				case errors.Is(err, io.EOF):
					if !bytes.Equal(joined, data) {
						t.Fatalf("EOF after %q of %q", joined, data)
					}
				case errors.Is(err, errIncompleteEvent):
					rest := data[len(joined):]
					if len(rest) == 0 || !bytes.HasPrefix(data, joined) {
						t.Fatalf("incomplete event with rest %q", rest)
					}
					if bytes.HasSuffix(rest, []byte("\n\n")) || bytes.HasSuffix(rest, []byte("\n\r\n")) || bytes.Equal(rest, []byte("\n")) || bytes.Equal(rest, []byte("\r\n")) {
						t.Fatalf("a complete event %q was reported incomplete", rest)
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !endsEvent(ev) {
				t.Fatalf("event %q does not end with a blank line", ev)
			}
			// No blank line before the end: the event is the shortest possible.
			lines := splitLines(ev)
			for i, l := range lines[:len(lines)-1] {
				if l == "\n" || l == "\r\n" {
					t.Fatalf("event %q has a blank line at %d", ev, i)
				}
			}
			// Compare only the new event: re-checking the whole prefix per
			// event made large inputs quadratic and stalled the fuzzer.
			if !bytes.HasPrefix(data[len(joined):], ev) {
				t.Fatalf("event %q after %q is not the input %q", ev, joined, data)
			}
			joined = data[:len(joined)+len(ev)]
		}
	})
}

func endsEvent(ev []byte) bool {
	lines := splitLines(ev)
	last := lines[len(lines)-1]
	return last == "\n" || last == "\r\n"
}

// splitLines splits after each "\n", keeping the terminators.
func splitLines(b []byte) []string {
	var out []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, string(b))
			break
		}
		out = append(out, string(b[:i+1]))
		b = b[i+1:]
	}
	return out
}
