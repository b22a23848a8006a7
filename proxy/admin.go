package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"ccmux/auth"
)

// maxAdminBody bounds admin request bodies; they are a few short strings.
const maxAdminBody = 64 << 10

// admin serves the /api/oauth/* endpoints. GET /api/oauth/tokens and the
// POSTs to /api/oauth/tokens/delete and /api/oauth/tokens/refresh answer as
// claude-code-mux's do; authorize and exchange are ccmux's own. They answer
// loopback peers only, and POSTs must be application/json so that a web page
// cannot reach them with a simple (preflight-free) form post.
func (h *handler) admin(w http.ResponseWriter, r *http.Request) {
	if !loopbackPeer(r.RemoteAddr) {
		writeError(w, http.StatusForbidden, "permission_error", "the admin API answers only this machine (a loopback address)")
		return
	}
	if !ownPage(r) {
		// A page on another port of localhost is same-site: without an
		// allowed Origin (checked before) nothing vouches for it either.
		writeError(w, http.StatusForbidden, "permission_error",
			"browser requests from another site or port are not allowed on the admin API: add the page's origin to server.allowed_origins to let it call ccmux")
		return
	}
	if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, "invalid_request_error", "admin requests must have Content-Type: application/json")
		return
	}
	if h.dashboardAPI(w, r) {
		return
	}
	a := h.s.Admin
	switch path := r.URL.Path; {
	case path == "/api/usage":
		h.usageAPI(w, r)
	case path == "/api/oauth/authorize":
		if !method(w, r, http.MethodPost) {
			return
		}
		var req struct {
			ProviderID string `json:"provider_id"`
			Preset     string `json:"preset"`
		}
		if !decodeAdmin(w, r, &req) {
			return
		}
		if req.ProviderID == "" {
			req.ProviderID = h.st.cfg.DefaultOAuthProvider()
		}
		if req.Preset == "" {
			req.Preset = "claude"
		}
		url, state, err := a.Authorize(req.ProviderID, req.Preset)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("starting the login for %s: %v", req.ProviderID, err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"url": url, "state": state})
	case path == "/api/oauth/exchange":
		if !method(w, r, http.MethodPost) {
			return
		}
		var req struct {
			ProviderID string `json:"provider_id"`
			Code       string `json:"code"`
			State      string `json:"state"`
		}
		if !decodeAdmin(w, r, &req) {
			return
		}
		if req.ProviderID == "" {
			req.ProviderID = h.st.cfg.DefaultOAuthProvider()
		}
		if code, state, ok := strings.Cut(req.Code, "#"); ok && req.State == "" {
			req.Code, req.State = code, state
		}
		if req.Code == "" {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "exchange needs code (the pasted code#state)")
			return
		}
		if err := a.Exchange(r.Context(), req.ProviderID, req.Code, req.State); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("completing the login for %s: %v", req.ProviderID, err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "provider_id": req.ProviderID})
	case path == "/api/oauth/tokens":
		if !method(w, r, http.MethodGet) {
			return
		}
		infos, err := a.Tokens()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "api_error", fmt.Sprintf("reading the token store: %v", err))
			return
		}
		now := time.Now()
		list := make([]tokenJSON, len(infos))
		for i, t := range infos {
			list[i] = newTokenJSON(t, now)
		}
		writeJSON(w, http.StatusOK, list)
	case path == "/api/oauth/tokens/delete" && r.Method == http.MethodPost:
		id, ok := decodeProviderID(w, r)
		if !ok {
			return
		}
		if err := a.Delete(id); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("signing out of %s: %v", id, err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": fmt.Sprintf("Token for '%s' deleted", id), "provider_id": id})
	case path == "/api/oauth/tokens/refresh" && r.Method == http.MethodPost:
		id, ok := decodeProviderID(w, r)
		if !ok {
			return
		}
		info, err := a.Refresh(r.Context(), id)
		if err != nil {
			writeError(w, http.StatusBadGateway, "api_error", fmt.Sprintf("refreshing the token of %s: %v", id, err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "message": "Token refreshed successfully",
			"provider_id": id, "expires_at": info.ExpiresAt.UTC().Format(time.RFC3339)})
	case strings.HasPrefix(path, "/api/oauth/tokens/"):
		if !method(w, r, http.MethodDelete) {
			return
		}
		id := strings.TrimPrefix(path, "/api/oauth/tokens/")
		if id == "" || strings.Contains(id, "/") {
			writeError(w, http.StatusNotFound, "not_found_error", "name one provider: DELETE /api/oauth/tokens/{provider}")
			return
		}
		if err := a.Delete(id); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("signing out of %s: %v", id, err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "provider_id": id})
	default:
		writeError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no endpoint %s %s", r.Method, path))
	}
}

// tokenJSON is one login in GET /api/oauth/tokens: the fields
// claude-code-mux answers and its web UI reads (provider_id, expires_at,
// is_expired, needs_refresh; the answer is a bare array, as there) and
// ccmux's email and kind. Never a token value.
type tokenJSON struct {
	ProviderID   string    `json:"provider_id"`
	ExpiresAt    time.Time `json:"expires_at"`
	IsExpired    bool      `json:"is_expired"`
	NeedsRefresh bool      `json:"needs_refresh"`
	Email        string    `json:"email,omitempty"`
	Kind         string    `json:"kind"` // "oauth", or "api_key" for a console login's key
	// LastRefreshError is the last refresh failure this process saw, in
	// words (no secret), including one not written to the store yet;
	// `ccmux status` reads it.
	LastRefreshError string `json:"last_refresh_error,omitempty"`
}

// needsRefreshWithin is claude-code-mux's needs_refresh window.
const needsRefreshWithin = 5 * time.Minute

func newTokenJSON(t auth.Account, now time.Time) tokenJSON {
	j := tokenJSON{ProviderID: t.ProviderID, ExpiresAt: t.ExpiresAt.UTC(), Email: t.Email, Kind: "oauth", LastRefreshError: t.LastError}
	if t.APIKey {
		j.Kind = "api_key" // an API key does not expire
		return j
	}
	j.IsExpired = t.Expired(now)
	j.NeedsRefresh = !now.Add(needsRefreshWithin).Before(t.ExpiresAt)
	return j
}

// decodeProviderID reads claude-code-mux's {"provider_id": …} body.
func decodeProviderID(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req struct {
		ProviderID string `json:"provider_id"`
	}
	if !decodeAdmin(w, r, &req) {
		return "", false
	}
	if req.ProviderID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", `name the login: {"provider_id": "…"}`)
		return "", false
	}
	return req.ProviderID, true
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "the request body must be a JSON object: "+err.Error())
		return false
	}
	return true
}

func isJSON(contentType string) bool {
	if strings.EqualFold(contentType, "application/json") {
		return true // what clients send; parsing it costs a map per request
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// ownPage reports whether a browser's request to the admin API came from
// no page (a program, or the address bar: Sec-Fetch-Site none or absent),
// from ccmux's own origin, or carries an Origin, which the Origin gate has
// already checked against server.allowed_origins.
func ownPage(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "none", "same-origin":
		return true
	}
	return r.Header.Get("Origin") != ""
}

// loopbackPeer reports whether a RemoteAddr is on this machine.
func loopbackPeer(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
