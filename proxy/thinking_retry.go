package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"ccmux/auth"
	"ccmux/proxy/openai"
)

// thinkingRefused reports whether a buffered 400 answer is Anthropic's
// refusal of a request with thinking on whose last assistant turn, a tool
// call under way, does not start with a thinking block ("messages.N.content.0.type:
// Expected `thinking` or `redacted_thinking`, but found `tool_use`. When
// `thinking` is enabled, a final `assistant` message must start with a
// thinking block ..."). Only that refusal matches: the message is checked
// for either of its two stable phrases.
func thinkingRefused(a *answer) bool {
	b := a.first
	if a.resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return false
		}
		if b, err = io.ReadAll(io.LimitReader(zr, maxErrorBody)); err != nil {
			return false
		}
	}
	var e apiErrorShape
	if json.Unmarshal(b, &e) != nil || e.Type != "error" || e.Error.Type != "invalid_request_error" {
		return false
	}
	return strings.Contains(e.Error.Message, "must start with a thinking block") ||
		strings.Contains(e.Error.Message, "Expected `thinking` or `redacted_thinking`")
}

// withoutThinking answers a 400 from candidate c to a request with
// thinking on. When it is the refusal thinkingRefused matches, which
// happens when the history lacks the thinking block of the tool loop under
// way (an OpenAI-type provider answered it without reasoning, or the
// client dropped it) and ccmux cannot tell cheaply beforehand (see
// openai.ForAnthropic), the request goes once more to c with thinking
// turned off, and that answer is returned, unread. A 400 means the request
// was not processed, so sending it again keeps the rule that a request
// that may have been processed is never sent twice; the second answer,
// whatever it is, is never retried. Any other 400 comes back buffered, as
// received.
func (h *handler) withoutThinking(ctx context.Context, r *http.Request, c Candidate, body *payload, ans *answer, cred auth.Credential) (*answer, error) {
	if err := ans.buffer(); err != nil {
		return nil, err
	}
	if !thinkingRefused(ans) {
		return ans, nil
	}
	clean, ok := openai.WithoutThinking(body.bytes())
	if !ok {
		return ans, nil
	}
	f, err := scanRouting(clean)
	if err != nil {
		return ans, nil
	}
	h.s.logger().Warn("the provider refused the request because the last assistant turn does not start with a thinking block; sending it once more with thinking turned off",
		"provider", c.Provider, "model", clip(c.Model), "status", ans.status())
	p := bytesPayload(clean)
	defer p.release() // the transport holds its own reference while it reads
	ans.close()
	return h.send(ctx, r, c, sentFor(p, &f, c), cred)
}
