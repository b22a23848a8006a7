//go:build linux

package tray

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccmux/auth/authtest"
	"ccmux/internal/testsupport"
)

// twoLoginsTOML is a second Claude subscription, claude-work, tried after
// the default config's claude-max for the default model.
const twoLoginsTOML = `
[[providers]]
name = "claude-work"
provider_type = "anthropic"
auth_type = "oauth"
oauth_provider = "claude-work"
enabled = true
models = []

[[models.mappings]]
actual_model = "claude-sonnet-4-5"
priority = 2
provider = "claude-work"
`

// TestTrayTwoLoginsEndToEnd: with two Claude logins in the config the real
// menu has one submenu each, signed in one after the other through the
// browser; each shows its own status and usage, and Sign out in the second
// signs out only that one.
func TestTrayTwoLoginsEndToEnd(t *testing.T) {
	d := newDesktop(t)
	first, second := authtest.NewServer(), authtest.NewServer()
	defer first.Close()
	defer second.Close()
	first.SetEmail("ada@example.com")
	second.SetEmail("bob@example.com")
	r5 := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Minute)
	first.SetUsage(fmt.Sprintf(`{"five_hour":{"utilization":42.0,"resets_at":%q}}`, r5.Format(time.RFC3339)))

	home := t.TempDir()
	port := testsupport.FreePort(t)
	// The mapping of the default config's [[models]] entry comes last in the
	// file, so the second mapping belongs to it.
	writeConfig(t, home, port, twoLoginsTOML+first.OAuthTOML("anthropic-max", "claude")+second.OAuthTOML("claude-work", "claude"))
	app, item := d.start(t, home, "TZ=UTC")

	item.waitItem(t, "Proxy on", "the proxy checked", func(m menuItem) bool { return m.Checked })
	var labels []string
	for _, m := range item.layout(t) {
		labels = append(labels, m.Label)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	want := []string{"○ anthropic-max", "○ claude-work", "Proxy on " + addr, "Start at login", "Open dashboard", "Open config file", "Reload config", "Open log", "Show proxy address", "Quit"}
	if !slices.Equal(labels, want) {
		t.Fatalf("menu = %q, want %q", labels, want)
	}
	sub := item.waitItem(t, "○ claude-work", "claude-work's submenu", func(m menuItem) bool { return len(m.Children) > 0 })
	if got := childLabels(sub); !slices.Equal(got, []string{"Not signed in", "Sign in with Claude"}) {
		t.Errorf("claude-work's submenu signed out = %q", got)
	}

	item.clickIn(t, "○ anthropic-max", "Sign in with Claude")
	item.waitItem(t, "● anthropic-max — ada@example.com", "anthropic-max signed in", func(menuItem) bool { return true })
	item.clickIn(t, "○ claude-work", "Sign in with Claude")
	item.waitItem(t, "● claude-work — bob@example.com", "claude-work signed in", func(menuItem) bool { return true })

	// Each submenu holds its own login's status, usage and Sign out.
	maxMenu := item.waitItem(t, "● anthropic-max", "anthropic-max's usage line", func(m menuItem) bool {
		return slices.ContainsFunc(m.Children, func(c menuItem) bool { return strings.HasPrefix(c.Label, "5-hour limit: 42%") })
	})
	if got := childLabels(maxMenu); len(got) != 3 || !strings.HasPrefix(got[0], "Signed in as ada@example.com") || got[2] != "Sign out" {
		t.Errorf("anthropic-max's submenu = %q", got)
	}
	work, _ := item.item(t, "● claude-work")
	if got := childLabels(work); len(got) < 2 || !strings.HasPrefix(got[0], "Signed in as bob@example.com") || got[len(got)-1] != "Sign out" ||
		slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "5-hour limit: 42%") }) {
		t.Errorf("claude-work's submenu = %q", got)
	}
	for _, summary := range []string{"Signed in to Claude (anthropic-max)", "Signed in to Claude (claude-work)"} {
		testsupport.Eventually(t, summary, 10*time.Second, func() bool { _, ok := d.notes.find(summary); return ok })
	}

	// Sign out of the second only.
	item.clickIn(t, "● claude-work", "Sign out")
	item.waitItem(t, "○ claude-work", "claude-work signed out", func(menuItem) bool { return true })
	if _, ok := item.item(t, "● anthropic-max — ada@example.com"); !ok {
		t.Errorf("anthropic-max is no longer signed in after claude-work's sign-out: %+v", item.layout(t))
	}
	data, err := os.ReadFile(filepath.Join(home, ".claude-code-mux", "oauth_tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var store map[string]json.RawMessage
	if err := json.Unmarshal(data, &store); err != nil {
		t.Fatal(err)
	}
	if _, ok := store["anthropic-max"]; !ok || len(store) != 1 {
		t.Errorf("token store holds %d logins after signing out of claude-work, want anthropic-max only", len(store))
	}

	item.click(t, "Quit")
	if code := app.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status %d after Quit, want 0", code)
	}
}

func childLabels(m menuItem) []string {
	var out []string
	for _, c := range m.Children {
		out = append(out, c.Label)
	}
	return out
}
