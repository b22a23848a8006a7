package proxy

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"ccmux/config"
)

// Router answers one question: which upstreams does a request go to, and in
// what order. It applies the rules and the resolution steps of DESIGN.md
// ("Routing") to a config; it is safe for concurrent use.
type Router struct {
	cfg        *config.Config
	background *regexp.Regexp // nil when router.background is unset
	autoMap    *regexp.Regexp // nil when router.auto_map_regex is unset
	// quoted caches the JSON form of configured model names; read-only after NewRouter.
	quoted map[string][]byte
	// resolved caches resolution by name (routing is a pure function of
	// the config), bounded so that arbitrary client model names cannot grow it.
	resolved sync.Map // string → resolution
	cached   atomic.Int32
}

// resolution is the cached outcome of resolving one name.
type resolution struct {
	model, rule string
	candidates  []Candidate // shared: never modified
}

// maxResolved bounds the resolution cache.
const maxResolved = 1024

// RouteRequest is what routing knows about a request.
type RouteRequest struct {
	Model           string // the model the client asked for
	Thinking        bool   // thinking.type is "enabled" or "adaptive"
	WebSearch       bool   // a tool's type starts with "web_search"
	Subagent        string // the model a <CCM-SUBAGENT-MODEL> tag names (subagent.go)
	EstimatedTokens int    // see estimateTokens
}

// Route is the routing decision for one request.
type Route struct {
	// Model is the requested name after the rules; Rule names the rule that
	// replaced it ("" when none did).
	Model string
	Rule  string
	// Candidates are tried in order.
	Candidates []Candidate
	// Subagent reports that a <CCM-SUBAGENT-MODEL> tag chose the model, so
	// its tags are removed from the body (even when the name it gave fell
	// back to router.default).
	Subagent bool
}

// Candidate is one upstream attempt: a provider and the model name it gets.
type Candidate struct {
	Provider string // providers[Index].name
	Index    int    // index in Config.Providers
	Model    string // sent upstream in place of the client's model
	quoted   []byte // Model as a JSON string
}

// RouteError is returned when no provider serves the requested model.
type RouteError struct{ Model string }

func (e *RouteError) Error() string {
	return fmt.Sprintf("model %q is not configured: no [[models]] entry or provider models pattern matches it and router.default does not resolve", e.Model)
}

// NewRouter compiles cfg's routing rules. The config must not change while
// the Router is in use.
func NewRouter(cfg *config.Config) (*Router, error) {
	r := &Router{cfg: cfg, quoted: map[string][]byte{}}
	var err error
	if cfg.Router.Background != "" && cfg.Router.BackgroundRegex != "" {
		if r.background, err = regexp.Compile(cfg.Router.BackgroundRegex); err != nil {
			return nil, fmt.Errorf("router.background_regex: %w", err)
		}
	}
	if cfg.Router.AutoMapRegex != "" {
		if r.autoMap, err = regexp.Compile(cfg.Router.AutoMapRegex); err != nil {
			return nil, fmt.Errorf("router.auto_map_regex: %w", err)
		}
	}
	// Quote every name a candidate can carry now, so routing never allocates for it.
	for _, m := range cfg.Models {
		for _, mp := range m.Mappings {
			r.quoted[mp.ActualModel] = quoteJSON(mp.ActualModel)
		}
	}
	return r, nil
}

// Route applies the rules, then resolves the resulting name to candidates:
// a [[models]] entry's mappings by priority, else every enabled provider
// whose models patterns match (model unchanged), else router.default once.
// It returns a *RouteError when nothing serves the model.
func (r *Router) Route(req RouteRequest) (Route, error) {
	model, rule := r.applyRules(req)
	res := r.resolveWithDefault(model)
	if res.rule == "" {
		res.rule = rule
	}
	rt := Route{Model: res.model, Rule: res.rule, Candidates: res.candidates, Subagent: rule == "subagent"}
	if len(rt.Candidates) == 0 {
		return rt, &RouteError{Model: model}
	}
	return rt, nil
}

// resolveWithDefault is resolution step 2 with the router.default fallback, cached.
func (r *Router) resolveWithDefault(model string) resolution {
	if v, ok := r.resolved.Load(model); ok {
		return v.(resolution)
	}
	res := resolution{model: model, candidates: r.resolve(model)}
	if len(res.candidates) == 0 && r.cfg.Router.Default != "" && !strings.EqualFold(model, r.cfg.Router.Default) {
		if c := r.resolve(r.cfg.Router.Default); len(c) > 0 {
			res = resolution{model: r.cfg.Router.Default, rule: "default", candidates: c}
		}
	}
	// Only names a request may carry are cached, so the cache is bounded in
	// bytes as well as in entries.
	if len(model) <= maxModelName && r.cached.Load() < maxResolved {
		r.cached.Add(1)
		r.resolved.Store(model, res)
	}
	return res
}

// applyRules returns the model name after the first rule that applies, in
// DESIGN.md's order: websearch, subagent (claude-code-mux's place for it),
// think, long_context, background, auto_map.
func (r *Router) applyRules(req RouteRequest) (model, rule string) {
	rc := r.cfg.Router
	switch {
	case rc.WebSearch != "" && req.WebSearch:
		return rc.WebSearch, "websearch"
	case req.Subagent != "":
		return req.Subagent, "subagent"
	case rc.Think != "" && req.Thinking && !r.thinkExempt(req.Model):
		return rc.Think, "think"
	case rc.LongContext != "" && req.EstimatedTokens > rc.LongContextThreshold:
		return rc.LongContext, "long_context"
	case r.background != nil && r.background.MatchString(req.Model):
		return rc.Background, "background"
	case r.autoMap != nil && rc.Default != "" && r.autoMap.MatchString(req.Model):
		return rc.Default, "auto_map"
	}
	return req.Model, ""
}

func (r *Router) thinkExempt(model string) bool {
	for _, g := range r.cfg.Router.ThinkExemptModels {
		if config.MatchGlob(g, model) {
			return true
		}
	}
	return false
}

// usable reports whether provider i can take requests at all.
func (r *Router) usable(i int) bool {
	p := r.cfg.Providers[i]
	return p.IsEnabled() && p.Serves()
}

func (r *Router) providerIndex(name string) int {
	for i, p := range r.cfg.Providers {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// resolve is resolution step 2 for one name.
func (r *Router) resolve(model string) []Candidate {
	if m, ok := r.cfg.Model(model); ok {
		maps := m.ByPriority()
		out := make([]Candidate, 0, len(maps))
		for _, mp := range maps {
			i := r.providerIndex(mp.Provider)
			if i < 0 || !r.usable(i) {
				continue
			}
			out = append(out, r.candidate(i, mp.ActualModel))
		}
		if len(out) > 0 {
			return out
		}
	}
	var out []Candidate
	for i, p := range r.cfg.Providers {
		if !r.usable(i) {
			continue
		}
		for _, g := range p.Models {
			if config.MatchGlob(g, model) {
				out = append(out, r.candidate(i, model))
				break
			}
		}
	}
	return out
}

func (r *Router) candidate(i int, model string) Candidate {
	q, ok := r.quoted[model]
	if !ok {
		q = quoteJSON(model) // a client-chosen name; the map is read-only after NewRouter
	}
	return Candidate{Provider: r.cfg.Providers[i].Name, Index: i, Model: model, quoted: q}
}

// Pin restricts rt to the provider named name (the X-Provider debugging
// header). A provider that is among the candidates keeps its model names;
// any other enabled, Anthropic-speaking provider gets the routed name.
func (r *Router) Pin(rt Route, name string) (Route, error) {
	var pinned []Candidate
	for _, c := range rt.Candidates {
		if c.Provider == name {
			pinned = append(pinned, c)
		}
	}
	if len(pinned) == 0 {
		i := r.providerIndex(name)
		switch {
		case i < 0:
			return rt, fmt.Errorf("X-Provider names %q, which is not a provider in the config", name)
		case !r.usable(i):
			return rt, fmt.Errorf("X-Provider names %q, which is disabled or of a provider_type ccmux does not serve", name)
		}
		pinned = []Candidate{r.candidate(i, rt.Model)}
	}
	rt.Candidates = pinned
	return rt, nil
}
