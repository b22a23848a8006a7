package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/config"
	"ccmux/internal/testsupport"
)

// fakeProxy answers /health and /api/usage as a running ccmux does, on a
// loopback port; it returns that port.
func fakeProxy(t *testing.T) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			fmt.Fprint(w, `{"status":"ok","service":"ccmux"}`)
		case "/api/usage":
			fmt.Fprint(w, `{"providers":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

func TestCLIStatusExitCodes(t *testing.T) {
	oauth := authtest.NewServer()
	defer oauth.Close()
	future := time.Now().Add(8 * time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	login := func(expires, extra string) string {
		return `{"anthropic-max":{"provider_id":"anthropic-max","access_token":"at-SECRET","refresh_token":"rt-SECRET",` +
			`"expires_at":"` + expires + `","enterprise_url":null` + extra + `}}`
	}
	// Another app's login in the shared file signs nobody in to ccmux.
	gemini := `{"gemini":{"provider_id":"gemini","access_token":"ya29-SECRET","refresh_token":"1//SECRET","expires_at":"` + future + `","enterprise_url":null}}`
	apiKeyOnly := func(toml string) string {
		return strings.Replace(toml, "auth_type = \"oauth\"\noauth_provider = \"anthropic-max\"", "auth_type = \"apikey\"\napi_key = \"sk-ant-test\"", 1)
	}
	tests := []struct {
		name    string
		running bool
		tokens  string // oauth_tokens.json, "" for none
		edit    func(string) string
		code    int
		out     string
	}{
		{"running and signed in", true, login(future, ""), nil, 0, "anthropic-max: signed in"},
		{"running, expired but will refresh", true, login(past, ""), nil, 0, "it is refreshed on the next request"},
		{"running, a record with no expiry", true, `{"anthropic-max":{"provider_id":"anthropic-max","access_token":"at-SECRET","refresh_token":"rt-SECRET"}}`, nil, 0, "anthropic-max: signed in, no expiry"},
		{"running, console API key", true, login(past, `,"api_key":"sk-ant-SECRET"`), nil, 0, "API key"},
		{"running, no OAuth provider configured", true, "", apiKeyOnly, 0, "answering"},
		{"running, never signed in", true, "", nil, 4, "Not signed in"},
		{"running, only another app's login", true, gemini, nil, 4, "managed by another app"},
		{"running, session ended", true, login(past, `,"last_refresh_error":"invalid_grant: refresh token revoked"`), nil, 4, "and refreshing it fails: invalid_grant: refresh token revoked"},
		{"not running, signed in", false, login(future, ""), nil, 3, "not running"},
		{"not running, not signed in", false, "", nil, 3, "not running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := isolateHome(t)
			port := testsupport.FreePort(t)
			if tt.running {
				port = fakeProxy(t)
			}
			text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1) + oauth.OAuthTOML("anthropic-max", "claude")
			if tt.edit != nil {
				if text = tt.edit(text); !strings.Contains(text, "sk-ant-test") {
					t.Fatal("the default config's provider lines changed; update the test")
				}
			}
			dir := filepath.Join(home, ".claude-code-mux")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.tokens != "" {
				if err := os.WriteFile(filepath.Join(dir, "oauth_tokens.json"), []byte(tt.tokens), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := runCLI(t, "status")
			if r.code != tt.code || !strings.Contains(r.stdout, tt.out) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", r.code, tt.code, tt.out, r.stdout, r.stderr)
			}
			// The output comes first and is all: no error line for the status.
			if !strings.Contains(r.stdout, "Proxy: http://127.0.0.1:"+strconv.Itoa(port)) || r.stderr != "" {
				t.Errorf("want the proxy line on stdout and nothing on stderr\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, "SECRET") {
				t.Error("status printed a token value")
			}
		})
	}
	r := runCLI(t, "help", "status")
	for _, want := range []string{"Exit status:", "0  the proxy answers and you are signed in (or no OAuth provider is configured)", "3  the proxy is not running", "4  the proxy answers, but"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("ccmux help status: exit %d, lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
}

// `ccmux status` tells a ccmux on the port (and its config file) from
// another program answering there, which does not count as running.
func TestCLIStatusTellsCcmuxFromOthers(t *testing.T) {
	for _, tt := range []struct {
		name, health string
		code         int
		out          string
	}{
		{"ccmux", `{"status":"ok","service":"ccmux","config":"CONFIG"}`, 0, "ccmux answering (config CONFIG)"},
		{"ccmux, an older one that does not say its config", `{"status":"ok","service":"ccmux"}`, 0, "ccmux answering"},
		{"ccmux with another config", `{"status":"ok","service":"ccmux","config":"/home/u/other.toml"}`, 3, "another ccmux answers here, running /home/u/other.toml, not CONFIG"},
		{"another program", `{"status":"healthy"}`, 3, "another program answers here, not ccmux"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := isolateHome(t)
			path := filepath.Join(home, "c.toml")
			tt.out = strings.ReplaceAll(tt.out, "CONFIG", path)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/health" {
					fmt.Fprint(w, strings.ReplaceAll(tt.health, "CONFIG", path))
					return
				}
				http.NotFound(w, r)
			}))
			defer srv.Close()
			port := srv.Listener.Addr().(*net.TCPAddr).Port
			// An API-key config: nobody needs to sign in.
			text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1)
			text = strings.Replace(text, "auth_type = \"oauth\"\noauth_provider = \"anthropic-max\"", "auth_type = \"apikey\"\napi_key = \"sk-ant-test\"", 1)
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, "status", "--config", path)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.out) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", r.code, tt.code, tt.out, r.stdout, r.stderr)
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		20 * time.Second:                 "less than a minute",
		59*time.Minute + 50*time.Second:  "1 h",
		25 * time.Minute:                 "25 min",
		7*time.Hour + 59*time.Minute:     "7 h 59 min",
		24 * time.Hour:                   "1 day",
		29 * time.Hour:                   "1 day 5 h",
		3*24*time.Hour + 5*time.Hour:     "3 days",
		27049*time.Hour + 44*time.Minute: "1127 days",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// `ccmux status` lists claude-code-mux's logins as another app's, and
// never moves or rewrites the file, even a corrupt one or a named pipe.
func TestCLIStatusBesideClaudeCodeMux(t *testing.T) {
	c := newLoginCLI(t)
	c.useConfig(ccmConfigText(t), "anthropic-max")
	data := c.installStore("ccm_oauth_tokens.json")
	stdout, stderr, code := c.run(nil, "status")
	if code != 3 { // signed in, no proxy running
		t.Fatalf("status: exit %d, want 3\n%s", code, stderr)
	}
	for _, id := range []string{"gemini", "openai-codex", "github-copilot"} {
		if !strings.Contains(stdout, id+": managed by another app") {
			t.Errorf("status does not list %s as another app's:\n%s", id, stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^anthropic-max: signed in, token expired .*; it is refreshed on the next request$`).MatchString(stdout) {
		t.Errorf("status:\n%s", stdout)
	}
	if after, _ := os.ReadFile(c.tokenFile()); string(after) != string(data) {
		t.Error("status rewrote the token file")
	}

	garbage := []byte(`{"anthropic-max": {"access_token": "half-writ`)
	os.WriteFile(c.tokenFile(), garbage, 0o600)
	_, stderr, code = c.run(nil, "status")
	if code != 1 || !strings.Contains(stderr, c.tokenFile()) || !strings.Contains(stderr, "not valid JSON") {
		t.Errorf("status on a corrupt file: exit %d\n%s", code, stderr)
	}
	aside, _ := filepath.Glob(c.tokenFile() + ".corrupt-*")
	if after, _ := os.ReadFile(c.tokenFile()); string(after) != string(garbage) || len(aside) != 0 {
		t.Errorf("status moved or changed the corrupt file (aside: %v)", aside)
	}

	if runtime.GOOS == "windows" {
		return
	}
	os.Remove(c.tokenFile())
	if err := testsupport.Mkfifo(c.tokenFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, stderr, code = c.run(nil, "status")
	if code != 1 || !strings.Contains(stderr, c.tokenFile()+" is a named pipe") || time.Since(start) > 20*time.Second {
		t.Errorf("status on a named pipe: exit %d after %s\n%s", code, time.Since(start), stderr)
	}
}

// An expired token that the running proxy fails to refresh is not "signed
// in": status asks that proxy (its admin API knows the failures it has not
// written to the file, such as one cut short by the client) and says why,
// exit 4. Times carry their zone.
func TestCLIStatusSaysRefreshFails(t *testing.T) {
	home := isolateHome(t)
	dir := filepath.Join(home, ".claude-code-mux")
	path := filepath.Join(dir, "config.toml")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			fmt.Fprintf(w, `{"status":"ok","service":"ccmux","config":%q}`, path)
		case "/api/oauth/tokens":
			fmt.Fprint(w, `[{"provider_id":"anthropic-max","expires_at":"2020-01-01T00:00:00Z","is_expired":true,"needs_refresh":true,"kind":"oauth","last_refresh_error":"the token endpoint answered 503"}]`)
		case "/api/usage":
			fmt.Fprint(w, `{"providers":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file has no error: the proxy's failures were not written yet.
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tokens := `{"anthropic-max":{"provider_id":"anthropic-max","access_token":"at-SECRET","refresh_token":"rt-SECRET","expires_at":"` + past + `","enterprise_url":null}}`
	if err := os.WriteFile(filepath.Join(dir, "oauth_tokens.json"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "status")
	if r.code != 4 || !strings.Contains(r.stdout, "refreshing it fails: the token endpoint answered 503") || strings.Contains(r.stdout, "refreshed on the next request") {
		t.Errorf("exit %d, want 4 saying the refresh fails and why\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`token expired \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ([A-Z]{3,5}|[+-]\d{2,4})`).MatchString(r.stdout) {
		t.Errorf("the expiry has no time zone:\n%s", r.stdout)
	}
}
