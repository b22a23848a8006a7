package proxy

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// With server.api_key set, the dashboard (GET / and the page's endpoints)
// needs proof of the key, carried the way a browser can: a program that
// knows the key (`ccmux dashboard`, or the tray in the same process) asks
// for a one-time code and opens /?code=…; the server swaps the code for an
// HttpOnly, SameSite=Strict session cookie and redirects to /, so the code
// leaves the address bar and the history. Without server.api_key nothing
// of this applies: every local program can use the proxy anyway.

const (
	// dashCodeTTL is how long a code from DashboardCode can be used.
	dashCodeTTL = 60 * time.Second
	// dashSessionTTL is how long a dashboard session lasts.
	dashSessionTTL = 12 * time.Hour
	// dashCookie names the session cookie.
	dashCookie = "ccmux_dashboard"
	// maxDashSecrets bounds the codes and sessions kept: a caller with the
	// key could otherwise mint without end.
	maxDashSecrets = 256
)

// dashSecrets are a Server's live dashboard codes or sessions.
type dashSecrets struct {
	mu   sync.Mutex
	live []dashSecret
}

type dashSecret struct {
	value   string
	expires time.Time
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// add keeps a new secret until ttl from now and returns it.
func (d *dashSecrets) add(ttl time.Duration) string {
	v := randomSecret()
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pruneLocked(now)
	if len(d.live) >= maxDashSecrets {
		d.live = d.live[1:] // the oldest goes
	}
	d.live = append(d.live, dashSecret{value: v, expires: now.Add(ttl)})
	return v
}

func (d *dashSecrets) pruneLocked(now time.Time) {
	kept := d.live[:0]
	for _, s := range d.live {
		if now.Before(s.expires) {
			kept = append(kept, s)
		}
	}
	clear(d.live[len(kept):])
	d.live = kept
}

// check reports whether v is a live secret, comparing every one in
// constant time; take also removes it (a code is used once).
func (d *dashSecrets) check(v string, take bool) bool {
	if v == "" {
		return false
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pruneLocked(now)
	found := -1
	for i, s := range d.live {
		if subtle.ConstantTimeCompare([]byte(v), []byte(s.value)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return false
	}
	if take {
		d.live = append(d.live[:found], d.live[found+1:]...)
	}
	return true
}

// DashboardCode returns a one-time code that opens the dashboard for a
// minute (BaseURL + "/?code=" + code), or "" when server.api_key is not
// set and the dashboard needs none. The tray calls it in process; other
// programs POST /api/dashboard/session with the key.
func (s *Server) DashboardCode() string {
	if st := s.cur.Load(); st == nil || st.apiKey == "" {
		return ""
	}
	return s.dashCodes.add(dashCodeTTL)
}

// dashSession reports whether r may see the dashboard: server.api_key is
// not set, or r carries a live session cookie.
func (h *handler) dashSession(r *http.Request) bool {
	if h.st.apiKey == "" {
		return true
	}
	c, err := r.Cookie(dashCookie)
	return err == nil && h.s.dashSessions.check(c.Value, false)
}

// sessionAPI answers POST /api/dashboard/session (the key already checked)
// with a one-time code for GET /?code=.
func (h *handler) sessionAPI(w http.ResponseWriter, r *http.Request) {
	if !method(w, r, http.MethodPost) {
		return
	}
	code := ""
	if h.st.apiKey != "" {
		code = h.s.dashCodes.add(dashCodeTTL)
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": code, "expires_in": int(dashCodeTTL / time.Second)})
}

// openWithCode answers GET /?code=…: a live code becomes a session cookie
// and a redirect to / (the code leaves the address bar); a used or
// expired one, the "open it again" page.
func (h *handler) openWithCode(w http.ResponseWriter, r *http.Request, code string) {
	if h.st.apiKey != "" {
		if !h.s.dashCodes.check(code, true) {
			h.dashLocked(w, r, "This dashboard link has expired or was used already.")
			return
		}
		http.SetCookie(w, &http.Cookie{
			Name:     dashCookie,
			Value:    h.s.dashSessions.add(dashSessionTTL),
			Path:     "/",
			MaxAge:   int(dashSessionTTL / time.Second),
			HttpOnly: true,
			SameSite: http.SameSiteStrictMode,
		})
	}
	pageSecurity(w.Header())
	w.Header().Set("Location", "/")
	w.WriteHeader(http.StatusSeeOther)
}

// dashLockedPage is GET / without a session when server.api_key is set: no
// data and no CSRF token, only how to get in.
const dashLockedPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ccmux dashboard</title><link rel="icon" href="data:,"></head>
<body>
<h1>ccmux dashboard</h1>
<p>{{why}}</p>
<p>This proxy requires server.api_key, so the dashboard opens only from a link that proves it:
use "Open dashboard" in the ccmux tray menu, or run <code>ccmux dashboard</code>.</p>
</body>
</html>
`

func (h *handler) dashLocked(w http.ResponseWriter, r *http.Request, why string) {
	body := []byte(strings.Replace(dashLockedPage, "{{why}}", why, 1))
	hdr := w.Header()
	pageSecurity(hdr)
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusForbidden)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// keyChanged ends every dashboard code and session when a reload changes
// server.api_key: they proved the old key.
func (s *Server) keyChanged(st *state) {
	if old := s.cur.Load(); old != nil && subtle.ConstantTimeCompare([]byte(old.apiKey), []byte(st.apiKey)) != 1 {
		s.dashCodes.reset()
		s.dashSessions.reset()
	}
}

func (d *dashSecrets) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.live)
	d.live = d.live[:0]
}
