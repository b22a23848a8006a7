// Package authtest is a fake Claude OAuth server for tests: authorize page,
// JSON token endpoint with rotating refresh tokens, and the console's
// create_api_key endpoint. It listens on loopback only and never reaches the internet.
//
// A typical test:
//
//	srv := authtest.NewServer()
//	defer srv.Close()
//	cfgText := srv.OAuthTOML("anthropic-max", "claude") // append to a config.toml
//
// A stub browser that GETs the authorize URL and follows redirects (curl -sL)
// completes a loopback login: the authorize endpoint answers 302 to the
// redirect_uri with a fresh code and the same state.
package authtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClientID is the client id the fake accepts (the real Claude Code one).
const ClientID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"

// Paths served by the fake, relative to Server.URL.
const (
	AuthorizePath      = "/oauth/authorize"
	TokenPath          = "/v1/oauth/token"
	ManualCallbackPath = "/oauth/code/callback"
	SuccessPath        = "/oauth/code/success"
	APIKeyPath         = "/api/oauth/claude_cli/create_api_key"
	UsagePath          = "/api/oauth/usage"
)

// Failure makes the token endpoint answer refresh requests with an error.
type Failure struct {
	Status     int    // HTTP status, e.g. 400, 429, 503
	Error      string // OAuth error code in the JSON body, e.g. "invalid_grant"; "" sends a non-JSON body
	RetryAfter string // Retry-After header value, "" for none
	Times      int    // how many refresh requests fail; 0 means all until cleared
}

// InvalidGrant is the failure the real server sends for a dead refresh token.
var InvalidGrant = Failure{Status: 400, Error: "invalid_grant"}

// TokenRequest is one request the token endpoint received, as decoded JSON.
type TokenRequest struct {
	ContentType string
	Body        map[string]any
}

// Server is a running fake OAuth server. Its setters may be called at any
// time, from any goroutine.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:PORT.
	URL string

	ts *httptest.Server

	mu          sync.Mutex
	expiresIn   int
	email       string
	rotate      bool
	deny        bool
	failure     *Failure
	failed      int
	tokenReqs   []TokenRequest
	authorizes  []url.Values
	apiKeyCalls int
	successes   []url.Values      // queries of the success page's visits
	codes       map[string]grant  // authorization code -> what it was issued for
	refresh     map[string]bool   // live refresh tokens
	access      map[string]bool   // live access tokens
	secrets     map[string]string // every value issued -> kind, for leak checks
	tokenBlock  chan struct{}
	answerBlock chan struct{}
	usage       usageState
}

type grant struct {
	challenge, redirectURI, state string
}

// NewServer starts a fake with expires_in 3600, email "user@example.com"
// and rotating refresh tokens.
func NewServer() *Server {
	s := &Server{
		expiresIn: 3600,
		email:     "user@example.com",
		rotate:    true,
		codes:     map[string]grant{},
		refresh:   map[string]bool{},
		access:    map[string]bool{},
		secrets:   map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AuthorizePath, s.authorize)
	mux.HandleFunc("POST "+TokenPath, s.token)
	mux.HandleFunc("GET "+ManualCallbackPath, s.manualCallback)
	mux.HandleFunc("GET "+SuccessPath, s.success)
	mux.HandleFunc("POST "+APIKeyPath, s.createAPIKey)
	mux.HandleFunc("GET "+UsagePath, s.serveUsage)
	s.ts = httptest.NewServer(mux)
	s.URL = s.ts.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// AuthorizeURL is the fake's authorize endpoint.
func (s *Server) AuthorizeURL() string { return s.URL + AuthorizePath }

// TokenURL is the fake's token endpoint.
func (s *Server) TokenURL() string { return s.URL + TokenPath }

// ManualRedirectURI is the fake's "copy this code" page, for manual logins.
func (s *Server) ManualRedirectURI() string { return s.URL + ManualCallbackPath }

// SuccessURL is the fake's "signed in" page, where a loopback login sends
// the browser (with app=claude-code, as the real one).
func (s *Server) SuccessURL() string { return s.URL + SuccessPath + "?app=claude-code" }

// SuccessVisits returns the query of every visit to the success page.
func (s *Server) SuccessVisits() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.successes...)
}

// APIKeyURL is the fake's create_api_key endpoint.
func (s *Server) APIKeyURL() string { return s.URL + APIKeyPath }

// OAuthTOML returns an [oauth.ID] table pointing preset ("claude" or
// "console") at this server, ready to append to a config.toml.
func (s *Server) OAuthTOML(id, preset string) string {
	key := id
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(id) {
		key = strconv.Quote(id)
	}
	return fmt.Sprintf("\n[oauth.%s]\npreset = %q\nclient_id = %q\nauthorize_url = %q\ntoken_url = %q\nredirect_uri = %q\nsuccess_url = %q\napi_key_url = %q\nusage_url = %q\n",
		key, preset, ClientID, s.AuthorizeURL(), s.TokenURL(), s.ManualRedirectURI(), s.SuccessURL(), s.APIKeyURL(), s.UsageURL())
}

// SetExpiresIn sets expires_in for tokens issued from now on.
func (s *Server) SetExpiresIn(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiresIn = int(d / time.Second)
}

// SetEmail sets account.email_address in token responses; "" omits account.
func (s *Server) SetEmail(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.email = email
}

// SetRotate chooses whether refreshes issue a new refresh token (and revoke
// the old one) or omit refresh_token from the response.
func (s *Server) SetRotate(rotate bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = rotate
}

// SetDeny makes the authorize endpoint redirect with error=access_denied,
// as when the user clicks "Deny".
func (s *Server) SetDeny(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = deny
}

// FailRefresh makes refresh requests fail as f says; a zero Failure clears it.
func (s *Server) FailRefresh(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = 0
	if f.Status == 0 {
		s.failure = nil
		return
	}
	s.failure = &f
}

// HoldTokens makes the token endpoint wait before answering until the
// returned release function is called (to line up concurrent callers).
func (s *Server) HoldTokens() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.tokenBlock = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.tokenBlock = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// HoldTokenAnswers makes the token endpoint do its work (a refresh rotates
// the refresh token at once, as the real one does) and then hold the answer
// until release is called. A client that goes away meanwhile has lost the
// answer but not the rotation: the old refresh token is dead.
func (s *Server) HoldTokenAnswers() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.answerBlock = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.answerBlock = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// TokenRequests returns every request the token endpoint received, in order.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest(nil), s.tokenReqs...)
}

// RefreshCount is how many refresh_token grants were requested.
func (s *Server) RefreshCount() int {
	n := 0
	for _, r := range s.TokenRequests() {
		if r.Body["grant_type"] == "refresh_token" {
			n++
		}
	}
	return n
}

// AuthorizeRequests returns the query of every authorize request, in order.
func (s *Server) AuthorizeRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.authorizes...)
}

// APIKeyCalls is how many API keys were created.
func (s *Server) APIKeyCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiKeyCalls
}

// ValidAccessToken reports whether tok is an access token the fake issued
// (a refresh does not revoke older access tokens).
func (s *Server) ValidAccessToken(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access[tok]
}

// ValidRefreshToken reports whether tok can still be used to refresh.
func (s *Server) ValidRefreshToken(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh[tok]
}

// Secrets returns every secret the fake has issued (codes, tokens, API keys),
// for asserting that none of them appears in logs or output.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.secrets))
	for v := range s.secrets {
		out = append(out, v)
	}
	return out
}

// Approve performs the authorize request for authorizeURL as a signed-in user
// who clicks "Authorize", without following the redirect, and returns where
// the browser would go next (redirect_uri with code and state, or error).
func (s *Server) Approve(authorizeURL string) (*url.URL, error) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authorizeURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("authorize answered %s", resp.Status)
	}
	return resp.Location()
}

func (s *Server) newSecret(kind, prefix string) string {
	b := make([]byte, 24)
	rand.Read(b)
	v := prefix + base64.RawURLEncoding.EncodeToString(b)
	s.secrets[v] = kind
	return v
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.authorizes = append(s.authorizes, q)
	deny := s.deny
	s.mu.Unlock()
	var problems []string
	for key, want := range map[string]string{"client_id": ClientID, "response_type": "code", "code_challenge_method": "S256", "code": "true"} {
		if got := q.Get(key); got != want {
			problems = append(problems, fmt.Sprintf("%s: want %q, got %q", key, want, got))
		}
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() {
		problems = append(problems, "redirect_uri: not an absolute URL")
	}
	if q.Get("state") == "" || q.Get("code_challenge") == "" || q.Get("scope") == "" {
		problems = append(problems, "state, code_challenge and scope are required")
	}
	if len(problems) > 0 {
		http.Error(w, "invalid authorize request: "+strings.Join(problems, "; "), http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	if deny {
		back.Set("error", "access_denied")
		back.Set("error_description", "The user denied access")
	} else {
		s.mu.Lock()
		code := s.newSecret("code", "code-")
		s.codes[code] = grant{challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), state: q.Get("state")}
		s.mu.Unlock()
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// manualCallback is the page the real server shows for the manual flow:
// the code to paste, as code#state.
func (s *Server) manualCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if e := q.Get("error"); e != "" {
		fmt.Fprintf(w, "Authorization failed: %s\n", e)
		return
	}
	fmt.Fprintf(w, "%s#%s\n", q.Get("code"), q.Get("state"))
}

// success is the page the real server shows after a loopback sign-in.
func (s *Server) success(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.successes = append(s.successes, r.URL.Query())
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html><title>Signed in</title><h1>Build something great</h1><p>You are signed in to Claude Code (fake).</p>\n")
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hold := s.answerBlock
	s.mu.Unlock()
	if hold == nil {
		s.answerToken(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.answerToken(rec, r)
	select {
	case <-hold:
	case <-r.Context().Done():
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func (s *Server) answerToken(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	decodeErr := json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	s.tokenReqs = append(s.tokenReqs, TokenRequest{ContentType: r.Header.Get("Content-Type"), Body: body})
	block := s.tokenBlock
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || decodeErr != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be JSON")
		return
	}
	str := func(k string) string { v, _ := body[k].(string); return v }
	if str("client_id") != ClientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client_id")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch str("grant_type") {
	case "authorization_code":
		g, ok := s.codes[str("code")]
		delete(s.codes, str("code")) // codes are single use
		sum := sha256.Sum256([]byte(str("code_verifier")))
		switch {
		case !ok:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or used authorization code")
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match code_challenge")
		case str("redirect_uri") != g.redirectURI:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match")
		case str("state") != g.state:
			oauthError(w, http.StatusBadRequest, "invalid_request", "state does not match")
		default:
			s.issue(w, "")
		}
	case "refresh_token":
		if f := s.failure; f != nil && (f.Times == 0 || s.failed < f.Times) {
			s.failed++
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			if f.Error == "" {
				http.Error(w, http.StatusText(f.Status), f.Status)
				return
			}
			oauthError(w, f.Status, f.Error, "refresh failed (fake)")
			return
		}
		old := str("refresh_token")
		if !s.refresh[old] {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token is invalid or was already used")
			return
		}
		if s.rotate {
			delete(s.refresh, old)
			s.issue(w, "")
			return
		}
		s.issue(w, old)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type")
	}
}

// issue answers with a new access token; keepRefresh non-empty means the
// refresh token is not rotated and is omitted from the response. s.mu is held.
func (s *Server) issue(w http.ResponseWriter, keepRefresh string) {
	access := s.newSecret("access_token", "sk-ant-oat01-fake-")
	s.access[access] = true
	resp := map[string]any{
		"token_type":   "Bearer",
		"access_token": access,
		"expires_in":   s.expiresIn,
		"scope":        "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload",
	}
	if keepRefresh == "" {
		refresh := s.newSecret("refresh_token", "sk-ant-ort01-fake-")
		s.refresh[refresh] = true
		resp["refresh_token"] = refresh
	}
	if s.email != "" {
		resp["account"] = map[string]string{"uuid": "00000000-0000-4000-8000-000000000001", "email_address": s.email}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || !s.access[tok] {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid bearer token"}}`)
		return
	}
	s.apiKeyCalls++
	key := s.newSecret("api_key", "sk-ant-api03-fake-")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"raw_key": key})
}
