// Package configtest models how claude-code-mux reads a config.toml, so that
// the tests can check a file ccmux writes or documents also works there.
package configtest

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// ClaudeCodeMux is config.toml as claude-code-mux v0.6.3 reads it, for tests
// that check a file ccmux writes or documents works there too. It models
// what decides whether that program starts on a file (src/cli/mod.rs,
// src/providers/mod.rs and registry.rs: required keys, the auth_type enum,
// known provider types, "$VAR" keys) and where it sends a plain request
// (src/router/mod.rs, src/server/mod.rs). It is a model written from that
// source, not that program: keep it to what the tests need.
type ClaudeCodeMux struct {
	router    map[string]any
	providers []ccmProvider
	models    []ccmModel
}

type ccmProvider struct {
	name, providerType string
	models             []string
	// emptyURL: base_url = "" on a type that uses base_url, so requests
	// go to "/v1/messages" and fail.
	emptyURL bool
}

type ccmModel struct {
	name     string
	mappings []ccmMapping
}

type ccmMapping struct {
	priority             int64
	provider, actualName string
}

// ccmTypes are the provider_type values claude-code-mux's registry builds;
// any other value of an enabled provider stops it from starting.
var ccmTypes = map[string]bool{
	"openai": true, "anthropic": true, "z.ai": true, "minimax": true, "zenmux": true,
	"kimi-coding": true, "openrouter": true, "deepinfra": true, "novita": true,
	"baseten": true, "together": true, "fireworks": true, "groq": true, "nebius": true,
	"cerebras": true, "moonshot": true, "gemini": true, "vertex-ai": true,
}

// vendorURL are the types whose built-in URL claude-code-mux uses even when
// base_url is set.
var vendorURL = map[string]bool{"z.ai": true, "minimax": true, "zenmux": true, "kimi-coding": true}

// LoadClaudeCodeMux reads data as claude-code-mux would, with env as its
// environment, and returns the error that would stop it from starting.
func LoadClaudeCodeMux(data []byte, env map[string]string) (*ClaudeCodeMux, error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, fmt.Errorf("TOML: %w", err)
	}
	c := &ClaudeCodeMux{}
	router, ok := doc["router"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("missing field `router`")
	}
	if _, ok := router["default"].(string); !ok {
		return nil, fmt.Errorf("router: missing field `default`")
	}
	for _, k := range []string{"background", "think", "websearch", "auto_map_regex", "background_regex"} {
		if v, ok := router[k]; ok {
			if _, ok := v.(string); !ok {
				return nil, fmt.Errorf("router.%s: want a string", k)
			}
		}
	}
	c.router = router

	providers, _ := doc["providers"].([]map[string]any)
	for i, p := range providers {
		var cp ccmProvider
		var err error
		if cp.name, err = str(p, "name", true); err != nil {
			return nil, fmt.Errorf("providers[%d]: %w", i, err)
		}
		if cp.providerType, err = str(p, "provider_type", true); err != nil {
			return nil, fmt.Errorf("providers[%d]: %w", i, err)
		}
		models, ok := p["models"].([]any)
		if !ok {
			return nil, fmt.Errorf("providers[%d]: missing field `models`", i)
		}
		for _, m := range models {
			s, ok := m.(string)
			if !ok {
				return nil, fmt.Errorf("providers[%d].models: want strings", i)
			}
			cp.models = append(cp.models, s)
		}
		auth, err := str(p, "auth_type", false)
		if err != nil {
			return nil, fmt.Errorf("providers[%d]: %w", i, err)
		}
		if auth == "" {
			auth = "apikey"
		}
		if auth != "apikey" && auth != "oauth" {
			return nil, fmt.Errorf("providers[%d].auth_type: unknown variant `%s`, expected `apikey` or `oauth`", i, auth)
		}
		if e, present := p["enabled"]; present {
			enabled, ok := e.(bool)
			if !ok {
				return nil, fmt.Errorf("providers[%d].enabled: want a boolean", i)
			}
			if !enabled {
				continue // not built, not routed to
			}
		}
		key, err := str(p, "api_key", false)
		if err != nil {
			return nil, fmt.Errorf("providers[%d]: %w", i, err)
		}
		if name, ok := strings.CutPrefix(key, "$"); ok {
			if _, set := env[name]; !set {
				return nil, fmt.Errorf("Environment variable %s not found for provider %s", name, cp.name)
			}
		}
		if _, present := p["api_key"]; auth == "apikey" && !present {
			return nil, fmt.Errorf("Provider '%s' requires api_key for ApiKey auth", cp.name)
		}
		if !ccmTypes[cp.providerType] {
			return nil, fmt.Errorf("Unknown provider type: %s", cp.providerType)
		}
		if u, present := p["base_url"]; present && u == "" && !vendorURL[cp.providerType] {
			cp.emptyURL = true
		}
		c.providers = append(c.providers, cp)
	}

	models, _ := doc["models"].([]map[string]any)
	for i, m := range models {
		var cm ccmModel
		var err error
		if cm.name, err = str(m, "name", true); err != nil {
			return nil, fmt.Errorf("models[%d]: %w", i, err)
		}
		mappings, ok := m["mappings"].([]map[string]any)
		if !ok {
			return nil, fmt.Errorf("models[%d]: missing field `mappings`", i)
		}
		for j, mp := range mappings {
			var cmp ccmMapping
			prio, ok := mp["priority"].(int64)
			if !ok || prio < 0 {
				return nil, fmt.Errorf("models[%d].mappings[%d]: missing field `priority` (an unsigned integer)", i, j)
			}
			cmp.priority = prio
			if cmp.provider, err = str(mp, "provider", true); err != nil {
				return nil, fmt.Errorf("models[%d].mappings[%d]: %w", i, j, err)
			}
			if cmp.actualName, err = str(mp, "actual_model", true); err != nil {
				return nil, fmt.Errorf("models[%d].mappings[%d]: %w", i, j, err)
			}
			cm.mappings = append(cm.mappings, cmp)
		}
		c.models = append(c.models, cm)
	}
	return c, nil
}

func str(t map[string]any, key string, required bool) (string, error) {
	v, ok := t[key]
	if !ok {
		if required {
			return "", fmt.Errorf("missing field `%s`", key)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string", key)
	}
	return s, nil
}

// Route returns the provider and model name claude-code-mux sends a request
// for model to (thinking: the request enables extended thinking), or the
// error it answers. Like claude-code-mux it maps names matching
// auto_map_regex (default ^claude-) to router.default, then applies the
// think and background rules, then looks the name up exactly: [[models]]
// first (mappings by priority), then a provider's models list.
func (c *ClaudeCodeMux) Route(model string, thinking bool) (provider, actual string, err error) {
	rule := func(k string) (string, bool) { s, ok := c.router[k].(string); return s, ok }
	pattern := func(k, def string) *regexp.Regexp {
		if s, _ := rule(k); s != "" {
			if re, err := regexp.Compile(s); err == nil {
				return re
			}
		}
		return regexp.MustCompile(def)
	}
	original := model
	if pattern("auto_map_regex", "^claude-").MatchString(model) {
		model, _ = rule("default")
	}
	if think, ok := rule("think"); ok && thinking {
		model = think
	} else if bg, ok := rule("background"); ok && pattern("background_regex", "(?i)claude.*haiku").MatchString(original) {
		model = bg
	}
	built := map[string]bool{}
	for _, p := range c.providers {
		built[p.name] = true
	}
	sendTo := func(provider, actual string) (string, string, error) {
		for _, p := range c.providers {
			if p.name == provider && p.emptyURL {
				return "", "", fmt.Errorf("provider %s has base_url = \"\": its requests go to an empty URL", provider)
			}
		}
		return provider, actual, nil
	}
	for _, m := range c.models {
		if m.name != model {
			continue
		}
		maps := append([]ccmMapping(nil), m.mappings...)
		sort.SliceStable(maps, func(i, j int) bool { return maps[i].priority < maps[j].priority })
		for _, mp := range maps {
			if built[mp.provider] {
				return sendTo(mp.provider, mp.actualName)
			}
		}
		return "", "", fmt.Errorf("All %d provider mappings failed for model: %s", len(maps), model)
	}
	for _, p := range c.providers {
		for _, name := range p.models {
			if name == model {
				return sendTo(p.name, model)
			}
		}
	}
	return "", "", fmt.Errorf("No model mapping or provider found for model: %s", model)
}
