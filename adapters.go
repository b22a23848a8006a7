package main

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"ccmux/auth"
	"ccmux/proxy"
	"ccmux/tray"
)

// oauthAdmin adapts the auth client to the proxy's admin API.
type oauthAdmin struct{ c *auth.Client }

func (a oauthAdmin) Authorize(id, preset string) (string, string, error) {
	return a.c.Authorize(id, preset)
}

func (a oauthAdmin) Exchange(ctx context.Context, id, code, state string) error {
	_, err := a.c.Exchange(ctx, id, code, state)
	return err
}

func (a oauthAdmin) Tokens() ([]auth.Account, error) {
	accounts, err := a.c.Accounts()
	own := make([]auth.Account, 0, len(accounts))
	for _, acct := range accounts {
		if acct.Foreign {
			continue // another app's login: not ccmux's to list, refresh or delete
		}
		own = append(own, acct)
	}
	return own, err
}

func (a oauthAdmin) Delete(id string) error { return a.c.Logout(id) }

// Refresh forces a refresh through the same path as the proxy's 401 retry,
// so the auth client's rules for which logins it may refresh apply here too.
func (a oauthAdmin) Refresh(ctx context.Context, id string) (auth.Account, error) {
	if _, err := a.c.ForceRefresh(ctx, id); err != nil {
		return auth.Account{}, err
	}
	accounts, err := a.c.Accounts()
	if err != nil {
		return auth.Account{}, err
	}
	for _, acct := range accounts {
		if acct.ProviderID == id {
			return acct, nil
		}
	}
	return auth.Account{}, fmt.Errorf("the login %s was removed while it was refreshed", id)
}

// trayAuth adapts the auth client to the tray, for the Claude logins of
// the running config, which a reload may change.
type trayAuth struct {
	client *auth.Client
	logins func() (ids []string, primary string)
}

// trayLogins are the logins the tray lists, for srv's running config: the
// Claude logins of the enabled providers (else the one `ccmux login` uses),
// and the one that serves the default model (else the first).
func trayLogins(srv *proxy.Server) (ids []string, primary string) {
	cfg := srv.CurrentConfig()
	ids = cfg.EnabledClaudeOAuthIDs()
	if len(ids) == 0 {
		ids = []string{cfg.DefaultOAuthProvider()}
	}
	primary = srv.DefaultLogin()
	if !slices.Contains(ids, primary) {
		primary = ids[0]
	}
	return ids, primary
}

func (t *trayAuth) Logins() ([]string, string) { return t.logins() }

func (t *trayAuth) Login(ctx context.Context, id string) (auth.Account, error) {
	return t.client.Login(ctx, id, auth.LoginOptions{})
}

func (t *trayAuth) Logout(id string) error { return t.client.Logout(id) }

func (t *trayAuth) Account(id string) (auth.Account, bool) {
	accounts, _ := t.client.Accounts()
	i := slices.IndexFunc(accounts, func(a auth.Account) bool { return a.ProviderID == id && !a.Foreign })
	if i < 0 {
		return auth.Account{}, false
	}
	return accounts[i], true
}

// Events passes on the events of the listed logins only, as listed when
// the event comes.
func (t *trayAuth) Events() (<-chan auth.Event, func()) {
	in, cancel := t.client.Subscribe()
	out := make(chan auth.Event)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for ev := range in {
			if ids, _ := t.logins(); !slices.Contains(ids, ev.ProviderID) {
				continue
			}
			select {
			case out <- ev:
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done); cancel() }) }
}

// trayUsage shows the tray's logins' limits from the proxy's tracker.
type trayUsage struct {
	srv     *proxy.Server
	tracker *proxy.UsageTracker
}

func (u trayUsage) Usage(login string) (tray.Usage, bool) {
	for _, p := range u.srv.UsageReport() {
		if p.Login == login {
			tu := toTrayUsage(p)
			// Who serves instead matters only once a limit is reached.
			if !tu.LimitedUntil.IsZero() || slices.ContainsFunc(tu.Windows, tray.Limit.Spent) {
				tu.Fallback = u.srv.Fallback(login)
			}
			return tu, true
		}
	}
	return tray.Usage{}, false
}

func (u trayUsage) Changed() <-chan struct{} { return u.tracker.Changed() }

func toTrayUsage(p proxy.ProviderUsage) tray.Usage {
	tu := tray.Usage{Provider: p.Provider}
	if p.UpdatedAt != nil {
		tu.UpdatedAt = *p.UpdatedAt
	}
	if p.LimitedUntil != nil {
		tu.LimitedUntil = *p.LimitedUntil
	}
	for _, w := range p.Windows {
		tu.Windows = append(tu.Windows, toTrayLimit(w))
	}
	return tu
}

func toTrayLimit(w auth.UsageWindow) tray.Limit {
	l := tray.Limit{Name: w.Name, Utilization: w.Utilization, Status: w.Status}
	if w.ResetsAt != nil {
		l.ResetsAt = *w.ResetsAt
	}
	return l
}
