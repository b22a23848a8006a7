package proxy

import (
	"encoding/json"
	"testing"
)

// The Proxy section shows where clients reach the proxy: the bound
// address, not the config's port (0 there means "the OS picks one").
func TestDashboardBaseURLIsTheBoundAddress(t *testing.T) {
	d := startDashboard(t)
	_, body := d.get(t, "/api/dashboard", nil)
	var st struct {
		Address string `json:"address"`
		BaseURL string `json:"base_url"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.BaseURL != d.base || st.Address != d.srv.Addr() {
		t.Errorf("base_url %q, address %q; want %q, %q", st.BaseURL, st.Address, d.base, d.srv.Addr())
	}
}

func TestBoundBaseURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:3456": "http://127.0.0.1:3456",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:3456":      "http://[::1]:3456",
		"[::1]:3456":     "http://[::1]:3456",
		"localhost:1":    "http://localhost:1",
	} {
		if got := boundBaseURL(addr); got != want {
			t.Errorf("boundBaseURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
