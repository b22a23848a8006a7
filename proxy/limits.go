package proxy

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"ccmux/auth"
)

// UsageStore keeps the last usage snapshot across restarts; auth.Store is one.
type UsageStore interface {
	LoadUsage() ([]byte, error)
	SaveUsage(data []byte) error
}

// LoginUsage is what ccmux knows of one Claude subscription's limits.
type LoginUsage struct {
	Login     string    `json:"login"`      // token-store id
	UpdatedAt time.Time `json:"updated_at"` // when the numbers came
	// Source is "headers" (an answer's rate-limit headers) or "usage_api"
	// (the usage endpoint), whichever came last.
	Source string `json:"source"`
	// LimitedUntil is set while the subscription refuses requests (it
	// answered 429 with a rejected unified status): until then the proxy
	// does not send it any.
	LimitedUntil *time.Time         `json:"limited_until"`
	Windows      []auth.UsageWindow `json:"windows"`
}

// Usage sources.
const (
	SourceHeaders  = "headers"
	SourceUsageAPI = "usage_api"
)

// spentFallback is how long a subscription counts as spent when its 429
// named no reset time at all.
const spentFallback = time.Minute

// saveEvery bounds how often numbers from answers' headers are written to
// the snapshot; a spent subscription, its restoration and the usage
// endpoint's numbers are written at once.
const saveEvery = time.Minute

// UsageTracker keeps each Claude subscription login's usage windows, from
// answers' headers and from the usage endpoint, and whether it is spent. It
// is safe for concurrent use.
type UsageTracker struct {
	store UsageStore // nil: nothing is kept across restarts
	log   *slog.Logger
	now   func() time.Time

	mu       sync.Mutex
	logins   map[string]*LoginUsage
	changed  chan struct{}
	saving   bool // a save runs
	again    bool // save again when it ends
	lastSave time.Time
}

// NewUsageTracker returns a tracker that keeps its snapshot in store (nil
// for none) and logs to log (nil discards).
func NewUsageTracker(store UsageStore, log *slog.Logger) *UsageTracker {
	if log == nil {
		log = discard
	}
	return &UsageTracker{store: store, log: log, now: time.Now, logins: map[string]*LoginUsage{}, changed: make(chan struct{}, 1)}
}

// Changed receives after every change, coalesced: one receive may stand for
// several changes. It has one reader (the tray).
func (t *UsageTracker) Changed() <-chan struct{} { return t.changed }

// Restore loads the snapshot kept by the last run. Limits that have
// reset since are dropped.
func (t *UsageTracker) Restore() error {
	if t.store == nil {
		return nil
	}
	data, err := t.store.LoadUsage()
	if err != nil || len(data) == 0 {
		return err
	}
	var snap struct {
		Logins []LoginUsage `json:"logins"`
	}
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("the usage snapshot is not valid JSON (it is rewritten with the next numbers): %w", err)
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, u := range snap.Logins {
		if u.Login == "" {
			continue
		}
		// A snapshot an older ccmux wrote may hold thousands of windows
		// or a reset centuries ahead: bound it like fresh numbers.
		u.Windows = mergeWindows(u.Windows, nil, now)
		if u.LimitedUntil != nil {
			until := auth.CapReset(*u.LimitedUntil, now)
			u.LimitedUntil = &until
		}
		if _, known := t.logins[u.Login]; !known {
			t.logins[u.Login] = &u
		}
	}
	t.signal()
	return nil
}

// Save writes the snapshot now (at shutdown, so numbers from headers that
// were not written yet are kept).
func (t *UsageTracker) Save() error {
	if t.store == nil {
		return nil
	}
	t.mu.Lock()
	empty := len(t.logins) == 0
	data := t.encodeLocked()
	t.lastSave = t.now()
	t.mu.Unlock()
	if empty {
		// Nothing known and no snapshot yet: do not leave a file in the
		// shared directory for a user who never signed in.
		if old, err := t.store.LoadUsage(); err == nil && old == nil {
			return nil
		}
	}
	return t.store.SaveUsage(data)
}

// ObserveAnswer reads one answer of login's subscription. A 429 whose
// unified status (or any window's) is rejected marks the login spent until
// the reset the answer gave; the returned time is that reset.
func (t *UsageTracker) ObserveAnswer(login string, status int, h http.Header) (spentUntil time.Time, spent bool) {
	r, ok := parseUnified(h)
	if !ok {
		return time.Time{}, false
	}
	now := t.now()
	r.capResets(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.loginLocked(login)
	u.UpdatedAt, u.Source = now, SourceHeaders
	u.Windows = mergeWindows(u.Windows, r.Windows, now)
	force := false
	switch {
	case status == http.StatusTooManyRequests && r.rejected():
		until := r.Reset
		if until.IsZero() {
			for _, w := range r.Windows {
				if w.Status == "rejected" && w.ResetsAt != nil && w.ResetsAt.After(until) {
					until = *w.ResetsAt
				}
			}
		}
		if until.IsZero() {
			if secs, err := strconv.Atoi(h.Get("Retry-After")); err == nil && secs > 0 {
				// Bounded first: a huge number would wrap the Duration.
				until = now.Add(time.Duration(min(secs, int(auth.MaxResetAhead/time.Second))) * time.Second)
			}
		}
		if !until.After(now) {
			until = now.Add(spentFallback)
		}
		until = auth.CapReset(until, now)
		if u.LimitedUntil == nil || !u.LimitedUntil.Equal(until) {
			t.log.Warn("subscription usage limit reached; skipping it until the reset", "provider", login, "status", status, "until", until, "window", r.RepresentativeClaim)
			force = true
		}
		u.LimitedUntil = &until
		spentUntil, spent = until, true
	case status < 400 && u.LimitedUntil != nil:
		u.LimitedUntil, force = nil, true
	}
	t.changedLocked(force)
	return spentUntil, spent
}

// ObserveUsage records the usage endpoint's windows for login. When it says
// no window is spent, a login marked spent is used again at once.
func (t *UsageTracker) ObserveUsage(login string, ws []auth.UsageWindow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.loginLocked(login)
	u.UpdatedAt, u.Source = t.now(), SourceUsageAPI
	u.Windows = mergeWindows(u.Windows, ws, t.now())
	if u.LimitedUntil != nil && len(ws) > 0 && !slices.ContainsFunc(ws, auth.UsageWindow.Spent) {
		t.log.Info("the usage endpoint reports the subscription allowed again", "provider", login)
		u.LimitedUntil = nil
	}
	t.changedLocked(true)
}

// SpentUntil reports whether login is spent, and until when. A login whose
// reset time has come is restored here.
func (t *UsageTracker) SpentUntil(login string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.logins[login]
	if u == nil || u.LimitedUntil == nil {
		return time.Time{}, false
	}
	if t.now().Before(*u.LimitedUntil) {
		return *u.LimitedUntil, true
	}
	u.LimitedUntil = nil
	t.log.Info("subscription usage limit reset; using it again", "provider", login)
	t.changedLocked(true)
	return time.Time{}, false
}

// Login returns what is known of login; windows whose reset time has passed
// read 0 % (a new period started), and an expired spent mark is gone.
func (t *UsageTracker) Login(login string) (LoginUsage, bool) {
	t.SpentUntil(login) // restores an expired mark
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.logins[login]
	if u == nil {
		return LoginUsage{Login: login, Windows: []auth.UsageWindow{}}, false
	}
	out := *u
	now := t.now()
	out.Windows = make([]auth.UsageWindow, len(u.Windows))
	for i, w := range u.Windows {
		if w.ResetsAt != nil && !now.Before(*w.ResetsAt) {
			w = auth.UsageWindow{Name: w.Name, Status: "allowed"}
		}
		out.Windows[i] = w
	}
	return out, true
}

func (t *UsageTracker) loginLocked(login string) *LoginUsage {
	u := t.logins[login]
	if u == nil {
		u = &LoginUsage{Login: login}
		t.logins[login] = u
	}
	return u
}

// staleAfter is how long after its reset a window no answer mentioned
// since is dropped: past a week (the longest period) it is not coming back.
const staleAfter = auth.MaxResetAhead

// mergeWindows replaces the windows named in fresh and keeps the others
// (answers' headers name fewer windows than the usage endpoint), except
// those whose reset passed over staleAfter ago. It keeps at most
// auth.MaxWindows: the 5-hour and weekly ones first, then fresh ones, then
// old ones, each set by name. Its cost is linear in what it is given.
func mergeWindows(old, fresh []auth.UsageWindow, now time.Time) []auth.UsageWindow {
	type entry struct {
		w     auth.UsageWindow
		known bool // five_hour or seven_day
		fresh bool
	}
	all := make([]entry, 0, len(old)+len(fresh))
	seen := make(map[string]bool, len(old)+len(fresh))
	for i, ws := range [][]auth.UsageWindow{fresh, old} {
		for _, w := range ws {
			if seen[w.Name] || !auth.ValidWindowName(w.Name) {
				continue
			}
			seen[w.Name] = true
			if i == 1 && w.ResetsAt != nil && now.Sub(*w.ResetsAt) > staleAfter {
				continue
			}
			if w.ResetsAt != nil {
				t := auth.CapReset(*w.ResetsAt, now)
				w.ResetsAt = &t
			}
			all = append(all, entry{w, w.Name == "five_hour" || w.Name == "seven_day", i == 0})
		}
	}
	if len(all) > auth.MaxWindows {
		slices.SortStableFunc(all, func(a, b entry) int {
			switch {
			case a.known != b.known:
				return boolOrder(a.known)
			case a.fresh != b.fresh:
				return boolOrder(a.fresh)
			}
			return strings.Compare(a.w.Name, b.w.Name)
		})
		all = all[:auth.MaxWindows]
	}
	out := make([]auth.UsageWindow, len(all))
	for i, e := range all {
		out[i] = e.w
	}
	auth.SortWindows(out)
	return out
}

// boolOrder sorts true first.
func boolOrder(first bool) int {
	if first {
		return -1
	}
	return 1
}

// changedLocked tells the reader and saves the snapshot: at once when
// force, otherwise at most every saveEvery.
func (t *UsageTracker) changedLocked(force bool) {
	t.signal()
	if t.store == nil || (!force && t.now().Sub(t.lastSave) < saveEvery) {
		return
	}
	t.lastSave = t.now()
	if t.saving {
		t.again = true
		return
	}
	t.saving = true
	go t.saveLoop(t.encodeLocked())
}

// saveLoop writes off the request path, then again while changes came in.
func (t *UsageTracker) saveLoop(data []byte) {
	for {
		if err := t.store.SaveUsage(data); err != nil {
			t.log.Warn("could not save the usage snapshot", "err", err)
		}
		t.mu.Lock()
		if !t.again {
			t.saving = false
			t.mu.Unlock()
			return
		}
		t.again = false
		data = t.encodeLocked()
		t.mu.Unlock()
	}
}

func (t *UsageTracker) signal() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

func (t *UsageTracker) encodeLocked() []byte {
	snap := struct {
		Logins []LoginUsage `json:"logins"`
	}{Logins: []LoginUsage{}}
	for _, u := range t.logins {
		snap.Logins = append(snap.Logins, *u)
	}
	slices.SortFunc(snap.Logins, func(a, b LoginUsage) int { return strings.Compare(a.Login, b.Login) })
	data, _ := json.MarshalIndent(snap, "", "  ")
	return append(data, '\n')
}
