package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// flushRecorder records what was written and, at each flush, what had
// been written by then.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushed chan string
}

func (f *flushRecorder) Flush() { f.flushed <- f.Body.String() }

func batchEvent(i int) string {
	return "event: content_block_delta\ndata: {\"n\":" + strings.Repeat("1", i+1) + "}\n\n"
}

// Events that arrived together leave in one flush: a stream whose 200
// events come in a few dozen reads used to cost a write per event.
func TestRelayStreamFlushesEventsThatArrivedTogetherOnce(t *testing.T) {
	var all strings.Builder
	for i := 0; i < 5; i++ {
		all.WriteString(batchEvent(i))
	}
	all.WriteString("event: message_stop\ndata: {}\n\n")
	rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan string, 10)}
	er := newEventReader(strings.NewReader(all.String()))
	defer er.release()
	first, err := er.Next()
	if err != nil {
		t.Fatal(err)
	}
	if err := relayStream(context.Background(), &exchange{ResponseWriter: rec}, first, er, "p"); err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != all.String() {
		t.Fatalf("relayed %q, want %q", got, all.String())
	}
	if n := len(rec.flushed); n != 1 {
		t.Fatalf("%d flushes for events read together, want 1", n)
	}
}

// An event is flushed before the relay waits for the upstream, even when
// part of the next one has arrived.
func TestRelayStreamFlushesBeforeWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder(), flushed: make(chan string, 10)}
	er := newEventReader(pr)
	defer er.release()
	done := make(chan error, 1)
	go func() {
		first, err := er.Next()
		if err != nil {
			done <- err
			return
		}
		done <- relayStream(context.Background(), &exchange{ResponseWriter: rec}, first, er, "p")
	}()
	half := batchEvent(1)[:20]
	go pw.Write([]byte(batchEvent(0) + batchEvent(2) + half)) // one read: two events and a half
	want := batchEvent(0) + batchEvent(2)
	for got := ""; got != want; {
		select {
		case got = <-rec.flushed:
		case <-time.After(10 * time.Second):
			t.Fatalf("flushed %q while the relay waited for the rest, want %q", got, want)
		}
	}
	pw.Write([]byte(batchEvent(1)[20:] + "event: message_stop\ndata: {}\n\n"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
}
