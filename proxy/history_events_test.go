package proxy

import (
	"net/http/httptest"
	"testing"
)

// relayOpenAI's events reach the request's recording one per Write, as an
// Anthropic stream's do: the translator ends a stream with
// content_block_stop, message_delta and message_stop out of one upstream
// chunk, and the message_delta carries the answer's output tokens.
func TestWriteEventsRecordsEachEvent(t *testing.T) {
	rw := httptest.NewRecorder()
	rw.Header().Set("Content-Type", "text/event-stream")
	w := &exchange{ResponseWriter: rw, rec: &recording{}}
	chunks := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"content\":[],\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	}
	for _, c := range chunks {
		if err := writeEvents(w, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := rw.Body.String(), chunks[0]+chunks[1]; got != want {
		t.Errorf("the client got %q, want the events unchanged", got)
	}
	if u := w.rec.usage; deref(u.Input) != 25 || deref(u.Output) != 42 {
		t.Errorf("recorded usage %+v, want 25 in, 42 out", u)
	}
}
