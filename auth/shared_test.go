package auth

// Tests of living beside claude-code-mux in one oauth_tokens.json: records
// ccmux does not own are never sent anywhere, removed or altered; every
// field survives a rewrite; in-place writers and odd files are tolerated.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/config"
	"ccmux/internal/testsupport"
)

// installStore copies a testdata file to the env's store path, 0600 in a 0700 directory.
func (e *env) installStore(name string) []byte {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(e.path), 0o700); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.path, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return data
}

// rawEntries decodes JSON into its top-level entries as generic values.
func rawEntries(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	return m
}

func (e *env) fileEntries() map[string]any {
	e.t.Helper()
	data, err := os.ReadFile(e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	return rawEntries(e.t.(*testing.T), data)
}

func ccmConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ccm_config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The background refresher and lazy refreshes only touch ccmux's own
// logins: claude-code-mux's gemini, openai-codex and github-copilot records
// (all expired) are never sent to the token endpoint, and an invalid_grant
// answer removes only the Claude login it was for.
func TestForeignRecordsNeverRefreshedOrRemoved(t *testing.T) {
	e := newEnv(t, withFakeClock(), withConfig(ccmConfig(t)))
	clock := e.c.clock.(*fakeClock)
	fixture := rawEntries(t, e.installStore("ccm_oauth_tokens.json"))
	clock.Set(time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)) // everything has expired
	e.srv.FailRefresh(authtest.InvalidGrant)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	slept := make(chan time.Time, 100)
	e.c.onSleep = func(next time.Time) { slept <- next }
	go func() { e.c.RunRefresher(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-slept // one pass done

	for _, id := range []string{"gemini", "openai-codex", "github-copilot"} {
		_, err := e.c.Credential(context.Background(), id)
		e.note(err)
		if !errors.Is(err, ErrNotOwned) {
			t.Errorf("Credential(%s) = %v, want ErrNotOwned", id, err)
		}
		if _, err := e.c.ForceRefresh(context.Background(), id); !errors.Is(err, ErrNotOwned) {
			t.Errorf("ForceRefresh(%s) = %v, want ErrNotOwned", id, err)
		}
		if err := e.c.Logout(id); !errors.Is(err, ErrNotOwned) {
			t.Errorf("Logout(%s) = %v, want ErrNotOwned", id, err)
		}
	}
	reqs := e.srv.TokenRequests()
	if len(reqs) != 1 || reqs[0].Body["refresh_token"] != "fake-claude-refresh-token" {
		var sent []any
		for _, r := range reqs {
			sent = append(sent, r.Body["refresh_token"])
		}
		t.Fatalf("token requests for refresh tokens %v, want one, for anthropic-max's", sent)
	}
	after := e.fileEntries()
	if _, ok := after["anthropic-max"]; ok {
		t.Error("the refused Claude login is still stored")
	}
	for _, id := range []string{"gemini", "openai-codex", "github-copilot"} {
		if !reflect.DeepEqual(after[id], fixture[id]) {
			t.Errorf("%s changed:\n got %v\nwant %v", id, after[id], fixture[id])
		}
	}
	accts, err := e.c.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if !a.Foreign || a.Email != "" || !a.ExpiresAt.IsZero() {
			t.Errorf("account %+v: want a foreign entry with nothing but its id", a)
		}
	}
}

// Every rewrite keeps every record and field, known or not, JSON-equal,
// and unknown top-level entries too; what ccmux writes parses as chrono's
// DateTime<Utc> (RFC 3339, UTC).
func TestRewriteKeepsEveryField(t *testing.T) {
	e := newEnv(t, withFakeClock())
	clock := e.c.clock.(*fakeClock)
	fixture := rawEntries(t, e.installStore("future_oauth_tokens.json"))
	// The fake must know the refresh token: sign in once, then put the
	// fixture's extra fields around the live token.
	e.signIn("anthropic-max")
	live := e.records()["anthropic-max"]
	e.installStore("future_oauth_tokens.json")
	data, _ := os.ReadFile(e.path)
	data = []byte(strings.Replace(string(data), "fake-claude-refresh-token", live.RefreshToken, 1))
	os.WriteFile(e.path, data, 0o600)

	clock.Set(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)) // anthropic-max has < 5 min left
	cred, err := e.c.Credential(context.Background(), "anthropic-max")
	if err != nil || !e.srv.ValidAccessToken(cred.Value) {
		t.Fatalf("refresh: %v", err)
	}
	after := e.fileEntries()
	for _, k := range []string{"gemini", "schema_version", "notes"} {
		if !reflect.DeepEqual(after[k], fixture[k]) {
			t.Errorf("%s changed:\n got %#v\nwant %#v", k, after[k], fixture[k])
		}
	}
	mine := after["anthropic-max"].(map[string]any)
	for _, k := range []string{"project_id", "scopes", "token_version", "nested"} {
		if !reflect.DeepEqual(mine[k], fixture["anthropic-max"].(map[string]any)[k]) {
			t.Errorf("anthropic-max.%s = %#v, want it kept", k, mine[k])
		}
	}
	exp, _ := mine["expires_at"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05Z", exp); err != nil {
		t.Errorf("expires_at %q is not RFC 3339 UTC: %v", exp, err)
	}
	if mine["access_token"] != cred.Value || mine["provider_id"] != "anthropic-max" {
		t.Error("the refreshed values were not written")
	}

	// Logging out of ccmux's login keeps the rest as is, too.
	if err := e.c.Logout("anthropic-max"); err != nil {
		t.Fatal(err)
	}
	after = e.fileEntries()
	delete(fixture, "anthropic-max")
	if !reflect.DeepEqual(after, fixture) {
		t.Errorf("after logout:\n got %v\nwant %v", after, fixture)
	}
}

// A login to an id whose record another app manages is refused before any
// browser opens; a console login never replaces the subscription login.
func TestLoginNeverReplacesOthers(t *testing.T) {
	opened := 0
	e := newEnv(t, withConfig(ccmConfig(t)), withOpener(func(string) error { opened++; return errors.New("no browser") }))
	e.installStore("ccm_oauth_tokens.json")
	_, err := e.c.Login(context.Background(), "gemini", LoginOptions{})
	e.note(err)
	if !errors.Is(err, ErrNotOwned) || !strings.Contains(err.Error(), "--provider") {
		t.Errorf("login to gemini: %v", err)
	}
	_, err = e.c.Login(context.Background(), "anthropic-max", LoginOptions{Console: true})
	e.note(err)
	if err == nil || !strings.Contains(err.Error(), "anthropic-max holds a Claude subscription login") || !strings.Contains(err.Error(), ConsoleID) {
		t.Errorf("console login over the subscription: %v", err)
	}
	if opened != 0 || len(e.srv.AuthorizeRequests()) != 0 {
		t.Error("a browser was opened for a refused login")
	}
}

// A login ccmux wrote under an id no provider names is still its own.
func TestLoginMarksRecordAsOwned(t *testing.T) {
	e := newEnv(t)
	e.signIn("console-id")
	if r := e.records()["console-id"]; r.ManagedBy != "ccmux" {
		t.Fatalf("managed_by = %q", r.ManagedBy)
	}
	// A client with no [oauth.console-id] table (another config) still owns it.
	other := NewClient(nil, NewStore(e.path), Options{Logger: discardLogger()})
	if accts, err := other.Accounts(); err != nil || len(accts) != 1 || accts[0].Foreign {
		t.Fatalf("accounts = %+v, %v", accts, err)
	}
	if err := other.Logout("console-id"); err != nil {
		t.Fatal(err)
	}
}

// A read landing on a half-written file (another program truncated it and
// is writing) is retried, not judged corrupt: nothing is moved aside and
// the caller gets the token.
func TestHalfWrittenFileIsRetried(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	good, _ := os.ReadFile(e.path)
	os.WriteFile(e.path, good[:len(good)/2], 0o600) // mid-write
	var once sync.Once
	afterBadRead = func() { once.Do(func() { os.WriteFile(e.path, good, 0o600) }) }
	defer func() { afterBadRead = nil }()
	cred, err := e.c.Credential(context.Background(), "anthropic-max")
	e.note(err)
	if err != nil || !e.srv.ValidAccessToken(cred.Value) {
		t.Fatalf("credential after a half-written read: %v", err)
	}
	// An empty file (truncated, not written yet) is retried the same way.
	os.WriteFile(e.path, nil, 0o600)
	once = sync.Once{}
	if accts, err := e.c.Accounts(); err != nil || len(accts) != 1 {
		t.Fatalf("accounts after an empty read: %+v, %v", accts, err)
	}
	if aside, _ := filepath.Glob(e.path + ".corrupt-*"); len(aside) != 0 {
		t.Fatalf("moved aside: %v", aside)
	}
}

// A goroutine rewriting the file in place (truncate, then write in two
// parts) 500 times a second, ten times claude-code-mux's worst, while the
// proxy's reads go on: no read fails, nothing is moved aside.
func TestInPlaceWriterNeverCorrupts(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	good, _ := os.ReadFile(e.path)
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pace := time.NewTicker(2 * time.Millisecond) // paces the load, synchronises nothing
		defer pace.Stop()
		for {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			f, err := os.OpenFile(e.path, os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				continue
			}
			// Two writes, as a buffered writer may make them.
			f.Write(good[:len(good)/3])
			f.Write(good[len(good)/3:])
			f.Close()
			writes.Add(1)
		}
	}()
	failures := 0
	for i := 0; i < 300; i++ {
		if _, err := e.c.Credential(context.Background(), "anthropic-max"); err != nil {
			failures++
			e.note(err)
			if failures < 3 {
				t.Log(err)
			}
		}
		if _, err := e.c.Accounts(); err != nil {
			failures++
		}
	}
	close(stop)
	wg.Wait()
	aside, _ := filepath.Glob(e.path + ".corrupt-*")
	t.Logf("%d in-place writes during 600 reads", writes.Load())
	if failures != 0 || len(aside) != 0 {
		t.Fatalf("%d failed reads, %d files moved aside", failures, len(aside))
	}
}

// Read-only use never moves or writes a corrupt file; a write moves it
// aside under a name no earlier one has, even within the same second.
func TestCorruptStoreReadOnlyThenQuarantinedUniquely(t *testing.T) {
	e := newEnv(t, withFakeClock()) // the clock stands still: same timestamp
	os.MkdirAll(filepath.Dir(e.path), 0o700)
	garbage := []byte(`{"anthropic-max": {"access_token": "sk-ant-oat01-half`)
	for round := 1; round <= 2; round++ {
		os.WriteFile(e.path, garbage, 0o600)
		before, _ := os.Stat(e.path)
		_, err := e.c.Accounts()
		e.note(err)
		if !errors.Is(err, ErrCorruptStore) || !strings.Contains(err.Error(), e.path) || strings.Contains(err.Error(), "sk-ant") {
			t.Fatalf("accounts: %v", err)
		}
		if _, err := e.c.Credential(context.Background(), "anthropic-max"); !errors.Is(err, ErrCorruptStore) {
			t.Fatalf("credential: %v", err)
		}
		if now, err := os.Stat(e.path); err != nil || !os.SameFile(before, now) {
			t.Fatal("a read-only call moved or replaced the corrupt file")
		}
		if aside, _ := filepath.Glob(e.path + ".corrupt-*"); len(aside) != round-1 {
			t.Fatalf("round %d: moved-aside files before the write: %v", round, aside)
		}
		e.signIn("anthropic-max")
		aside, _ := filepath.Glob(e.path + ".corrupt-*")
		if len(aside) != round {
			t.Fatalf("round %d: moved-aside files: %v", round, aside)
		}
		for _, a := range aside {
			if kept, _ := os.ReadFile(a); string(kept) != string(garbage) {
				t.Errorf("%s holds %q", a, kept)
			}
		}
	}
}

// A symlinked store keeps working: the target is replaced atomically in its
// own directory, the link stays a link, and nothing outside the store's
// directory is chmodded.
func TestSymlinkedStore(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	e := newEnv(t)
	elsewhere := filepath.Join(t.TempDir(), "dotfiles")
	os.MkdirAll(elsewhere, 0o755)
	target := filepath.Join(elsewhere, "tokens.json")
	os.WriteFile(target, []byte(`{}`), 0o640)
	os.MkdirAll(filepath.Dir(e.path), 0o700)
	if err := os.Symlink(target, e.path); err != nil {
		t.Fatal(err)
	}
	e.signIn("anthropic-max")
	if _, err := e.c.ForceRefresh(context.Background(), "anthropic-max"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(e.path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the store is no longer a link: %v %v", fi, err)
	}
	var recs map[string]record
	data, _ := os.ReadFile(target)
	if err := json.Unmarshal(data, &recs); err != nil || !e.srv.ValidRefreshToken(recs["anthropic-max"].RefreshToken) {
		t.Fatalf("the link's target does not hold the live login: %v", err)
	}
	if fi, _ := os.Stat(elsewhere); fi.Mode().Perm() != 0o755 {
		t.Errorf("the target's directory was chmodded to %v", fi.Mode().Perm())
	}
	if temps, _ := filepath.Glob(filepath.Join(elsewhere, ".tokens.json.tmp-*")); len(temps) != 0 {
		t.Errorf("temporary files left: %v", temps)
	}
	// A target left readable by its owner's choice is not chmodded either.
	os.Chmod(target, 0o640)
	if _, err := e.c.Accounts(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o640 {
		t.Errorf("the link's target was chmodded to %v", fi.Mode().Perm())
	}
}

// A named pipe, a directory or a socket at the store path is one clear
// error naming the path, at once (no read blocks on the pipe), and is never
// chmodded or replaced.
func TestNonRegularStorePath(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("named pipes are Unix files")
	}
	for _, kind := range []string{"fifo", "directory"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			os.MkdirAll(filepath.Dir(e.path), 0o700)
			var err error
			if kind == "fifo" {
				err = testsupport.Mkfifo(e.path, 0o644)
			} else {
				err = os.Mkdir(e.path, 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			calls := map[string]func() error{
				"Credential": func() error { _, err := e.c.Credential(ctx, "anthropic-max"); return err },
				"Accounts":   func() error { _, err := e.c.Accounts(); return err },
				"Logout":     func() error { return e.c.Logout("anthropic-max") },
				"Login": func() error {
					_, err := e.c.Login(ctx, "anthropic-max", LoginOptions{})
					return err
				},
			}
			for name, call := range calls {
				done := make(chan error, 1)
				go func() { done <- call() }()
				select {
				case err := <-done:
					e.note(err)
					want := fmt.Sprintf("the token store %s is a", e.path)
					if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "not a file") {
						t.Errorf("%s: %v", name, err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("%s hangs on a %s", name, kind)
				}
			}
			fi, _ := os.Lstat(e.path)
			if fi.Mode().Perm() != 0o755 && fi.Mode().Perm() != 0o644 || fi.Mode().IsRegular() {
				t.Errorf("the %s was changed: %v", kind, fi.Mode())
			}
		})
	}
}

// roundTripFunc records requests instead of sending them anywhere.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Usage limits are asked only for ccmux's own logins: claude-code-mux's
// Gemini and Codex tokens never go to Anthropic's usage endpoint.
func TestUsageNeverSendsAnotherAppsToken(t *testing.T) {
	e := newEnv(t, withConfig(ccmConfig(t)))
	e.installStore("ccm_oauth_tokens.json")
	var sent []string
	e.c.http = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.URL.String()+" "+r.Header.Get("Authorization"))
		return nil, errors.New("no network in this test")
	})}
	for _, id := range []string{"gemini", "openai-codex", "github-copilot"} {
		if _, err := e.c.Usage(context.Background(), id, true); !errors.Is(err, ErrNotOwned) {
			t.Errorf("Usage(%s) = %v, want ErrNotOwned", id, err)
		}
	}
	if len(sent) != 0 {
		t.Errorf("another app's token was sent: %q", sent)
	}
}

// SetConfig (a reloaded config) changes which records are ccmux's: a Claude
// login the new config no longer names, and that `ccmux login` did not
// write, becomes another app's, and a newly named one becomes ccmux's.
func TestSetConfigFollowsTheConfiguredLogins(t *testing.T) {
	e := newEnv(t, withFakeClock(), withConfig(ccmConfig(t)))
	e.installStore("ccm_oauth_tokens.json")
	foreign := func() map[string]bool {
		t.Helper()
		accts, err := e.c.Accounts()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, a := range accts {
			m[a.ProviderID] = a.Foreign
		}
		return m
	}
	if f := foreign(); f["anthropic-max"] || !f["gemini"] {
		t.Fatalf("before the reload: foreign = %v, want anthropic-max ccmux's and gemini another app's", f)
	}
	reloaded, err := config.Parse("config.toml", []byte(`
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "now-claude"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "gemini"
models = ["claude-*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	e.c.SetConfig(reloaded)
	if f := foreign(); !f["anthropic-max"] || f["gemini"] {
		t.Fatalf("after the reload: foreign = %v, want anthropic-max another app's and gemini ccmux's", f)
	}
	if err := e.c.Logout("anthropic-max"); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Logout(anthropic-max) after the reload = %v, want ErrNotOwned", err)
	}
}

// A file judged corrupt is not judged again on every read (the proxy reads
// the store on each request): while a stat shows the same file, the
// verdict stands without the 500 ms wait; a rewrite is read anew.
func TestCorruptVerdictIsReused(t *testing.T) {
	e := newEnv(t)
	e.signIn("anthropic-max")
	good, _ := os.ReadFile(e.path)
	os.WriteFile(e.path, []byte(`{"anthropic-max": {"access_token": "sk-ant-oat01-half`), 0o600)
	old := time.Now().Add(-time.Minute) // settled: no writer is at it
	os.Chtimes(e.path, old, old)
	if _, err := e.c.Accounts(); !errors.Is(err, ErrCorruptStore) {
		t.Fatalf("first read of a corrupt store: %v", err)
	}
	var retries atomic.Int64
	afterBadRead = func() { retries.Add(1) }
	defer func() { afterBadRead = nil }()
	for range 3 {
		if _, err := e.c.Accounts(); !errors.Is(err, ErrCorruptStore) {
			t.Fatalf("read of the same corrupt store: %v", err)
		}
	}
	if n := retries.Load(); n != 0 {
		t.Errorf("the same corrupt file was read and waited on again (%d retries)", n)
	}
	os.WriteFile(e.path, good, 0o600)
	if accts, err := e.c.Accounts(); err != nil || len(accts) != 1 {
		t.Fatalf("after the file was rewritten: %+v, %v", accts, err)
	}
}
