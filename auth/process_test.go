package auth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"ccmux/config"
	"ccmux/internal/testsupport"
)

const (
	refreshHelperEnv = "CCMUX_AUTH_TEST_REFRESH_STORE"
	refreshHelperCfg = "CCMUX_AUTH_TEST_REFRESH_CONFIG"
)

// refreshHelper runs in a child process: it asks for a credential from the
// store named in the environment and prints a digest of it (never the token).
func refreshHelper() {
	cfg, err := config.Parse("config.toml", []byte(config.DefaultTOML+os.Getenv(refreshHelperCfg)))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	c := NewClient(cfg, NewStore(os.Getenv(refreshHelperEnv)), Options{Logger: discardLogger()})
	fmt.Println("STARTED")
	cred, err := c.Credential(context.Background(), "anthropic-max")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("TOKEN %x\n", sha256.Sum256([]byte(cred.Value)))
}

// Two ccmux processes with the same expired token refresh it once, and both
// end with the same valid token.
func TestTwoProcessesRefreshOnce(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	e.expire("anthropic-max", time.Now().Add(-time.Minute))
	release := e.srv.HoldTokens()
	defer release()
	type child struct {
		cmd *exec.Cmd
		out *bufio.Reader
	}
	var children []child
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), refreshHelperEnv+"="+e.path, refreshHelperCfg+"="+e.srv.OAuthTOML("anthropic-max", "claude"))
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		r := bufio.NewReader(stdout)
		if line, _ := r.ReadString('\n'); line != "STARTED\n" {
			t.Fatalf("child said %q", line)
		}
		children = append(children, child{cmd, r})
	}
	testsupport.Eventually(t, "a refresh request", 10*time.Second, func() bool { return e.srv.RefreshCount() == 1 })
	release()
	var digests []string
	for _, ch := range children {
		out, _ := io.ReadAll(ch.out)
		if err := ch.cmd.Wait(); err != nil || !strings.HasPrefix(string(out), "TOKEN ") {
			t.Fatalf("child: %v: %s", err, out)
		}
		digests = append(digests, strings.TrimSpace(string(out)))
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Fatalf("%d refresh requests from two processes, want 1", n)
	}
	r := e.records()["anthropic-max"]
	want := fmt.Sprintf("TOKEN %x", sha256.Sum256([]byte(r.AccessToken)))
	if digests[0] != want || digests[1] != want || !e.srv.ValidAccessToken(r.AccessToken) {
		t.Fatalf("the processes ended with different tokens, or not the stored one")
	}
}
