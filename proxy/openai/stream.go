package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// maxLine bounds one line of the upstream's event stream, so a broken
// upstream cannot make the proxy buffer without limit.
const maxLine = 16 << 20

// Stream translates a Chat Completions event stream into Anthropic Messages
// events as its bytes arrive: Feed takes whatever the upstream sent, in any
// chunking, and returns the events that bytes completed; End closes the
// stream. The same bytes give the same events however they are cut.
//
// The Anthropic stream ends with message_stop only when the upstream
// finished cleanly; a stream that breaks ends with an "event: error", so
// a cut answer never looks whole.
type Stream struct {
	t   Target
	out []byte

	line    []byte // a line not yet ended
	data    []byte // the data of the event being read
	hasData bool

	started, ended, failed bool
	atEnd                  bool   // End is reading what the upstream left
	finished               bool   // a finish_reason arrived
	finish                 string // its value
	usage                  *Usage
	startInput             int // input_tokens known at message_start

	next     int    // the next content block's index
	openKind string // "text" or "thinking" while such a block is open
	openIdx  int
	openSig  string
	tools    []*toolBlock // in the order they started
	byIndex  map[int]*toolBlock
	lastKey  int // byIndex's key of the last call started
}

// toolBlock is a tool_use block being streamed.
type toolBlock struct {
	block  int    // the Anthropic content block index
	rawID  string // the upstream's id
	args   []byte // arguments so far, kept until the block stops
	sent   bool   // an input_json_delta went out
	closed bool
}

// NewStream returns a translator for one answer to a request for t.
func NewStream(t Target) *Stream {
	return &Stream{t: t}
}

// Ended reports whether the Anthropic stream is over (message_stop or error).
func (s *Stream) Ended() bool { return s.ended }

// Failed reports whether it ended with an error event.
func (s *Stream) Failed() bool { return s.failed }

// Started reports whether message_start went out.
func (s *Stream) Started() bool { return s.started }

// Feed translates the next bytes of the upstream stream. The returned
// events are valid until the next call.
func (s *Stream) Feed(p []byte) []byte {
	s.out = s.out[:0]
	for len(p) > 0 && !s.ended {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.line = append(s.line, p...)
			if len(s.line) > maxLine {
				s.fail(fmt.Sprintf("upstream %s sent a line longer than %d bytes", s.t.Provider, maxLine))
			}
			break
		}
		line := p[:i]
		if len(s.line) > 0 {
			s.line = append(s.line, line...)
			line = s.line
		}
		p = p[i+1:]
		s.handleLine(bytes.TrimSuffix(line, []byte("\r")))
		s.line = s.line[:0]
	}
	return s.out
}

// End finishes the stream: upErr is nil when the upstream body ended
// cleanly (EOF), else why it failed. A clean end without [DONE] or
// finish_reason still ends the message (some servers send neither); a
// failure, or an end before any answer, is an error event.
func (s *Stream) End(upErr error) []byte {
	s.out = s.out[:0]
	if s.ended {
		return s.out
	}
	if upErr != nil {
		s.fail(fmt.Sprintf("upstream %s failed mid-stream: %v", s.t.Provider, upErr))
		return s.out
	}
	s.atEnd = true
	if len(s.line) > 0 {
		// The last line had no newline: it is whole only if its data is.
		line := s.line
		s.line = nil
		s.handleLine(bytes.TrimSuffix(line, []byte("\r")))
	}
	if !s.ended && s.hasData {
		s.dispatch()
	}
	if s.ended {
		return s.out
	}
	if !s.started {
		s.fail(fmt.Sprintf("upstream %s ended the stream before any answer", s.t.Provider))
		return s.out
	}
	s.end()
	return s.out
}

func (s *Stream) handleLine(line []byte) {
	switch {
	case len(line) == 0:
		if s.hasData {
			s.dispatch()
		}
	case line[0] == ':':
		// A keep-alive comment (OpenRouter sends them while a model
		// queues): the client hears it as Anthropic's ping.
		if s.started {
			s.event("ping", `{"type":"ping"}`)
		}
	case bytes.HasPrefix(line, []byte("data:")):
		v := line[len("data:"):]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		if s.hasData {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, v...)
		s.hasData = true
	}
	// event:, id:, retry: and unknown fields carry nothing Chat Completions uses.
}

func (s *Stream) dispatch() {
	data := s.data
	s.data, s.hasData = s.data[:0], false
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		if !s.started {
			s.fail(fmt.Sprintf("upstream %s ended the stream before any answer", s.t.Provider))
			return
		}
		s.end()
		return
	}
	var c chatCompletion
	if err := json.Unmarshal(data, &c); err != nil {
		if s.atEnd {
			s.fail(fmt.Sprintf("upstream %s ended the stream in the middle of an event", s.t.Provider))
			return
		}
		s.fail(fmt.Sprintf("upstream %s sent an event that is not a Chat Completions chunk: %v", s.t.Provider, err))
		return
	}
	s.chunk(&c)
}

func (s *Stream) chunk(c *chatCompletion) {
	if e := c.failure(); e != nil {
		s.failWith(ErrorType(errorStatus(e)), fmt.Sprintf("%s (%s): %s", s.t.Provider, s.t.Type, e.Message))
		return
	}
	if !s.started {
		s.start(c)
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 || s.finished {
			continue // one answer asked for; nothing follows its finish
		}
		d := &ch.Delta
		if r, sig := reasoningText(*d); r != "" {
			s.thinking(r, sig)
		}
		if d.Content != nil && *d.Content != "" {
			s.text(*d.Content)
		}
		for j := range d.ToolCalls {
			s.toolCall(&d.ToolCalls[j])
			if s.ended {
				return
			}
		}
		if ch.FinishReason != "" {
			s.finished, s.finish = true, ch.FinishReason
			s.closeOpen()
			s.closeTools(true)
		}
	}
	if c.Usage != nil {
		u := c.Usage.anthropic()
		s.usage = &u
	}
	if s.finished && s.usage != nil {
		s.end() // nothing the client needs comes after the usage
	}
}

func (s *Stream) start(c *chatCompletion) {
	s.started = true
	model := c.Model
	if model == "" {
		model = s.t.Model
	}
	if c.Usage != nil {
		s.startInput = c.Usage.anthropic().InputTokens
	}
	b, _ := json.Marshal(struct {
		Type    string              `json:"type"`
		Message anthropicMessageOut `json:"message"`
	}{"message_start", anthropicMessageOut{
		ID: messageID(c.ID), Type: "message", Role: "assistant", Model: model,
		Content: []json.RawMessage{}, Usage: Usage{InputTokens: s.startInput},
	}})
	// stop_reason is null until message_delta.
	b = bytes.Replace(b, []byte(`"stop_reason":""`), []byte(`"stop_reason":null`), 1)
	s.event("message_start", string(b))
	s.event("ping", `{"type":"ping"}`)
}

func (s *Stream) thinking(text, sig string) {
	if s.openKind != "thinking" {
		s.closeOpen()
		s.openBlock("thinking", `{"type":"thinking","thinking":"","signature":""}`)
		s.openSig = sig
	}
	s.delta(s.openIdx, "thinking_delta", "thinking", text)
}

func (s *Stream) text(text string) {
	if s.openKind != "text" {
		s.closeOpen()
		s.openBlock("text", `{"type":"text","text":""}`)
	}
	s.delta(s.openIdx, "text_delta", "text", text)
}

func (s *Stream) openBlock(kind, block string) {
	s.openKind, s.openIdx = kind, s.next
	s.blockStart(s.next, block)
	s.next++
}

// closeOpen stops the open text or thinking block.
func (s *Stream) closeOpen() {
	switch s.openKind {
	case "thinking":
		s.delta(s.openIdx, "signature_delta", "signature", s.openSig)
	case "text":
	default:
		return
	}
	s.blockStop(s.openIdx)
	s.openKind = ""
}

// closeTools stops open tool blocks: all of them, or (all false) those
// whose arguments are complete. A call whose arguments are still partial
// stays open, so a provider that interleaves parallel calls still works.
func (s *Stream) closeTools(all bool) {
	for _, tb := range s.tools {
		if tb.closed || (!all && !json.Valid(tb.args)) {
			continue
		}
		if !tb.sent {
			s.delta(tb.block, "input_json_delta", "partial_json", "{}")
		}
		s.blockStop(tb.block)
		tb.closed, tb.args = true, nil
	}
}

func (s *Stream) toolCall(d *toolCallDelta) {
	key := s.toolKey(d)
	tb := s.byIndex[key]
	if tb != nil && d.ID != "" && tb.rawID != "" && d.ID != tb.rawID {
		// Another id at a used index is another call: Ollama gives every
		// call index 0. What follows without an id belongs to this one.
		tb = nil
	}
	args := d.Function.Arguments
	switch {
	case tb == nil:
		s.closeOpen()
		s.closeTools(false)
		id := toolID(callID(d.ID, len(s.tools)), thoughtSignature(d.ExtraContent))
		b, _ := json.Marshal(struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		}{"tool_use", id, d.Function.Name, json.RawMessage("{}")})
		tb = &toolBlock{block: s.next, rawID: d.ID}
		if s.byIndex == nil {
			s.byIndex = map[int]*toolBlock{}
		}
		s.byIndex[key] = tb
		s.tools = append(s.tools, tb)
		s.lastKey = key
		s.blockStart(s.next, string(b))
		s.next++
	case d.ID != "" && d.ID == tb.rawID && (tb.closed || len(tb.args) > 0 && len(args) >= len(tb.args)):
		// Some providers (a few OpenRouter models) send a call again
		// whole in the next chunk: only what was not sent yet is new.
		// (A short piece is new arguments: some providers repeat the id
		// on every chunk, and the checks below must not run per piece.)
		switch {
		case tb.closed:
			args = ""
		case args[:len(tb.args)] == string(tb.args):
			args = args[len(tb.args):]
		case json.Valid(tb.args):
			args = ""
		}
	}
	if args == "" {
		return
	}
	if tb.closed {
		s.fail(fmt.Sprintf("upstream %s sent more arguments for a tool call after they were complete", s.t.Provider))
		return
	}
	tb.args = append(tb.args, args...)
	tb.sent = true
	s.delta(tb.block, "input_json_delta", "partial_json", args)
}

// toolKey says which call a tool-call delta belongs to: its index, or for
// a provider that sends none, the call with its id, or the last call.
func (s *Stream) toolKey(d *toolCallDelta) int {
	if d.Index != nil {
		return *d.Index
	}
	for k, tb := range s.byIndex {
		if d.ID != "" && tb.rawID == d.ID {
			return k
		}
	}
	if d.ID == "" && len(s.tools) > 0 {
		return s.lastKey
	}
	return -1 - len(s.tools) // a new call, clear of real indexes
}

// end writes message_delta and message_stop.
func (s *Stream) end() {
	s.closeOpen()
	s.closeTools(true)
	reason := StopReason(s.finish, len(s.tools) > 0)
	b := append(s.out, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"...)
	b = strconv.AppendQuote(b, reason)
	b = append(b, `,"stop_sequence":null},"usage":`...)
	u := Usage{InputTokens: s.startInput}
	if s.usage != nil {
		u = *s.usage
	}
	ub, _ := json.Marshal(u)
	b = append(b, ub...)
	b = append(b, "}\n\n"...)
	s.out = b
	s.event("message_stop", `{"type":"message_stop"}`)
	s.ended = true
}

func (s *Stream) fail(msg string) { s.failWith("api_error", msg) }

func (s *Stream) failWith(typ, msg string) {
	s.out = append(s.out, "event: error\ndata: "...)
	s.out = append(s.out, ErrorBody(typ, msg)...)
	s.out = append(s.out, "\n\n"...)
	s.ended, s.failed = true, true
}

func (s *Stream) event(name, data string) {
	s.out = append(s.out, "event: "...)
	s.out = append(s.out, name...)
	s.out = append(s.out, "\ndata: "...)
	s.out = append(s.out, data...)
	s.out = append(s.out, "\n\n"...)
}

func (s *Stream) blockStart(idx int, block string) {
	s.out = append(s.out, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":"...)
	s.out = strconv.AppendInt(s.out, int64(idx), 10)
	s.out = append(s.out, `,"content_block":`...)
	s.out = append(s.out, block...)
	s.out = append(s.out, "}\n\n"...)
}

func (s *Stream) blockStop(idx int) {
	s.out = append(s.out, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	s.out = strconv.AppendInt(s.out, int64(idx), 10)
	s.out = append(s.out, "}\n\n"...)
}

func (s *Stream) delta(idx int, typ, field, value string) {
	s.out = append(s.out, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
	s.out = strconv.AppendInt(s.out, int64(idx), 10)
	s.out = append(s.out, `,"delta":{"type":"`...)
	s.out = append(s.out, typ...)
	s.out = append(s.out, `","`...)
	s.out = append(s.out, field...)
	s.out = append(s.out, `":`...)
	s.out = appendJSONString(s.out, value)
	s.out = append(s.out, "}}\n\n"...)
}

// appendJSONString appends s as a JSON string through encoding/json, so
// that invalid UTF-8 and control characters are escaped as it does.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// errorStatus reads the HTTP status an in-stream error names in its code.
func errorStatus(e *chatError) int {
	var n int
	if json.Unmarshal(e.Code, &n) == nil && n > 0 {
		return n
	}
	var code string
	json.Unmarshal(e.Code, &code)
	switch {
	case strings.Contains(code, "rate_limit") || strings.Contains(e.Type, "rate_limit"):
		return 429
	case strings.Contains(code, "overloaded") || strings.Contains(e.Type, "overloaded"):
		return 503
	case strings.Contains(e.Type, "invalid_request"):
		return 400
	}
	return 500
}
