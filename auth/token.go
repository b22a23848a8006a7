package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/oauth2"
)

// ErrSessionEnded means the token endpoint rejected the refresh token
// (invalid_grant): the login is gone and the user must sign in again.
var ErrSessionEnded = errors.New("session ended, sign in again")

// tokenError is a failed token request, described without any secret.
type tokenError struct {
	status     int           // HTTP status, 0 for a network error
	code       string        // OAuth "error" from a JSON body
	desc       string        // OAuth "error_description", sanitised
	retryAfter time.Duration // 429/503 Retry-After, 0 when absent
	err        error         // network error
}

func (e *tokenError) Error() string {
	switch {
	case e.err != nil:
		return "token endpoint unreachable: " + e.err.Error()
	case e.code == "invalid_grant":
		return ErrSessionEnded.Error()
	case e.code != "" && e.desc != "":
		return fmt.Sprintf("token endpoint answered %d %s: %s", e.status, e.code, e.desc)
	case e.code != "":
		return fmt.Sprintf("token endpoint answered %d %s", e.status, e.code)
	default:
		return fmt.Sprintf("token endpoint answered %d %s", e.status, http.StatusText(e.status))
	}
}

// Is makes errors.Is(err, ErrSessionEnded) true for invalid_grant.
func (e *tokenError) Is(target error) bool {
	return target == ErrSessionEnded && e.code == "invalid_grant"
}

func (e *tokenError) Unwrap() error { return e.err }

// temporary reports whether trying again later may work: network errors,
// 429 and 5xx.
func (e *tokenError) temporary() bool {
	return e.err != nil || e.status == http.StatusTooManyRequests || e.status >= 500
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
	Account      *struct {
		EmailAddress string `json:"email_address"`
	} `json:"account"`
}

// postToken sends a JSON token request (x/oauth2 only speaks form encoding,
// which the Claude token endpoint refuses) and returns the token; its Extra
// "email" is the account email when the response carries one.
func (c *Client) postToken(ctx context.Context, tokenURL string, body map[string]string) (*oauth2.Token, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("token_url %q: %w", tokenURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &tokenError{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	c.log.Debug("token request", "grant_type", body["grant_type"], "status", resp.StatusCode, "duration", time.Since(start).Round(time.Millisecond))
	if err != nil {
		return nil, &tokenError{err: err}
	}
	if resp.StatusCode != http.StatusOK {
		te := &tokenError{status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now())}
		var e struct {
			Error       any    `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(data, &e) == nil {
			switch v := e.Error.(type) {
			case string:
				te.code = v
			case map[string]any: // Anthropic's {"type":"error","error":{"type":...,"message":...}}
				te.code, _ = v["type"].(string)
				if m, ok := v["message"].(string); ok && e.Description == "" {
					e.Description = m
				}
			}
			te.code = sanitise(te.code, 64)
			te.desc = sanitise(e.Description, 200)
		}
		return nil, te
	}
	var tr tokenResponse
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" {
		return nil, &tokenError{status: resp.StatusCode, code: "invalid_response", desc: "the token response has no access_token"}
	}
	tok := &oauth2.Token{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, TokenType: tr.TokenType}
	if tr.ExpiresIn > 0 {
		tok.Expiry = c.clock.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	extra := map[string]any{}
	if tr.Account != nil && tr.Account.EmailAddress != "" {
		extra["email"] = tr.Account.EmailAddress
	}
	return tok.WithExtra(extra), nil
}

// sanitise keeps a server-supplied string short and printable, and drops it
// if it looks like it carries a token.
func sanitise(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	if strings.Contains(s, "sk-ant-") {
		return "(redacted)"
	}
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// exchangeCode trades an authorization code for tokens.
func (c *Client) exchangeCode(ctx context.Context, p Preset, code, state, redirectURI, verifier string) (*oauth2.Token, error) {
	tok, err := c.postToken(ctx, p.TokenURL, map[string]string{
		"grant_type":    "authorization_code",
		"code":          code,
		"state":         state,
		"client_id":     p.ClientID,
		"redirect_uri":  redirectURI,
		"code_verifier": verifier,
	})
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) && te.code == "invalid_grant" {
			// For a code, invalid_grant means it expired, was used, or the
			// verifier did not match — not an ended session.
			return nil, fmt.Errorf("the sign-in code was refused (it may have expired or been used already); start again: %s", te.desc)
		}
		return nil, fmt.Errorf("exchanging the sign-in code: %w", err)
	}
	return tok, nil
}

// refreshToken asks for a new access token with the preset's scopes, as
// Claude Code does (a refresh without scope gets the token's old ones).
func (c *Client) refreshToken(ctx context.Context, p Preset, refresh string) (*oauth2.Token, error) {
	return c.postToken(ctx, p.TokenURL, map[string]string{
		"grant_type":    "refresh_token",
		"refresh_token": refresh,
		"client_id":     p.ClientID,
		"scope":         strings.Join(p.Scopes, " "),
	})
}

// createAPIKey asks the console for an API key with a fresh access token.
func (c *Client) createAPIKey(ctx context.Context, p Preset, access string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.APIKeyURL, nil)
	if err != nil {
		return "", fmt.Errorf("api_key_url %q: %w", p.APIKeyURL, err)
	}
	req.Header.Set("Authorization", "Bearer "+access)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("creating an API key: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		RawKey string `json:"raw_key"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("creating an API key: %s answered %s", p.APIKeyURL, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.RawKey == "" {
		return "", fmt.Errorf("creating an API key: %s answered without a raw_key", p.APIKeyURL)
	}
	return out.RawKey, nil
}
