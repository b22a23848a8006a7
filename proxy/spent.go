package proxy

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"ccmux/auth"
)

// ProviderUsage is one Claude subscription provider in GET /api/usage.
type ProviderUsage struct {
	Provider     string             `json:"provider"`
	Login        string             `json:"login"`
	UpdatedAt    *time.Time         `json:"updated_at"` // nil until a number came
	Source       string             `json:"source"`
	LimitedUntil *time.Time         `json:"limited_until"`
	Windows      []auth.UsageWindow `json:"windows"`
}

// spentUntil reports whether login (a candidate's subscription login, ""
// for any other provider) is spent, so the forward loop skips it without
// sending anything.
func (s *Server) spentUntil(login string) (time.Time, bool) {
	if s.Usage == nil || login == "" {
		return time.Time{}, false
	}
	return s.Usage.SpentUntil(login)
}

// noteUsage reads a subscription's answer for its usage numbers. A 429 that
// marks it spent gets retry-after set to the seconds until the reset, which
// is what the client sees if no other candidate answers.
func (s *Server) noteUsage(login string, resp *http.Response) {
	if s.Usage == nil || login == "" {
		return
	}
	if until, spent := s.Usage.ObserveAnswer(login, resp.StatusCode, resp.Header); spent {
		resp.Header.Set("Retry-After", retryAfter(until, s.Usage.now()))
	}
	s.sampleUsage(login)
}

// spentSkip remembers the earliest reset among the candidates skipped as spent.
type spentSkip struct {
	provider string
	until    time.Time
}

func (k *spentSkip) add(provider string, until time.Time) {
	if k.until.IsZero() || until.Before(k.until) {
		k.provider, k.until = provider, until
	}
}

// retryAfter is the whole seconds from now until t, at least 1.
func retryAfter(t, now time.Time) string {
	return strconv.Itoa(max(1, int(math.Ceil(t.Sub(now).Seconds()))))
}

// writeLimitReached answers a request whose every candidate is a spent
// subscription: 429 with retry-after set to the seconds until the first reset.
func (s *Server) writeLimitReached(w http.ResponseWriter, k spentSkip) {
	w.Header().Set("Retry-After", retryAfter(k.until, s.Usage.now()))
	writeError(w, http.StatusTooManyRequests, "rate_limit_error",
		fmt.Sprintf("%s: the Claude subscription's usage limit is reached until %s; ccmux sends it nothing until then (add an API-key provider after it to keep working)",
			k.provider, k.until.UTC().Format(time.RFC3339)))
}

// UsageReport lists every Claude subscription provider with what is known
// of its limits, in config order: the body of GET /api/usage.
func (s *Server) UsageReport() []ProviderUsage {
	out := []ProviderUsage{}
	cfg := s.CurrentConfig()
	for i, p := range cfg.Providers {
		login := cfg.SubscriptionLogin(i)
		if login == "" || !p.IsEnabled() {
			continue
		}
		pu := ProviderUsage{Provider: p.Name, Login: login, Windows: []auth.UsageWindow{}}
		if s.Usage != nil {
			if u, ok := s.Usage.Login(login); ok {
				pu.UpdatedAt, pu.Source, pu.LimitedUntil, pu.Windows = &u.UpdatedAt, u.Source, u.LimitedUntil, u.Windows
			}
		}
		out = append(out, pu)
	}
	return out
}

// Fallback names the provider that serves router.default while login's
// subscription is spent, or "" when no other provider would.
func (s *Server) Fallback(login string) string {
	cfg, rt, ok := s.defaultRoute()
	if !ok {
		return ""
	}
	for _, c := range rt.Candidates {
		l := cfg.SubscriptionLogin(c.Index)
		if l == login {
			continue
		}
		if _, spent := s.spentUntil(l); !spent {
			return c.Provider
		}
	}
	return ""
}

// usageAPI serves GET /api/usage.
func (h *handler) usageAPI(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodGet) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": h.s.UsageReport()})
}
