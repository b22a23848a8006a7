package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/internal/testsupport"
	"ccmux/proxy/internal/fakeanthropic"
)

// TestCcmuxStatusShowsUsage runs the real `ccmux start` in front of a fake
// subscription whose answers carry the unified rate-limit headers, then
// checks GET /api/usage and the lines `ccmux status` prints, and that the
// numbers survive a restart.
func TestCcmuxStatusShowsUsage(t *testing.T) {
	bin := testsupport.Binary(t)
	up := newUpstream(t)
	port := testsupport.FreePort(t)
	cfg := subscriptionTOML(port, up.URL) + `
# The stored token is made up: never ask the real usage endpoint with it.
[oauth.anthropic-max]
usage_poll_seconds = 0
`
	dir, env := e2eHome(t, cfg, e2eTokens, "TZ=UTC")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	start := func() (stop func()) {
		logs := &testsupport.Buffer{}
		cmd := exec.Command(bin, "start")
		cmd.Env, cmd.Stderr = env, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("ccmux start: %v\n%s", err, logs)
			}
		}
		t.Cleanup(stop)
		waitHealthy(t, client, base)
		return stop
	}
	status := func() string {
		cmd := exec.Command(bin, "status")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ccmux status: %v\n%s", err, out)
		}
		return string(out)
	}

	stop := start()
	if out := status(); !strings.Contains(out, "anthropic-max: signed in, expires in") || !strings.Contains(out, "\n  Usage: not known yet\n") {
		t.Errorf("status before any answer:\n%s", out)
	}
	now := time.Now().UTC()
	// Whole minutes: the status line shows hours and minutes, and a reset
	// time between two minutes may be shown rounded either way.
	r5, r7 := now.Add(3*time.Hour).Truncate(time.Minute), now.Add(4*24*time.Hour).Truncate(time.Minute)
	up.Queue(fakeanthropic.Behavior{Header: fakeanthropic.Unified("allowed", r5,
		fakeanthropic.Window{Name: "5h", Utilization: 0.42, Reset: r5, Status: "allowed"},
		fakeanthropic.Window{Name: "7d", Utilization: 0.13, Reset: r7, Status: "allowed"},
		fakeanthropic.Window{Name: "7d_opus", Utilization: 0.8, Reset: r7, Status: "allowed_warning"})})
	resp, err := client.Post(base+"/v1/messages", "application/json", strings.NewReader(sonnetBody))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)

	resp, err = client.Get(base + "/api/usage")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Providers []ProviderUsage `json:"providers"`
	}
	if err := json.Unmarshal([]byte(readAll(t, resp)), &report); err != nil || len(report.Providers) != 1 || len(report.Providers[0].Windows) != 3 {
		t.Fatalf("GET /api/usage: %+v %v", report, err)
	}

	when := func(at time.Time) string {
		if at.YearDay() == now.YearDay() {
			return at.Format("15:04 MST")
		}
		return at.Format("Mon 15:04 MST")
	}
	want := fmt.Sprintf("  5-hour limit: 42%% used, resets %s\n  Weekly limit: 13%% used, resets %s\n  Weekly (Opus): 80%% used, resets %s\n", when(r5), when(r7), when(r7))
	if out := status(); !strings.Contains(out, want) {
		t.Errorf("status from the running proxy:\n%s\nwant it to contain:\n%s", out, want)
	}

	// Stopped and started again, the numbers are still there.
	stop()
	if _, err := os.Stat(filepath.Join(dir, "ccmux_usage.json")); err != nil {
		t.Fatalf("no usage snapshot after a clean stop: %v", err)
	}
	start()
	if out := status(); !strings.Contains(out, want) {
		t.Errorf("status after a restart:\n%s\nwant it to contain:\n%s", out, want)
	}
}
