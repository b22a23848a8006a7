package proxy

import (
	"net/http"
	"testing"
)

// FuzzParseUnified: any header values give a reading without panicking,
// every window it reports has a name and a utilization in [0, 100], and a
// reading only says rejected when a header said so.
func FuzzParseUnified(f *testing.F) {
	f.Add("rejected", "1767376800", "5h", "0.42", "1767376800", "allowed")
	f.Add("", "-1", "7d_opus", "NaN", "x", "")
	f.Add("allowed_warning", "99999999999", "-", "1e400", "0x10", "rejected")
	f.Fuzz(func(t *testing.T, status, reset, window, util, wreset, wstatus string) {
		h := http.Header{}
		h.Set("anthropic-ratelimit-unified-status", status)
		h.Set("anthropic-ratelimit-unified-reset", reset)
		h.Set("anthropic-ratelimit-unified-"+window+"-utilization", util)
		h.Set("anthropic-ratelimit-unified-"+window+"-reset", wreset)
		h.Set("anthropic-ratelimit-unified-"+window+"-status", wstatus)
		r, _ := parseUnified(h)
		for _, w := range r.Windows {
			if w.Name == "" || !(w.Utilization >= 0 && w.Utilization <= 100) {
				t.Fatalf("window %+v from %q", w, util)
			}
		}
		if r.rejected() && status != "rejected" && wstatus != "rejected" {
			t.Fatalf("rejected from status %q and window status %q", status, wstatus)
		}
	})
}
