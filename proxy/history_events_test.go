package proxy

import "testing"

// TestRecordingEventsInOneWrite: relayOpenAI writes the events one
// upstream chunk translated to in one Write (content_block_stop,
// message_delta, message_stop at the end); the message_delta's usage
// still counts.
func TestRecordingEventsInOneWrite(t *testing.T) {
	r := &recording{stream: true}
	r.write([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"))
	r.write([]byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	if deref(r.usage.Input) != 25 || deref(r.usage.Output) != 42 {
		t.Errorf("usage %+v, want 25 in, 42 out", r.usage)
	}
}
