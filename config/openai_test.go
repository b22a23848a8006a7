package config

import (
	"strings"
	"testing"
)

// TestOpenAIProviders: each Chat Completions provider_type has
// claude-code-mux's URL (or Google's, for gemini), base_url wins, and
// openai-compatible needs one that is https:// or loopback unless
// allow_insecure says otherwise.
func TestOpenAIProviders(t *testing.T) {
	urls := map[string]string{
		"openai":     "https://api.openai.com/v1",
		"openrouter": "https://openrouter.ai/api/v1",
		"deepinfra":  "https://api.deepinfra.com/v1/openai",
		"novita":     "https://api.novita.ai/v3/openai",
		"baseten":    "https://inference.baseten.co/v1",
		"together":   "https://api.together.xyz/v1",
		"fireworks":  "https://api.fireworks.ai/inference/v1",
		"groq":       "https://api.groq.com/openai/v1",
		"nebius":     "https://api.studio.nebius.ai/v1",
		"cerebras":   "https://api.cerebras.ai/v1",
		"moonshot":   "https://api.moonshot.cn/v1",
		"gemini":     "https://generativelanguage.googleapis.com/v1beta/openai",
	}
	for typ, want := range urls {
		cfg, err := Parse("t", []byte(base+"[[providers]]\nname = \"x\"\nprovider_type = \""+typ+"\"\napi_key = \"k\"\nmodels = [\"m\"]\n"))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		p := cfg.Providers[1]
		if !p.SpeaksOpenAI() || !p.Serves() || p.Upstream() != want || len(cfg.Warnings) > 0 {
			t.Errorf("%s: SpeaksOpenAI %v, Upstream %q, warnings %q", typ, p.SpeaksOpenAI(), p.Upstream(), cfg.Warnings)
		}
	}
	for _, tc := range []struct{ extra, err string }{
		{`base_url = "http://localhost:11434/v1"`, ""},
		{`base_url = "http://127.0.0.1:1234/v1/"`, ""},
		{`base_url = "http://[::1]:8000/v1"`, ""},
		{`base_url = "https://vllm.example.com/v1"`, ""},
		{`base_url = "http://gpu-box.lan:8000/v1"` + "\nallow_insecure = true", ""},
		{`base_url = "http://gpu-box.lan:8000/v1"`, "providers[1].base_url"},
		{``, "providers[1].base_url"},
	} {
		_, err := Parse("t", []byte(base+"[[providers]]\nname = \"local\"\nprovider_type = \"openai-compatible\"\napi_key = \"k\"\nmodels = [\"m\"]\n"+tc.extra+"\n"))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.extra, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one about %s", tc.extra, err, tc.err)
		}
	}
}
