package history

import "ccmux/config"

// PricesDate is when DefaultPrices were taken from Anthropic's published
// list prices (https://docs.anthropic.com/en/docs/about-claude/pricing).
const PricesDate = "2025-11-24"

// Price is a model's API list price in US dollars per million tokens.
// CacheWrite is the 5-minute cache write (1.25 × input); answers do not
// say which cache duration was written, so the 1-hour writes (2 × input)
// are counted at this price too.
type Price struct {
	Input      float64 `json:"input"`
	Output     float64 `json:"output"`
	CacheWrite float64 `json:"cache_write"`
	CacheRead  float64 `json:"cache_read"`
}

// PriceRule prices the models whose names match Pattern (a glob as in
// config.MatchGlob: * and ?, case-insensitive).
type PriceRule struct {
	Pattern string
	Price   Price
}

// DefaultPrices are Anthropic's API list prices on PricesDate, first match
// wins. Sonnet's prompts over 200k tokens cost more; the totals use the
// base price. A model matched by none has no price.
var DefaultPrices = []PriceRule{
	{"claude-opus-4-5*", Price{Input: 5, Output: 25, CacheWrite: 6.25, CacheRead: 0.50}},
	{"claude-opus-4-1*", Price{Input: 15, Output: 75, CacheWrite: 18.75, CacheRead: 1.50}},
	{"claude-opus-4-0*", Price{Input: 15, Output: 75, CacheWrite: 18.75, CacheRead: 1.50}},
	{"claude-opus-4-2025*", Price{Input: 15, Output: 75, CacheWrite: 18.75, CacheRead: 1.50}},
	{"claude-sonnet-4*", Price{Input: 3, Output: 15, CacheWrite: 3.75, CacheRead: 0.30}},
	{"claude-haiku-4-5*", Price{Input: 1, Output: 5, CacheWrite: 1.25, CacheRead: 0.10}},
	{"claude-3-7-sonnet*", Price{Input: 3, Output: 15, CacheWrite: 3.75, CacheRead: 0.30}},
	{"claude-3-5-sonnet*", Price{Input: 3, Output: 15, CacheWrite: 3.75, CacheRead: 0.30}},
	{"claude-3-5-haiku*", Price{Input: 0.80, Output: 4, CacheWrite: 1, CacheRead: 0.08}},
	{"claude-3-opus*", Price{Input: 15, Output: 75, CacheWrite: 18.75, CacheRead: 1.50}},
	{"claude-3-haiku*", Price{Input: 0.25, Output: 1.25, CacheWrite: 0.30, CacheRead: 0.03}},
}

// PriceOf finds model's price: the first of overrides that matches, then
// the first of DefaultPrices. ok is false when no rule matches;
// fromOverride tells which list priced it.
func PriceOf(model string, overrides []PriceRule) (p Price, fromOverride, ok bool) {
	for i, rules := range [][]PriceRule{overrides, DefaultPrices} {
		for _, r := range rules {
			if config.MatchGlob(r.Pattern, model) {
				return r.Price, i == 0, true
			}
		}
	}
	return Price{}, false, false
}

// Cost is d's cost at p, in US dollars.
func (p Price) Cost(d DayModel) float64 {
	return (float64(d.Input)*p.Input + float64(d.Output)*p.Output +
		float64(d.CacheWrite)*p.CacheWrite + float64(d.CacheRead)*p.CacheRead) / 1e6
}
