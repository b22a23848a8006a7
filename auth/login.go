package auth

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pkg/browser"
)

// ErrAccessDenied means the user declined access on the sign-in page.
var ErrAccessDenied = errors.New("access was declined on the sign-in page")

// LoginOptions select the login flow.
type LoginOptions struct {
	Console bool // use the console preset and create an API key
	// Manual prints the URL to Out and reads the pasted code from In.
	Manual bool
	// Out receives the URL and instructions (nil: discarded); In is where
	// a manual login reads the pasted code.
	Out io.Writer
	In  io.Reader
}

// Login signs in to providerID and stores the token: by default in the
// browser with a loopback redirect (RFC 8252), or, with Manual, by printing
// the URL and reading the pasted code. It gives up after the login timeout
// (5 minutes by default) or when ctx is done.
func (c *Client) Login(ctx context.Context, providerID string, opts LoginOptions) (Account, error) {
	name := ""
	if opts.Console {
		name = "console"
	}
	p, err := PresetFor(c.config(), providerID, name)
	if err != nil {
		return Account{}, err
	}
	if err := c.canLogin(ctx, providerID, p); err != nil {
		return Account{}, err
	}
	out := &guardedWriter{w: opts.Out}
	defer out.close()
	if opts.Manual {
		return c.manualLogin(ctx, providerID, p, out, opts.In)
	}
	return c.loopbackLogin(ctx, providerID, p, out)
}

// canLogin refuses, before any browser opens, a login that would replace
// a record ccmux does not own, or a console login (an API key) that would
// replace a subscription login.
func (c *Client) canLogin(ctx context.Context, id string, p Preset) error {
	recs, err := c.store.read(ctx)
	if err != nil && !errors.Is(err, ErrCorruptStore) {
		return err
	}
	r, ok := recs[id]
	switch {
	case !ok:
		return nil
	case !c.owns(id, r):
		return fmt.Errorf("%w; pick another id with --provider", c.notOwned(id))
	case p.IsConsole() && r.APIKey == "" && r.RefreshToken != "":
		return fmt.Errorf("%s holds a Claude subscription login, which a console login (an API key) would replace; pick another id with --provider (the default for --console is %s)", id, ConsoleID)
	}
	return nil
}

// ConsoleID is the token-store id of a console login (`ccmux login
// --console`) when none is given, so that it never replaces the
// subscription login.
const ConsoleID = "anthropic-console"

// pendingLogin is an Authorize waiting for its Exchange.
type pendingLogin struct {
	id      string
	preset  Preset
	k       pkce
	created time.Time
}

// Authorize starts a manual-redirect login (admin API) and returns the URL
// and state; the PKCE verifier stays inside the Client. preset is "claude",
// "console" or "" for the one configured for providerID.
func (c *Client) Authorize(providerID, preset string) (url, state string, err error) {
	p, err := PresetFor(c.config(), providerID, preset)
	if err != nil {
		return "", "", err
	}
	k := newPKCE()
	now := c.clock.Now()
	c.mu.Lock()
	oldest := ""
	for s, pl := range c.pending {
		if now.Sub(pl.created) > pendingTTL {
			delete(c.pending, s)
		} else if oldest == "" || pl.created.Before(c.pending[oldest].created) {
			oldest = s
		}
	}
	if len(c.pending) >= maxPending {
		delete(c.pending, oldest)
	}
	c.pending[k.state] = pendingLogin{id: providerID, preset: p, k: k, created: now}
	c.mu.Unlock()
	return p.authCodeURL(p.RedirectURI, k), k.state, nil
}

// Exchange completes a login started by Authorize. code may be "code#state"
// or the whole callback URL; state may then be "".
func (c *Client) Exchange(ctx context.Context, providerID, code, state string) (Account, error) {
	pc, ps, err := parsePastedCode(code)
	if err != nil {
		return Account{}, err
	}
	if ps != "" && state != "" && ps != state {
		return Account{}, errors.New("the code's state does not match the state given: they come from different sign-in attempts")
	}
	if state == "" {
		state = ps
	}
	if state == "" {
		return Account{}, errors.New("state is missing: pass the state Authorize returned, or the code as code#state")
	}
	c.mu.Lock()
	pl, ok := c.pending[state]
	if ok && pl.id == providerID && c.clock.Now().Sub(pl.created) <= pendingTTL {
		delete(c.pending, state)
	} else {
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return Account{}, fmt.Errorf("no sign-in for %s is waiting for this state (it was already used, expired after %s, or was started for another provider); start again", providerID, pendingTTL)
	}
	return c.complete(ctx, providerID, pl.preset, pc, state, pl.preset.RedirectURI, pl.k.verifier)
}

// complete exchanges the code, creates an API key for the console preset,
// stores the login and announces it.
func (c *Client) complete(ctx context.Context, id string, p Preset, code, state, redirectURI, verifier string) (Account, error) {
	start := c.clock.Now()
	// A failure is returned, and its caller says it (the command line
	// prints it, the tray notifies and logs it, the admin API answers it):
	// a warning here would say it twice.
	tok, err := c.exchangeCode(ctx, p, code, state, redirectURI, verifier)
	if err != nil {
		c.log.Debug("sign-in failed", "provider", id, "err", err.Error())
		return Account{}, err
	}
	fresh := record{ProviderID: id, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresAt: tok.Expiry, ManagedBy: managedByCcmux}
	if fresh.ExpiresAt.IsZero() {
		fresh.ExpiresAt = c.clock.Now().Add(defaultLifetime)
	}
	fresh.Email, _ = tok.Extra("email").(string)
	if p.IsConsole() {
		if fresh.APIKey, err = c.createAPIKey(ctx, p, tok.AccessToken); err != nil {
			c.log.Debug("sign-in failed", "provider", id, "err", err.Error())
			return Account{}, err
		}
	}
	var r record
	err = c.store.update(ctx, func(recs map[string]record) (bool, error) {
		old, ok := recs[id]
		if ok && !c.owns(id, old) {
			return false, c.notOwned(id)
		}
		// A new login of ours keeps the fields of the old record ccmux does
		// not know (set by another app or a later version).
		r = fresh
		if ok && !old.opaque {
			r.EnterpriseURL, r.orig, r.base = old.EnterpriseURL, old.orig, old.base
		}
		recs[id] = r
		return true, nil
	})
	if err != nil {
		return Account{}, fmt.Errorf("saving the token: %w", err)
	}
	c.resetHealth(id)
	c.log.Info("signed in", "provider", id, "preset", p.Name, "duration", c.clock.Now().Sub(start).Round(time.Millisecond))
	acct := Account{ProviderID: id, Email: r.Email, ExpiresAt: r.ExpiresAt, APIKey: r.APIKey != ""}
	c.publish(Event{Kind: SignedIn, ProviderID: id, Email: r.Email, ExpiresAt: r.ExpiresAt, APIKey: acct.APIKey})
	c.nudge()
	return acct, nil
}

// loopbackLogin listens on 127.0.0.1 (and ::1 when available) on one
// OS-chosen port, opens the browser on the authorize URL with redirect
// http://localhost:PORT/callback, and completes the first callback whose
// state matches. Other callbacks get a 400 page and the wait goes on.
func (c *Client) loopbackLogin(ctx context.Context, id string, p Preset, out *guardedWriter) (Account, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return Account{}, fmt.Errorf("listening on 127.0.0.1 for the sign-in redirect: %w", err)
	}
	port := ln4.Addr().(*net.TCPAddr).Port
	listeners := []net.Listener{ln4}
	// "localhost" may resolve to ::1 first; listen there too when the
	// system has IPv6 loopback, on the same port.
	if ln6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", port)); err == nil {
		listeners = append(listeners, ln6)
	}
	redirect := fmt.Sprintf("http://localhost:%d/callback", port)
	k := newPKCE()
	authURL := p.authCodeURL(redirect, k)

	type result struct {
		acct Account
		err  error
	}
	done := make(chan result, 1)
	var claimed sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		code, err := callbackCode(r.URL.Query(), k.state)
		if errors.Is(err, errWrongState) {
			c.log.Warn("sign-in callback ignored: its state does not match this sign-in", "provider", id)
			writePage(w, http.StatusBadRequest, "This sign-in link is not the one ccmux is waiting for",
				"It may be from an older attempt. Use the newest sign-in window, or start the sign-in again.")
			return
		}
		first := false
		claimed.Do(func() { first = true })
		if !first {
			writePage(w, http.StatusConflict, "This sign-in was already handled", "You can close this tab.")
			return
		}
		var acct Account
		if err == nil {
			acct, err = c.complete(ctx, id, p, code, k.state, redirect, k.verifier)
		}
		switch {
		case err != nil:
			writePage(w, http.StatusBadRequest, "Sign-in failed", upperFirst(err.Error())+".")
		case p.SuccessURL != "":
			// Where Claude Code sends the browser: the sign-in service's
			// own "you are signed in" page.
			http.Redirect(w, r, p.SuccessURL, http.StatusFound)
		default:
			writePage(w, http.StatusOK, "Signed in to Claude — you can close this tab", "ccmux is now signed in.")
		}
		done <- result{acct, err}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	for _, ln := range listeners {
		go srv.Serve(ln)
	}
	defer func() {
		// Stop any exchange still running (timeout, cancel), then Shutdown
		// closes the listeners at once (freeing the port) and lets the
		// result page finish.
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
		// A Serve goroutine that had not started yet when Shutdown ran
		// closes its listener only when it gets to run: close them here so
		// the port is free when the login returns.
		for _, ln := range listeners {
			ln.Close()
		}
	}()

	fmt.Fprintf(out, "If the browser does not open, visit this URL to sign in:\n\n  %s\n\n", authURL)
	// The opener may wait for the browser to exit (pkg/browser does); never
	// let it hold up the login.
	go func() {
		err := c.open(authURL)
		switch {
		case err == nil:
		case out.discards():
			// No one reads out (the tray): the log is where it shows.
			c.log.Warn("could not open a browser", "provider", id, "err", err.Error())
		default:
			// Said at once, and once: a user with no browser on this
			// computer should not wait for the login timeout to learn
			// about --manual. The launcher's own error ("exec: xdg-open,…")
			// says nothing a user can act on. The URL comes again, so it is
			// on screen under the hint.
			fmt.Fprintf(out, "No browser could be opened; open this URL yourself, or use --manual (stop with Ctrl-C, then run `ccmux login --manual` to sign in from any device by pasting a code):\n\n  %s\n\n", authURL)
		}
	}()
	select {
	case r := <-done:
		return r.acct, r.err
	case <-ctx.Done():
		return Account{}, cancelled{ctx.Err()}
	case <-c.clock.After(c.loginTimeout):
		return Account{}, fmt.Errorf("sign-in timed out after %s without an answer from the browser; run the login again, or use --manual", c.loginTimeout)
	}
}

// manualLogin prints the authorize URL (with the preset's manual redirect)
// and reads pasted codes from in until one is valid.
func (c *Client) manualLogin(ctx context.Context, id string, p Preset, out io.Writer, in io.Reader) (Account, error) {
	if in == nil {
		return Account{}, errors.New("a manual sign-in needs input to paste the code into")
	}
	k := newPKCE()
	fmt.Fprintf(out, "Open this URL in a browser and sign in:\n\n  %s\n\nThen paste the code the page shows (code#state, or the whole URL) and press Enter.\n", p.authCodeURL(p.RedirectURI, k))
	lines := make(chan string)
	go func() {
		// A read from a terminal cannot be interrupted; this goroutine ends
		// with the input (the command line exits right after the login).
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 4096), 64*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	timeout := c.clock.After(c.loginTimeout)
	rejected := false // a paste was refused
	for {
		fmt.Fprint(out, "Code: ")
		select {
		case <-ctx.Done():
			fmt.Fprintln(out) // end the "Code: " line before the error
			return Account{}, cancelled{ctx.Err()}
		case <-timeout:
			fmt.Fprintln(out)
			return Account{}, fmt.Errorf("sign-in timed out after %s waiting for the code", c.loginTimeout)
		case line, ok := <-lines:
			if !ok {
				fmt.Fprintln(out)
				if rejected {
					return Account{}, errors.New("no code#state was pasted (the input ended)")
				}
				return Account{}, errors.New("no code was pasted (the input ended)")
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			code, state, err := parsePastedCode(line)
			if errors.Is(err, ErrAccessDenied) {
				return Account{}, err
			}
			if err == nil && state == "" {
				// The token endpoint would refuse a code without its state
				// (it is part of the exchange); say so without asking it.
				err = errors.New("that is not the code#state the page shows (the part from # on is missing); paste all of it")
			}
			if err != nil {
				rejected = true
				fmt.Fprintf(out, "%s; try again.\n", upperFirst(err.Error()))
				continue
			}
			if subtle.ConstantTimeCompare([]byte(state), []byte(k.state)) != 1 {
				fmt.Fprintln(out, "That code is from a different sign-in attempt (its state does not match); paste the code for the URL above.")
				continue
			}
			return c.complete(ctx, id, p, code, k.state, p.RedirectURI, k.verifier)
		}
	}
}

var errWrongState = errors.New("the state does not match this sign-in")

// callbackCode checks a loopback callback's query against the expected
// state and returns its code. A wrong or missing state is errWrongState,
// whatever else the query says.
func callbackCode(q url.Values, wantState string) (string, error) {
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(wantState)) != 1 || wantState == "" {
		return "", errWrongState
	}
	code, _, err := codeFromQuery(q)
	return code, err
}

// codeFromQuery reads code and state from a callback query, turning an
// OAuth error into words.
func codeFromQuery(q url.Values) (code, state string, err error) {
	if e := q.Get("error"); e != "" {
		if e == "access_denied" {
			return "", "", ErrAccessDenied
		}
		msg := "the sign-in page reported an error: " + sanitise(e, 64)
		if d := q.Get("error_description"); d != "" {
			msg += " (" + sanitise(d, 200) + ")"
		}
		return "", "", errors.New(msg)
	}
	code, state = q.Get("code"), q.Get("state")
	if err := checkCodePart("code", code); err != nil {
		return "", "", err
	}
	if state != "" {
		if err := checkCodePart("state", state); err != nil {
			return "", "", err
		}
	}
	return code, state, nil
}

// parsePastedCode reads what a user pastes after a manual sign-in: the
// code#state the page shows, a bare code, the whole callback URL, or its
// query string. state is "" when the paste has none.
func parsePastedCode(s string) (code, state string, err error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", "", errors.New("nothing was pasted")
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil {
			return "", "", errors.New("the pasted URL could not be read")
		}
		q := u.Query()
		if q.Get("code") == "" && q.Get("error") == "" && u.Fragment != "" {
			q, _ = url.ParseQuery(u.Fragment)
		}
		if q.Get("code") == "" && q.Get("error") == "" {
			return "", "", errors.New("the pasted URL has no code in it")
		}
		return codeFromQuery(q)
	case strings.HasPrefix(s, "?") || strings.HasPrefix(s, "code=") || strings.Contains(s, "&code="):
		q, err := url.ParseQuery(strings.TrimPrefix(s, "?"))
		if err != nil {
			return "", "", errors.New("the pasted text could not be read as code=…&state=…")
		}
		return codeFromQuery(q)
	}
	code, state, hasState := strings.Cut(s, "#")
	if err := checkCodePart("code", code); err != nil {
		return "", "", err
	}
	if hasState {
		if err := checkCodePart("state", state); err != nil {
			return "", "", err
		}
	}
	return code, state, nil
}

// checkCodePart accepts what an authorization code or state looks like:
// 1 to 2048 characters of base64 / base64url and URL-safe punctuation.
func checkCodePart(what, v string) error {
	if v == "" {
		return fmt.Errorf("the pasted text has no %s", what)
	}
	if len(v) > 2048 {
		return fmt.Errorf("the pasted %s is too long to be one", what)
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("-._~+/=", b) >= 0) {
			return fmt.Errorf("that does not look like a sign-in %s (it has spaces or unexpected characters)", what)
		}
	}
	return nil
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>ccmux — {{.Title}}</title>
<style>body{font:16px system-ui,sans-serif;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:#faf9f5;color:#1f1e1d}
main{max-width:32rem;padding:2rem;text-align:center}h1{font-size:1.3rem}</style></head>
<body><main><h1>{{.Title}}</h1><p>{{.Message}}</p></main></body></html>
`))

// writePage answers the browser with a small self-contained page.
func writePage(w http.ResponseWriter, status int, title, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pageTemplate.Execute(w, struct{ Title, Message string }{title, message})
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var quietBrowser sync.Once

// openBrowser opens url with pkg/browser, keeping the helper's output off
// our stdout (the command line prints results there).
func openBrowser(url string) error {
	quietBrowser.Do(func() {
		browser.Stdout = io.Discard
		browser.Stderr = io.Discard
	})
	return browser.OpenURL(url)
}

// guardedWriter drops writes after close, so a browser opener that returns
// late cannot write to the caller's stream once Login has returned.
type guardedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.w == nil {
		return len(p), nil
	}
	return g.w.Write(p)
}

// discards reports whether writes go nowhere: no writer was given.
func (g *guardedWriter) discards() bool { return g.w == nil }

func (g *guardedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// cancelled is a sign-in stopped by its context (Ctrl-C, the tray's Cancel
// sign-in): it reads as the user's words, not "context canceled", and is
// still the context's error for errors.Is.
type cancelled struct{ cause error }

func (e cancelled) Error() string { return "sign-in cancelled" }
func (e cancelled) Unwrap() error { return e.cause }
