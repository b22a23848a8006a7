package proxy

import "ccmux/proxy/openai"

// forAnthropic returns the body for an Anthropic provider without the
// thinking blocks an OpenAI-type provider's reasoning became (Anthropic
// refuses their signatures; see openai.ForAnthropic) and its routing
// fields; ok is false, and nothing is copied, for the usual body that has
// none. Its segments are searched for the signature in place; only a
// body that has one is joined.
func forAnthropic(body *payload) ([]byte, *routingFields, bool) {
	if !openai.HasSignature(body.segs) {
		return nil, nil, false
	}
	clean, ok := openai.ForAnthropic(body.bytes())
	if !ok {
		return nil, nil, false
	}
	f, err := scanRouting(clean)
	if err != nil {
		return nil, nil, false
	}
	return clean, &f, true
}
