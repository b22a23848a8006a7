package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestParsePastedCode(t *testing.T) {
	tests := []struct {
		in, code, state, err string
	}{
		{"abc#xyz", "abc", "xyz", ""},
		{"  abc#xyz\r\n", "abc", "xyz", ""},
		{"abc", "abc", "", ""},
		{"https://platform.claude.com/oauth/code/callback?code=abc&state=xyz", "abc", "xyz", ""},
		{"https://platform.claude.com/oauth/code/callback#code=abc&state=xyz", "abc", "xyz", ""},
		{"http://localhost:5555/callback?code=a%2Bb&state=xyz", "a+b", "xyz", ""},
		{"code=abc&state=xyz", "abc", "xyz", ""},
		{"?state=xyz&code=abc", "abc", "xyz", ""},
		{"", "", "", "nothing was pasted"},
		{"abc#", "", "", "has no state"},
		{"#xyz", "", "", "has no code"},
		{"abc def", "", "", "does not look like"},
		{"abc#x#y", "", "", "does not look like"},
		{"https://platform.claude.com/oauth/code/callback", "", "", "has no code"},
		{"https://x/cb?error=access_denied&state=s", "", "", "declined"},
		{"https://x/cb?error=server_error&error_description=try+later", "", "", "server_error (try later)"},
		{strings.Repeat("a", 3000), "", "", "too long"},
	}
	for _, tt := range tests {
		code, state, err := parsePastedCode(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%.40q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || code != tt.code || state != tt.state {
			t.Errorf("%.40q: got %q, %q, %v; want %q, %q", tt.in, code, state, err, tt.code, tt.state)
		}
	}
}

func TestCallbackCode(t *testing.T) {
	tests := []struct {
		query, code string
		err         error
		errText     string
	}{
		{"code=abc&state=good", "abc", nil, ""},
		{"code=abc&state=bad", "", errWrongState, ""},
		{"code=abc", "", errWrongState, ""},
		{"error=access_denied&state=bad", "", errWrongState, ""},
		{"error=access_denied&state=good", "", ErrAccessDenied, ""},
		{"error=invalid_scope&state=good", "", nil, "invalid_scope"},
		{"state=good", "", nil, "has no code"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		code, err := callbackCode(q, "good")
		switch {
		case tt.err != nil && !errors.Is(err, tt.err):
			t.Errorf("%s: err = %v, want %v", tt.query, err, tt.err)
		case tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)):
			t.Errorf("%s: err = %v, want %q", tt.query, err, tt.errText)
		case tt.err == nil && tt.errText == "" && (err != nil || code != tt.code):
			t.Errorf("%s: %q, %v", tt.query, code, err)
		}
	}
	if _, err := callbackCode(url.Values{"code": {"c"}, "state": {""}}, ""); !errors.Is(err, errWrongState) {
		t.Error("an empty expected state matched an empty state")
	}
}

// FuzzParseCode: whatever is pasted, the parser does not panic, and what it
// accepts is a plausible code (and state) that round-trips as code#state.
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"abc#xyz", "abc", "https://h/cb?code=a&state=b", "code=a&state=b", "?code=%zz", "https://h/cb#code=a", "a#b#c", " \t", "https://h/cb?error=access_denied"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		code, state, err := parsePastedCode(in)
		if err != nil {
			if code != "" || state != "" {
				t.Fatalf("error %v with code %q state %q", err, code, state)
			}
			return
		}
		if checkCodePart("code", code) != nil || (state != "" && checkCodePart("state", state) != nil) {
			t.Fatalf("accepted code %q state %q", code, state)
		}
		joined := code
		if state != "" {
			joined += "#" + state
		}
		if strings.HasPrefix(joined, "code=") {
			return // a code that itself starts with "code=" reads as a query
		}
		c2, s2, err := parsePastedCode(joined)
		if err != nil || c2 != code || s2 != state {
			t.Fatalf("%q does not round-trip: %q %q %v", joined, c2, s2, err)
		}
		q := url.Values{"code": {code}, "state": {"s"}}
		if got, err := callbackCode(q, "s"); err != nil || got != code {
			t.Fatalf("callbackCode(%q) = %q, %v", code, got, err)
		}
	})
}

// FuzzCallbackQuery feeds the loopback callback arbitrary query strings, as
// any page in the browser could: only the expected state is ever accepted,
// an accepted code is well formed, and the page shown for a rejected one
// carries the attacker's text only HTML-escaped.
func FuzzCallbackQuery(f *testing.F) {
	const want = "c3RhdGUtb2YtdGhpcy1zaWduLWlu"
	for _, s := range []string{
		"code=abc&state=" + want, "code=abc", "state=" + want, "code=&state=" + want,
		"error=access_denied&state=" + want, "error=<script>x</script>&error_description=%3Cb%3E&state=" + want,
		"code=a%23b&state=" + want, "code=abc&state=" + want + "&state=other", "%zz", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		code, err := callbackCode(q, want)
		if q.Get("state") != want {
			if !errors.Is(err, errWrongState) || code != "" {
				t.Fatalf("state %q accepted: code %q, err %v", q.Get("state"), code, err)
			}
			return
		}
		if err == nil {
			if checkCodePart("code", code) != nil || code != q.Get("code") {
				t.Fatalf("accepted a malformed code %q from %q", code, raw)
			}
			return
		}
		rec := httptest.NewRecorder()
		writePage(rec, http.StatusBadRequest, "Sign-in failed", upperFirst(err.Error())+".")
		if body := rec.Body.String(); strings.Contains(body, "<script") || strings.Contains(body, "<b>") {
			t.Fatalf("the error page shows markup from the query %q:\n%s", raw, body)
		}
	})
}
