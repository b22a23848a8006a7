// Package openai translates between the Anthropic Messages API and OpenAI
// Chat Completions: request bodies one way, answers, stream chunks and
// errors the other. It is pure functions over bytes and never does HTTP;
// the proxy calls it for providers that speak Chat Completions.
package openai

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Target is the upstream a request is translated for.
type Target struct {
	// Provider is the provider's name in the config, said in errors.
	Provider string
	// Type is its provider_type ("openai", "openrouter", "gemini", …).
	Type string
	// Model is the model name sent upstream.
	Model string
}

// RequestError is content the target cannot take. The client gets it as a
// 400 invalid_request_error: dropping it silently would change the answer.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func (t Target) refuse(format string, args ...any) error {
	return &RequestError{Msg: fmt.Sprintf("provider %s (%s, OpenAI Chat Completions) cannot take ", t.Provider, t.Type) + fmt.Sprintf(format, args...)}
}

// Thinking blocks made from a provider's reasoning carry one of these
// signatures, so a later turn knows which field to send them back in.
const (
	SignatureReasoningContent = "ccmux-openai:reasoning_content"
	SignatureReasoning        = "ccmux-openai:reasoning"
)

// idSignature separates a tool call's id from the Gemini thought signature
// carried with it (base64url), so that the signature goes back with the
// tool call on the next turn; tool-use ids allow only [A-Za-z0-9_-].
const idSignature = "_ccmuxsig_"

// MinCompletionTokens is the least max_completion_tokens sent to reasoning
// models (OpenAI o-series and gpt-5): Claude Code probes with max_tokens 1,
// which such a model cannot answer within.
const MinCompletionTokens = 16

type anthropicRequest struct {
	Model         string             `json:"model"`
	MaxTokens     *int               `json:"max_tokens"`
	System        json.RawMessage    `json:"system"`
	Messages      []anthropicMessage `json:"messages"`
	Tools         []anthropicTool    `json:"tools"`
	ToolChoice    *anthropicChoice   `json:"tool_choice"`
	StopSequences []string           `json:"stop_sequences"`
	Temperature   *float64           `json:"temperature"`
	TopP          *float64           `json:"top_p"`
	Metadata      *struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
	Stream   bool `json:"stream"`
	Thinking *struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	} `json:"thinking"`
}

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    *imageSource    `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
}

type imageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

type anthropicTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthropicChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	MaxTokens           *int           `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int           `json:"max_completion_tokens,omitempty"`
	Temperature         *float64       `json:"temperature,omitempty"`
	TopP                *float64       `json:"top_p,omitempty"`
	Stop                []string       `json:"stop,omitempty"`
	Tools               []chatTool     `json:"tools,omitempty"`
	ToolChoice          any            `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool          `json:"parallel_tool_calls,omitempty"`
	User                string         `json:"user,omitempty"`
	Stream              bool           `json:"stream,omitempty"`
	StreamOptions       *streamOptions `json:"stream_options,omitempty"`
	ReasoningEffort     string         `json:"reasoning_effort,omitempty"`
	// Reasoning is OpenRouter's form of the thinking budget.
	Reasoning *struct {
		MaxTokens int `json:"max_tokens"`
	} `json:"reasoning,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role string `json:"role"`
	// Content is a string, a []chatPart, or nil (null: an assistant
	// message with only tool calls).
	Content          any        `json:"content"`
	ToolCalls        []toolCall `json:"tool_calls,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
}

type chatPart struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL string `json:"url"`
}

type toolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
	ExtraContent *extraContent `json:"extra_content,omitempty"`
}

// extraContent is where Gemini's OpenAI endpoint puts a tool call's
// thought signature, which must come back with the call.
type extraContent struct {
	Google struct {
		ThoughtSignature string `json:"thought_signature,omitempty"`
	} `json:"google"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// Request translates an Anthropic Messages request body into a Chat
// Completions request body for t. Content t cannot take is a *RequestError;
// a body that is not a Messages request is a plain error.
func Request(body []byte, t Target) ([]byte, error) {
	var in anthropicRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &RequestError{Msg: "the request body is not a Messages API request: " + err.Error()}
	}
	out := chatRequest{Model: t.Model, Stop: in.StopSequences}
	reasoning := reasoningModel(t.Model)
	if in.MaxTokens != nil {
		n := *in.MaxTokens
		if reasoning {
			n = max(n, MinCompletionTokens)
			out.MaxCompletionTokens = &n
		} else {
			out.MaxTokens = &n
		}
	}
	if !reasoning {
		// OpenAI's reasoning models refuse any temperature or top_p but the default.
		out.Temperature, out.TopP = in.Temperature, in.TopP
	}
	if in.Metadata != nil {
		out.User = userField(in.Metadata.UserID)
	}
	if in.Stream {
		out.Stream = true
		out.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if in.Thinking != nil && (in.Thinking.Type == "enabled" || in.Thinking.Type == "adaptive") {
		switch {
		case t.Type == "openrouter" && in.Thinking.BudgetTokens > 0:
			out.Reasoning = &struct {
				MaxTokens int `json:"max_tokens"`
			}{in.Thinking.BudgetTokens}
		case reasoning || t.Type == "gemini" || t.Type == "openrouter":
			out.ReasoningEffort = effort(in.Thinking.BudgetTokens)
		}
	}
	system, err := systemText(in.System, t)
	if err != nil {
		return nil, err
	}
	if system != "" {
		out.Messages = append(out.Messages, chatMessage{Role: "system", Content: system})
	}
	turn := currentTurn(in.Messages)
	for i, m := range in.Messages {
		msgs, err := translateMessage(m, t, i >= turn)
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		out.Messages = append(out.Messages, msgs...)
	}
	for _, tool := range in.Tools {
		if tool.Type != "" && tool.Type != "custom" {
			return nil, t.refuse("the server tool %q (type %s); send it to an Anthropic provider", tool.Name, tool.Type)
		}
		var ct chatTool
		ct.Type = "function"
		ct.Function.Name, ct.Function.Description = tool.Name, tool.Description
		ct.Function.Parameters = withoutSchemaKey(tool.InputSchema)
		if len(ct.Function.Parameters) == 0 || string(ct.Function.Parameters) == "null" {
			ct.Function.Parameters = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, ct)
	}
	if in.ToolChoice != nil && len(out.Tools) > 0 {
		switch in.ToolChoice.Type {
		case "auto":
			out.ToolChoice = "auto"
		case "any":
			out.ToolChoice = "required"
		case "none":
			out.ToolChoice = "none"
		case "tool":
			out.ToolChoice = map[string]any{"type": "function", "function": map[string]string{"name": in.ToolChoice.Name}}
		default:
			return nil, &RequestError{Msg: fmt.Sprintf("tool_choice.type: want auto, any, tool or none, got %q", in.ToolChoice.Type)}
		}
		if in.ToolChoice.DisableParallelToolUse {
			f := false
			out.ParallelToolCalls = &f
		}
	}
	return json.Marshal(out)
}

// maxUser is the longest user OpenAI takes; Claude Code's user_id (user,
// account and session ids) is longer.
const maxUser = 64

// userField returns user_id for the user field: as it is when it fits,
// else its SHA-256 in hex (64 characters, the same for the same id).
func userField(id string) string {
	if len(id) <= maxUser {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// withoutSchemaKey drops a schema's top-level "$schema" (Claude Code's
// tools carry one): Gemini's endpoint refuses the key, the others ignore it.
func withoutSchemaKey(schema json.RawMessage) json.RawMessage {
	if !bytes.Contains(schema, []byte(`"$schema"`)) {
		return schema
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(schema, &m) != nil {
		return schema
	}
	delete(m, "$schema")
	out, err := json.Marshal(m)
	if err != nil {
		return schema
	}
	return out
}

// reasoningModel reports the OpenAI models that take max_completion_tokens
// instead of max_tokens: the o-series and gpt-5, also under a vendor
// prefix such as OpenRouter's "openai/".
func reasoningModel(model string) bool {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	if strings.HasPrefix(m, "gpt-5") {
		return true
	}
	return len(m) >= 2 && m[0] == 'o' && m[1] >= '1' && m[1] <= '9'
}

// effort maps a thinking budget to a reasoning_effort.
func effort(budget int) string {
	switch {
	case budget <= 0:
		return "medium" // adaptive thinking names no budget
	case budget < 4096:
		return "low"
	case budget < 16384:
		return "medium"
	}
	return "high"
}

// systemText joins a system prompt given as a string or as text blocks.
func systemText(raw json.RawMessage, t Target) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []anthropicBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", &RequestError{Msg: "system: want a string or an array of text blocks"}
	}
	var parts []string
	for _, b := range blocks {
		if b.Type != "text" {
			return "", t.refuse("a %q block in system", b.Type)
		}
		parts = append(parts, b.Text)
	}
	return strings.Join(parts, "\n\n"), nil
}

// blocks reads a message content: a string is one text block.
func blocks(raw json.RawMessage) ([]anthropicBlock, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []anthropicBlock{{Type: "text", Text: s}}, nil
	}
	var bs []anthropicBlock
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, &RequestError{Msg: "content: want a string or an array of content blocks"}
	}
	return bs, nil
}

// currentTurn returns the index of the last user message that is not only
// tool results: the assistant messages after it are the tool loop of the
// current turn, whose reasoning DeepSeek wants back (and ignores before).
func currentTurn(msgs []anthropicMessage) int {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != "user" {
			continue
		}
		bs, err := blocks(msgs[i].Content)
		if err != nil {
			return i
		}
		for _, b := range bs {
			if b.Type != "tool_result" {
				return i
			}
		}
	}
	return 0
}

func translateMessage(m anthropicMessage, t Target, current bool) ([]chatMessage, error) {
	bs, err := blocks(m.Content)
	if err != nil {
		return nil, err
	}
	switch m.Role {
	case "assistant":
		msg, err := assistantMessage(bs, t, current)
		if err != nil {
			return nil, err
		}
		return []chatMessage{msg}, nil
	case "user":
		return userMessages(bs, t)
	}
	return nil, &RequestError{Msg: fmt.Sprintf("role: want user or assistant, got %q", m.Role)}
}

func assistantMessage(bs []anthropicBlock, t Target, current bool) (chatMessage, error) {
	msg := chatMessage{Role: "assistant"}
	var text, reasoning []string
	for _, b := range bs {
		switch b.Type {
		case "text":
			text = append(text, b.Text)
		case "thinking":
			if current && b.Signature == SignatureReasoningContent {
				reasoning = append(reasoning, b.Thinking)
			}
			// Other thinking (Anthropic's own, signed for Anthropic) means
			// nothing to another vendor's model.
		case "redacted_thinking":
		case "tool_use":
			var tc toolCall
			tc.Type = "function"
			tc.ID, tc.ExtraContent = splitToolID(b.ID)
			if strictMessages(t.Type) {
				tc.ExtraContent = nil // only Gemini's, from an earlier answer
			}
			if tc.ExtraContent == nil && signsToolCalls(t) {
				tc.ExtraContent = &extraContent{}
				tc.ExtraContent.Google.ThoughtSignature = skipSignature
			}
			tc.Function.Name = b.Name
			tc.Function.Arguments = "{}"
			if len(b.Input) > 0 && string(b.Input) != "null" {
				tc.Function.Arguments = string(b.Input)
			}
			msg.ToolCalls = append(msg.ToolCalls, tc)
		default:
			return msg, t.refuse("a %q block in an assistant message", b.Type)
		}
	}
	if len(text) > 0 || len(msg.ToolCalls) == 0 {
		// null content is only allowed beside tool calls (an assistant
		// turn of only thinking, dropped, still needs its place).
		msg.Content = strings.Join(text, "")
	}
	if !strictMessages(t.Type) && t.Type != "gemini" {
		msg.ReasoningContent = strings.Join(reasoning, "")
	}
	return msg, nil
}

// skipSignature is the thought signature Google documents for a tool call
// Gemini did not make (another provider answered that turn): Gemini 3
// refuses a call without one.
const skipSignature = "skip_thought_signature_validator"

// signsToolCalls reports a Gemini model that wants a thought signature on
// every tool call: Gemini 3 and later, not 1.x or 2.x (nor Gemma).
func signsToolCalls(t Target) bool {
	if t.Type != "gemini" {
		return false
	}
	m := strings.ToLower(t.Model)
	return strings.Contains(m, "gemini-") && !strings.Contains(m, "gemini-1") && !strings.Contains(m, "gemini-2")
}

// strictMessages reports the provider types whose servers refuse a message
// property they do not know with a 400 (OpenAI: "Unknown parameter:
// 'messages[3].reasoning_content'"; Groq, Cerebras: "property
// 'reasoning_content' is unsupported"): reasoning_content and
// extra_content, which another provider's answers put in the history (a
// failover, a route that changed), must not go to them. Gemini, which
// refuses unknown fields too, takes extra_content, its own.
func strictMessages(typ string) bool {
	return typ == "openai" || typ == "groq" || typ == "cerebras"
}

// userMessages turns one Anthropic user message into the tool messages its
// tool results become (first: they must follow the assistant's tool calls)
// and a user message with the rest. Images a tool returned go into that
// user message, as tool messages take text only.
func userMessages(bs []anthropicBlock, t Target) ([]chatMessage, error) {
	var out []chatMessage
	var parts []chatPart
	images := false
	for _, b := range bs {
		switch b.Type {
		case "text":
			parts = append(parts, chatPart{Type: "text", Text: b.Text})
		case "image":
			p, err := imagePart(b, t)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
			images = true
		case "tool_result":
			msg, imgs, err := toolMessage(b, t)
			if err != nil {
				return nil, err
			}
			out = append(out, msg)
			if len(imgs) > 0 {
				parts = append(parts, chatPart{Type: "text", Text: "The tool call " + msg.ToolCallID + " returned these images:"})
				parts = append(parts, imgs...)
				images = true
			}
		case "document":
			return nil, t.refuse("a document block (PDF or text file); send it to an Anthropic provider")
		default:
			return nil, t.refuse("a %q block in a user message", b.Type)
		}
	}
	switch {
	case len(parts) == 0:
	case images:
		out = append(out, chatMessage{Role: "user", Content: parts})
	default:
		// Text alone goes as a string: some servers (DeepSeek, older
		// local ones) take no content arrays.
		texts := make([]string, len(parts))
		for i, p := range parts {
			texts[i] = p.Text
		}
		out = append(out, chatMessage{Role: "user", Content: strings.Join(texts, "\n\n")})
	}
	return out, nil
}

func imagePart(b anthropicBlock, t Target) (chatPart, error) {
	if b.Source == nil {
		return chatPart{}, &RequestError{Msg: "image: source is missing"}
	}
	switch b.Source.Type {
	case "base64":
		return chatPart{Type: "image_url", ImageURL: &imageURL{URL: "data:" + b.Source.MediaType + ";base64," + b.Source.Data}}, nil
	case "url":
		return chatPart{Type: "image_url", ImageURL: &imageURL{URL: b.Source.URL}}, nil
	}
	return chatPart{}, t.refuse("an image with source type %q", b.Source.Type)
}

func toolMessage(b anthropicBlock, t Target) (chatMessage, []chatPart, error) {
	id, _ := splitToolID(b.ToolUseID)
	msg := chatMessage{Role: "tool", ToolCallID: id}
	var text []string
	var imgs []chatPart
	if len(b.Content) > 0 && string(b.Content) != "null" {
		inner, err := blocks(b.Content)
		if err != nil {
			return msg, nil, err
		}
		for _, ib := range inner {
			switch ib.Type {
			case "text":
				text = append(text, ib.Text)
			case "image":
				p, err := imagePart(ib, t)
				if err != nil {
					return msg, nil, err
				}
				imgs = append(imgs, p)
			case "document":
				return msg, nil, t.refuse("a document block in a tool result; send it to an Anthropic provider")
			default:
				return msg, nil, t.refuse("a %q block in a tool result", ib.Type)
			}
		}
	}
	content := strings.Join(text, "\n\n")
	if b.IsError {
		content = "Error (the tool call failed): " + content
	}
	msg.Content = content
	return msg, imgs, nil
}

// idEncoded starts a tool-use id that carries, in base64url, a provider's
// call id with characters Anthropic's tool-use ids do not allow (Kimi K2
// names its calls "functions.Read:0"): the history may go to an Anthropic
// provider, which refuses such an id, and the provider must get its own
// id back.
const idEncoded = "toolu_ccmuxid_"

// toolID returns the tool-use id for a provider's tool call id, with a
// Gemini thought signature folded in when there is one.
func toolID(id, signature string) string {
	if !safeToolID(id) {
		id = idEncoded + base64.RawURLEncoding.EncodeToString([]byte(id))
	}
	if signature == "" {
		return id
	}
	return id + idSignature + base64.RawURLEncoding.EncodeToString([]byte(signature))
}

// safeToolID reports whether id fits Anthropic's ^[a-zA-Z0-9_-]+$.
func safeToolID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return id != ""
}

// rawToolID undoes the idEncoded form of toolID.
func rawToolID(id string) string {
	if !strings.HasPrefix(id, idEncoded) {
		return id
	}
	raw, err := base64.RawURLEncoding.DecodeString(id[len(idEncoded):])
	if err != nil {
		return id
	}
	return string(raw)
}

// splitToolID undoes toolID.
func splitToolID(id string) (string, *extraContent) {
	i := strings.LastIndex(id, idSignature)
	if i < 0 {
		return rawToolID(id), nil
	}
	sig, err := base64.RawURLEncoding.DecodeString(id[i+len(idSignature):])
	if err != nil {
		return rawToolID(id), nil
	}
	ec := &extraContent{}
	ec.Google.ThoughtSignature = string(sig)
	return rawToolID(id[:i]), ec
}
