package main

import (
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/internal/testsupport"
	"ccmux/proxy"
)

func TestDashboardCommand(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the stub browser is an xdg-open")
	}
	home := isolateHome(t)
	t.Setenv("DISPLAY", "")
	t.Setenv("BROWSER", "")
	for _, kv := range testsupport.StubBrowser(t, home+"/bin") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := writeConfig(t, home, port, "")

	// Nothing listens yet: one sentence saying what to do.
	ln.Close()
	res := runCLI(t, "--config", cfg, "dashboard")
	if res.code != 1 || !strings.Contains(res.stderr, "no ccmux answers at http://127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("without a proxy: exit %d, %q", res.code, res.stderr)
	}

	// A ccmux answers: the browser opens its page.
	opened := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.Write([]byte(`{"status":"ok","service":"ccmux"}`))
			return
		}
		opened <- r.URL.Path
	})}
	ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	res = runCLI(t, "--config", cfg, "dashboard")
	if res.code != 0 || !strings.Contains(res.stdout, "Opening the dashboard: http://127.0.0.1:"+strconv.Itoa(port)+"/") {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	select {
	case path := <-opened:
		if path != "/" {
			t.Errorf("the browser opened %s", path)
		}
	case <-time.After(10 * time.Second):
		t.Error("the browser did not open the dashboard")
	}
}

// With server.api_key set, `ccmux dashboard` asks the proxy for a one-time
// code with the key and opens /?code=…; the code is not printed.
func TestDashboardCommandWithKey(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the stub browser is an xdg-open")
	}
	home := isolateHome(t)
	t.Setenv("DISPLAY", "")
	t.Setenv("BROWSER", "")
	for _, kv := range testsupport.StubBrowser(t, home+"/bin") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("CCMUX_API_KEY", "k3y")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := writeConfig(t, home, port, "")
	text, _ := os.ReadFile(cfg)
	keyed := strings.Replace(string(text), `# api_key = "$CCMUX_API_KEY"`, `api_key = "$CCMUX_API_KEY"`, 1)
	if keyed == string(text) {
		t.Fatal("the default config no longer has the api_key comment")
	}
	os.WriteFile(cfg, []byte(keyed), 0o600)

	opened := make(chan string, 1)
	const code = "c0de"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			w.Write([]byte(`{"status":"ok","service":"ccmux"}`))
		case "/api/dashboard/session":
			if r.Method != http.MethodPost || r.Header.Get("X-Api-Key") != "k3y" || r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Write([]byte(`{"code":"` + code + `","expires_in":60}`))
		default:
			opened <- r.URL.RequestURI()
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	res := runCLI(t, "--config", cfg, "dashboard")
	if res.code != 0 || !strings.Contains(res.stdout, "Opening the dashboard: http://127.0.0.1:"+strconv.Itoa(port)+"/") {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	if strings.Contains(res.stdout+res.stderr, code) || strings.Contains(res.stdout+res.stderr, "k3y") {
		t.Errorf("the output holds the code or the key: %q %q", res.stdout, res.stderr)
	}
	select {
	case uri := <-opened:
		if uri != "/?code="+code {
			t.Errorf("the browser opened %s, want /?code=%s", uri, code)
		}
	case <-time.After(10 * time.Second):
		t.Error("the browser did not open the dashboard")
	}

	// A proxy with another key: one sentence, nothing opened.
	t.Setenv("CCMUX_API_KEY", "wr0ng")
	res = runCLI(t, "--config", cfg, "dashboard")
	if res.code != 1 || !strings.Contains(res.stderr, "refused server.api_key") || strings.Contains(res.stderr, "wr0ng") {
		t.Errorf("another key: exit %d, %q", res.code, res.stderr)
	}
}

// The tray's "Open dashboard" asks the proxy for a code through this
// method (tray.dashboardCoder); the tray is handed a *proxy.Server.
var _ interface{ DashboardCode() string } = (*proxy.Server)(nil)
