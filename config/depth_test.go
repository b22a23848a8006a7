package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// A few KB nested thousands deep is refused at once with one sentence
// naming the file, line and key; before, 2,000 levels took 50 s to check
// and 5,000 over a minute and 1.85 GB.
func TestDeepNestingRefusedQuickly(t *testing.T) {
	nested := func(n int) string { return "x = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) + "\n" }
	dotted := func(n int) string { return "y." + strings.Repeat("a.", n) + "b = 1\n" }
	tests := []struct {
		name, toml string
		line       int
		key        string
	}{
		{"inline tables 2,000 deep", base + nested(2000), 10, "x"},
		{"inline tables 5,000 deep", base + nested(5000), 10, "x"},
		{"33 levels", base + nested(33), 10, "x"},
		{"dotted key 5,000 deep", base + "\n" + dotted(5000), 11, "y"},
		{"table header 5,000 deep", base + "[t" + strings.Repeat(".t", 5000) + "]\nk = 1\n", 10, "t"},
		{"arrays 5,000 deep", base + "z = " + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "\n", 10, "z"},
		// A header and a dotted key under it add up; only the decoded keys show it.
		{"header and key adding up", base + "[h" + strings.Repeat(".h", 19) + "]\nk" + strings.Repeat(".k", 19) + " = 1\n", 11, "h.h.h.…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := Parse("/home/u/config.toml", []byte(tt.toml)); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("checking the config took over 5 s")
			}
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("got %v, want one problem", err)
			}
			p := ce.Problems[0]
			if p.Line != tt.line || p.Key != tt.key || !strings.Contains(p.Msg, "deeper than 32") {
				t.Errorf("got line %d key %q msg %q, want line %d key %q and a depth of 32", p.Line, p.Key, p.Msg, tt.line, tt.key)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "/home/u/config.toml: line ") || strings.Contains(msg, "\n") || len(msg) > 300 {
				t.Errorf("want one short sentence naming the file and line, got %q", msg)
			}
		})
	}
}

// Brackets, braces and dots inside strings and comments are not nesting,
// and 32 levels is still a config.
func TestNestingWithinLimit(t *testing.T) {
	deep := "x = " + strings.Repeat("{a=", 31) + "1" + strings.Repeat("}", 31) + "\n"
	noise := strings.Repeat("{[.", 100)
	for _, extra := range []string{
		deep,
		"# " + noise + "\n",
		`s = "` + noise + `\"` + noise + `"` + "\n",
		"l = '" + noise + "'\n",
		`m = """` + "\n" + noise + `\"""` + "\n" + noise + `"""` + "\n",
		"n = '''" + noise + "\n" + noise + "'''\n",
		"v = 1.5\nw = 1979-05-27T07:32:00.999Z\n",
	} {
		if _, err := Parse("config.toml", []byte(extra+base)); err != nil && strings.Contains(err.Error(), "deeper") {
			t.Errorf("%.40q…: refused as too deep: %v", extra, err)
		}
	}
}

// FuzzDepthProblem: the scan before decoding never refuses a file whose
// decoded structure is well within MaxKeyDepth (it sees at most a table
// header's two brackets more), whatever strings, comments and numbers
// hold, and its refusal is one short problem.
func FuzzDepthProblem(f *testing.F) {
	for _, seed := range []string{base, DefaultTOML, "a = {b = {c = 1}}", "x = [[1], [[2]]]", `s = """a\"""b"""`, "l = '''x''''", "d = 1979-05-27T07:32:00.999Z # .[{", `"a.b".c = 1`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := depthProblem(data)
		if p != nil && (len(p.Key) > 70 || p.Line < 1) {
			t.Fatalf("problem %+v", p)
		}
		var v map[string]any
		if _, err := toml.Decode(string(data), &v); err != nil {
			return
		}
		if d := valueDepth(v); p != nil && d <= MaxKeyDepth-3 {
			t.Fatalf("refused a file %d deep: %+v", d, p)
		}
	})
}

// valueDepth is how deeply v nests tables and arrays.
func valueDepth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			d = max(d, valueDepth(e))
		}
	case []map[string]any:
		for _, e := range v {
			d = max(d, valueDepth(e))
		}
	case []any:
		for _, e := range v {
			d = max(d, valueDepth(e))
		}
	default:
		return 0
	}
	return d + 1
}
