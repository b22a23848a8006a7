package openai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// chatCompletion is a Chat Completions answer, or one stream chunk of it
// (then choices carry a delta instead of a message).
type chatCompletion struct {
	ID      string       `json:"id"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *chatUsage   `json:"usage"`
	// Error is a failure some providers (OpenRouter) send mid-stream.
	Error *chatError `json:"error"`
	// Object is "error" for vLLM's form of a failure, whose message,
	// type and code are at the top level.
	Object  string          `json:"object"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// failure returns the error the chunk or answer is, or nil.
func (c *chatCompletion) failure() *chatError {
	if c.Error == nil && c.Object == "error" {
		return &chatError{Message: c.Message, Type: c.Type, Code: c.Code}
	}
	return c.Error
}

type chatChoice struct {
	Index        int       `json:"index"`
	Message      chatDelta `json:"message"`
	Delta        chatDelta `json:"delta"`
	FinishReason string    `json:"finish_reason"`
}

type chatDelta struct {
	Content          *string         `json:"content"`
	ReasoningContent *string         `json:"reasoning_content"`
	Reasoning        *string         `json:"reasoning"`
	ToolCalls        []toolCallDelta `json:"tool_calls"`
}

type toolCallDelta struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
	ExtraContent *extraContent `json:"extra_content"`
}

type chatUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// anthropicUsage splits prompt tokens the Anthropic way: input_tokens
// does not count the tokens read from the cache.
func (u *chatUsage) anthropic() Usage {
	cached := 0
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	return Usage{InputTokens: max(u.PromptTokens-cached, 0), OutputTokens: u.CompletionTokens, CacheReadInputTokens: cached}
}

type chatError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

// UnmarshalJSON also takes an error that is only its message, as some
// servers (LM Studio) send it: {"error":"…"}.
func (e *chatError) UnmarshalJSON(b []byte) error {
	var msg string
	if json.Unmarshal(b, &msg) == nil {
		*e = chatError{Message: msg}
		return nil
	}
	type plain chatError
	return json.Unmarshal(b, (*plain)(e))
}

// Usage is an Anthropic usage object.
type Usage struct {
	InputTokens          int `json:"input_tokens"`
	OutputTokens         int `json:"output_tokens"`
	CacheReadInputTokens int `json:"cache_read_input_tokens"`
}

// StopReason maps a finish_reason to an Anthropic stop_reason; toolUsed
// reports whether the answer holds a tool call, which some providers end
// with "stop" and which Claude Code only runs under "tool_use".
func StopReason(finish string, toolUsed bool) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "content_filter":
		return "refusal"
	}
	if toolUsed {
		return "tool_use"
	}
	return "end_turn"
}

// messageID makes an Anthropic-looking message id from a completion's id.
func messageID(id string) string {
	if id == "" {
		return "msg_ccmux"
	}
	if strings.HasPrefix(id, "msg_") {
		return id
	}
	return "msg_" + id
}

type anthropicMessageOut struct {
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	Role         string            `json:"role"`
	Model        string            `json:"model"`
	Content      []json.RawMessage `json:"content"`
	StopReason   string            `json:"stop_reason"`
	StopSequence *string           `json:"stop_sequence"`
	Usage        Usage             `json:"usage"`
}

// parseCompletion reads a whole Chat Completion that has at least one
// choice; an error body or an empty answer is an error.
func parseCompletion(body []byte) (chatCompletion, error) {
	var c chatCompletion
	if err := json.Unmarshal(body, &c); err != nil {
		return c, fmt.Errorf("the answer is not a Chat Completion: %w", err)
	}
	if e := c.failure(); e != nil {
		return c, fmt.Errorf("the answer is an error: %s", e.Message)
	}
	if len(c.Choices) == 0 {
		return c, fmt.Errorf("the answer has no choices")
	}
	return c, nil
}

// Response translates a (non-streaming) Chat Completion into an Anthropic
// message body.
func Response(body []byte, t Target) ([]byte, error) {
	c, err := parseCompletion(body)
	if err != nil {
		return nil, err
	}
	out := anthropicMessageOut{ID: messageID(c.ID), Type: "message", Role: "assistant", Model: c.Model, Content: []json.RawMessage{}}
	if out.Model == "" {
		out.Model = t.Model
	}
	m := c.Choices[0].Message
	add := func(v any) {
		b, _ := json.Marshal(v)
		out.Content = append(out.Content, b)
	}
	if r, sig := reasoningText(m); r != "" {
		add(map[string]string{"type": "thinking", "thinking": r, "signature": sig})
	}
	if m.Content != nil && *m.Content != "" {
		add(map[string]string{"type": "text", "text": *m.Content})
	}
	for i, tc := range m.ToolCalls {
		input := json.RawMessage(tc.Function.Arguments)
		if strings.TrimSpace(tc.Function.Arguments) == "" {
			input = json.RawMessage("{}")
		}
		if !json.Valid(input) {
			return nil, fmt.Errorf("tool call %d (%s) has arguments that are not JSON", i, tc.Function.Name)
		}
		add(struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		}{"tool_use", toolID(callID(tc.ID, i), thoughtSignature(tc.ExtraContent)), tc.Function.Name, input})
	}
	out.StopReason = StopReason(c.Choices[0].FinishReason, len(m.ToolCalls) > 0)
	if c.Usage != nil {
		out.Usage = c.Usage.anthropic()
	}
	return json.Marshal(out)
}

func reasoningText(m chatDelta) (string, string) {
	if m.ReasoningContent != nil && *m.ReasoningContent != "" {
		return *m.ReasoningContent, SignatureReasoningContent
	}
	if m.Reasoning != nil && *m.Reasoning != "" {
		return *m.Reasoning, SignatureReasoning
	}
	return "", ""
}

func thoughtSignature(ec *extraContent) string {
	if ec == nil {
		return ""
	}
	return ec.Google.ThoughtSignature
}

// callID is a tool call's id, or one made up for a provider that sends
// none (some local servers): Claude Code pairs results with it.
func callID(id string, n int) string {
	if id != "" {
		return id
	}
	return fmt.Sprintf("toolu_ccmux_%d", n)
}

// ErrorType is the Anthropic error type for an upstream status.
func ErrorType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	if status >= 400 && status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

// ErrorBody is an Anthropic error body.
func ErrorBody(typ, msg string) []byte {
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	b, _ := json.Marshal(struct {
		Type  string `json:"type"`
		Error detail `json:"error"`
	}{"error", detail{typ, msg}})
	return b
}

// Error translates an upstream's error answer (OpenAI's
// {"error":{"message",…}}, Gemini's list of those, or anything else) into
// an Anthropic error body of the type its status means, naming the provider.
func Error(status int, body []byte, t Target) []byte {
	return ErrorBody(ErrorType(status), fmt.Sprintf("%s (%s): %s", t.Provider, t.Type, errorMessage(status, body)))
}

func errorMessage(status int, body []byte) string {
	var one struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	var list []struct {
		Error chatError `json:"error"`
	}
	switch {
	case json.Unmarshal(body, &one) == nil && len(one.Error) > 0:
		var e chatError
		if json.Unmarshal(one.Error, &e) == nil && e.Message != "" {
			return e.Message
		}
		var s string
		if json.Unmarshal(one.Error, &s) == nil && s != "" {
			return s
		}
	case one.Message != "":
		return one.Message
	case json.Unmarshal(body, &list) == nil && len(list) > 0 && list[0].Error.Message != "":
		return list[0].Error.Message
	}
	if s := strings.TrimSpace(string(body)); s != "" && len(s) <= 512 && !strings.ContainsAny(s, "<{") {
		return s
	}
	return fmt.Sprintf("status %d %s", status, http.StatusText(status))
}

// ResponseEvents translates a whole Chat Completion into the Anthropic
// event stream a client that asked for a stream expects: some servers
// answer a stream request with one JSON body.
func ResponseEvents(body []byte, t Target) ([]byte, error) {
	c, err := parseCompletion(body)
	if err != nil {
		return nil, err
	}
	ch := c.Choices[0]
	ch.Index, ch.Delta, ch.Message = 0, ch.Message, chatDelta{}
	for i := range ch.Delta.ToolCalls {
		n := i
		ch.Delta.ToolCalls[i].Index = &n
	}
	c.Choices = []chatChoice{ch}
	s := NewStream(t)
	s.chunk(&c)
	out := append([]byte(nil), s.out...)
	out = append(out, s.End(nil)...)
	if s.Failed() {
		return nil, fmt.Errorf("translating the answer failed")
	}
	return out, nil
}
