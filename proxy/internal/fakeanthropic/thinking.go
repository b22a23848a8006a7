package fakeanthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// thinkingRefusal is the API's refusal of a request with thinking on
// whose last assistant message holds a tool call but does not start with
// a thinking or redacted_thinking block, or "" for a request it takes. As
// routingFields, it stays cheap: bodies of 64 KiB and more (the
// benchmark's) and bodies that never say "thinking" are not decoded.
func thinkingRefusal(body []byte) string {
	if len(body) >= 64<<10 || !bytes.Contains(body, []byte(`"thinking"`)) {
		return ""
	}
	var req struct {
		Thinking *struct {
			Type string `json:"type"`
		} `json:"thinking"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil || req.Thinking == nil ||
		(req.Thinking.Type != "enabled" && req.Thinking.Type != "adaptive") {
		return ""
	}
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role != "assistant" {
			continue
		}
		var blocks []struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(req.Messages[i].Content, &blocks) != nil || len(blocks) == 0 {
			return ""
		}
		tool := false
		for _, b := range blocks {
			tool = tool || b.Type == "tool_use"
		}
		if !tool || blocks[0].Type == "thinking" || blocks[0].Type == "redacted_thinking" {
			return ""
		}
		return ThinkingRefusal(i, blocks[0].Type)
	}
	return ""
}

// ThinkingRefusal is the API's message refusing a request with thinking on
// whose final assistant message, messages[i], starts with a found block
// instead of a thinking block.
func ThinkingRefusal(i int, found string) string {
	return fmt.Sprintf("messages.%d.content.0.type: Expected `thinking` or `redacted_thinking`, but found `%s`. "+
		"When `thinking` is enabled, a final `assistant` message must start with a thinking block "+
		"(preceeding the lastmost set of `tool_use` and `tool_result` blocks). "+
		"We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. "+
		"Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking", i, found)
}

// writeInvalidRequest writes the API's 400 invalid_request_error with msg,
// in the shape the API sends it (request_id included).
func writeInvalidRequest(w http.ResponseWriter, msg, reqID string) {
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	data, _ := json.Marshal(struct {
		Type      string `json:"type"`
		Error     detail `json:"error"`
		RequestID string `json:"request_id"`
	}{"error", detail{"invalid_request_error", msg}, reqID})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-should-retry", "false")
	w.WriteHeader(http.StatusBadRequest)
	w.Write(data)
}
