package config

import (
	"errors"
	"strings"
	"testing"
)

// A provider_type neither ccmux nor claude-code-mux knows is a mistake,
// reported with the nearest known type; a claude-code-mux type ccmux does
// not serve loads with a warning that names what is skipped.
func TestProviderTypes(t *testing.T) {
	withType := func(typ string) string {
		return strings.Replace(DefaultTOML, `provider_type = "anthropic"`, `provider_type = "`+typ+`"`, 1) + `
[[providers]]
name = "gpt"
provider_type = "openai"
auth_type = "apikey"
api_key = "k"
models = ["gpt-4o"]

[[providers]]
name = "vertex"
provider_type = "vertex-ai"
auth_type = "apikey"
api_key = "k"
models = ["gemini-2.5-pro"]
`
	}
	tests := []struct {
		typ     string
		problem string // "" for none
	}{
		{"antropic", `providers[0].provider_type: unknown provider_type "antropic"; did you mean "anthropic"?`},
		{"Anthropic", ""},
		{"zai", ""},
		{"z.ai", ""},
		{"minmax", `did you mean "minimax"?`},
		{"vertex_ai", `did you mean "vertex-ai"?`},
		{"bedrock", `unknown provider_type "bedrock"; ccmux serves anthropic, anthropic-compatible,`},
	}
	for _, tt := range tests {
		cfg, err := Parse("config.toml", []byte(withType(tt.typ)))
		if tt.problem == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.typ, err)
			}
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.problem) {
			t.Errorf("%s: got %v (config %v), want a problem saying %s", tt.typ, err, cfg != nil, tt.problem)
		}
	}

	cfg, err := Parse("config.toml", []byte(withType("anthropic")))
	if err != nil {
		t.Fatal(err)
	}
	want := `providers[2] (vertex): provider_type "vertex-ai" is not Anthropic-compatible; ccmux skips this provider (models gemini-2.5-pro) and every mapping to it`
	joined := strings.Join(cfg.Warnings, "\n")
	if !strings.Contains(joined, want) {
		t.Errorf("warnings:\n%s\nwant %s", joined, want)
	}
	// openai is served (translated), so it is neither skipped nor a mistake.
	if strings.Contains(joined, "(gpt)") {
		t.Errorf("warnings:\n%s\nwant none about the openai provider", joined)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"antropic", "anthropic", 1}, {"kitten", "sitting", 3}, {"abc", "", 3}} {
		if got := editDistance(tt.a, tt.b); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}
