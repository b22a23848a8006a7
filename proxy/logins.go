package proxy

import (
	"slices"

	"ccmux/config"
)

// defaultRoute is how the running config (before Start: Config) routes
// router.default, with that config; false when it routes nowhere.
func (s *Server) defaultRoute() (*config.Config, Route, bool) {
	var cfg *config.Config
	var r *Router
	if st := s.cur.Load(); st != nil { // the running config's router
		cfg, r = st.cfg, st.router
	} else { // not started yet
		cfg = s.Config
		var err error
		if r, err = NewRouter(cfg); err != nil {
			return cfg, Route{}, false
		}
	}
	rt, err := r.Route(RouteRequest{Model: cfg.Router.Default})
	return cfg, rt, err == nil
}

// DefaultLogin is the Claude login (token-store id) of the first candidate
// for router.default that is a Claude OAuth provider: the login the default
// model is sent with while it is not spent. "" when no such candidate is.
func (s *Server) DefaultLogin() string {
	cfg, rt, ok := s.defaultRoute()
	if !ok {
		return ""
	}
	ids := cfg.ClaudeOAuthIDs()
	for _, c := range rt.Candidates {
		if p := cfg.Providers[c.Index]; p.IsOAuth() && slices.Contains(ids, p.OAuthProvider) {
			return p.OAuthProvider
		}
	}
	return ""
}
