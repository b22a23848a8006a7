package main

import (
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/internal/testsupport"
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
