package auth

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/internal/atomicfile"
	"ccmux/internal/testsupport"
)

const crashHelperEnv = "CCMUX_AUTH_TEST_CRASH_STORE"

// crashHelper runs in a child process: it starts a store write and stops
// between the fsync of the temporary file and the rename, where the parent
// kills it.
func crashHelper() {
	s := NewStore(os.Getenv(crashHelperEnv))
	atomicfile.BeforeRename = func() {
		fmt.Println("READY")
		select {}
	}
	err := s.update(context.Background(), func(recs map[string]record) (bool, error) {
		recs["anthropic-max"] = record{AccessToken: "new-access", RefreshToken: "new-refresh", ExpiresAt: time.Now()}
		return true, nil
	})
	fmt.Println("write finished unexpectedly:", err)
	os.Exit(2)
}

func TestCrashBetweenWriteAndRenameKeepsOldFile(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	before, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+e.path)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "READY" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	cmd.Process.Kill() // SIGKILL: no deferred cleanup runs
	cmd.Wait()

	after, _ := os.ReadFile(e.path)
	if string(after) != string(before) {
		t.Fatalf("the store changed after a crash before rename:\n%s", after)
	}
	if temps, _ := filepath.Glob(filepath.Join(filepath.Dir(e.path), ".oauth_tokens.json.tmp-*")); len(temps) != 1 {
		t.Fatalf("want the crashed writer's temporary file left behind, got %v", temps)
	}
	// The lock died with the process; the next write goes through and
	// removes the leftover temporary file (it holds token values).
	if _, err := e.c.ForceRefresh(context.Background(), "anthropic-max"); err != nil {
		t.Fatal(err)
	}
	if temps, _ := filepath.Glob(filepath.Join(filepath.Dir(e.path), ".oauth_tokens.json.tmp-*")); len(temps) != 0 {
		t.Errorf("stale temporary files remain: %v", temps)
	}
}

func TestStoreJSONShape(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	data, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	entry := raw["anthropic-max"]
	for _, k := range []string{"provider_id", "access_token", "refresh_token", "expires_at", "enterprise_url"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("entry lacks %s", k)
		}
	}
	if entry["provider_id"] != "anthropic-max" || entry["enterprise_url"] != nil || entry["account_email"] != "user@example.com" {
		t.Errorf("entry = provider_id %v, enterprise_url %v, account_email %v", entry["provider_id"], entry["enterprise_url"], entry["account_email"])
	}
	exp, _ := entry["expires_at"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05Z", exp); err != nil {
		t.Errorf("expires_at %q is not RFC 3339 UTC seconds: %v", exp, err)
	}
	if _, ok := entry["api_key"]; ok {
		t.Error("api_key written for a claude login")
	}
}

// A file written by claude-code-mux (chrono's fractional seconds, no
// extras, an enterprise_url) is read, and its unknown entries survive.
func TestStoreReadsClaudeCodeMuxFile(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(filepath.Dir(e.path), 0o700)
	file := `{
  "anthropic-max": {"provider_id": "anthropic-max", "access_token": "a1", "refresh_token": "r1",
    "expires_at": "2099-11-18T15:30:00.123456789Z"},
  "copilot": {"provider_id": "copilot", "access_token": "a2", "refresh_token": "r2",
    "expires_at": "2099-11-18T15:30:00+00:00", "enterprise_url": "https://ghe.example"}
}`
	if err := os.WriteFile(e.path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cred, err := e.c.Credential(context.Background(), "anthropic-max")
	if err != nil || cred.Value != "a1" || cred.APIKey {
		t.Fatalf("credential %v, err %v", cred.Value == "a1", err)
	}
	accts, err := e.c.Accounts()
	if err != nil || len(accts) != 2 || accts[0].ProviderID != "anthropic-max" || accts[1].ProviderID != "copilot" {
		t.Fatalf("accounts = %+v, %v", accts, err)
	}
	if err := e.c.Logout("anthropic-max"); err != nil {
		t.Fatal(err)
	}
	r, ok := e.records()["copilot"]
	if !ok || r.EnterpriseURL == nil || *r.EnterpriseURL != "https://ghe.example" || r.AccessToken != "a2" {
		t.Errorf("copilot entry after rewrite = %+v", r)
	}
}

func TestCorruptStoreDuringLoginIsMovedNotOverwritten(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(filepath.Dir(e.path), 0o700)
	os.WriteFile(e.path, []byte("not json"), 0o600)
	e.signIn("anthropic-max")
	aside, _ := filepath.Glob(e.path + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("moved-aside files: %v", aside)
	}
}

func TestPermissionsFixedOnLoad(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	e := newEnv(t)
	e.signIn("anthropic-max")
	dir := filepath.Dir(e.path)
	for path, want := range map[string]os.FileMode{dir: 0o700, e.path: 0o600, e.path + ".lock": 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", path, fi.Mode().Perm(), want, err)
		}
	}
	os.Chmod(dir, 0o755)
	os.Chmod(e.path, 0o644)
	if _, err := e.c.Accounts(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, e.path: 0o600} {
		if fi, _ := os.Stat(path); fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v after load, want %v", path, fi.Mode().Perm(), want)
		}
	}
	if n := strings.Count(e.logs.String(), "permissions were too open"); n != 2 {
		t.Errorf("%d permission warnings, want 2:\n%s", n, e.logs.String())
	}
}

func TestLockExcludesOtherStores(t *testing.T) {
	e := newEnv(t)
	other := NewStore(e.path)
	unlock, err := e.store.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := other.lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second store took the lock while held: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := other.lock(context.Background())
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// Two clients on one file (two processes, as far as the store is
// concerned) with an expired token: one token request, same token for both,
// and no write is lost.
func TestTwoStoresRefreshOnce(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	e.expire("anthropic-max", time.Now().Add(-time.Minute))
	other := e.newClient()
	release := e.srv.HoldTokens()
	var wg sync.WaitGroup
	creds := make([]Credential, 2)
	errs := make([]error, 2)
	for i, c := range []*Client{e.c, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			creds[i], errs[i] = c.Credential(context.Background(), "anthropic-max")
		}()
	}
	testsupport.Eventually(t, "the first token request", 10*time.Second, func() bool { return e.srv.RefreshCount() == 1 })
	release()
	wg.Wait()
	for i := range errs {
		e.note(errs[i])
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
	}
	if e.srv.RefreshCount() != 1 || creds[0] != creds[1] || !e.srv.ValidAccessToken(creds[0].Value) {
		t.Fatalf("refreshes %d, same token %v", e.srv.RefreshCount(), creds[0] == creds[1])
	}
	if r := e.records()["anthropic-max"]; r.AccessToken != creds[0].Value || !e.srv.ValidRefreshToken(r.RefreshToken) {
		t.Error("the store does not hold the refreshed token and the live refresh token")
	}
	// Writes from both interleave without loss.
	var wg2 sync.WaitGroup
	for i, c := range []*Client{e.c, other} {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for j := range 10 {
				id := fmt.Sprintf("p%d-%d", i, j)
				c.store.update(context.Background(), func(recs map[string]record) (bool, error) {
					recs[id] = record{AccessToken: "x", RefreshToken: "y"}
					return true, nil
				})
			}
		}()
	}
	wg2.Wait()
	if n := len(e.records()); n != 21 {
		t.Errorf("%d entries after 20 concurrent writes + 1, want 21", n)
	}
}

// Another program rewriting the file in place (claude-code-mux does) is
// seen at once despite the read cache.
func TestStoreSeesInPlaceRewrite(t *testing.T) {
	e := newEnv(t)
	os.MkdirAll(filepath.Dir(e.path), 0o700)
	write := func(access string) {
		f, err := os.OpenFile(e.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, `{"anthropic-max":{"provider_id":"anthropic-max","access_token":%q,"refresh_token":"r","expires_at":"2099-01-01T00:00:00Z"}}`, access)
		f.Close()
	}
	for _, access := range []string{"first", "second-longer", "third"} {
		write(access)
		cred, err := e.c.Credential(context.Background(), "anthropic-max")
		if err != nil || cred.Value != access {
			t.Fatalf("after writing %q: got %q, %v", access, cred.Value, err)
		}
	}
}

func BenchmarkCredential(b *testing.B) {
	e := newEnv(b)
	e.signIn("anthropic-max")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.c.Credential(ctx, "anthropic-max"); err != nil {
			b.Fatal(err)
		}
	}
}
