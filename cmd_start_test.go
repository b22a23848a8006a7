package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// A clean stop (SIGTERM) of the real binary while the background refresher's token request is
// in flight keeps the rotated token: the endpoint rotates the refresh token
// at once and answers late, the signal lands in between. 20 tries, 0 lost.
func TestCLISIGTERMDuringRefreshKeepsLogin(t *testing.T) {
	c := newLoginCLI(t)
	if _, stderr, code := c.run(nil, "login"); code != 0 {
		t.Fatalf("login: %s", stderr)
	}
	const tries = 20
	lost := 0
	for i := range tries {
		// Make the stored login due for a refresh at once (2 minutes left).
		var recs map[string]map[string]any
		data, _ := os.ReadFile(c.tokenFile())
		if err := json.Unmarshal(data, &recs); err != nil {
			t.Fatal(err)
		}
		recs["anthropic-max"]["expires_at"] = time.Now().Add(2 * time.Minute).UTC().Format(time.RFC3339)
		data, _ = json.Marshal(recs)
		os.WriteFile(c.tokenFile(), data, 0o600)

		before := c.srv.RefreshCount()
		release := c.srv.HoldTokenAnswers()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, testsupport.Binary(t), "--config", c.config, "start")
		stderr := &testsupport.Buffer{}
		// The environment newLoginCLI set: HOME, the stub browser.
		cmd.Env, cmd.Stdout, cmd.Stderr, cmd.WaitDelay = os.Environ(), stderr, stderr, 5*time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		testsupport.Eventually(t, "the background refresh request", 10*time.Second, func() bool { return c.srv.RefreshCount() > before })
		cmd.Process.Signal(syscall.SIGTERM)
		testsupport.Eventually(t, "ccmux to act on SIGTERM", 10*time.Second, func() bool {
			select {
			case err := <-exited:
				exited <- err
				return true
			default:
				return strings.Contains(stderr.String(), "stopping")
			}
		})
		release()
		err := <-exited
		cancel()
		c.said.Write([]byte(stderr.String()))
		if err != nil {
			t.Errorf("try %d: ccmux start exited with %v\n%s", i, err, stderr)
		}
		if r := c.stored()["anthropic-max"]; !c.srv.ValidRefreshToken(r.RefreshToken) {
			lost++
			if _, out, code := c.run(nil, "login"); code != 0 { // sign in again for the next try
				t.Fatalf("login: %s", out)
			}
		}
	}
	if lost != 0 {
		t.Fatalf("%d of %d stops during a refresh lost the login", lost, tries)
	}
	t.Logf("%d of %d stops during a refresh lost the login", lost, tries)
}
