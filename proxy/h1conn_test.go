package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"ccmux/proxy/internal/fakeanthropic"
)

// A body in memory goes to the connection whole, in order, limited to its
// declared length, and the reader is spent after it; any other reader is
// copied as it is.
func TestH1ConnReadFrom(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts [3][]byte
		limit int64
		want  string
	}{
		{"parts", [3][]byte{[]byte("head "), []byte("model"), []byte(" tail")}, 15, "head model tail"},
		{"empty middle", [3][]byte{[]byte("head"), nil, []byte(" tail")}, 9, "head tail"},
		{"limit", [3][]byte{[]byte("head "), []byte("model"), []byte(" tail")}, 7, "head mo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			got := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(server)
				got <- string(b)
			}()
			p := newPayload(0, nil)
			sr := &sentReader{parts: append([][]byte(nil), tc.parts[:]...), p: p}
			lr := &io.LimitedReader{R: sr, N: tc.limit}
			n, err := (&h1Conn{Conn: client}).ReadFrom(lr)
			client.Close()
			if err != nil || n != int64(len(tc.want)) {
				t.Fatalf("ReadFrom = %d, %v; want %d", n, err, len(tc.want))
			}
			if g := <-got; g != tc.want {
				t.Fatalf("the connection got %q, want %q", g, tc.want)
			}
			if lr.N != tc.limit-n {
				t.Fatalf("the limit left is %d, want %d", lr.N, tc.limit-n)
			}
			rest, _ := io.ReadAll(sr)
			if want := strings.Join([]string{string(tc.parts[0]), string(tc.parts[1]), string(tc.parts[2])}, "")[n:]; string(rest) != want {
				t.Fatalf("the reader has %q left, want %q", rest, want)
			}
		})
	}
	t.Run("other reader", func(t *testing.T) {
		client, server := net.Pipe()
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(server)
			got <- b
		}()
		body := bytes.Repeat([]byte("x"), 100<<10)
		n, err := (&h1Conn{Conn: client}).ReadFrom(bytes.NewReader(body))
		client.Close()
		if err != nil || n != int64(len(body)) {
			t.Fatalf("ReadFrom = %d, %v", n, err)
		}
		if g := <-got; !bytes.Equal(g, body) {
			t.Fatalf("the connection got %d bytes, want %d", len(g), len(body))
		}
	})
}

// Over HTTP/1.1 a large request leaves in its headers and one write per
// part of its body (before and at the model name, then the rest of each of
// the body's segments: 64, 128 and 256 KiB for 400 KB), not in 32 KB
// scraps: 13 writes for 400 KB through net/http's copy. (On a TCP
// connection the parts go in one vectored write.)
func TestH1ConnLargeBodyInFewWrites(t *testing.T) {
	t.Setenv("API_KEY", "k")
	up := newUpstream(t)
	writes := &writeSizes{}
	h := startProxy(t, mustConfig(t, rewriteTOML(up.URL)), func(s *Server) {
		s.upstreamOnce.Do(func() { s.upstream = newUpstreamClient(DefaultConnectTimeout, nil) })
		s.upstream.h1.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &h1Conn{Conn: &countingConn{Conn: c, w: writes}}, nil
		}
	})
	body := fakeanthropic.RequestBody(400<<10, "claude-sonnet-4-5", false)
	resp := h.post("/v1/messages", string(body), nil)
	if got := readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	reqs := up.Requests()
	want := bytes.Replace(body, []byte(`"claude-sonnet-4-5"`), []byte(`"claude-sonnet-4-5-20250929"`), 1)
	if sent := reqs[len(reqs)-1].Body; !bytes.Equal(sent, want) {
		t.Fatalf("the upstream received %d bytes, not the %d of the request with its model rewritten", len(sent), len(want))
	}
	if sizes := writes.take(); len(sizes) > 6 {
		t.Fatalf("the request took %d writes %v, want at most 6 (headers, then the body's parts)", len(sizes), sizes)
	}
}
