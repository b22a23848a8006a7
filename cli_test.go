package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/config"
	"ccmux/internal/testsupport"
)

// cliResult is what one in-process `ccmux ARGS…` printed and returned.
type cliResult struct {
	stdout, stderr string
	code           int
}

// isolateHome points the home directory (and so the default config and
// token store) at a fresh temporary directory, so no test touches the
// real one.
func isolateHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	t.Setenv("CCMUX_CONFIG", "")
	return home
}

func runCLI(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(""), &stdout, &stderr)
	return cliResult{stdout.String(), stderr.String(), code}
}

// writeConfig writes the default config with the proxy on port to dir.
func writeConfig(t *testing.T, dir string, port int, extra string) string {
	t.Helper()
	text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1)
	if text == config.DefaultTOML {
		t.Fatal("the default config no longer has port = 13456")
	}
	path := filepath.Join(dir, "custom.toml")
	if err := os.WriteFile(path, []byte(text+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLIGlobalFlagsBeforeOrAfterTheCommand(t *testing.T) {
	home := isolateHome(t)
	port := testsupport.FreePort(t)
	file := writeConfig(t, t.TempDir(), port, "")
	baseURL := "http://127.0.0.1:" + strconv.Itoa(port)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"config", "check", "--config", file}, file + " is valid"},
		{[]string{"config", "check", "--config=" + file}, file + " is valid"},
		{[]string{"config", "--config", file, "check"}, file + " is valid"},
		{[]string{"--config", file, "config", "check"}, file + " is valid"},
		{[]string{"-config", file, "config", "check"}, file + " is valid"},
		{[]string{"status", "--config", file}, baseURL},
		{[]string{"--config", file, "status"}, baseURL},
	}
	for _, tt := range tests {
		r := runCLI(t, tt.args...)
		if r.code == 2 || r.code == 1 || !strings.Contains(r.stdout, tt.want) {
			t.Errorf("ccmux %v: exit %d, want output with %q\nstdout: %s\nstderr: %s", tt.args, r.code, tt.want, r.stdout, r.stderr)
		}
	}
	// The default config was never used, so never written.
	if _, err := os.Stat(filepath.Join(home, ".claude-code-mux", "config.toml")); err == nil {
		t.Error("a command given --config after its name wrote the default config")
	}
	for _, args := range [][]string{{"status", "--config"}, {"config", "check", "--config="}} {
		r := runCLI(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "--config needs a value") {
			t.Errorf("ccmux %v: exit %d, stderr %q; want exit 2 naming --config", args, r.code, r.stderr)
		}
	}
}

func TestCLIHelpVersionAndUnknownFlags(t *testing.T) {
	home := isolateHome(t)
	var version bytes.Buffer
	if code := run([]string{"version"}, strings.NewReader(""), &version, &bytes.Buffer{}); code != 0 || version.Len() == 0 {
		t.Fatalf("ccmux version: exit %d, %q", code, version.String())
	}
	loginHelp := []string{
		"Usage: ccmux login [--provider ID] [--manual] [--console]",
		"--provider ID  sign in to the token-store ID",
		"--manual ", "print the URL and read the code#state you paste",
		"--console ", "create an Anthropic Console API key",
		"--config PATH", "-h, --help",
	}
	tests := []struct {
		args     []string
		code     int
		stdout   []string // each appears on stdout
		inStderr string
	}{
		{[]string{"help", "login"}, 0, loginHelp, ""},
		{[]string{"login", "--help"}, 0, loginHelp, ""},
		{[]string{"login", "-h"}, 0, loginHelp, ""},
		{[]string{"--config", "x.toml", "login", "-help"}, 0, loginHelp, ""},
		{[]string{"logout", "-h"}, 0, []string{"Usage: ccmux logout [--provider ID]", "--provider ID  sign out of the token-store ID"}, ""},
		{[]string{"start", "--help"}, 0, []string{"Usage: ccmux start", "Run the proxy only", "--config PATH"}, ""},
		{[]string{"tray", "-h"}, 0, []string{"Usage: ccmux tray", "--config PATH"}, ""},
		{[]string{"config", "--help"}, 0, []string{"Usage: ccmux config check", "Validate the config file"}, ""},
		{[]string{"config", "check", "-h"}, 0, []string{"Usage: ccmux config check"}, ""},
		{[]string{"autostart", "--help"}, 0, []string{"Usage: ccmux autostart on|off|status"}, ""},
		{[]string{"help", "status"}, 0, []string{"Usage: ccmux status"}, ""},
		{[]string{"help", "help"}, 0, []string{"Usage: ccmux help [COMMAND]"}, ""},
		{[]string{"version", "--help"}, 0, []string{"Usage: ccmux version"}, ""},
		{[]string{"--help"}, 0, []string{"Usage: ccmux [--config PATH] [COMMAND]", "ccmux COMMAND --help"}, ""},
		{[]string{"-h"}, 0, []string{"Usage: ccmux [--config PATH] [COMMAND]"}, ""},
		{[]string{"--version"}, 0, []string{version.String()}, ""},
		{[]string{"-v"}, 0, []string{version.String()}, ""},
		{[]string{"--port", "1"}, 2, nil, "ccmux: unknown flag --port (see ccmux --help)"},
		{[]string{"start", "--port", "1"}, 2, nil, "ccmux start: unknown flag --port (see ccmux help start)"},
		{[]string{"start", "-port=1"}, 2, nil, "ccmux start: unknown flag -port (see"},
		{[]string{"login", "--manual", "--providr=x"}, 2, nil, "ccmux login: unknown flag --providr (see"},
		{[]string{"config", "check", "--verbose"}, 2, nil, "ccmux config: unknown flag --verbose (see"},
		{[]string{"login", "--provider"}, 2, nil, "ccmux login: --provider needs a value (see"},
		{[]string{"help", "nope"}, 2, nil, `unknown command "nope"`},
	}
	for _, tt := range tests {
		r := runCLI(t, tt.args...)
		ok := r.code == tt.code && strings.Contains(r.stderr, tt.inStderr)
		for _, want := range tt.stdout {
			ok = ok && strings.Contains(r.stdout, want)
		}
		if tt.code == 0 && r.stderr != "" || tt.code != 0 && strings.Count(r.stderr, "\n") != 1 {
			ok = false
		}
		if !ok {
			t.Errorf("ccmux %v: exit %d, want %d with %q on stdout and %q on stderr\nstdout: %s\nstderr: %s",
				tt.args, r.code, tt.code, tt.stdout, tt.inStderr, r.stdout, r.stderr)
		}
	}
	// Help does nothing else: no default config written, no login started.
	if _, err := os.Stat(filepath.Join(home, ".claude-code-mux")); err == nil {
		t.Error("asking for help wrote to ~/.claude-code-mux")
	}
}

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
		{"running, expired but will refresh", true, login(past, ""), nil, 0, "anthropic-max: signed in"},
		{"running, console API key", true, login(past, `,"api_key":"sk-ant-SECRET"`), nil, 0, "API key"},
		{"running, no OAuth provider configured", true, "", apiKeyOnly, 0, "answering"},
		{"running, never signed in", true, "", nil, 4, "Not signed in"},
		{"running, only another app's login", true, gemini, nil, 4, "managed by another app"},
		{"running, session ended", true, login(past, `,"last_refresh_error":"invalid_grant: refresh token revoked"`), nil, 4, "last refresh failed"},
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

func TestCLILogout(t *testing.T) {
	future := time.Now().Add(8 * time.Hour).UTC().Format(time.RFC3339)
	rec := func(id, extra string) string {
		return `"` + id + `":{"provider_id":"` + id + `","access_token":"at-SECRET","refresh_token":"rt-SECRET","expires_at":"` + future + `","enterprise_url":null` + extra + `}`
	}
	claude := rec("anthropic-max", "")
	console := rec("console", `,"api_key":"sk-ant-SECRET","managed_by":"ccmux"`)
	gemini := rec("gemini", "")
	tests := []struct {
		name       string
		tokens     []string // records in oauth_tokens.json
		args       []string
		code       int
		stdout     string
		stderr     []string
		leftStored []string // ids still in the file after
	}{
		{"nothing stored", nil, nil, 0, "Not signed in to anthropic-max; nothing to remove.", nil, nil},
		{"nothing stored, named", []string{gemini}, []string{"--provider", "anthropic-max"}, 0, "Not signed in to anthropic-max;", nil, []string{"gemini"}},
		{"signed in", []string{claude, gemini}, nil, 0, "Signed out of anthropic-max.", nil, []string{"gemini"}},
		{"a console key ccmux stored", []string{console, claude}, []string{"--provider", "console"}, 0, "Signed out of console.", nil, []string{"anthropic-max"}},
		{"a typo", []string{claude}, []string{"--provider", "anthropic-mx"}, 2, "",
			[]string{"ccmux logout: --provider anthropic-mx: no login is stored under that id, and it is not an oauth_provider in ", "(configured: anthropic-max)"}, []string{"anthropic-max"}},
		{"another app's login", []string{claude, gemini}, []string{"--provider", "gemini"}, 1, "",
			[]string{"gemini", "ccmux leaves it alone"}, []string{"anthropic-max", "gemini"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := isolateHome(t)
			dir := filepath.Join(home, ".claude-code-mux")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config.DefaultTOML), 0o600); err != nil {
				t.Fatal(err)
			}
			store := filepath.Join(dir, "oauth_tokens.json")
			if tt.tokens != nil {
				if err := os.WriteFile(store, []byte("{"+strings.Join(tt.tokens, ",")+"}"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := runCLI(t, append([]string{"logout"}, tt.args...)...)
			ok := r.code == tt.code && strings.Contains(r.stdout, tt.stdout)
			for _, want := range tt.stderr {
				ok = ok && strings.Contains(r.stderr, want)
			}
			if tt.code != 0 && strings.Count(r.stderr, "\n") != 1 {
				ok = false
			}
			if !ok {
				t.Errorf("exit %d, want %d with %q on stdout and %q on stderr\nstdout: %s\nstderr: %s", r.code, tt.code, tt.stdout, tt.stderr, r.stdout, r.stderr)
			}
			data, _ := os.ReadFile(store)
			for _, id := range []string{"anthropic-max", "console", "gemini"} {
				if left := strings.Contains(string(data), `"`+id+`"`); left != slices.Contains(tt.leftStored, id) {
					t.Errorf("after logout, %s stored: %v, want %v", id, left, !left)
				}
			}
		})
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
		{"ccmux", `{"status":"ok","service":"ccmux","config":"/home/u/other.toml"}`, 0, "ccmux answering (config /home/u/other.toml)"},
		{"another program", `{"status":"healthy"}`, 3, "another program answers here, not ccmux"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := isolateHome(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/health" {
					fmt.Fprint(w, tt.health)
					return
				}
				http.NotFound(w, r)
			}))
			defer srv.Close()
			port := srv.Listener.Addr().(*net.TCPAddr).Port
			// An API-key config: nobody needs to sign in.
			text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1)
			text = strings.Replace(text, "auth_type = \"oauth\"\noauth_provider = \"anthropic-max\"", "auth_type = \"apikey\"\napi_key = \"sk-ant-test\"", 1)
			path := filepath.Join(home, "c.toml")
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

// server.api_key = "$VAR" with VAR unset stops the proxy from starting, so
// config check says so as an error, naming the variable and the key.
func TestCLIConfigCheckServerKeyFromMissingVariable(t *testing.T) {
	home := isolateHome(t)
	t.Setenv("CCMUX_TEST_UNSET_KEY", "")
	text := strings.Replace(config.DefaultTOML, "[server]\n", "[server]\napi_key = \"$CCMUX_TEST_UNSET_KEY\"\n", 1)
	path := filepath.Join(home, "c.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "config", "check", "--config", path)
	if r.code != 1 || !strings.Contains(r.stderr, "environment variable CCMUX_TEST_UNSET_KEY (server.api_key) is not set") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// --log-level (anywhere on the line) wins over server.log_level; a bad
// value is a usage error naming the flag.
func TestCLILogLevel(t *testing.T) {
	home := isolateHome(t)
	path := writeConfig(t, home, testsupport.FreePort(t), "")
	if r := runCLI(t, "config", "check", "--config", path, "--log-level", "verbose"); r.code != 2 || !strings.Contains(r.stderr, "--log-level") {
		t.Errorf("bad --log-level: exit %d, %q", r.code, r.stderr)
	}
	var e env
	e.stderr = io.Discard
	if _, err := e.takeGlobalFlags([]string{"status", "--log-level=debug", "--config", path}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.loadConfig(); err != nil || e.level != slog.LevelDebug {
		t.Errorf("--log-level=debug: level %v, %v", e.level, err)
	}
	if !e.logger().Enabled(context.Background(), slog.LevelDebug) {
		t.Error("the logger drops debug lines at --log-level=debug")
	}
}
