package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/internal/testsupport"
)

// browser records what a stub browser was asked to open and what it saw.
type stubBrowser struct {
	urls  chan string
	pages chan string
}

// followingBrowser returns an opener that, like `curl -sL`, follows the
// URL through the fake's redirect to the loopback callback, after first
// running before (e.g. hitting the callback with a wrong state).
func followingBrowser(t *testing.T, before func(authURL string)) (*stubBrowser, func(string) error) {
	b := &stubBrowser{urls: make(chan string, 1), pages: make(chan string, 1)}
	return b, func(u string) error {
		b.urls <- u
		if before != nil {
			before(u)
		}
		status, body, err := testsupport.Follow(u)
		if err != nil {
			t.Errorf("stub browser: %v", err)
		}
		b.pages <- fmt.Sprintf("%d %s", status, body)
		return nil
	}
}

func TestLoopbackLogin(t *testing.T) {
	b, open := followingBrowser(t, nil)
	e := newEnv(t, withOpener(open))
	events, stop := e.c.Subscribe()
	defer stop()
	var out testsupport.Buffer
	acct, err := e.c.Login(context.Background(), "anthropic-max", LoginOptions{Out: &out})
	e.note(err)
	e.note(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if acct.Email != "user@example.com" || acct.ProviderID != "anthropic-max" || acct.APIKey {
		t.Fatalf("account = %+v", acct)
	}
	authURL := <-b.urls
	if !strings.Contains(out.String(), authURL) {
		t.Errorf("the URL was not printed for a user whose browser does not open:\n%s", out.String())
	}
	u, _ := url.Parse(authURL)
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; got != e.srv.AuthorizeURL() {
		t.Errorf("authorize endpoint = %s", got)
	}
	want := map[string]string{
		"code": "true", "client_id": ClientID, "response_type": "code",
		"scope":                 "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload",
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("authorize %s = %q, want %q", k, q.Get(k), v)
		}
	}
	redirect := q.Get("redirect_uri")
	if !regexp.MustCompile(`^http://localhost:\d+/callback$`).MatchString(redirect) {
		t.Errorf("redirect_uri = %q", redirect)
	}
	state := q.Get("state")
	if raw, err := base64.RawURLEncoding.DecodeString(state); err != nil || len(raw) != 32 {
		t.Errorf("state %q is not 32 random bytes in base64url", state)
	}

	// The exchange: JSON, every field, and the verifier matches the challenge.
	reqs := e.srv.TokenRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d token requests", len(reqs))
	}
	if reqs[0].ContentType != "application/json" {
		t.Errorf("Content-Type = %q", reqs[0].ContentType)
	}
	body := reqs[0].Body
	if len(body) != 6 {
		t.Errorf("exchange body has %d fields: %v", len(body), keys(body))
	}
	for k, v := range map[string]string{"grant_type": "authorization_code", "state": state, "client_id": ClientID, "redirect_uri": redirect} {
		if body[k] != v {
			t.Errorf("exchange %s = %v, want %q", k, body[k], v)
		}
	}
	verifier, _ := body["code_verifier"].(string)
	sum := sha256.Sum256([]byte(verifier))
	if q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("code_challenge is not S256(code_verifier)")
	}
	if verifier == state {
		t.Error("state is the verifier")
	}
	if code, _ := body["code"].(string); code == "" {
		t.Error("exchange without code")
	}

	// The browser ends on the sign-in service's success page, as after a
	// Claude Code login ([oauth.ID] success_url points it at the fake).
	page := <-b.pages
	if !strings.HasPrefix(page, "200 ") || !strings.Contains(page, "signed in to Claude Code (fake)") {
		t.Errorf("browser page = %.300s", page)
	}
	if v := e.srv.SuccessVisits(); len(v) != 1 || v[0].Get("app") != "claude-code" {
		t.Errorf("success page visits = %v, want one with app=claude-code", v)
	}
	ev := nextEvent(t, events, SignedIn)
	if ev.Email != "user@example.com" || ev.ProviderID != "anthropic-max" || ev.APIKey {
		t.Errorf("event = %+v", ev)
	}
	r := e.records()["anthropic-max"]
	if !e.srv.ValidAccessToken(r.AccessToken) || !e.srv.ValidRefreshToken(r.RefreshToken) || r.Email != "user@example.com" {
		t.Errorf("stored record = %+v", r)
	}
	if got := r.ExpiresAt.Sub(time.Now()); got < 59*time.Minute || got > time.Hour {
		t.Errorf("expires in %s, want about an hour", got)
	}
	assertPortFree(t, redirect)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// assertPortFree checks nothing listens any more on the redirect's port.
func assertPortFree(t *testing.T, redirect string) {
	t.Helper()
	u, _ := url.Parse(redirect)
	for _, host := range []string{"127.0.0.1", "::1"} {
		addr := net.JoinHostPort(host, u.Port())
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		conn.Close()
		// A dial can succeed with nobody listening: on a busy machine the
		// kernel may give the dial this very port as its source (a TCP
		// self-connection). Only a port we cannot bind is still held.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s port %s still accepts connections after the login", host, u.Port())
			continue
		}
		ln.Close()
	}
}

func TestLoopbackWrongStateThenRight(t *testing.T) {
	var bad []string
	b, open := followingBrowser(t, func(authURL string) {
		u, _ := url.Parse(authURL)
		redirect := u.Query().Get("redirect_uri")
		port := strings.TrimSuffix(strings.TrimPrefix(redirect, "http://localhost:"), "/callback")
		hosts := []string{"127.0.0.1"}
		if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
			ln.Close()
			hosts = append(hosts, "[::1]")
		}
		for _, host := range hosts {
			for _, query := range []string{"code=stolen&state=wrong", "code=stolen", "error=access_denied&state=wrong"} {
				status, body, err := testsupport.Follow("http://" + host + ":" + port + "/callback?" + query)
				if err != nil {
					t.Errorf("%s: %v", host, err)
				}
				bad = append(bad, fmt.Sprintf("%s %s: %d %s", host, query, status, body))
				if status != http.StatusBadRequest || !strings.Contains(body, "not the one ccmux is waiting for") {
					t.Errorf("callback on %s with %q: %d %.200s", host, query, status, body)
				}
			}
		}
	})
	e := newEnv(t, withOpener(open))
	acct, err := e.c.Login(context.Background(), "anthropic-max", LoginOptions{})
	e.note(err)
	if err != nil {
		t.Fatalf("the right callback after wrong ones: %v", err)
	}
	<-b.urls
	if page := <-b.pages; !strings.HasPrefix(page, "200 ") {
		t.Errorf("page after the right callback: %.200s", page)
	}
	if acct.Email == "" || len(bad) < 3 {
		t.Errorf("acct %+v, bad callbacks %d", acct, len(bad))
	}
	// The stolen code never reached the token endpoint.
	if n := len(e.srv.TokenRequests()); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

func TestLoopbackDenied(t *testing.T) {
	b, open := followingBrowser(t, nil)
	e := newEnv(t, withOpener(open))
	e.srv.SetDeny(true)
	_, err := e.c.Login(context.Background(), "anthropic-max", LoginOptions{})
	e.note(err)
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
	<-b.urls
	if page := <-b.pages; !strings.Contains(page, "Sign-in failed") || !strings.Contains(page, "declined") {
		t.Errorf("page = %.300s", page)
	}
	if len(e.records()) != 0 || len(e.srv.TokenRequests()) != 0 {
		t.Error("a denied login stored or requested a token")
	}
}

func TestLoopbackTimeoutAndCancelFreePort(t *testing.T) {
	for _, how := range []string{"timeout", "cancel"} {
		t.Run(how, func(t *testing.T) {
			urls := make(chan string, 1)
			e := newEnv(t, withLoginTimeout(200*time.Millisecond), withOpener(func(u string) error { urls <- u; return nil }))
			if how == "cancel" {
				e.c.loginTimeout = time.Hour
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := e.c.Login(ctx, "anthropic-max", LoginOptions{})
				errc <- err
			}()
			u, _ := url.Parse(<-urls)
			redirect := u.Query().Get("redirect_uri")
			if how == "cancel" {
				cancel()
			}
			err := <-errc
			e.note(err)
			switch {
			case how == "timeout" && (err == nil || !strings.Contains(err.Error(), "timed out")):
				t.Errorf("err = %v", err)
			case how == "cancel" && !errors.Is(err, context.Canceled):
				t.Errorf("err = %v", err)
			}
			assertPortFree(t, redirect)
		})
	}
}

func TestLoopbackOpenerFailsPrintsURL(t *testing.T) {
	e := newEnv(t, withLoginTimeout(5*time.Second))
	pr, pw := io.Pipe()
	defer pw.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := e.c.Login(context.Background(), "anthropic-max", LoginOptions{Out: pw})
		errc <- err
	}()
	// The user opens the printed URL themselves.
	buf := make([]byte, 4096)
	var seen string
	var authURL string
	for authURL == "" {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		seen += string(buf[:n])
		authURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/oauth/authorize\?\S+`).FindString(seen)
	}
	go io.Copy(io.Discard, pr)
	if status, _, err := testsupport.Follow(authURL); err != nil || status != 200 {
		t.Fatalf("following the printed URL: %d %v", status, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// manualSession drives a manual login: it returns the authorize URL the
// login printed and a function to paste a line.
func manualSession(t *testing.T, e *env, opts LoginOptions) (authURL string, paste func(string), result chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	opts.Manual, opts.In, opts.Out = true, pr, outW
	result = make(chan error, 1)
	go func() {
		_, err := e.c.Login(context.Background(), "anthropic-max", opts)
		e.note(err)
		result <- err
		pw.Close()
		outW.Close()
	}()
	var seen strings.Builder
	buf := make([]byte, 4096)
	for authURL == "" {
		n, err := outR.Read(buf)
		if err != nil {
			t.Fatalf("reading the manual login's output: %v (%s)", err, seen.String())
		}
		seen.Write(buf[:n])
		authURL = regexp.MustCompile(`http://\S+/oauth/authorize\?\S+`).FindString(seen.String())
	}
	out := &testsupport.Buffer{}
	go func() {
		io.Copy(out, outR)
		e.note(out.String())
	}()
	t.Cleanup(func() { pw.Close(); e.note(out.String()) })
	return authURL, func(s string) { fmt.Fprintln(pw, s) }, result
}

func TestManualLogin(t *testing.T) {
	for _, form := range []string{"code#state", "code", "url", "query"} {
		t.Run(form, func(t *testing.T) {
			e := newEnv(t)
			authURL, paste, result := manualSession(t, e, LoginOptions{})
			u, _ := url.Parse(authURL)
			if got := u.Query().Get("redirect_uri"); got != e.srv.ManualRedirectURI() {
				t.Errorf("manual redirect_uri = %q, want %q", got, e.srv.ManualRedirectURI())
			}
			loc, err := e.srv.Approve(authURL)
			if err != nil {
				t.Fatal(err)
			}
			// What the user copies from the fake's callback page.
			_, shown, _ := testsupport.Follow(loc.String())
			shown = strings.TrimSpace(shown)
			code, state, _ := strings.Cut(shown, "#")
			switch form {
			case "code#state":
				paste("  " + shown + "  ")
			case "code":
				// Without its state it is not what the page shows: refused
				// without a token request, and the prompt asks again.
				paste(code)
				paste(shown)
			case "url":
				paste(loc.String())
			case "query":
				paste("code=" + url.QueryEscape(code) + "&state=" + url.QueryEscape(state))
			}
			if err := <-result; err != nil {
				t.Fatal(err)
			}
			if n := len(e.srv.TokenRequests()); n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
			body := e.srv.TokenRequests()[0].Body
			if body["code"] != code || body["state"] != state || body["redirect_uri"] != e.srv.ManualRedirectURI() {
				t.Errorf("exchange body = %v", body)
			}
			if _, ok := e.records()["anthropic-max"]; !ok {
				t.Error("no token stored")
			}
		})
	}
}

func TestManualLoginRejectsWrongState(t *testing.T) {
	e := newEnv(t)
	authURL, paste, result := manualSession(t, e, LoginOptions{})
	loc, _ := e.srv.Approve(authURL)
	code := loc.Query().Get("code")
	paste(code + "#not-this-attempt")
	paste("has spaces in it")
	select {
	case err := <-result:
		t.Fatalf("login ended after bad pastes: %v", err)
	default:
	}
	paste(code + "#" + loc.Query().Get("state"))
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	if n := len(e.srv.TokenRequests()); n != 1 {
		t.Errorf("%d token requests, want 1 (bad pastes must not reach the server)", n)
	}
}

func TestManualLoginDeniedURL(t *testing.T) {
	e := newEnv(t)
	_, paste, result := manualSession(t, e, LoginOptions{})
	paste(e.srv.ManualRedirectURI() + "?error=access_denied&state=x")
	if err := <-result; !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v", err)
	}
}

func TestConsoleLoginStoresAPIKey(t *testing.T) {
	e := newEnv(t)
	events, stop := e.c.Subscribe()
	defer stop()
	authURL, paste, result := manualSession(t, e, LoginOptions{Console: true})
	loc, _ := e.srv.Approve(authURL)
	paste(loc.String())
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	// The tray learns from the event that this login never expires.
	if ev := nextEvent(t, events, SignedIn); !ev.APIKey {
		t.Errorf("SignedIn event = %+v, want APIKey set", ev)
	}
	if e.srv.APIKeyCalls() != 1 {
		t.Fatalf("%d API keys created", e.srv.APIKeyCalls())
	}
	r := e.records()["anthropic-max"]
	if !strings.HasPrefix(r.APIKey, "sk-ant-api03-fake-") || r.AccessToken == "" || r.RefreshToken == "" {
		t.Fatalf("record = provider %s, api key set %v, access set %v", r.ProviderID, r.APIKey != "", r.AccessToken != "")
	}
	for _, get := range []func(context.Context, string) (Credential, error){e.c.Credential, e.c.ForceRefresh} {
		cred, err := get(context.Background(), "anthropic-max")
		if err != nil || !cred.APIKey || cred.Value != r.APIKey {
			t.Errorf("credential: api key %v, is the stored key %v, err %v", cred.APIKey, cred.Value == r.APIKey, err)
		}
	}
	accts, _ := e.c.Accounts()
	if len(accts) != 1 || !accts[0].APIKey {
		t.Errorf("accounts = %+v", accts)
	}
	// A console key never needs refreshing, however old the access token.
	e.expire("anthropic-max", time.Now().Add(-time.Hour))
	if cred, err := e.c.Credential(context.Background(), "anthropic-max"); err != nil || cred.Value != r.APIKey || e.srv.RefreshCount() != 0 {
		t.Errorf("expired console login: err %v, refreshes %d", err, e.srv.RefreshCount())
	}
}

func TestAuthorizeExchange(t *testing.T) {
	e := newEnv(t)
	u, state, err := e.c.Authorize("console-id", "")
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := url.Parse(u); q.Query().Get("state") != state || q.Query().Get("redirect_uri") != e.srv.ManualRedirectURI() {
		t.Fatalf("url %s, state %s", u, state)
	}
	loc, _ := e.srv.Approve(u)
	code := loc.Query().Get("code")
	_, err = e.c.Exchange(context.Background(), "anthropic-max", code, state)
	e.note(err)
	if err == nil {
		t.Fatal("exchange for another provider id accepted")
	}
	// code#state form, state argument empty; the console preset makes a key.
	acct, err := e.c.Exchange(context.Background(), "console-id", code+"#"+state, "")
	e.note(err)
	if err != nil || !acct.APIKey {
		t.Fatalf("exchange: %+v %v", acct, err)
	}
	_, err = e.c.Exchange(context.Background(), "console-id", code+"#"+state, "")
	e.note(err)
	if err == nil || !strings.Contains(err.Error(), "no sign-in for console-id is waiting") {
		t.Fatalf("second exchange of the same state: %v", err)
	}
	_, err = e.c.Exchange(context.Background(), "console-id", "abc#one", "two")
	if err == nil {
		t.Fatal("mismatched states accepted")
	}
}

func TestPresetFor(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		id, name string
		want     Preset
		err      string
	}{
		{"unconfigured", "", Claude(), ""},
		{"unconfigured", "console", Console(), ""},
		{"anthropic-max", "", Preset{Name: "claude", ClientID: authtest.ClientID, AuthorizeURL: e.srv.AuthorizeURL(), TokenURL: e.srv.TokenURL(),
			RedirectURI: e.srv.ManualRedirectURI(), Scopes: Claude().Scopes, SuccessURL: e.srv.SuccessURL(), APIKeyURL: e.srv.APIKeyURL(), UsageURL: e.srv.UsageURL()}, ""},
		{"console-id", "", Preset{Name: "console", ClientID: authtest.ClientID, AuthorizeURL: e.srv.AuthorizeURL(), TokenURL: e.srv.TokenURL(),
			RedirectURI: e.srv.ManualRedirectURI(), Scopes: Console().Scopes, SuccessURL: e.srv.SuccessURL(), APIKeyURL: e.srv.APIKeyURL(), UsageURL: e.srv.UsageURL()}, ""},
		{"x", "github", Preset{}, `unknown login preset "github"`},
	}
	for _, tt := range tests {
		got, err := PresetFor(e.cfg, tt.id, tt.name)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s/%s: err = %v", tt.id, tt.name, err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s/%s:\n got %+v\nwant %+v (%v)", tt.id, tt.name, got, tt.want, err)
		}
	}
	// Claude Code 2.1.332's values.
	if c := Claude(); c.AuthorizeURL != "https://claude.com/cai/oauth/authorize" || c.TokenURL != "https://platform.claude.com/v1/oauth/token" ||
		c.RedirectURI != "https://platform.claude.com/oauth/code/callback" ||
		c.SuccessURL != "https://platform.claude.com/oauth/code/success?app=claude-code" ||
		strings.Join(c.Scopes, " ") != "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload" {
		t.Errorf("Claude() = %+v", c)
	}
	if c := Console(); c.AuthorizeURL != "https://platform.claude.com/oauth/authorize" || c.APIKeyURL != "https://api.anthropic.com/api/oauth/claude_cli/create_api_key" {
		t.Errorf("Console() = %+v", c)
	}
	e.cfg.OAuth["bad"] = e.cfg.OAuth["anthropic-max"]
	o := e.cfg.OAuth["bad"]
	o.TokenURL = "platform.claude.com/token"
	e.cfg.OAuth["bad"] = o
	if _, err := PresetFor(e.cfg, "bad", ""); err == nil || !strings.Contains(err.Error(), "oauth.bad.token_url") {
		t.Errorf("bad token_url: %v", err)
	}
	o.TokenURL, o.SuccessURL = "", "signed-in.html"
	e.cfg.OAuth["bad"] = o
	if _, err := PresetFor(e.cfg, "bad", ""); err == nil || !strings.Contains(err.Error(), "oauth.bad.success_url") {
		t.Errorf("bad success_url: %v", err)
	}
}

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(crashHelperEnv) != "":
		crashHelper()
		return
	case os.Getenv(refreshHelperEnv) != "":
		refreshHelper()
		return
	}
	os.Exit(m.Run())
}

func TestAuthorizePendingIsBounded(t *testing.T) {
	e := newEnv(t)
	var states []string
	for range maxPending + 8 {
		_, state, err := e.c.Authorize("anthropic-max", "")
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, state)
	}
	if len(e.c.pending) != maxPending {
		t.Fatalf("%d pending logins, want %d", len(e.c.pending), maxPending)
	}
	if _, err := e.c.Exchange(context.Background(), "anthropic-max", "code", states[0]); err == nil || !strings.Contains(err.Error(), "no sign-in") {
		t.Errorf("the oldest pending login still accepted: %v", err)
	}
	if _, ok := e.c.pending[states[len(states)-1]]; !ok {
		t.Error("the newest pending login was dropped")
	}
}
