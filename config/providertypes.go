package config

import (
	"slices"
	"strings"
)

// skippedTypes are the provider_types claude-code-mux serves (v0.6.3,
// src/providers/registry.rs) that ccmux does not: a file naming one loads,
// with a warning, and ccmux routes nothing to that provider. A type ccmux
// learns to serve moves from here to a table of served types
// (anthropicTypes, openaiTypes). Any type in none of them is a mistake.
var skippedTypes = []string{
	"vertex-ai",
}

// knownType reports whether ccmux or claude-code-mux has provider_type typ.
func knownType(typ string) bool {
	typ = strings.ToLower(typ)
	_, anthropic := anthropicTypes[typ]
	return anthropic || isOpenAIType(typ) || slices.Contains(skippedTypes, typ)
}

// suggestType returns the known provider_type closest to typ, when one is
// close enough to be a typo of it (at most 2 edits, fewer for short names),
// else "".
func suggestType(typ string) string {
	typ = strings.ToLower(typ)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range anthropicTypes {
			if !yield(n) {
				return
			}
		}
		for n := range openaiTypes {
			if !yield(n) {
				return
			}
		}
	})
	names = append(names, skippedTypes...)
	best, bestDist := "", min(2, len(typ)/3)+1
	for _, n := range names {
		if d := editDistance(typ, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// servedTypes lists the provider_types ccmux sends requests to, for a
// message.
func servedTypes() string {
	names := make([]string, 0, len(anthropicTypes)+len(openaiTypes))
	for n := range anthropicTypes {
		names = append(names, n)
	}
	for n := range openaiTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unknownType reports a provider_type that neither program knows, with the
// known one it is likely a typo of.
func (v *validator) unknownType(key, typ string) {
	if near := suggestType(typ); near != "" {
		v.fail(key+".provider_type", "unknown provider_type %q; did you mean %q?", typ, near)
		return
	}
	v.fail(key+".provider_type", "unknown provider_type %q; ccmux serves %s (claude-code-mux's other types load, skipped)", typ, servedTypes())
}

// modelsOf names a provider's models for a message.
func modelsOf(p Provider) string {
	if len(p.Models) == 0 {
		return "no models of its own"
	}
	return "models " + strings.Join(p.Models, " ")
}
