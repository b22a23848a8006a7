package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// gateHandler is a log handler whose request lines wait for the test.
type gateHandler struct {
	slog.Handler
	gate chan struct{}
}

func (g gateHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "request" {
		<-g.gate
	}
	return g.Handler.Handle(ctx, r)
}

// A whole answer reaches the client before the proxy writes its log line
// and closes the upstream request: a slow log file never delays it.
func TestAnswerSentBeforeLogLine(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	gate := make(chan struct{})
	h := startProxy(t, mustConfig(t, apiKeyTOML(up.URL)), func(s *Server) {
		s.Logger = slog.New(gateHandler{Handler: slog.NewTextHandler(io.Discard, nil), gate: gate})
	})
	defer close(gate)
	got := make(chan string, 1)
	go func() {
		resp := h.post("/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, nil)
		b, _ := io.ReadAll(resp.Body) // to the declared length, then returns
		resp.Body.Close()
		got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "200 ") || !strings.Contains(s, `"type":"message"`) {
			t.Fatalf("answer %.300s", s)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the answer waited for the log line")
	}
}
