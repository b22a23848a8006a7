package proxy

import (
	"strings"
	"testing"
)

// GET / (with the dashboard off) says how to run Claude Code through ccmux,
// not to set a bare ANTHROPIC_BASE_URL: without a token Claude Code asks for
// a login of its own.
func TestRootSaysHowToRunClaudeCode(t *testing.T) {
	t.Setenv("API_KEY", "k")
	h := testHandler(t, mustConfig(t, apiKeyTOML("http://127.0.0.1:9")), nil) // no admin API: no dashboard
	w := do(h, "GET", "/", "localhost", local, nil, "")
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, "ccmux claude") || strings.Contains(body, "set ANTHROPIC_BASE_URL") {
		t.Errorf("GET /: %d %q", w.Code, body)
	}
}
