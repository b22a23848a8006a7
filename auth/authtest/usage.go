package authtest

import (
	"fmt"
	"net/http"
	"strings"
)

// UsageBody is the fake usage endpoint's default answer, in the shape the
// real endpoint has sent (utilization in percent).
const UsageBody = `{"five_hour":{"utilization":42.0,"resets_at":"2026-01-02T18:00:00.123456+00:00"},` +
	`"seven_day":{"utilization":13.0,"resets_at":"2026-01-05T09:00:00+00:00"},` +
	`"seven_day_opus":{"utilization":80.0,"resets_at":"2026-01-05T09:00:00+00:00"},` +
	`"seven_day_oauth_apps":null,"extra_usage":{"is_enabled":false,"monthly_limit":null,"used_credits":null,"utilization":null}}`

// usageState is the fake usage endpoint's behaviour and what it saw.
type usageState struct {
	body       string // answer for valid tokens; "" means UsageBody
	failStatus int    // when not 0, the next failTimes requests get it
	failTimes  int
	retryAfter string
	requests   []UsageRequest
}

// UsageRequest is one request the usage endpoint received.
type UsageRequest struct {
	Beta       string // the anthropic-beta header
	ValidToken bool   // the bearer token was a live access token
}

// UsageURL is the fake's usage endpoint.
func (s *Server) UsageURL() string { return s.URL + UsagePath }

// SetUsage sets the usage endpoint's JSON answer ("" for UsageBody).
func (s *Server) SetUsage(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage.body = body
}

// FailUsage makes the next times usage requests answer status (with a
// Retry-After header when retryAfter is not ""); status 0 clears it.
func (s *Server) FailUsage(status, times int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usage.failStatus, s.usage.failTimes, s.usage.retryAfter = status, times, retryAfter
}

// UsageRequests returns every request the usage endpoint received, in order.
func (s *Server) UsageRequests() []UsageRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]UsageRequest(nil), s.usage.requests...)
}

// RevokeAccessTokens makes every access token issued so far invalid, as when
// the server ends them early; refresh tokens keep working.
func (s *Server) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
}

func (s *Server) serveUsage(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	valid := ok && s.access[tok]
	s.usage.requests = append(s.usage.requests, UsageRequest{Beta: r.Header.Get("anthropic-beta"), ValidToken: valid})
	w.Header().Set("Content-Type", "application/json")
	switch {
	case !valid:
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"type":"error","error":{"type":"authentication_error","message":"OAuth token has expired"}}`)
	case s.usage.failStatus != 0 && s.usage.failTimes > 0:
		s.usage.failTimes--
		if s.usage.retryAfter != "" {
			w.Header().Set("Retry-After", s.usage.retryAfter)
		}
		w.WriteHeader(s.usage.failStatus)
		fmt.Fprintf(w, `{"type":"error","error":{"type":"rate_limit_error","message":"fake failure %d"}}`, s.usage.failStatus)
	case s.usage.body != "":
		fmt.Fprint(w, s.usage.body)
	default:
		fmt.Fprint(w, UsageBody)
	}
}
