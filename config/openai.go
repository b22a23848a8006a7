package config

import (
	"net/url"
	"strings"
)

// openaiTypes maps each provider_type that speaks OpenAI Chat Completions
// to its built-in base URL: claude-code-mux's for its vendors
// (src/providers/registry.rs and openai.rs), Google's OpenAI-compatible
// endpoint for gemini with an API key, and "" for openai-compatible,
// which needs base_url. The proxy translates requests for these.
var openaiTypes = map[string]string{
	"openai":            "https://api.openai.com/v1",
	"openrouter":        "https://openrouter.ai/api/v1",
	"deepinfra":         "https://api.deepinfra.com/v1/openai",
	"novita":            "https://api.novita.ai/v3/openai",
	"baseten":           "https://inference.baseten.co/v1",
	"together":          "https://api.together.xyz/v1",
	"fireworks":         "https://api.fireworks.ai/inference/v1",
	"groq":              "https://api.groq.com/openai/v1",
	"nebius":            "https://api.studio.nebius.ai/v1",
	"cerebras":          "https://api.cerebras.ai/v1",
	"moonshot":          "https://api.moonshot.cn/v1",
	"gemini":            "https://generativelanguage.googleapis.com/v1beta/openai",
	"openai-compatible": "",
}

// SpeaksOpenAI reports whether ccmux serves p through OpenAI Chat
// Completions: an OpenAI-type provider with an API key. OAuth logins of
// those types (ChatGPT, Gemini OAuth) are not served.
func (p Provider) SpeaksOpenAI() bool {
	return isOpenAIType(strings.ToLower(p.ProviderType)) && !p.IsOAuth()
}

// Serves reports whether ccmux can forward requests to p at all.
func (p Provider) Serves() bool { return p.SpeaksAnthropic() || p.SpeaksOpenAI() }

// openaiUpstream checks an enabled OpenAI-type provider.
func (v *validator) openaiUpstream(key string, p Provider) {
	if p.IsOAuth() {
		v.warn("%s (%s): provider_type %q with auth_type = \"oauth\" is not supported by ccmux; it skips it (use an api_key)", key, p.Name, p.ProviderType)
		return
	}
	u := p.Upstream()
	if u == "" {
		v.fail(key+".base_url", "provider_type %q needs base_url: the server's Chat Completions base, such as http://localhost:11434/v1", p.ProviderType)
		return
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		v.fail(key+".base_url", "want an http:// or https:// URL, got %q", RedactURL(u))
		return
	}
	if pu.Scheme == "http" && !isLoopbackHost(pu.Hostname()) && !p.AllowInsecure {
		v.fail(key+".base_url", "%s sends the api_key and every prompt unencrypted to %s; use https://, a loopback address, or set allow_insecure = true", RedactURL(u), pu.Hostname())
	}
}

func isOpenAIType(typ string) bool {
	_, ok := openaiTypes[typ]
	return ok
}
