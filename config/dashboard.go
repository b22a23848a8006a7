package config

import (
	"cmp"
	"fmt"
	"slices"
)

// DefaultRetentionDays is [dashboard] retention_days' default.
const DefaultRetentionDays = 30

// maxRetentionDays bounds retention_days (ten years).
const maxRetentionDays = 3650

// Dashboard is the [dashboard] table: the request history the dashboard
// at the proxy's address shows.
type Dashboard struct {
	// RetentionDays is how long request metadata and usage samples are
	// kept in ccmux.db; 0 (absent) means DefaultRetentionDays.
	RetentionDays int `toml:"retention_days"`
	// Prices overrides or adds API list prices, per model glob
	// ([dashboard.prices."claude-opus-4-6*"]), in US dollars per million tokens.
	Prices map[string]Price `toml:"prices"`
}

// Price is one [dashboard.prices."GLOB"] table.
type Price struct {
	Input      float64 `toml:"input"`
	Output     float64 `toml:"output"`
	CacheWrite float64 `toml:"cache_write"`
	CacheRead  float64 `toml:"cache_read"`
}

// Retention is the days of history to keep.
func (d Dashboard) Retention() int {
	if d.RetentionDays <= 0 {
		return DefaultRetentionDays
	}
	return d.RetentionDays
}

// PricePatterns lists the price overrides' globs, the most specific (the
// longest) first: the order they are tried in.
func (d Dashboard) PricePatterns() []string {
	out := make([]string, 0, len(d.Prices))
	for p := range d.Prices {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), cmp.Compare(a, b))
	})
	return out
}

// dashboard checks the [dashboard] table.
func (v *validator) dashboard() {
	d := v.cfg.Dashboard
	if d.RetentionDays < 0 || d.RetentionDays > maxRetentionDays {
		v.fail("dashboard.retention_days", "want a number of days from 1 to %d, got %d", maxRetentionDays, d.RetentionDays)
	}
	for _, pat := range d.PricePatterns() {
		key := fmt.Sprintf("dashboard.prices.%q", pat)
		if pat == "" {
			v.fail(key, "name a model or a glob such as \"claude-opus-4-6*\"")
		}
		p := d.Prices[pat]
		for _, f := range []struct {
			name string
			v    float64
		}{{"input", p.Input}, {"output", p.Output}, {"cache_write", p.CacheWrite}, {"cache_read", p.CacheRead}} {
			if f.v < 0 || f.v != f.v {
				v.fail(key+"."+f.name, "want a price in US dollars per million tokens (0 or more), got %v", f.v)
			}
		}
	}
}
