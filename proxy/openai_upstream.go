package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"ccmux/auth"
	"ccmux/proxy/openai"
)

// The upstream step for providers that speak OpenAI Chat Completions:
// the request body is translated (package openai), sent to base_url +
// /chat/completions, and the answer translated back, event by event for a
// stream. Failover, timeouts and the client's connection work as on the
// Anthropic path, which stays byte-preserving and never comes here.

// chatCompletionsPath is where Chat Completions requests go, under base_url.
const chatCompletionsPath = "/chat/completions"

// maxTranslatedAnswer bounds a non-streaming answer read for translation.
const maxTranslatedAnswer = 64 << 20

// openaiAnswer is a Chat Completions stream being translated.
type openaiAnswer struct {
	tr *openai.Stream
}

func (h *handler) openaiTarget(c Candidate) openai.Target {
	p := h.st.cfg.Providers[c.Index]
	return openai.Target{Provider: c.Provider, Type: strings.ToLower(p.ProviderType), Model: c.Model}
}

// attemptOpenAI runs candidate c on an OpenAI-type provider; it returns
// what attempt returns.
func (h *handler) attemptOpenAI(ctx context.Context, r *http.Request, c Candidate, body *payload, stream bool) (*answer, error) {
	t := h.openaiTarget(c)
	fail := func(err error) (*answer, error) { return nil, h.attemptFailed(c, err) }
	if strings.HasSuffix(r.URL.Path, "/count_tokens") {
		// Chat Completions has no token counting: a 404 lets the next
		// candidate count, or the proxy answer its documented estimate.
		return localAnswer(http.StatusNotFound, openai.ErrorBody("not_found_error", c.Provider+" does not count tokens")), nil
	}
	cred, err := h.credential(ctx, c.Index, false)
	if err != nil {
		return fail(err)
	}
	translated, err := openai.Request(body.bytes(), t)
	if err != nil {
		var re *openai.RequestError
		if errors.As(err, &re) {
			return localAnswer(http.StatusBadRequest, openai.ErrorBody("invalid_request_error", re.Msg)), nil
		}
		return fail(err)
	}
	tp := bytesPayload(translated)
	defer tp.release() // the transport holds its own reference while it reads
	out := *r
	out.URL = &url.URL{Path: chatCompletionsPath}
	ans, err := h.send(ctx, &out, c, sentBody{p: tp, parts: tp.segs}, cred)
	if err != nil {
		return fail(err)
	}
	hdr := ans.resp.Header
	if strings.EqualFold(hdr.Get("Content-Encoding"), "gzip") {
		// Not asked for (see openaiHeader), but an answer is read to be
		// translated, so it is decoded whatever came.
		zr, err := gzip.NewReader(ans.body)
		if err != nil {
			ans.close()
			return fail(fmt.Errorf("the gzip answer failed before its first byte: %w", ans.wd.explain(err)))
		}
		ans.body = zr
		hdr.Del("Content-Encoding")
	}
	if ans.status() >= 300 {
		if err := ans.buffer(); err != nil {
			return fail(err)
		}
		ans.first = openai.Error(ans.status(), ans.first, t)
		hdr.Set("Content-Type", "application/json")
		return ans, nil
	}
	if strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		if err := ans.startOpenAIStream(t); err != nil {
			ans.close()
			return fail(err)
		}
		return ans, nil
	}
	whole, err := io.ReadAll(io.LimitReader(ans.body, maxTranslatedAnswer))
	ans.closeUpstream()
	ans.buffered = true
	if err != nil {
		return fail(fmt.Errorf("reading the answer: %w", ans.wd.explain(err)))
	}
	if stream {
		// The server answered a stream request with one body: the
		// client still gets the events it asked for.
		if ans.first, err = openai.ResponseEvents(whole, t); err != nil {
			return fail(err)
		}
		hdr.Set("Content-Type", "text/event-stream")
	} else {
		if ans.first, err = openai.Response(whole, t); err != nil {
			return fail(err)
		}
		hdr.Set("Content-Type", "application/json")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(ans.first)))
	return ans, nil
}

// startOpenAIStream reads the upstream stream until the translation has
// its first events (message_start): an upstream that fails before them is
// a failed attempt the next candidate can replace.
func (a *answer) startOpenAIStream(t openai.Target) error {
	a.resp.Header.Del("Content-Length")
	a.oai = &openaiAnswer{tr: openai.NewStream(t)}
	a.buf = copyPool.Get().(*[]byte)
	for {
		n, err := a.body.Read(*a.buf)
		var out []byte
		if n > 0 {
			out = a.oai.tr.Feed((*a.buf)[:n])
		}
		if err != nil && len(out) == 0 && !a.oai.tr.Ended() {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			out = a.oai.tr.End(err)
		}
		if a.oai.tr.Failed() && !a.oai.tr.Started() {
			return fmt.Errorf("the stream failed before its first event: %s", errorMessage(out))
		}
		if len(out) > 0 {
			a.first = bytes.Clone(out)
			return nil
		}
	}
}

// errorMessage reads the message of a translated error event.
func errorMessage(ev []byte) string {
	if i := bytes.Index(ev, []byte(`"message":"`)); i >= 0 {
		msg := ev[i+len(`"message":"`):]
		if j := bytes.LastIndex(msg, []byte(`"}`)); j >= 0 {
			return string(msg[:j])
		}
	}
	return "no answer"
}

// writeEvents writes the events one upstream chunk translated to, one
// Write each, as relayStream writes an Anthropic stream's: the request's
// recording reads one event per Write (message_delta, with the answer's
// output tokens, comes in the same chunk as the events around it). The
// bytes go out together at the next Flush.
func writeEvents(w *exchange, out []byte) error {
	for len(out) > 0 {
		ev := out
		if i := bytes.Index(out, eventEnd); i >= 0 {
			ev, out = out[:i+len(eventEnd)], out[i+len(eventEnd):]
		} else {
			out = nil
		}
		if _, err := w.Write(ev); err != nil {
			return err
		}
	}
	return nil
}

// eventEnd ends each event the translator writes.
var eventEnd = []byte("\n\n")

// relayOpenAI writes a translated stream to the client, each event as soon
// as the upstream bytes that complete it arrived.
func relayOpenAI(ctx context.Context, w *exchange, a *answer) error {
	out := a.first
	tr := a.oai.tr
	for {
		if len(out) > 0 {
			if err := writeEvents(w, out); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if tr.Ended() {
			if tr.Failed() {
				return errors.New(errorMessage(out))
			}
			return nil
		}
		n, err := a.body.Read(*a.buf)
		out = tr.Feed((*a.buf)[:n])
		if err == nil || tr.Ended() {
			continue
		}
		if len(out) > 0 {
			if werr := writeEvents(w, out); werr != nil {
				return werr
			}
		}
		if errors.Is(context.Cause(ctx), errStopping) {
			w.Write(errorEvent("overloaded_error", "ccmux is stopping; retry the request"))
			w.Flush()
			return errStopping
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		out = tr.End(err)
	}
}

// localAnswer is an answer the proxy makes itself for an OpenAI-type
// candidate, handled like a buffered upstream answer.
func localAnswer(status int, body []byte) *answer {
	return &answer{
		resp:     &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: http.NoBody},
		first:    body,
		buffered: true,
	}
}

// openaiHeader builds the header sent to a Chat Completions upstream: the
// client's end-to-end headers (User-Agent included, as on the Anthropic
// path) without its credentials, Anthropic's own headers and
// Accept-Encoding (the answer must be read to be translated), plus the
// provider's key as a bearer token.
func openaiHeader(in http.Header, cred auth.Credential) http.Header {
	h := make(http.Header, len(in)+2)
	for k, v := range in {
		if hopHeader(k) || clientOnlyHeader(k) || k == "X-Api-Key" || k == "Accept-Encoding" || k == "Accept" ||
			strings.HasPrefix(k, "Anthropic-") || strings.HasPrefix(k, "X-Claude-") {
			continue
		}
		h[k] = v
	}
	removeConnectionHeaders(h, in)
	if len(h["User-Agent"]) == 0 {
		h["User-Agent"] = []string{""}
	}
	h["Content-Type"] = []string{"application/json"}
	h["Authorization"] = []string{"Bearer " + cred.Value}
	return h
}
