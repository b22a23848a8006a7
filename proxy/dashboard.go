package proxy

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"ccmux/assets"
	"ccmux/auth"
	"ccmux/internal/history"
)

// Dashboard is what the dashboard page needs from the program around the
// proxy; a nil field turns its feature off.
type Dashboard struct {
	// SignIn starts the browser login of a Claude login (PKCE with a
	// loopback redirect, as the tray's Sign in) and returns at once.
	SignIn func(providerID string) error
}

// ReloadResult is the last config reload, as the dashboard shows it.
type ReloadResult struct {
	Time    time.Time `json:"time"`
	Summary string    `json:"summary,omitempty"` // what changed
	Error   string    `json:"error,omitempty"`   // why the file was not applied
}

// NoteReload records the result of a config reload for the dashboard.
func (s *Server) NoteReload(summary string, err error) {
	r := &ReloadResult{Time: time.Now().UTC(), Summary: summary}
	if err != nil {
		r.Error = err.Error()
	}
	s.lastReload.Store(r)
}

// csrfHeader carries the dashboard's per-process token on every POST it
// makes; the token is only in the page's HTML, which another origin cannot
// read.
const csrfHeader = "X-Ccmux-Csrf"

var (
	csrfOnce  sync.Once
	csrfToken string
)

// csrf is this process's dashboard token.
func csrf() string {
	csrfOnce.Do(func() {
		b := make([]byte, 32)
		rand.Read(b)
		csrfToken = hex.EncodeToString(b)
	})
	return csrfToken
}

// validCSRF reports whether r carries this process's dashboard token.
func validCSRF(r *http.Request) bool {
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(csrf())) == 1
}

// pageSecurity is set on every dashboard answer: no script but the page's
// own files, no framing, no content sniffing, and no Referer leaving.
func pageSecurity(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// ownOrigin reports whether origin is the proxy's own (the dashboard
// page's POSTs carry it): the Host the request was sent to, already
// checked to be a loopback name or server.host.
func ownOrigin(r *http.Request, origin string) bool {
	return r.TLS == nil && strings.EqualFold(origin, "http://"+r.Host)
}

// sameOrigin refuses requests a browser says another page sent: a page on
// another port of this machine is "same-site", not "same-origin".
func sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
		return true
	}
	writeError(w, http.StatusForbidden, "permission_error", "the dashboard answers only its own page (Sec-Fetch-Site: same-origin) or a typed address")
	return false
}

// webFiles is assets/web, the dashboard's page, script, style and uPlot.
var webFiles, _ = fs.Sub(assets.Web, "web")

// page serves GET / and the page's files under /web/.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	if !loopbackPeer(r.RemoteAddr) || !sameOrigin(w, r) {
		if !loopbackPeer(r.RemoteAddr) {
			writeError(w, http.StatusForbidden, "permission_error", "the dashboard answers only this machine (a loopback address)")
		}
		return
	}
	if r.URL.Path == "/" {
		if code, ok := r.URL.Query()["code"]; ok {
			h.openWithCode(w, r, code[0])
			return
		}
		if !h.dashSession(r) {
			h.dashLocked(w, r, "Open the dashboard from the tray or with ccmux dashboard.")
			return
		}
	}
	name := "index.html"
	if r.URL.Path != "/" {
		name = strings.TrimPrefix(r.URL.Path, "/web/")
	}
	data, err := fs.ReadFile(webFiles, name)
	if err != nil || strings.HasPrefix(name, ".") || name != path.Clean(name) {
		writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no file %s", clip(r.URL.Path)))
		return
	}
	if name == "index.html" {
		data = bytes.Replace(data, []byte("{{csrf}}"), []byte(csrf()), 1)
	}
	hdr := w.Header()
	pageSecurity(hdr)
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "text/plain; charset=utf-8"
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(data)
	}
}

// pageEndpoint reports whether path is one the dashboard page calls, which
// its session opens when server.api_key is set; the OAuth admin endpoints
// (list, sign in by code, refresh, delete) still need the key.
func pageEndpoint(path string) bool {
	switch path {
	case "/api/requests", "/api/stats", "/api/usage/history", "/api/dashboard", "/api/dashboard/signin", "/api/dashboard/signout":
		return true
	}
	return false
}

// dashboardAPI serves the history and dashboard endpoints; it reports
// false for any other path. The admin gates (loopback peer, JSON POSTs)
// have run; the page's POSTs also need the CSRF token.
func (h *handler) dashboardAPI(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case "/api/requests":
		if method(w, r, http.MethodGet) {
			h.requestsAPI(w, r)
		}
	case "/api/stats":
		if method(w, r, http.MethodGet) {
			h.statsAPI(w, r)
		}
	case "/api/usage/history":
		if method(w, r, http.MethodGet) {
			h.usageHistoryAPI(w, r)
		}
	case "/api/dashboard/session":
		h.sessionAPI(w, r)
	case "/api/dashboard":
		if method(w, r, http.MethodGet) && sameOrigin(w, r) {
			h.dashboardState(w)
		}
	case "/api/dashboard/signin", "/api/dashboard/signout":
		if !method(w, r, http.MethodPost) || !sameOrigin(w, r) {
			return true
		}
		if !validCSRF(r) {
			writeError(w, http.StatusForbidden, "permission_error", "the dashboard's actions need its page's token ("+csrfHeader+"); reload the page")
			return true
		}
		id, ok := decodeProviderID(w, r)
		if !ok {
			return true
		}
		h.dashboardAction(w, r, id)
	default:
		return false
	}
	return true
}

// dashboardAction signs a Claude login in or out.
func (h *handler) dashboardAction(w http.ResponseWriter, r *http.Request, id string) {
	if !h.isClaudeLogin(id) {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("%q is not a Claude login of this config", clip(id)))
		return
	}
	if strings.HasSuffix(r.URL.Path, "/signout") {
		if err := h.s.Admin.Delete(id); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("signing out of %s: %v", id, err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "provider_id": id})
		return
	}
	d := h.s.Dashboard
	if d == nil || d.SignIn == nil {
		writeError(w, http.StatusNotImplemented, "api_error", "this ccmux signs in from the tray or `ccmux login` only")
		return
	}
	if err := d.SignIn(id); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("signing in to %s: %v", id, err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"started": true, "provider_id": id,
		"message": "finish signing in in the browser tab that opened"})
}

// isClaudeLogin reports whether id is the oauth_provider of one of the config's providers.
func (h *handler) isClaudeLogin(id string) bool {
	for _, p := range h.st.cfg.Providers {
		if p.IsOAuth() && p.OAuthProvider == id {
			return true
		}
	}
	return false
}

// queryInt reads a positive integer query parameter, or def when absent.
func queryInt(w http.ResponseWriter, r *http.Request, name string, def, maxV int64) (int64, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > maxV {
		writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("%s: want a whole number from 1 to %d, got %q", name, maxV, clip(v)))
		return 0, false
	}
	return n, true
}

// historyOff answers when the proxy runs without a history database.
func (h *handler) historyOff(w http.ResponseWriter) bool {
	if h.s.History != nil {
		return false
	}
	writeError(w, http.StatusServiceUnavailable, "api_error", "ccmux runs without request history (the database could not be opened; the log says why)")
	return true
}

// requestsAPI serves GET /api/requests?limit=N&before=ID.
func (h *handler) requestsAPI(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit", 50, history.MaxPage)
	if !ok {
		return
	}
	before, ok := queryInt(w, r, "before", 1<<62, 1<<62)
	if !ok || h.historyOff(w) {
		return
	}
	list, err := h.s.History.Requests(r.Context(), int(limit), before)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "api_error", "reading the request history: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": list})
}

// statRow is one day and model in GET /api/stats.
type statRow struct {
	history.DayModel
	// APICostUSD is the cost at API list prices; nil when the model has
	// no price (never 0 for an unknown model).
	APICostUSD *float64 `json:"api_cost_usd"`
	Price      string   `json:"price"` // "list", "config" or "no price"
}

// statsAPI serves GET /api/stats?days=N.
func (h *handler) statsAPI(w http.ResponseWriter, r *http.Request) {
	days, ok := queryInt(w, r, "days", 30, 3650)
	if !ok || h.historyOff(w) {
		return
	}
	rows, err := h.s.History.Stats(r.Context(), int(days))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "api_error", "reading the request history: "+err.Error())
		return
	}
	overrides := h.priceOverrides()
	out := make([]statRow, len(rows))
	total, unpriced := 0.0, 0
	for i, d := range rows {
		out[i] = statRow{DayModel: d, Price: "no price"}
		if p, own, ok := history.PriceOf(d.Model, overrides); ok {
			c := p.Cost(d)
			out[i].APICostUSD = &c
			total += c
			out[i].Price = "list"
			if own {
				out[i].Price = "config"
			}
		} else {
			unpriced++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"days": days, "stats": out, "total_api_cost_usd": total, "unpriced_rows": unpriced,
		"prices_date": history.PricesDate, "dropped_records": h.s.History.Dropped(),
	})
}

// priceOverrides are the config's [dashboard.prices], most specific first.
func (h *handler) priceOverrides() []history.PriceRule {
	d := h.st.cfg.Dashboard
	out := make([]history.PriceRule, 0, len(d.Prices))
	for _, pat := range d.PricePatterns() {
		p := d.Prices[pat]
		out = append(out, history.PriceRule{Pattern: pat, Price: history.Price{Input: p.Input, Output: p.Output, CacheWrite: p.CacheWrite, CacheRead: p.CacheRead}})
	}
	return out
}

// usageHistoryAPI serves GET /api/usage/history?days=N (default 7).
func (h *handler) usageHistoryAPI(w http.ResponseWriter, r *http.Request) {
	days, ok := queryInt(w, r, "days", 7, 3650)
	if !ok || h.historyOff(w) {
		return
	}
	series, err := h.s.History.Usage(r.Context(), time.Now().Add(-time.Duration(days)*24*time.Hour))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "api_error", "reading the usage history: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"days": days, "series": series})
}

// loginState is one provider of the config as the dashboard shows it.
type loginState struct {
	Provider string `json:"provider"`
	// Kind is "subscription" (a Claude Pro/Max login), "console" (a
	// Claude Console login that made an API key) or "api_key".
	Kind         string             `json:"kind"`
	Login        string             `json:"login,omitempty"` // token-store id
	Enabled      bool               `json:"enabled"`
	SignedIn     bool               `json:"signed_in"`
	Email        string             `json:"email,omitempty"`
	ExpiresAt    *time.Time         `json:"expires_at,omitempty"`
	Expired      bool               `json:"expired"`
	LimitedUntil *time.Time         `json:"limited_until"`
	UpdatedAt    *time.Time         `json:"usage_updated_at,omitempty"`
	Windows      []auth.UsageWindow `json:"windows"`
	Problem      string             `json:"problem,omitempty"` // e.g. the API key's variable is unset
}

// dashboardState serves GET /api/dashboard: the proxy, the config file,
// the last reload and every provider's login and usage.
func (h *handler) dashboardState(w http.ResponseWriter) {
	cfg := h.st.cfg
	accounts := map[string]auth.Account{}
	var tokensErr string
	if infos, err := h.s.Admin.Tokens(); err == nil {
		for _, a := range infos {
			accounts[a.ProviderID] = a
		}
	} else {
		tokensErr = err.Error()
	}
	usage := map[string]ProviderUsage{}
	for _, u := range h.s.UsageReport() {
		usage[u.Provider] = u
	}
	now := time.Now()
	logins := []loginState{}
	for i, p := range cfg.Providers {
		l := loginState{Provider: p.Name, Kind: "api_key", Enabled: p.IsEnabled(), Windows: []auth.UsageWindow{}}
		if p.IsOAuth() {
			l.Kind, l.Login = "console", p.OAuthProvider
			if cfg.SubscriptionLogin(i) != "" {
				l.Kind = "subscription"
			}
			if a, ok := accounts[p.OAuthProvider]; ok {
				l.SignedIn, l.Email, l.Expired = a.Usable(now), a.Email, a.Expired(now)
				if !a.APIKey && !a.ExpiresAt.IsZero() {
					t := a.ExpiresAt.UTC()
					l.ExpiresAt = &t
				}
			}
			if u, ok := usage[p.Name]; ok {
				l.LimitedUntil, l.UpdatedAt, l.Windows = u.LimitedUntil, u.UpdatedAt, u.Windows
			}
		} else if _, err := cfg.ProviderAPIKey(i); err != nil {
			l.Problem = err.Error()
		} else {
			l.SignedIn = true
		}
		logins = append(logins, l)
	}
	// While it runs, the bound address: the config's port may be 0.
	baseURL := cfg.BaseURL()
	if h.s.Running() {
		baseURL = boundBaseURL(h.s.Addr())
	}
	state := map[string]any{
		"version":       h.s.Version,
		"running":       h.s.Running(),
		"address":       h.s.Addr(),
		"base_url":      baseURL,
		"config_path":   homeShort(cfg.Path),
		"last_reload":   h.s.lastReload.Load(),
		"logins":        logins,
		"can_sign_in":   h.s.Dashboard != nil && h.s.Dashboard.SignIn != nil,
		"history":       h.s.History != nil,
		"history_path":  homeShort(h.s.History.Path()),
		"dropped":       h.s.History.Dropped(),
		"prices_date":   history.PricesDate,
		"token_problem": tokensErr,
	}
	writeJSON(w, http.StatusOK, state)
}

// boundBaseURL is the URL clients reach the proxy at when it listens on
// addr (host:port as bound): a wildcard host becomes the loopback address.
func boundBaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// homeShort writes a path under the home directory as ~/… for the page.
func homeShort(p string) string {
	home, err := os.UserHomeDir()
	if p == "" || err != nil || home == "" {
		return p
	}
	if rel, err := filepath.Rel(home, p); err == nil && filepath.IsAbs(p) && rel != "." && !strings.HasPrefix(rel, "..") {
		return "~" + string(filepath.Separator) + rel
	}
	return p
}
