package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDashboardTable(t *testing.T) {
	cfg, err := Parse("test.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dashboard.Retention() != DefaultRetentionDays {
		t.Errorf("default retention = %d", cfg.Dashboard.Retention())
	}
	cfg, err = Parse("test.toml", []byte(base+"[dashboard]\nretention_days = 7\n[dashboard.prices.\"glm-*\"]\ninput = 0.6\noutput = 2.2\n[dashboard.prices.\"glm-4.6*\"]\ninput = 0.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dashboard.Retention() != 7 || cfg.Dashboard.Prices["glm-*"].Output != 2.2 {
		t.Errorf("dashboard = %+v", cfg.Dashboard)
	}
	if got := cfg.Dashboard.PricePatterns(); !slices.Equal(got, []string{"glm-4.6*", "glm-*"}) {
		t.Errorf("patterns in match order = %q", got)
	}

	for _, tt := range []struct{ toml, key, msg string }{
		{"[dashboard]\nretention_days = 0\n", "dashboard.retention_days", "leave it out for the default 30"},
		{"[dashboard]\nretention_days = -1\n", "dashboard.retention_days", "want a number of days from 1 to 3650, got -1"},
		{"[dashboard]\nretention = 7\n", "dashboard.retention", `unknown key "retention"`},
		{"[dashboard.prices.\"x*\"]\ninput = -1.0\n", `dashboard.prices."x*".input`, "0 or more"},
		{"[dashboard.prices.\"x*\"]\ninptu = 1.0\n", "", `unknown key "inptu"`},
		{"[dashboard]\nretention_days = \"30\"\n", "dashboard.retention_days", "want an integer"},
	} {
		_, err := Parse("test.toml", []byte(base+tt.toml))
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Errorf("%q: got %v, want a *config.Error", tt.toml, err)
			continue
		}
		found := false
		for _, p := range cerr.Problems {
			if (tt.key == "" || p.Key == tt.key) && strings.Contains(p.Msg, tt.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: no problem {key %q, msg ~%q} in:\n%v", tt.toml, tt.key, tt.msg, err)
		}
	}
}
