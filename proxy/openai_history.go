package proxy

import "ccmux/proxy/openai"

// forAnthropic returns the body for an Anthropic provider without the
// thinking blocks an OpenAI-type provider's reasoning became (Anthropic
// refuses their signatures; see openai.ForAnthropic) and its routing
// fields; ok is false, and nothing is copied, for the usual body that has
// none.
func forAnthropic(body []byte) ([]byte, *routingFields, bool) {
	clean, ok := openai.ForAnthropic(body)
	if !ok {
		return nil, nil, false
	}
	f, err := scanRouting(clean)
	if err != nil {
		return nil, nil, false
	}
	return clean, &f, true
}
