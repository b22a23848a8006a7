package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"testing"
	"time"

	"ccmux/proxy/internal/fakeanthropic"
)

// The benchmarks run only with -bench. Each pair compares a direct call to
// the fake upstream with the same call through the proxy, in one process;
// `go run ./proxy/cmd/bench` runs the proxy in its own process and prints
// the ratios, CPU time and memory.

func BenchmarkScanRouting(b *testing.B) {
	for _, size := range []int{1 << 10, 400 << 10} {
		body := fakeanthropic.RequestBody(size, "claude-sonnet-4-5", true)
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := scanRouting(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScanRoutingInReads scans a body as readBody does when it comes
// in 16 KiB reads, and reports apart the part left after the last read.
func BenchmarkScanRoutingInReads(b *testing.B) {
	const read = 16 << 10
	for _, size := range []int{200 << 10, 400 << 10} {
		body := fakeanthropic.RequestBody(size, "claude-sonnet-4-5", true)
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var last time.Duration
			for b.Loop() {
				var r routingScan
				for n := read; n < len(body); n += read {
					r.advance(body[:n], 0)
				}
				start := time.Now()
				if _, err := r.finish(body, 0); err != nil {
					b.Fatal(err)
				}
				last += time.Since(start)
			}
			b.ReportMetric(float64(last.Nanoseconds())/float64(b.N), "ns-after-last-read/op")
		})
	}
}

func BenchmarkRewriteModel(b *testing.B) {
	body := fakeanthropic.RequestBody(400<<10, "claude-sonnet-4-5", true)
	f, err := scanRouting(body)
	if err != nil {
		b.Fatal(err)
	}
	q := quoteJSON("claude-sonnet-4-5-20250929")
	dst := make([]byte, 0, len(body)+64)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dst = rewriteModel(dst[:0], body, &f, q)
	}
}

func BenchmarkEventReader(b *testing.B) {
	var stream bytes.Buffer
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&stream, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word%d \"}}\n\n", i)
	}
	data := stream.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	r := bytes.NewReader(data)
	for b.Loop() {
		r.Reset(data)
		er := newEventReader(r)
		for {
			if _, err := er.Next(); err != nil {
				break
			}
		}
		er.release()
	}
}

// benchTargets starts a fake upstream and a proxy in front of it.
func benchTargets(b *testing.B) (direct, proxied string) {
	b.Helper()
	up := fakeanthropic.New()
	return up.URL, benchProxy(b, up, nil)
}

// benchProxy starts a proxy in front of up, trusting tlsConfig's roots for it.
func benchProxy(b *testing.B, up *fakeanthropic.Upstream, tlsConfig *tls.Config) string {
	b.Helper()
	b.Setenv("API_KEY", "k")
	up.Record = false
	b.Cleanup(up.Close)
	cfg := mustConfig(b, rewriteTOML(up.URL))
	cfg.Server.Port = 0
	// Log every request as `ccmux start` does, to a sink, so its cost counts.
	srv := &Server{Config: cfg, tlsConfig: tlsConfig, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Stop(context.Background()) })
	return "http://" + srv.Addr()
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

func roundTrip(b *testing.B, c *http.Client, url string, body []byte, firstEventOnly bool) {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
	if firstEventOnly {
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil || len(bytes.TrimSpace(line)) == 0 {
				break
			}
		}
		b.StopTimer()
		io.Copy(io.Discard, br)
		b.StartTimer()
		return
	}
	io.Copy(io.Discard, resp.Body)
}

func BenchmarkMessages(b *testing.B) {
	direct, proxied := benchTargets(b)
	for _, size := range []int{1 << 10, 400 << 10} {
		body := fakeanthropic.RequestBody(size, "claude-sonnet-4-5", false)
		for _, t := range []struct{ name, url string }{{"direct", direct}, {"ccmux", proxied}} {
			b.Run(sizeName(size)+"/"+t.name, func(b *testing.B) {
				c := benchClient()
				defer c.CloseIdleConnections()
				b.ReportAllocs()
				for b.Loop() {
					roundTrip(b, c, t.url, body, false)
				}
			})
		}
	}
}

// BenchmarkMessages32 runs 32 concurrent keep-alive clients.
func BenchmarkMessages32(b *testing.B) {
	direct, proxied := benchTargets(b)
	body := fakeanthropic.RequestBody(1<<10, "claude-sonnet-4-5", false)
	for _, t := range []struct{ name, url string }{{"direct", direct}, {"ccmux", proxied}} {
		b.Run(t.name, func(b *testing.B) {
			c := benchClient()
			defer c.CloseIdleConnections()
			b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					roundTrip(b, c, t.url, body, false)
				}
			})
		})
	}
}

// BenchmarkMessagesTLS32 is BenchmarkMessages32's proxied half with the
// upstream over HTTPS and HTTP/2, as api.anthropic.com is: for profiling
// the proxy's own cost on the path users run (-cpuprofile, -memprofile).
func BenchmarkMessagesTLS32(b *testing.B) {
	up := fakeanthropic.NewUnstarted()
	up.EnableHTTP2 = true
	up.StartTLS()
	proxied := benchProxy(b, up, up.Client().Transport.(*http.Transport).TLSClientConfig)
	body := fakeanthropic.RequestBody(1<<10, "claude-sonnet-4-5", false)
	c := benchClient()
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			roundTrip(b, c, proxied, body, false)
		}
	})
}

func BenchmarkStreamFirstEvent(b *testing.B) {
	direct, proxied := benchTargets(b)
	body := fakeanthropic.RequestBody(1<<10, "claude-sonnet-4-5", true)
	for _, t := range []struct{ name, url string }{{"direct", direct}, {"ccmux", proxied}} {
		b.Run(t.name, func(b *testing.B) {
			c := benchClient()
			defer c.CloseIdleConnections()
			for b.Loop() {
				roundTrip(b, c, t.url, body, true)
			}
		})
	}
}

func sizeName(n int) string {
	return fmt.Sprintf("%dKB", n>>10)
}
