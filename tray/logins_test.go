package tray

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/assets"
	"ccmux/auth"
)

// With one login the menu is as it always was: its lines at the top and no
// submenu; with two, each login is a submenu and the top lines are gone.
func TestRenderOneAndTwoLogins(t *testing.T) {
	now := mon
	r5 := now.Add(3 * time.Hour) // 18:00
	ada := &auth.Account{ProviderID: "claude-max", Email: "ada@example.com", ExpiresAt: now.Add(5 * time.Hour)}
	bob := &auth.Account{ProviderID: "claude-work", Email: "bob@example.com", ExpiresAt: now.Add(5 * time.Hour)}
	calm := Usage{Provider: "claude-max", UpdatedAt: now, Windows: []Limit{{Name: "five_hour", Utilization: 0.42, ResetsAt: r5}}}
	hot := Usage{Provider: "work", UpdatedAt: now, Windows: []Limit{{Name: "five_hour", Utilization: 0.93, ResetsAt: r5}}}
	spent := Usage{Provider: "work", UpdatedAt: now, LimitedUntil: r5, Windows: []Limit{{Name: "five_hour", Utilization: 1, ResetsAt: r5, Status: "rejected"}}}
	claudeMax := loginState{id: "claude-max", login: ada, usage: calm, hasUsage: true}
	claudeWork := loginState{id: "claude-work", login: bob, usage: calm, hasUsage: true}
	base := state{proxyOn: true, proxyAddr: "127.0.0.1:13456"}
	with := func(primary int, ls ...loginState) state {
		s := base
		s.logins, s.primary = ls, primary
		return s
	}
	set := func(l loginState, f func(*loginState)) loginState { f(&l); return l }

	tests := []struct {
		name    string
		st      state
		status  string   // the top status line; "" with several logins
		titles  []string // the submenus' titles
		inside  []string // the first submenu: status, usage lines, sign-in item
		icon    assets.Icon
		tooltip []string // lines the tooltip has, after "ccmux"
	}{
		{
			name:    "one login: as today",
			st:      with(0, claudeMax),
			status:  "Signed in as ada@example.com (expires 20:00)",
			icon:    assets.Active,
			tooltip: []string{"Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "Proxy on 127.0.0.1:13456"},
		},
		{
			name:    "two logins, both fine",
			st:      with(0, claudeMax, claudeWork),
			titles:  []string{"● claude-max — ada@example.com", "● claude-work — bob@example.com"},
			inside:  []string{"Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "Sign out"},
			icon:    assets.Active,
			tooltip: []string{"claude-max: Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "Proxy on 127.0.0.1:13456"},
		},
		{
			name:   "the second signed out",
			st:     with(0, claudeMax, loginState{id: "claude-work"}),
			titles: []string{"● claude-max — ada@example.com", "○ claude-work"},
			inside: []string{"Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "Sign out"},
			icon:   assets.Active,
		},
		{
			name:    "the icon follows the default model's login",
			st:      with(1, claudeMax, loginState{id: "claude-work"}),
			titles:  []string{"● claude-max — ada@example.com", "○ claude-work"},
			inside:  []string{"Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "Sign out"},
			icon:    assets.SignedOut,
			tooltip: []string{"claude-work: Not signed in", "Proxy on 127.0.0.1:13456"},
		},
		{
			name:    "another login near its limit warns",
			st:      with(0, claudeMax, set(claudeWork, func(l *loginState) { l.usage = hot })),
			titles:  []string{"● claude-max — ada@example.com", "◐ claude-work — bob@example.com"},
			inside:  []string{"Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "Sign out"},
			icon:    assets.Warning,
			tooltip: []string{"claude-max: Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "claude-work: 5-hour limit: 93% · resets 18:00", "Proxy on 127.0.0.1:13456"},
		},
		{
			name:    "another login spent warns",
			st:      with(0, claudeMax, set(claudeWork, func(l *loginState) { l.usage = spent })),
			titles:  []string{"● claude-max — ada@example.com", "◐ claude-work — bob@example.com"},
			inside:  []string{"Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "Sign out"},
			icon:    assets.Warning,
			tooltip: []string{"claude-max: Signed in as ada@example.com (expires 20:00)", "5-hour limit: 42% · resets 18:00", "work: limit reached until 18:00", "Proxy on 127.0.0.1:13456"},
		},
		{
			name: "the first expired, the second refreshing fails",
			st: with(0, set(claudeMax, func(l *loginState) {
				l.login = &auth.Account{Email: "ada@example.com", ExpiresAt: now.Add(-time.Minute)}
			}),
				set(claudeWork, func(l *loginState) { l.refreshErr = "token endpoint answered 503" })),
			titles: []string{"⚠ claude-max — ada@example.com", "⚠ claude-work — bob@example.com"},
			inside: []string{"Session expired — sign in again", "Sign in with Claude"},
			icon:   assets.Error,
		},
		{
			name:   "signing in to the first",
			st:     with(0, loginState{id: "claude-max", signingIn: true}, claudeWork),
			titles: []string{"○ claude-max", "● claude-work — bob@example.com"},
			inside: []string{"Signing in — finish in your browser", "Cancel sign-in"},
			icon:   assets.SignedOut,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := render(tt.st, now, testLoc)
			if v.Status != tt.status {
				t.Errorf("top status line %q, want %q", v.Status, tt.status)
			}
			var titles []string
			for _, lv := range v.Logins {
				if lv.Title != "" {
					titles = append(titles, lv.Title)
				}
			}
			if !slices.Equal(titles, tt.titles) {
				t.Errorf("submenus %q, want %q", titles, tt.titles)
			}
			if len(tt.titles) > 0 {
				if v.SignIn != "" || v.Limits[0] != "" {
					t.Errorf("with several logins the top of the menu still shows %q, %q", v.SignIn, v.Limits[0])
				}
				if got := shownLines(v.Logins[0]); !slices.Equal(got, tt.inside) {
					t.Errorf("first submenu %q, want %q", got, tt.inside)
				}
			}
			if v.Icon != tt.icon {
				t.Errorf("icon %v, want %v", v.Icon, tt.icon)
			}
			if tt.tooltip != nil {
				if want := "ccmux\n" + strings.Join(tt.tooltip, "\n"); v.Tooltip != want {
					t.Errorf("tooltip\n%s\nwant\n%s", v.Tooltip, want)
				}
			}
		})
	}
}

// shownLines are the items of a login's submenu that are shown.
func shownLines(lv loginView) []string {
	out := []string{lv.Status}
	for _, l := range lv.Limits {
		if l != "" {
			out = append(out, l)
		}
	}
	return append(out, lv.SignIn)
}

// twoLogins is a harness whose auth lists claude-max and claude-work, both
// signed in, with claude-max serving the default model.
func twoLogins(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, nil)
	h.auth.set([]string{"claude-max", "claude-work"}, "claude-max", map[string]auth.Account{
		"claude-max":  {ProviderID: "claude-max", Email: "ada@example.com", APIKey: true},
		"claude-work": {ProviderID: "claude-work", Email: "bob@example.com", APIKey: true},
	})
	return h.run()
}

// Sign out in the second login's submenu signs out that login only.
func TestSignOutOfTheSecondLogin(t *testing.T) {
	h := twoLogins(t)
	h.waitView("two submenus", func(v view) bool {
		return v.Logins[0].Title == "● claude-max — ada@example.com" && v.Logins[1].Title == "● claude-work — bob@example.com" && proxyOn(v)
	})
	h.click(loginClick(1))
	v := h.waitView("claude-work signed out", func(v view) bool { return v.Logins[1].Status == "Not signed in" })
	if v.Logins[1].Title != "○ claude-work" || v.Logins[1].SignIn != labelSignIn {
		t.Errorf("claude-work after sign-out: %+v", v.Logins[1])
	}
	if v.Logins[0].Status != "Signed in as ada@example.com" || v.Logins[0].SignIn != labelSignOut || v.Icon != assets.Active {
		t.Errorf("claude-max changed with claude-work's sign-out: %+v, icon %v", v.Logins[0], v.Icon)
	}
	h.auth.mu.Lock()
	if !slices.Equal(h.auth.logouts, []string{"claude-work"}) {
		t.Errorf("Logout called for %q, want claude-work only", h.auth.logouts)
	}
	h.auth.mu.Unlock()

	// Sign in again from the same submenu: the login asked for is claude-work.
	h.click(loginClick(1))
	call := h.login()
	if call.id != "claude-work" {
		t.Fatalf("Login for %q, want claude-work", call.id)
	}
	call.result <- loginResult{acct: auth.Account{ProviderID: "claude-work", Email: "bob@example.com", APIKey: true}}
	n := h.waitNote("Signed in to Claude (claude-work)")
	if !strings.HasPrefix(n.message, "Signed in as bob@example.com.") {
		t.Errorf("sign-in notification %q", n.message)
	}
	h.waitView("claude-work signed in", func(v view) bool { return v.Logins[1].Title == "● claude-work — bob@example.com" })
}

// An event changes the entry of the login it names, and its notification
// names that login; the icon follows the default model's login.
func TestEventsOfEachLogin(t *testing.T) {
	h := twoLogins(t)
	h.waitView("the proxy on", proxyOn)
	h.auth.events <- auth.Event{Kind: auth.RefreshFailed, ProviderID: "claude-work", Reason: "token endpoint answered 503"}
	n := h.waitNote("Claude sign-in could not be refreshed (claude-work)")
	if n.message != "Token endpoint answered 503." {
		t.Errorf("notification %q", n.message)
	}
	v := h.waitView("claude-work failing", func(v view) bool { return strings.HasPrefix(v.Logins[1].Title, markBroken) })
	if v.Logins[0].Title != "● claude-max — ada@example.com" || v.Icon != assets.Active {
		t.Errorf("claude-max's entry or the icon changed: %q, %v", v.Logins[0].Title, v.Icon)
	}

	// A token login (an API key never expires), told without news: it was signed in.
	h.auth.events <- auth.Event{Kind: auth.SignedIn, ProviderID: "claude-max", Email: "ada@example.com", ExpiresAt: time.Now().Add(time.Hour)}
	h.auth.events <- auth.Event{Kind: auth.Expired, ProviderID: "claude-max", ExpiresAt: time.Now().Add(-time.Minute)}
	h.waitNote("Claude session expired (claude-max)")
	v = h.waitView("claude-max expired", func(v view) bool { return v.Logins[0].Status == statusExpired })
	if v.Icon != assets.Error {
		t.Errorf("icon %v with the default model's login expired, want the error look", v.Icon)
	}

	h.auth.events <- auth.Event{Kind: auth.SignedOut, ProviderID: "claude-work", Reason: "session ended"}
	h.waitNote("Signed out of Claude (claude-work)")
	h.waitView("claude-work signed out", func(v view) bool { return v.Logins[1].Title == "○ claude-work" })
	// A login the tray does not list changes nothing.
	h.auth.events <- auth.Event{Kind: auth.SignedOut, ProviderID: "gemini", Reason: "session ended"}
	h.noMoreNotes()
}

// Usage lines and limit notifications are per login.
func TestUsageOfEachLogin(t *testing.T) {
	src := &perLoginUsage{u: map[string]Usage{}, changed: make(chan struct{}, 1)}
	h := newHarness(t, nil)
	h.usage = src
	h.auth.set([]string{"claude-max", "claude-work"}, "claude-max", map[string]auth.Account{
		"claude-max":  {ProviderID: "claude-max", Email: "ada@example.com", APIKey: true},
		"claude-work": {ProviderID: "claude-work", Email: "bob@example.com", APIKey: true},
	})
	h.run()
	h.waitView("the proxy on", proxyOn)
	reset := time.Now().Add(time.Hour)
	src.set("claude-work", Usage{Provider: "work", UpdatedAt: time.Now(), Windows: []Limit{{Name: "five_hour", Utilization: 0.95, ResetsAt: reset}}})
	v := h.waitView("claude-work's usage line", func(v view) bool { return strings.HasPrefix(v.Logins[1].Limits[0], "5-hour limit: 95%") })
	if v.Logins[0].Limits[0] != usageUnknown || v.Icon != assets.Warning {
		t.Errorf("claude-max's first line %q, icon %v; want %q and the warning look", v.Logins[0].Limits[0], v.Icon, usageUnknown)
	}
	if n := h.waitNote("Claude usage limit (claude-work)"); !strings.HasPrefix(n.message, "Claude 5-hour limit at 95%") {
		t.Errorf("notification %q", n.message)
	}
	h.noMoreNotes()
}

// perLoginUsage is a UsageSource with numbers per login.
type perLoginUsage struct {
	mu      sync.Mutex
	u       map[string]Usage
	changed chan struct{}
}

func (f *perLoginUsage) Usage(login string) (Usage, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.u[login]
	if !ok {
		u = Usage{Provider: login}
	}
	return u, true
}

func (f *perLoginUsage) Changed() <-chan struct{} { return f.changed }

func (f *perLoginUsage) set(login string, u Usage) {
	f.mu.Lock()
	f.u[login] = u
	f.mu.Unlock()
	f.changed <- struct{}{}
}

// A reload that adds a second login turns the menu's top lines into two
// submenus, keeping the first login's state.
func TestReloadToTwoLogins(t *testing.T) {
	h, r := startWithReloader(t)
	h.waitView("one login", func(v view) bool { return v.Status == "Not signed in" && v.ReloadEnabled })
	h.auth.set([]string{"anthropic-max", "claude-work"}, "anthropic-max", map[string]auth.Account{
		"claude-work": {ProviderID: "claude-work", Email: "bob@example.com", APIKey: true},
	})
	r.results <- reloadResult{changed: "2 providers"}
	h.click(clickReload)
	h.waitNote("Config reloaded")
	v := h.waitView("two submenus", func(v view) bool { return v.Logins[1].Title != "" })
	if v.Status != "" || v.Logins[0].Title != "○ anthropic-max" || v.Logins[1].Title != "● claude-work — bob@example.com" || v.Icon != assets.SignedOut {
		t.Errorf("after the reload: status %q, submenus %q, %q, icon %v", v.Status, v.Logins[0].Title, v.Logins[1].Title, v.Icon)
	}
}

// Open dashboard opens the proxy's address in the browser, off the loop,
// and is disabled while the proxy is off.
func TestOpenDashboard(t *testing.T) {
	h := newHarness(t, nil)
	urls := make(chan string, 1)
	h.openURL = func(u string) error { urls <- u; return nil }
	h.run()
	h.waitView("the proxy on", func(v view) bool { return proxyOn(v) && v.DashboardEnabled })
	h.click(clickDashboard)
	select {
	case u := <-urls:
		if u != "http://127.0.0.1:13456/" {
			t.Errorf("opened %q, want http://127.0.0.1:13456/", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dashboard was not opened")
	}
	h.click(clickProxy)
	h.waitView("the proxy off", func(v view) bool { return !v.ProxyChecked && !v.DashboardEnabled })
}

// With server.api_key set, Open dashboard opens a one-time link the proxy
// minted (/?code=…), which the browser swaps for a session.
func TestOpenDashboardWithKey(t *testing.T) {
	h := newHarness(t, nil)
	h.proxy.code = "c0de"
	urls := make(chan string, 1)
	h.openURL = func(u string) error { urls <- u; return nil }
	h.run()
	h.waitView("the proxy on", func(v view) bool { return proxyOn(v) && v.DashboardEnabled })
	h.click(clickDashboard)
	select {
	case u := <-urls:
		if u != "http://127.0.0.1:13456/?code=c0de" {
			t.Errorf("opened %q, want http://127.0.0.1:13456/?code=c0de", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dashboard was not opened")
	}
}
