package proxy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// jsonResultsBody is a conversation of about size bytes whose tool results
// are JSON documents (an MCP tool's answer, a package.json read): inside
// the request's strings they put an escaped quote every few bytes, the
// densest case for the scan's string skipping.
func jsonResultsBody(size int) []byte {
	doc := strings.Repeat(`{"name":"handler","line":42,"ok":true,"path":"/src/main.go"},`, 40)
	type block struct {
		Type      string `json:"type"`
		ToolUseID string `json:"tool_use_id"`
		Content   string `json:"content"`
	}
	type message struct {
		Role    string  `json:"role"`
		Content []block `json:"content"`
	}
	var msgs []message
	for n := 0; n < size; n += len(doc) * 11 / 10 {
		msgs = append(msgs, message{"user", []block{{"tool_result", fmt.Sprintf("toolu_%08d", len(msgs)), "[" + doc + "{}]"}}})
	}
	b, _ := json.Marshal(map[string]any{"model": "claude-sonnet-4-5", "max_tokens": 32000, "messages": msgs})
	return b
}

func BenchmarkScanRoutingJSONResults(b *testing.B) {
	body := jsonResultsBody(400 << 10)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := scanRouting(body); err != nil {
			b.Fatal(err)
		}
	}
}
