package proxy

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ccmux/internal/testsupport"
)

// inPlaceWriterEnv names the token file the test binary, re-executed as a
// helper, rewrites in place: truncate, then write, no temporary file and no
// lock — what claude-code-mux's TokenStore::persist (fs::write) does.
const inPlaceWriterEnv = "CCMUX_PROXY_TEST_IN_PLACE_WRITER"

const (
	inPlaceRate     = 50 // writes per second
	inPlaceDuration = 10 * time.Second
)

func inPlaceWriter() {
	path := os.Getenv(inPlaceWriterEnv)
	content, err := os.ReadFile(path)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("WRITING")
	pace := time.NewTicker(time.Second / inPlaceRate)
	defer pace.Stop()
	end := time.Now().Add(inPlaceDuration)
	n := 0
	for time.Now().Before(end) {
		<-pace.C
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		f.Write(content)
		f.Close()
		n++
	}
	fmt.Println("WROTE", n)
}

// claude-code-mux's to_string_pretty shape, with a Gemini login beside ours.
const inPlaceTokens = `{
  "gemini": {
    "provider_id": "gemini",
    "access_token": "ya29.fake-gemini-access-token",
    "refresh_token": "1//fake-gemini-refresh-token",
    "expires_at": "2099-01-02T02:10:42.123456789Z",
    "project_id": "fake-project-123456"
  },
  "anthropic-max": {
    "provider_id": "anthropic-max",
    "access_token": "` + e2eAccessToken + `",
    "refresh_token": "` + e2eRefreshToken + `",
    "expires_at": "2099-11-18T15:30:00.987654321Z"
  }
}`

// A real process rewriting oauth_tokens.json in place 50 times a second for
// 10 seconds beside a running `ccmux start` that serves requests: no file
// is moved aside and no request fails (in particular none is answered 401).
func TestCcmuxStartBesideInPlaceWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 10 seconds")
	}
	bin := testsupport.Binary(t)
	up := newUpstream(t)
	up.Record = false
	port := testsupport.FreePort(t)
	dir, env := e2eHome(t, subscriptionTOML(port, up.URL), inPlaceTokens)
	tokens := filepath.Join(dir, "oauth_tokens.json")

	stderr, client, base := startCcmux(t, bin, env, port)

	writer := exec.Command(os.Args[0], "-test.run=^$")
	writer.Env = append(os.Environ(), inPlaceWriterEnv+"="+tokens)
	out, _ := writer.StdoutPipe()
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	said := make(chan string, 1)
	go func() { b, _ := io.ReadAll(out); said <- string(b) }()

	// Four clients send requests until the writer is done.
	var mu sync.Mutex
	statuses := map[int]int{}
	total := 0
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				status := 0
				resp, err := client.Post(base+"/v1/messages", "application/json",
					strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				statuses[status]++
				total++
				mu.Unlock()
			}
		}()
	}
	writeErr := writer.Wait()
	close(done)
	wg.Wait()
	wrote := <-said
	if writeErr != nil || !strings.Contains(wrote, "WROTE") {
		t.Fatalf("the writer failed: %v\n%s", writeErr, wrote)
	}
	aside, _ := filepath.Glob(tokens + ".corrupt-*")
	t.Logf("writer: %s; %d requests: %v; %d files moved aside", strings.TrimSpace(strings.ReplaceAll(wrote, "\n", " ")), total, statuses, len(aside))
	if len(aside) != 0 || statuses[401] != 0 || statuses[200] != total || total == 0 {
		t.Fatalf("%d files moved aside, %d of %d requests answered 401, statuses %v\nccmux log:\n%s", len(aside), statuses[401], total, statuses, stderr)
	}
}
