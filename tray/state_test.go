package tray

import (
	"strings"
	"testing"
	"time"

	"ccmux/assets"
	"ccmux/auth"
)

// one is s listing the one login l.
func one(l loginState, s state) state {
	s.logins = []loginState{l}
	return s
}

func TestRender(t *testing.T) {
	loc := time.FixedZone("test", 2*3600)
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, loc)
	later := now.Add(5 * time.Hour)
	in := &auth.Account{Email: "ada@example.com", ExpiresAt: later}
	const addr = "127.0.0.1:13456"
	base := func(s state) state { s.proxyAddr = addr; return s }

	tests := []struct {
		name                string
		st                  state
		status, signIn      string
		icon                assets.Icon
		proxyOn, proxyClick bool
		autostart           bool
		tooltipHas          []string
	}{
		{
			name:   "signed in, proxy on",
			st:     base(one(loginState{login: in}, state{proxyOn: true})),
			status: "Signed in as ada@example.com (expires 15:00)", signIn: "Sign out",
			icon: assets.Active, proxyOn: true, proxyClick: true,
			tooltipHas: []string{"Signed in as ada@example.com", "Proxy on 127.0.0.1:13456"},
		},
		{
			name:   "signed in, proxy off",
			st:     base(one(loginState{login: in}, state{})),
			status: "Signed in as ada@example.com (expires 15:00)", signIn: "Sign out",
			icon: assets.ProxyOff, proxyClick: true,
			tooltipHas: []string{"Proxy off"},
		},
		{
			name:   "signed in without email or expiry",
			st:     base(one(loginState{login: &auth.Account{APIKey: true}}, state{proxyOn: true})),
			status: "Signed in", signIn: "Sign out",
			icon: assets.Active, proxyOn: true, proxyClick: true,
		},
		{
			name:   "expiry on another day shows the date",
			st:     base(one(loginState{login: &auth.Account{ExpiresAt: now.Add(30 * time.Hour)}}, state{proxyOn: true})),
			status: "Signed in (expires 27 Nov 16:00)", signIn: "Sign out",
			icon: assets.Active, proxyOn: true, proxyClick: true,
		},
		{
			name:   "signed out, proxy on",
			st:     base(state{proxyOn: true}),
			status: "Not signed in", signIn: "Sign in with Claude",
			icon: assets.SignedOut, proxyOn: true, proxyClick: true,
			tooltipHas: []string{"Not signed in", "Proxy on 127.0.0.1:13456"},
		},
		{
			name:   "signed out, proxy off",
			st:     base(state{}),
			status: "Not signed in", signIn: "Sign in with Claude",
			icon: assets.SignedOut, proxyClick: true,
		},
		{
			name:   "session expired",
			st:     base(one(loginState{login: &auth.Account{Email: "ada@example.com", ExpiresAt: now.Add(-time.Minute)}}, state{proxyOn: true})),
			status: "Session expired — sign in again", signIn: "Sign in with Claude",
			icon: assets.Error, proxyOn: true, proxyClick: true,
			tooltipHas: []string{"Session expired — sign in again"},
		},
		{
			name:   "refresh failing",
			st:     base(one(loginState{login: in, refreshErr: "token endpoint answered 503"}, state{proxyOn: true})),
			status: "Signed in as ada@example.com (expires 15:00)", signIn: "Sign out",
			icon: assets.Error, proxyOn: true, proxyClick: true,
			tooltipHas: []string{"Refresh failed: token endpoint answered 503"},
		},
		{
			name:   "proxy could not start",
			st:     base(one(loginState{login: in}, state{proxyErr: "listen tcp 127.0.0.1:13456: address already in use"})),
			status: "Signed in as ada@example.com (expires 15:00)", signIn: "Sign out",
			icon: assets.Error, proxyClick: true,
			tooltipHas: []string{"Proxy could not start: listen tcp 127.0.0.1:13456: address already in use"},
		},
		{
			name:   "signing in",
			st:     base(one(loginState{signingIn: true}, state{proxyOn: true})),
			status: "Signing in — finish in your browser", signIn: "Cancel sign-in",
			icon: assets.SignedOut, proxyOn: true, proxyClick: true,
		},
		{
			name:   "proxy starting",
			st:     base(one(loginState{login: in}, state{proxyBusy: true})),
			status: "Signed in as ada@example.com (expires 15:00)", signIn: "Sign out",
			icon: assets.ProxyOff,
		},
		{
			name:   "start at login on",
			st:     base(one(loginState{login: in}, state{proxyOn: true, autostart: true})),
			status: "Signed in as ada@example.com (expires 15:00)", signIn: "Sign out",
			icon: assets.Active, proxyOn: true, proxyClick: true, autostart: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := render(tt.st, now, loc)
			if v.Status != tt.status {
				t.Errorf("status line = %q, want %q", v.Status, tt.status)
			}
			if v.SignIn != tt.signIn {
				t.Errorf("sign-in item = %q, want %q", v.SignIn, tt.signIn)
			}
			if v.Icon != tt.icon {
				t.Errorf("icon = %v, want %v", v.Icon, tt.icon)
			}
			if v.Proxy != "Proxy on "+addr {
				t.Errorf("proxy item = %q, want %q", v.Proxy, "Proxy on "+addr)
			}
			if v.ProxyChecked != tt.proxyOn || v.ProxyEnabled != tt.proxyClick {
				t.Errorf("proxy checked/enabled = %v/%v, want %v/%v", v.ProxyChecked, v.ProxyEnabled, tt.proxyOn, tt.proxyClick)
			}
			if v.Autostart != tt.autostart || !v.AutoEnabled {
				t.Errorf("start at login checked/enabled = %v/%v, want %v/true", v.Autostart, v.AutoEnabled, tt.autostart)
			}
			if !strings.HasPrefix(v.Tooltip, "ccmux\n"+v.Status) {
				t.Errorf("tooltip %q does not start with the status line", v.Tooltip)
			}
			for _, want := range tt.tooltipHas {
				if !strings.Contains(v.Tooltip, want) {
					t.Errorf("tooltip %q lacks %q", v.Tooltip, want)
				}
			}
		})
	}
}

// The tray has no expiry rule of its own: a login is expired when auth's
// Account.Expired says so at the tray's clock, with or without an event.
func TestRenderExpiryIsAuthsRule(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		login  auth.Account
		status string
		icon   assets.Icon
	}{
		{"token before its expiry", auth.Account{Email: "ada@example.com", ExpiresAt: now.Add(time.Second)}, "Signed in as ada@example.com (expires 10:00)", assets.Active},
		{"token at its expiry", auth.Account{Email: "ada@example.com", ExpiresAt: now}, "Session expired — sign in again", assets.Error},
		{"token without an expiry", auth.Account{Email: "ada@example.com"}, "Session expired — sign in again", assets.Error},
		{"API key past its token's expiry", auth.Account{Email: "ada@example.com", ExpiresAt: now.Add(-time.Hour), APIKey: true}, "Signed in as ada@example.com (expires 09:00)", assets.Active},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := render(one(loginState{login: &tt.login}, state{proxyOn: true}), now, time.UTC)
			if v.Status != tt.status || v.Icon != tt.icon {
				t.Errorf("status %q, icon %v; want %q, %v", v.Status, v.Icon, tt.status, tt.icon)
			}
		})
	}
}

func TestRenderBusyItemsAreDisabled(t *testing.T) {
	now := time.Now()
	if v := render(one(loginState{signingOut: true, login: &auth.Account{APIKey: true}}, state{}), now, time.UTC); v.SignInEnabled {
		t.Error("the sign-out item stays clickable while signing out")
	}
	if v := render(state{autoBusy: true}, now, time.UTC); v.AutoEnabled {
		t.Error("Start at login stays clickable while its entry is written")
	}
	if v := render(state{autoUnknown: "permission denied"}, now, time.UTC); v.AutoEnabled {
		t.Error("Start at login is clickable although its entry cannot be read")
	}
}

func TestBaseURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:13456": "http://127.0.0.1:13456",
		"0.0.0.0:8080":    "http://127.0.0.1:8080",
		"[::]:13456":      "http://[::1]:13456",
		"[::1]:13456":     "http://[::1]:13456",
		"localhost:1":     "http://localhost:1",
	} {
		if got := baseURL(addr); got != want {
			t.Errorf("baseURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
