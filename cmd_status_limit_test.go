package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/config"
)

// `ccmux status` says that a limit came from a refused request's
// rate-limit headers, also when no window is known.
func TestCLIStatusSaysWhereALimitCameFrom(t *testing.T) {
	until := time.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)
	for _, tt := range []struct{ name, windows string }{
		{"with windows", `[{"name":"five_hour","utilization":1,"resets_at":"` + until + `","status":"rejected"}]`},
		{"no window known", `[]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := isolateHome(t)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/health":
					fmt.Fprint(w, `{"status":"ok","service":"ccmux"}`)
				case "/api/usage":
					fmt.Fprintf(w, `{"providers":[{"provider":"claude-max","login":"anthropic-max","updated_at":%q,"source":"headers","limited_until":%q,"windows":%s}]}`,
						time.Now().UTC().Format(time.RFC3339), until, tt.windows)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			port := srv.Listener.Addr().(*net.TCPAddr).Port
			dir := filepath.Join(home, ".claude-code-mux")
			os.MkdirAll(dir, 0o700)
			text := strings.Replace(config.DefaultTOML, "port = 13456", "port = "+strconv.Itoa(port), 1)
			if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			tokens := `{"anthropic-max":{"provider_id":"anthropic-max","access_token":"at-SECRET","refresh_token":"rt-SECRET","expires_at":"` +
				time.Now().Add(8*time.Hour).UTC().Format(time.RFC3339) + `","enterprise_url":null}}`
			if err := os.WriteFile(filepath.Join(dir, "oauth_tokens.json"), []byte(tokens), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, "status")
			if want := "  claude-max: limit reached until "; !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, " (from the rate-limit headers of a refused request)\n") {
				t.Errorf("status does not say where the limit came from:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}
