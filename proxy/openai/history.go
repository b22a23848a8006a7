package openai

import (
	"bytes"
	"encoding/json"
	"strings"
)

// signaturePrefix starts the signature of every thinking block this
// package makes from a provider's reasoning.
const signaturePrefix = "ccmux-openai:"

// ForAnthropic readies a Messages request body for an Anthropic provider
// when its history holds thinking blocks made from an OpenAI-type
// provider's reasoning (failover, or a route that changed mid-conversation):
// Anthropic checks the signature of every thinking block and refuses the
// whole request for such a one, so they go. An assistant message left
// empty goes with them. When the last assistant message (the tool loop
// under way) lost its thinking and holds a tool call, it no longer starts
// with a thinking block, which Anthropic takes only with thinking off: the
// request's thinking goes too.
//
// It reports false, and returns body as it is, when there is nothing to
// remove; a body without the signature prefix is not parsed.
func ForAnthropic(body []byte) ([]byte, bool) {
	if !hasSignaturePrefix(body) {
		return body, false
	}
	var req map[string]json.RawMessage
	var msgs []map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(req["messages"], &msgs) != nil {
		return body, false
	}
	changed, lastStripped, lastTool := false, false, false
	var err error
	kept := msgs[:0]
	for _, m := range msgs {
		var role string
		json.Unmarshal(m["role"], &role)
		if role == "assistant" {
			lastStripped, lastTool = false, false
		}
		var content []json.RawMessage
		if role != "assistant" || json.Unmarshal(m["content"], &content) != nil {
			kept = append(kept, m)
			continue
		}
		stripped, tool := false, false
		out := content[:0]
		for _, raw := range content {
			var b struct {
				Type      string `json:"type"`
				Signature string `json:"signature"`
			}
			json.Unmarshal(raw, &b)
			if b.Type == "thinking" && strings.HasPrefix(b.Signature, signaturePrefix) {
				stripped = true
				continue
			}
			tool = tool || b.Type == "tool_use"
			out = append(out, raw)
		}
		lastStripped, lastTool = stripped, tool
		if !stripped {
			kept = append(kept, m)
			continue
		}
		changed = true
		if len(out) == 0 {
			continue
		}
		if m["content"], err = marshal(out); err != nil {
			return body, false
		}
		kept = append(kept, m)
	}
	if !changed {
		return body, false
	}
	if req["messages"], err = marshal(kept); err != nil {
		return body, false
	}
	if lastStripped && lastTool {
		if dropThinking(req) != nil {
			return body, false
		}
	}
	out, err := marshal(req)
	if err != nil {
		return body, false
	}
	return out, true
}

// WithoutThinking returns a Messages request body without its thinking
// setting and the clear_thinking edits of its context_management (which
// Anthropic takes only with thinking on): for a request Anthropic refused
// because its last assistant turn does not start with a thinking block
// (see ForAnthropic). It reports false, and returns body as it is, when
// body has no thinking setting or is not a JSON object.
func WithoutThinking(body []byte) ([]byte, bool) {
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return body, false
	}
	if _, ok := req["thinking"]; !ok {
		return body, false
	}
	if dropThinking(req) != nil {
		return body, false
	}
	out, err := marshal(req)
	if err != nil {
		return body, false
	}
	return out, true
}

// dropThinking removes req's thinking and its clear_thinking edits.
func dropThinking(req map[string]json.RawMessage) error {
	delete(req, "thinking")
	cm, err := withoutClearThinking(req["context_management"])
	if err != nil {
		return err
	}
	if cm == nil {
		delete(req, "context_management")
	} else {
		req["context_management"] = cm
	}
	return nil
}

// marshal is json.Marshal without HTML escaping, which would change the
// client's text for nothing.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// withoutClearThinking drops the clear_thinking edits of a
// context_management, which Anthropic takes only with thinking on; nil
// when nothing is left of it.
func withoutClearThinking(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var cm map[string]json.RawMessage
	var edits []json.RawMessage
	if json.Unmarshal(raw, &cm) != nil || json.Unmarshal(cm["edits"], &edits) != nil {
		return raw, nil
	}
	kept := edits[:0]
	for _, e := range edits {
		var v struct {
			Type string `json:"type"`
		}
		json.Unmarshal(e, &v)
		if !strings.HasPrefix(v.Type, "clear_thinking") {
			kept = append(kept, e)
		}
	}
	if len(kept) == len(edits) {
		return raw, nil
	}
	if len(kept) == 0 && len(cm) == 1 {
		return nil, nil
	}
	var err error
	if cm["edits"], err = marshal(kept); err != nil {
		return nil, err
	}
	return marshal(cm)
}

// HasSignature reports whether a body held in parts, in order, contains a
// signature this package made: ForAnthropic's first check, without joining
// the parts. A signature that straddles parts is found in the bytes around
// their boundary.
func HasSignature(parts [][]byte) bool {
	const edge = len(signaturePrefix) - 1
	var window [2 * edge]byte
	tail := 0 // the last bytes before this part, at most edge of them
	for _, p := range parts {
		if hasSignaturePrefix(p) {
			return true
		}
		head := copy(window[tail:], p[:min(len(p), edge)])
		if tail > 0 && hasSignaturePrefix(window[:tail+head]) {
			return true
		}
		// The window now ends with this part's first bytes; keep the
		// last edge bytes of everything read so far.
		if len(p) >= edge {
			tail = copy(window[:], p[len(p)-edge:])
		} else {
			keep := min(tail+head, edge)
			copy(window[:], window[tail+head-keep:tail+head])
			tail = keep
		}
	}
	return false
}

// hasSignaturePrefix reports whether body contains signaturePrefix. It
// looks for the prefix's 'x', rare in a conversation's text, where
// bytes.Contains stops at every 'c': on a 200 KB Claude Code body this
// takes a third of the time (6 µs, not 21), and every request an
// Anthropic provider gets pays it.
func hasSignaturePrefix(body []byte) bool {
	const at = len("ccmu") // the 'x' in signaturePrefix
	for i := at; i < len(body); i++ {
		j := bytes.IndexByte(body[i:], 'x')
		if j < 0 {
			return false
		}
		i += j
		if i-at+len(signaturePrefix) <= len(body) && string(body[i-at:i-at+len(signaturePrefix)]) == signaturePrefix {
			return true
		}
	}
	return false
}
