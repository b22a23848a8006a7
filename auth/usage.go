package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"ccmux/config"
	"ccmux/internal/safefile"
)

// UsageWindow is one usage limit of a Claude subscription, such as the
// 5-hour or the weekly limit. Its JSON form is what GET /api/usage answers.
type UsageWindow struct {
	// Name is five_hour, seven_day, or the API's own name for the rest
	// (seven_day_opus, seven_day_sonnet, …).
	Name string `json:"name"`
	// Utilization is a fraction: 0.42 is 42 %, 1 or more is spent.
	Utilization float64 `json:"utilization"`
	// ResetsAt is when the window starts over; nil when not known.
	ResetsAt *time.Time `json:"resets_at"`
	// Status is allowed, allowed_warning or rejected ("" when not known).
	Status string `json:"status"`
}

// Spent reports whether the window refuses requests until it resets.
func (w UsageWindow) Spent() bool { return w.Status == "rejected" || w.Utilization >= 1 }

// WindowName turns a window's short name from the rate-limit headers into
// the usage endpoint's name: 5h → five_hour, 7d → seven_day, 7d_opus →
// seven_day_opus. Names it does not know are kept as they are, so a window
// Anthropic adds later still shows, under its own name.
func WindowName(short string) string {
	short = strings.ToLower(strings.TrimSpace(short))
	for prefix, long := range map[string]string{"5h": "five_hour", "7d": "seven_day"} {
		if rest, ok := strings.CutPrefix(short, prefix); ok && (rest == "" || rest[0] == '_') {
			return long + rest
		}
	}
	return short
}

// SortWindows orders windows five_hour, seven_day, then by name.
func SortWindows(ws []UsageWindow) {
	rank := func(n string) int {
		switch n {
		case "five_hour":
			return 0
		case "seven_day":
			return 1
		}
		return 2
	}
	sort.SliceStable(ws, func(i, j int) bool {
		ri, rj := rank(ws[i].Name), rank(ws[j].Name)
		if ri != rj {
			return ri < rj
		}
		return ws[i].Name < ws[j].Name
	})
}

// UsageBusyError is a 429 from the usage endpoint: ask again after RetryAfter
// (0 when it named no time).
type UsageBusyError struct{ RetryAfter time.Duration }

func (e *UsageBusyError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("the usage endpoint is rate limiting ccmux; next try in %s", e.RetryAfter.Round(time.Second))
	}
	return "the usage endpoint is rate limiting ccmux"
}

// maxUsageBody bounds the usage endpoint's answer; it is a few hundred bytes.
const maxUsageBody = 1 << 20

// Usage asks the usage endpoint ([oauth.ID] usage_url) for providerID's
// limits with the stored access token. When refresh is true a 401
// refreshes the token once and asks again; nothing else ever rotates a
// token for it (read-only commands pass false and write nothing). A 429
// is a *UsageBusyError.
func (c *Client) Usage(ctx context.Context, providerID string, refresh bool) ([]UsageWindow, error) {
	r, err := c.record(ctx, providerID)
	if err != nil {
		return nil, err
	}
	if !c.owns(providerID, r) {
		// Another app's login (gemini, openai-codex): its token must never
		// reach Anthropic's usage endpoint.
		return nil, c.notOwned(providerID)
	}
	if r.APIKey != "" {
		return nil, fmt.Errorf("%s is an API-key login: usage limits belong to Claude subscriptions", providerID)
	}
	p, err := PresetFor(c.config(), providerID, "")
	if err != nil {
		return nil, err
	}
	// The stored token as it is, even close to its expiry: polling must
	// not be what rotates it (the refresher does that on its schedule).
	ws, status, err := c.getUsage(ctx, p.UsageURL, r.AccessToken)
	if status == http.StatusUnauthorized && refresh {
		cred, rerr := c.ForceRefresh(ctx, providerID)
		if rerr != nil {
			return nil, fmt.Errorf("reading usage limits for %s: the token was refused and refreshing it failed: %w", providerID, rerr)
		}
		ws, _, err = c.getUsage(ctx, p.UsageURL, cred.Value)
	}
	if err != nil {
		return nil, fmt.Errorf("reading usage limits for %s: %w", providerID, err)
	}
	return ws, nil
}

// getUsage makes one request; status is the HTTP status (0 when none came).
func (c *Client) getUsage(ctx context.Context, url, token string) ([]UsageWindow, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("usage_url %q: %w", url, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("anthropic-beta", "oauth-2025-04-20")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("the usage endpoint is unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUsageBody))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, resp.StatusCode, &UsageBusyError{RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now())}
	case resp.StatusCode != http.StatusOK:
		return nil, resp.StatusCode, fmt.Errorf("the usage endpoint answered %s", resp.Status)
	case err != nil:
		return nil, resp.StatusCode, fmt.Errorf("reading the usage endpoint's answer: %w", err)
	}
	ws, err := ParseUsage(body)
	return BoundWindows(ws, c.clock.Now()), resp.StatusCode, err
}

// ParseUsage reads the usage endpoint's answer. Two shapes are known and
// both are read: objects per window ({"five_hour": {"utilization": 42,
// "resets_at": "…"}, …}, utilization in percent) and a "limits" array of
// {"kind", "percent", "resets_at", "scope"}. Anything else is ignored.
func ParseUsage(body []byte) ([]UsageWindow, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, errors.New("the usage endpoint's answer is not a JSON object")
	}
	byName := map[string]UsageWindow{}
	for key, raw := range top {
		if key == "limits" {
			var limits []json.RawMessage
			json.Unmarshal(raw, &limits)
			for _, el := range limits {
				var l struct {
					Kind     string   `json:"kind"`
					Percent  *float64 `json:"percent"`
					ResetsAt string   `json:"resets_at"`
					Scope    string   `json:"scope"`
				}
				if json.Unmarshal(el, &l) != nil || l.Percent == nil || l.Kind == "" {
					continue
				}
				w := percentWindow(limitName(l.Kind, l.Scope), *l.Percent, l.ResetsAt)
				byName[w.Name] = w
			}
			continue
		}
		// A window is an object with a numeric utilization and a resets_at
		// key; extra_usage (credits) and null windows are not.
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) != nil {
			continue
		}
		var pct float64
		if _, ok := fields["resets_at"]; !ok || json.Unmarshal(fields["utilization"], &pct) != nil {
			continue
		}
		var resets string
		json.Unmarshal(fields["resets_at"], &resets)
		if _, seen := byName[key]; !seen { // the limits array, when present, is newer
			byName[key] = percentWindow(key, pct, resets)
		}
	}
	out := make([]UsageWindow, 0, len(byName))
	for _, w := range byName {
		out = append(out, w)
	}
	SortWindows(out)
	return out, nil
}

// percentWindow makes a window from the endpoint's percent (0–100).
func percentWindow(name string, pct float64, resets string) UsageWindow {
	w := UsageWindow{Name: name, Utilization: pct / 100, Status: "allowed"}
	if w.Utilization >= 1 {
		w.Status = "rejected"
	}
	if t, err := time.Parse(time.RFC3339Nano, resets); err == nil {
		t = t.UTC()
		w.ResetsAt = &t
	}
	return w
}

// limitName names a "limits" entry like the per-window objects do: its
// kind (five_hour, seven_day, or 5h/7d, session/weekly), then _scope for a
// per-model limit.
func limitName(kind, scope string) string {
	name := strings.ToLower(kind)
	switch name {
	case "session", "5h":
		name = "five_hour"
	case "weekly", "week", "7d":
		name = "seven_day"
	}
	switch scope = strings.ToLower(scope); scope {
	case "", "all", "global", "any":
		return name
	default:
		return name + "_" + scope
	}
}

// UsageFileName is the usage snapshot, next to the token store. Its name
// says that it is ccmux's: claude-code-mux does not read it.
const UsageFileName = "ccmux_usage.json"

// UsagePath is the usage snapshot's file.
func (s *Store) UsagePath() string { return filepath.Join(filepath.Dir(s.path), UsageFileName) }

// SaveUsage replaces the usage snapshot with data (0600, atomically, like
// the token store itself).
func (s *Store) SaveUsage(data []byte) error {
	if err := s.ensureDir(); err != nil {
		return err
	}
	if err := s.writeFileAtomic(s.UsagePath(), data); err != nil {
		return fmt.Errorf("writing the usage snapshot %s: %w", s.UsagePath(), err)
	}
	return nil
}

// maxUsageSnapshot bounds the usage snapshot LoadUsage reads: a few KB
// per login (windows are capped), so a larger file is not ccmux's.
const maxUsageSnapshot = 1 << 20

// LoadUsage reads the usage snapshot; a missing file is no data and no
// error. Like the config and the token store, it is read only when it is
// a regular file of sane size, without blocking on a named pipe.
func (s *Store) LoadUsage() ([]byte, error) {
	data, err := safefile.Read(s.UsagePath(), maxUsageSnapshot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the usage snapshot: %w", err)
	}
	return data, nil
}

// usageBackoffMax bounds the wait after the usage endpoint answers 429.
const usageBackoffMax = time.Hour

// RunUsagePoller asks the usage endpoint for each of ids (Claude
// subscription logins) at start, right after each sign-in, and then every
// [oauth.ID] usage_poll_seconds while signed in, until ctx is done. Each
// answer goes to report. A failure doubles the wait (for a 429 at least its
// Retry-After; at most an hour) until an answer comes; logins whose poll
// interval is 0 are never asked. After a Resume it asks each login once
// more, after a short random wait, unless a 429's backoff still runs.
func (c *Client) RunUsagePoller(ctx context.Context, ids []string, report func(id string, ws []UsageWindow)) {
	events, unsubscribe := c.Subscribe()
	defer unsubscribe()
	type schedule struct {
		every, backoff time.Duration
		next           time.Time
		// busyUntil is the end of a 429's backoff, on the wall clock
		// (zero when none runs): a Resume does not ask before it.
		busyUntil time.Time
	}
	plan := map[string]*schedule{}
	for _, id := range ids {
		if every := c.usageEvery(id); every > 0 {
			plan[id] = &schedule{every: every, next: c.clock.Now()}
		}
	}
	if len(plan) == 0 {
		return
	}
	for {
		resumed := c.resumeSignal()
		now := c.clock.Now()
		var wake time.Time
		for _, id := range ids {
			s := plan[id]
			if s == nil {
				continue
			}
			if !now.Before(s.next) {
				s.next = now.Add(s.every)
				ws, err := c.pollUsage(ctx, id)
				var busy *UsageBusyError
				switch {
				case ctx.Err() != nil:
					return
				case errors.As(err, &busy):
					s.backoff = min(max(2*max(s.backoff, s.every), busy.RetryAfter), usageBackoffMax)
					s.next = now.Add(s.backoff)
					s.busyUntil = s.next.Round(0)
					c.log.Warn("usage endpoint busy; backing off", "provider", id, "retry_in", s.backoff)
				case err != nil:
					// Say it, then ask less often: a token without the
					// user:profile scope gets 403 every time.
					s.backoff = min(2*max(s.backoff, s.every), usageBackoffMax)
					s.next = now.Add(s.backoff)
					s.busyUntil = time.Time{}
					c.log.Warn("could not read usage limits", "provider", id, "err", err, "retry_in", s.backoff)
				case ws != nil:
					s.backoff, s.busyUntil = 0, time.Time{}
					report(id, ws)
				}
			}
			if wake.IsZero() || s.next.Before(wake) {
				wake = s.next
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(wake.Sub(now)):
		case ev, ok := <-events:
			if !ok {
				return
			}
			if s := plan[ev.ProviderID]; s != nil && ev.Kind == SignedIn {
				s.next = c.clock.Now()
			}
		case <-resumed:
			// The machine slept or changed networks: ask once, soon (the
			// timer did not count the sleep), but not at the moment of the
			// wake, and not before a 429's backoff (on the wall clock)
			// ends. Other failures are asked again: the network may be back.
			soon := c.clock.Now().Add(c.resumeDelay())
			for _, s := range plan {
				s.next = soon
				if soon.Before(s.busyUntil) {
					s.next = s.busyUntil
				}
			}
		}
	}
}

// usageEvery is id's poll interval: [oauth.ID] usage_poll_seconds, default 300.
func (c *Client) usageEvery(id string) time.Duration {
	cfg := c.config()
	if cfg == nil {
		cfg = &config.Config{}
	}
	return cfg.UsagePoll(id)
}

// pollUsage asks for id's usage when it is signed in with a subscription
// token; it answers nil, nil otherwise.
func (c *Client) pollUsage(ctx context.Context, id string) ([]UsageWindow, error) {
	r, err := c.record(ctx, id)
	if err != nil || r.APIKey != "" || r.AccessToken == "" {
		return nil, nil
	}
	return c.Usage(ctx, id, true)
}
