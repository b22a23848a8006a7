// Command bench measures ccmux's proxy against direct calls to a fake
// Anthropic upstream on this machine, in one run, and prints a table with
// the ratios, the proxy's CPU time per request and its memory.
//
//	go run ./proxy/cmd/bench          # about two minutes (one of them idle)
//	go run ./proxy/cmd/bench -quick   # a few seconds, for a smoke test
//	go run ./proxy/cmd/bench -tls     # upstream over HTTPS with HTTP/2, like api.anthropic.com
//	go run ./proxy/cmd/bench -only idle,conc   # some phases only, to iterate on one number
//	go run ./proxy/cmd/bench -only cc -cc-body 200K,1M -against 7785696 -pin 1
//	                                           # Claude Code's shape, against another commit's build
//
// After the table it checks issue 9's targets: CPU per request, latency and
// throughput against httputil.ReverseProxy measured in the same run; a cold
// burst of 1,000 streams; 200 connections declaring 32 MiB bodies and
// sending one byte (closed by the body deadline, -body-timeout here instead
// of 60 s); 64 concurrent 30 MB bodies; and the idle process.
//
// CCMUX_BENCH_CPUPROFILE=PREFIX writes CPU profiles of the proxy process
// during the 1 KB, 32-client turns only, one file per turn and target:
// PREFIX.ccmux.N and PREFIX.rp.N (ReverseProxy), and during ccmux's turns
// of the cc phase, PREFIX.cc.N (12 per scenario, in the order the phase
// prints them). A profile of the whole process would mix in ccmux's 400 KB
// turns, which ReverseProxy does not run.
//
//	go tool pprof -top proxy-binary PREFIX.ccmux.*
//
// The proxy runs in a child process (this binary re-executed) so that its
// CPU time and RSS are its own; the fake upstream and the clients run here.
// Client, upstream and proxy share the machine's cores, as they would on a
// laptop running Claude Code.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ccmux/config"
	"ccmux/proxy"
	"ccmux/proxy/internal/fakeanthropic"
)

const (
	roleEnv     = "CCMUX_BENCH_ROLE"
	upstreamEnv = "CCMUX_BENCH_UPSTREAM"
	keyEnv      = "CCMUX_BENCH_KEY"
	bodyEnv     = "CCMUX_BENCH_BODY_TIMEOUT"
)

// benchTOML maps the model Claude Code asks for to a dated name, so every
// request through ccmux has its model rewritten (the costlier path).
const benchTOML = `
[server]
host = "127.0.0.1"
port = 13456
[router]
default = "claude-sonnet-4-5"
[[providers]]
name = "bench"
provider_type = "anthropic"
auth_type = "api_key"
api_key = "$` + keyEnv + `"
base_url = %q
models = ["claude-*"]
[[models]]
name = "claude-sonnet-4-5"
[[models.mappings]]
actual_model = "claude-sonnet-4-5-20250929"
priority = 1
provider = "bench"
`

var idleFor, bodyTimeout time.Duration

// phases are the bench's phases in order; -only picks some of them.
var phases = []string{"idle", "burst", "seq", "conc", "stream", "openai", "cc", "slow", "big"}

// only is the set of phases to run (all when -only is empty).
var only map[string]bool

func want(phase string) bool { return len(only) == 0 || only[phase] }

func main() {
	if os.Getenv(roleEnv) == "proxy" {
		os.Exit(runProxy())
	}
	quick := flag.Bool("quick", false, "run every phase briefly (smoke test, numbers are rough)")
	useTLS := flag.Bool("tls", false, "serve the fake upstream over HTTPS with HTTP/2, as api.anthropic.com does")
	flag.DurationVar(&idleFor, "idle", time.Minute, "how long the idle process is watched")
	flag.DurationVar(&bodyTimeout, "body-timeout", 2*time.Second, "the proxy's client body deadline (ccmux uses 60 s)")
	onlyFlag := flag.String("only", "", "run only these phases, comma-separated: "+strings.Join(phases, ","))
	flag.StringVar(&ccBodies, "cc-body", "200K", "the cc phase's request body sizes, comma-separated (K and M suffixes): 1M for Claude Code's largest")
	flag.StringVar(&against, "against", "", "also run the cc phase through these commits' builds, comma-separated (built from `git archive`)")
	flag.StringVar(&pinCPUs, "pin", "", "run the proxy processes under `taskset -c CPUS` (Linux)")
	flag.DurationVar(&afterBurst, "after-burst", 20*time.Second, "how long the proxy is watched for wake-ups, from 10 s after the cold burst")
	flag.Parse()
	if *onlyFlag != "" {
		only = map[string]bool{}
		for _, p := range strings.Split(*onlyFlag, ",") {
			if !slices.Contains(phases, p) {
				fmt.Fprintf(os.Stderr, "bench: -only: unknown phase %q (want some of %s)\n", p, strings.Join(phases, ","))
				os.Exit(2)
			}
			only[p] = true
		}
	}
	if err := run(*quick, *useTLS); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// runProxy is the child: a ccmux proxy that answers "stats" on stdin with
// its CPU time and RSS, and stops at EOF.
func runProxy() int {
	cfg, err := config.Parse("bench config", []byte(withOpenAI(fmt.Sprintf(benchTOML, os.Getenv(upstreamEnv)))))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.Server.Port = 0
	// Log every request as `ccmux start` does, to a sink, so its cost counts.
	srv := &proxy.Server{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "bench"}
	srv.ClientBodyTimeout, _ = time.ParseDuration(os.Getenv(bodyEnv))
	if err := srv.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A plain httputil.ReverseProxy to the same upstream, as a yardstick.
	rp, err := startReverseProxy(os.Getenv(upstreamEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("LISTEN %s %s\n", srv.Addr(), rp)
	sc := bufio.NewScanner(os.Stdin)
	var prof *os.File
	for sc.Scan() {
		switch cmd, arg, _ := strings.Cut(sc.Text(), " "); cmd {
		case "stats":
			fmt.Printf("STATS %d %d\n", cpuTime().Nanoseconds(), rssBytes())
		case "profile": // CCMUX_BENCH_CPUPROFILE, for tuning
			if f, err := os.Create(arg); err == nil && pprof.StartCPUProfile(f) == nil {
				prof = f
			}
		case "unprofile":
			if prof != nil {
				pprof.StopCPUProfile()
				prof.Close()
				prof = nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Stop(ctx)
	return 0
}

// startReverseProxy serves a plain httputil.ReverseProxy to upstream on a
// loopback port and returns its address.
func startReverseProxy(upstream string) (string, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, ForceAttemptHTTP2: true}
	rp.FlushInterval = -1
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		if r.ContentLength > 0 {
			r.Body = &declaredBody{r.Body, r.ContentLength}
		}
	}
	go http.Serve(ln, rp)
	return ln.Addr().String(), nil
}

// declaredBody ends a request body at its declared length without another
// read. ReverseProxy passes the client's body to the transport, which reads
// it once more after the declared bytes to check for extra ones; when a
// stream's answer has come back and been flushed by then, net/http's
// server has closed that body ("invalid Read on closed Body"), and the
// transport drops the upstream connection in the middle of the answer
// (the client reads "unexpected EOF"): one stream in a few through the
// yardstick failed that way in the cc phase.
type declaredBody struct {
	io.ReadCloser
	left int64
}

func (b *declaredBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// rssBytes is the resident set size from /proc/self/status (0 where absent).
func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// child is the proxy process.
type child struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	addr   string // ccmux
	rpAddr string // the httputil.ReverseProxy yardstick
	mu     sync.Mutex
}

// startChild starts the proxy process; caFile, when set, is the PEM file of
// the fake upstream's certificate, trusted through SSL_CERT_FILE.
func startChild(upstream, caFile string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startChildExe(exe, upstream, caFile)
}

// startChildExe starts exe, a build of this command (perhaps another
// commit's: see -against), as a proxy process.
func startChildExe(exe, upstream, caFile string) (*child, error) {
	cmd := exec.Command(exe)
	if pinCPUs != "" {
		cmd = exec.Command("taskset", "-c", pinCPUs, exe)
	}
	cmd.Env = append(os.Environ(), roleEnv+"=proxy", upstreamEnv+"="+upstream, keyEnv+"=bench-key", bodyEnv+"="+bodyTimeout.String())
	if caFile != "" {
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+caFile)
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewReader(outPipe)}
	line, err := c.out.ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) != 3 || fields[0] != "LISTEN" {
		cmd.Process.Kill()
		return nil, fmt.Errorf("the proxy process did not start: %v %q", err, line)
	}
	c.addr, c.rpAddr = fields[1], fields[2]
	return c, nil
}

// sample asks the child for its CPU time and RSS.
func (c *child) sample() (cpu time.Duration, rss int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(c.in, "stats")
	line, err := c.out.ReadString('\n')
	if err != nil {
		return 0, 0
	}
	var ns int64
	fmt.Sscanf(line, "STATS %d %d", &ns, &rss)
	return time.Duration(ns), rss
}

// profile starts (name set) or stops (name "") a CPU profile of the child.
func (c *child) profile(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "" {
		fmt.Fprintln(c.in, "unprofile")
	} else {
		fmt.Fprintln(c.in, "profile "+name)
	}
}

func (c *child) stop() error {
	c.in.Close()
	return c.cmd.Wait()
}

// target is where requests go: the upstream itself or ccmux in front of it.
type target struct {
	name   string
	url    string
	client *http.Client
}

func newTarget(name, base string, tlsConfig *tls.Config) *target {
	return &target{name: name, url: base + "/v1/messages", client: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 2000, DisableCompression: true, TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true,
	}}}
}

func (t *target) request(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
	req.Header.Set("User-Agent", "claude-cli/2.0.14 (external, cli)")
	req.Header.Set("X-Api-Key", "client-key")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("%s answered %d: %.200s", t.name, resp.StatusCode, b)
	}
	return resp, nil
}

// roundTrip sends one non-streaming request and reads the whole answer.
func (t *target) roundTrip(body []byte) (time.Duration, error) {
	start := time.Now()
	resp, err := t.request(context.Background(), body)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), err
}

// load is the result of one phase.
type load struct {
	lat      []time.Duration
	elapsed  time.Duration
	requests int
}

func (l load) rps() float64 { return float64(l.requests) / l.elapsed.Seconds() }

// sequential runs n requests from one client.
func sequential(t *target, body []byte, n int) (load, error) {
	l := load{lat: make([]time.Duration, 0, n)}
	start := time.Now()
	for i := 0; i < n; i++ {
		d, err := t.roundTrip(body)
		if err != nil {
			return l, err
		}
		l.lat = append(l.lat, d)
	}
	l.elapsed, l.requests = time.Since(start), n
	return l, nil
}

// concurrent runs clients keep-alive clients for d.
func concurrent(t *target, body []byte, clients int, d time.Duration) (load, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				lat, err := t.roundTrip(body)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return load{lat: all, elapsed: time.Since(start), requests: len(all)}, first
}

// firstEvent sends a streaming request and times the first event's arrival.
func firstEvent(t *target, body []byte) (time.Duration, error) {
	start := time.Now()
	resp, err := t.request(context.Background(), body)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("%s: stream ended before its first event: %w", t.name, err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	d := time.Since(start)
	_, err = io.Copy(io.Discard, br)
	return d, err
}

// eventDelays runs streams whose deltas carry the upstream's write time and
// returns how long each delta took to reach the client. The streams start
// spread over one event gap, as independent Claude Code sessions would be,
// rather than all writing their events in the same microsecond.
func eventDelays(t *target, body []byte, streams int, gap time.Duration) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	for i := 0; i < streams; i++ {
		if i > 0 {
			time.Sleep(gap / time.Duration(streams))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := t.request(context.Background(), body)
			if err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			var mine []time.Duration
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					break
				}
				now := time.Now().UnixNano()
				if i := bytes.Index(line, []byte(`"text_delta","text":"`)); i >= 0 {
					rest := line[i+len(`"text_delta","text":"`):]
					if j := bytes.IndexByte(rest, '"'); j > 0 {
						if stamp, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
							mine = append(mine, time.Duration(now-stamp))
						}
					}
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, first
}

// openStreams holds n streams open through t and calls measure while they are.
func openStreams(t *target, up *fakeanthropic.Upstream, body []byte, n int, measure func()) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		ready atomic.Int64
		errs  = make(chan error, n)
		wg    sync.WaitGroup
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := t.request(ctx, body)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					errs <- err
					return
				}
				if len(bytes.TrimSpace(line)) == 0 {
					break
				}
			}
			ready.Add(1)
			io.Copy(io.Discard, br)
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for ready.Load() < int64(n) {
		select {
		case err := <-errs:
			cancel()
			up.Release()
			wg.Wait()
			return fmt.Errorf("opening %d streams: %w", n, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			up.Release()
			wg.Wait()
			return fmt.Errorf("only %d of %d streams opened within a minute", ready.Load(), n)
		}
	}
	measure()
	up.Release()
	wg.Wait()
	return nil
}

// rounds runs phase for each target in turn, n times over, and merges each
// target's loads. For each target it also totals the proxy process's CPU
// time and the upstream connections opened during its turns (ccmux and the
// ReverseProxy yardstick share that process; direct turns cost it nothing).
func rounds(n int, targets []*target, proc *child, up *fakeanthropic.Upstream, phase func(*target) (load, error)) (map[*target]load, map[*target]viaCost, error) {
	out := map[*target]load{}
	costs := map[*target]viaCost{}
	for i := 0; i < n; i++ {
		for _, t := range targets {
			cpu0, _ := proc.sample()
			conns0 := up.Conns()
			l, err := phase(t)
			if err != nil {
				return nil, costs, err
			}
			cpu1, _ := proc.sample()
			cost := costs[t]
			cost.cpu += cpu1 - cpu0
			cost.conns += up.Conns() - conns0
			costs[t] = cost
			m := out[t]
			m.lat = append(m.lat, l.lat...)
			m.elapsed += l.elapsed
			m.requests += l.requests
			out[t] = m
		}
	}
	return out, costs, nil
}

// viaCost is what a target's turns cost the proxy process and the upstream.
type viaCost struct {
	cpu   time.Duration
	conns int64
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

// row is one line of the table.
type row struct {
	metric, direct, ccmux, ratio, added, target, verdict string
}

type table struct {
	rows []row
	head *row // the default's when nil
}

func (tb *table) add(r row) { tb.rows = append(tb.rows, r) }

// latency adds p50 and p99 rows comparing direct and ccmux.
func (tb *table) latency(name string, direct, via []time.Duration, target50 time.Duration) {
	for _, p := range []struct {
		label string
		q     float64
	}{{"p50", 0.50}, {"p99", 0.99}} {
		d, c := percentile(direct, p.q), percentile(via, p.q)
		r := row{metric: name + " " + p.label, direct: us(d), ccmux: us(c),
			ratio: fmt.Sprintf("%.2fx", float64(c)/float64(d)), added: signedUS(c - d)}
		if p.label == "p50" && target50 > 0 {
			r.target = "added ≤ " + us(target50)
			r.verdict = verdict(c-d <= target50)
		}
		tb.add(r)
	}
}

func us(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
}

func signedUS(d time.Duration) string {
	if d < 0 {
		return "-" + us(-d)
	}
	return "+" + us(d)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func (tb *table) print(w io.Writer) {
	head := row{"metric", "direct", "ccmux", "ratio", "added", "target", ""}
	if tb.head != nil {
		head = *tb.head
	}
	widths := make([]int, 7)
	all := append([]row{head}, tb.rows...)
	for _, r := range all {
		for i, c := range r.cells() {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for n, r := range all {
		var b strings.Builder
		for i, c := range r.cells() {
			pad := widths[i] - len([]rune(c))
			if i == 0 || i >= 5 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + c)
			}
			b.WriteString("  ")
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if n == 0 {
			total := 0
			for _, wd := range widths {
				total += wd + 2
			}
			fmt.Fprintln(w, strings.Repeat("-", total-2))
		}
	}
}

func (r row) cells() []string {
	return []string{r.metric, r.direct, r.ccmux, r.ratio, r.added, r.target, r.verdict}
}

// phase sizes: full run, then -quick.
type sizes struct {
	seq1K, seq400K, ttfe int
	conc                 time.Duration
	streams, events      int
	open                 int
	slow, big            int
}

func run(quick, useTLS bool) error {
	sz := sizes{seq1K: 5000, seq400K: 400, ttfe: 1000, conc: 4 * time.Second, streams: 16, events: 30, open: 1000, slow: 200, big: 64}
	if quick {
		sz = sizes{seq1K: 300, seq400K: 30, ttfe: 50, conc: 500 * time.Millisecond, streams: 4, events: 5, open: 100, slow: 20, big: 16}
		idleFor = min(idleFor, 3*time.Second)
	}
	began := time.Now()
	up := fakeanthropic.NewUnstarted()
	up.Record = false
	var (
		caFile    string
		tlsConfig *tls.Config
		upstream  = "plain HTTP/1.1"
	)
	if useTLS {
		up.EnableHTTP2 = true
		up.StartTLS()
		tlsConfig = up.Client().Transport.(*http.Transport).TLSClientConfig
		f, err := os.CreateTemp("", "ccmux-bench-ca-*.pem")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw})
		f.Close()
		caFile, upstream = f.Name(), "HTTPS with HTTP/2"
	} else {
		up.Start()
	}
	defer up.Close()
	chat := newFakeChat() // the Chat Completions upstream of the openai phase
	defer chat.Close()
	os.Setenv(openaiEnv, chat.URL)
	proc, err := startChild(up.URL, caFile)
	if err != nil {
		return err
	}
	defer func() { proc.stop() }() // the last one: see fresh
	direct := newTarget("direct", up.URL, tlsConfig)
	via := newTarget("ccmux", "http://"+proc.addr, nil)
	yard := newTarget("httputil.ReverseProxy", "http://"+proc.rpAddr, nil)
	body1K := fakeanthropic.RequestBody(1024, "claude-sonnet-4-5", false)
	body400K := fakeanthropic.RequestBody(400<<10, "claude-sonnet-4-5", false)
	stream1K := fakeanthropic.RequestBody(1024, "claude-sonnet-4-5", true)

	tb := &table{}
	var cs checks
	fmt.Fprintf(os.Stderr, "bench: %s, %d CPUs, fake upstream and clients in this process, ccmux in pid %d\n",
		runtime.Version(), runtime.NumCPU(), proc.cmd.Process.Pid)
	step := func(s string) { fmt.Fprintf(os.Stderr, "bench: %s (%.0fs)\n", s, time.Since(began).Seconds()) }

	// Idle first, in the fresh process, as a tray app sits most of the day.
	if want("idle") {
		settle := 5 * time.Second
		if quick {
			settle = time.Second
		}
		step(fmt.Sprintf("idle for %v after %v", idleFor, settle))
		wakeRate, rssIdle := idle(proc, settle, idleFor)
		cs.add("idle wake-ups", fmt.Sprintf("%.2f/s over %v", wakeRate, idleFor), "≤ 0.2/s", wakeRate >= 0 && wakeRate <= 0.2)
		cs.add("idle RSS", mb(rssIdle), "≤ 12 MB", rssIdle <= 12<<20)
	}

	// A cold burst: streams opened at once with no upstream connection yet.
	var rssOpen int64
	if want("burst") {
		step(fmt.Sprintf("cold burst of %d streams", sz.open))
		up.SetBehavior(fakeanthropic.Behavior{HoldOpen: true})
		conns0 := up.Conns()
		if err := openStreams(via, up, stream1K, sz.open, func() { _, rssOpen = proc.sample() }); err != nil {
			return err
		}
		burstConns := up.Conns() - conns0
		up.SetBehavior(fakeanthropic.Behavior{})
		if useTLS {
			cs.add(fmt.Sprintf("cold burst of %d streams: new upstream connections", sz.open), strconv.FormatInt(burstConns, 10), "≤ 4", burstConns <= 4)
		} else {
			cs.add(fmt.Sprintf("cold burst of %d streams: new upstream connections", sz.open), strconv.FormatInt(burstConns, 10), "(HTTP/1.1: one per stream)", true)
		}
		cs.add(fmt.Sprintf("cold burst of %d streams: RSS", sz.open), mb(rssOpen), "≤ 100 MB", rssOpen <= 100<<20)
		if afterBurst > 0 {
			// Nothing is sent to the proxy for 10 s: what it still does
			// then is timers the burst left running.
			watch := afterBurst
			if quick {
				watch = min(watch, 3*time.Second)
			}
			step(fmt.Sprintf("wake-ups from 10 s after the burst, for %v", watch))
			rate := afterBurstRate(proc, 10*time.Second, watch, step)
			cs.add(fmt.Sprintf("wake-ups 10 s after the burst of %d", sz.open), fmt.Sprintf("%.2f/s over %v", rate, watch), "≤ 0.2/s", rate >= 0 && rate <= 0.2)
		}
	}

	// Warm every path: connections, pools, page faults.
	if want("seq") || want("conc") || want("stream") {
		for _, t := range []*target{direct, via, yard} {
			if _, err := sequential(t, body1K, 200); err != nil {
				return err
			}
		}
	}

	// 1 client, 1 KB. Every phase alternates its targets in short rounds,
	// so the machine's background noise falls on all of them alike.
	var cpuSeq1K, cpuSeq400K, cpuConc, cpuConcRP time.Duration
	var per1000 float64
	seq := func(body []byte, n int) func(t *target) (load, error) {
		return func(t *target) (load, error) { return sequential(t, body, n) }
	}
	if want("seq") {
		step("non-streaming, 1 client")
		s1, cost, err := rounds(50, []*target{direct, via, yard}, proc, up, seq(body1K, sz.seq1K/50))
		if err != nil {
			return err
		}
		cpuSeq1K = cost[via].cpu / time.Duration(s1[via].requests)
		tb.latency("non-stream 1 KB, 1 client", s1[direct].lat, s1[via].lat, 0)
		d, v, y := percentile(s1[direct].lat, 0.5), percentile(s1[via].lat, 0.5), percentile(s1[yard].lat, 0.5)
		tb.add(row{metric: "  httputil.ReverseProxy instead, p50", direct: us(d), ccmux: us(y),
			ratio: fmt.Sprintf("%.2fx", float64(y)/float64(d)), added: signedUS(y - d), target: "(yardstick, not ccmux)"})
		cs.add("added p50, 1 KB, 1 client, vs ReverseProxy", fmt.Sprintf("%s vs %s", signedUS(v-d), signedUS(y-d)), "≤ ReverseProxy's", v <= y)

		// 1 client, 400 KB.
		if _, _, err := rounds(1, []*target{direct, via}, proc, up, seq(body400K, 10)); err != nil {
			return err
		}
		s4, cost4, err := rounds(5, []*target{direct, via}, proc, up, seq(body400K, sz.seq400K/5))
		if err != nil {
			return err
		}
		cpuSeq400K = cost4[via].cpu / time.Duration(s4[via].requests)
		tb.latency("non-stream 400 KB, 1 client", s4[direct].lat, s4[via].lat, 2*time.Millisecond)
	}

	// 32 clients.
	if want("conc") {
		step("non-streaming, 32 clients")
		conc := func(body []byte, d time.Duration) func(t *target) (load, error) {
			return func(t *target) (load, error) { return concurrent(t, body, 32, d) }
		}
		if _, _, err := rounds(1, []*target{via, yard}, proc, up, conc(body1K, sz.conc/8)); err != nil { // warm 32 upstream connections
			return err
		}
		turn := map[*target]int{}
		c1, costC, err := rounds(16, []*target{direct, via, yard}, proc, up, func(t *target) (load, error) {
			if prefix := os.Getenv("CCMUX_BENCH_CPUPROFILE"); prefix != "" && t != direct {
				turn[t]++
				proc.profile(fmt.Sprintf("%s.%s.%d", prefix, map[*target]string{via: "ccmux", yard: "rp"}[t], turn[t]))
				defer proc.profile("")
			}
			return concurrent(t, body1K, 32, sz.conc/16)
		})
		if err != nil {
			return err
		}
		dc, vc, yc := c1[direct], c1[via], c1[yard]
		cpuConc = costC[via].cpu / time.Duration(max(vc.requests, 1))
		cpuConcRP = costC[yard].cpu / time.Duration(max(yc.requests, 1))
		per1000 = float64(costC[via].conns) * 1000 / float64(max(vc.requests, 1))
		tb.latency("non-stream 1 KB, 32 clients", dc.lat, vc.lat, 0)
		tb.add(row{metric: "non-stream 1 KB, 32 clients req/s", direct: fmt.Sprintf("%.0f", dc.rps()), ccmux: fmt.Sprintf("%.0f", vc.rps()),
			ratio: fmt.Sprintf("%.2fx", vc.rps()/dc.rps())})
		tb.add(row{metric: "  httputil.ReverseProxy instead, req/s", direct: fmt.Sprintf("%.0f", dc.rps()), ccmux: fmt.Sprintf("%.0f", yc.rps()),
			ratio: fmt.Sprintf("%.2fx", yc.rps()/dc.rps()), target: "(yardstick, not ccmux)"})
		cpuRatio := float64(cpuConc) / float64(cpuConcRP)
		cs.add("CPU per request, 1 KB, 32 clients, vs ReverseProxy", fmt.Sprintf("%s vs %s = %.2fx", us(cpuConc), us(cpuConcRP), cpuRatio), "≤ 0.8x", cpuRatio <= 0.8)
		cs.add("throughput, 1 KB, 32 clients, vs ReverseProxy", fmt.Sprintf("%.0f vs %.0f req/s", vc.rps(), yc.rps()), "≥ ReverseProxy's", vc.rps() >= yc.rps())

		c4, _, err := rounds(2, []*target{direct, via}, proc, up, conc(body400K, sz.conc/4))
		if err != nil {
			return err
		}
		tb.add(row{metric: "non-stream 400 KB, 32 clients req/s", direct: fmt.Sprintf("%.0f", c4[direct].rps()), ccmux: fmt.Sprintf("%.0f", c4[via].rps()),
			ratio: fmt.Sprintf("%.2fx", c4[via].rps()/c4[direct].rps())})
	}

	// Streaming: time to first event.
	if want("stream") {
		step("streaming")
		var dt, vt []time.Duration
		for i := 0; i < sz.ttfe; i++ {
			for _, tg := range []*target{direct, via} {
				d, err := firstEvent(tg, stream1K)
				if err != nil {
					return err
				}
				if tg == direct {
					dt = append(dt, d)
				} else {
					vt = append(vt, d)
				}
			}
		}
		tb.latency("stream time to first event", dt, vt, 0)

		// Event delay with events 50 ms apart.
		const gap = 50 * time.Millisecond
		up.SetBehavior(fakeanthropic.Behavior{EventGap: gap, Deltas: sz.events, Stamp: true})
		de, err := eventDelays(direct, stream1K, sz.streams, gap)
		if err != nil {
			return err
		}
		ve, err := eventDelays(via, stream1K, sz.streams, gap)
		if err != nil {
			return err
		}
		up.SetBehavior(fakeanthropic.Behavior{})
		for _, p := range []struct {
			label string
			q     float64
		}{{"p50", 0.5}, {"p99", 0.99}, {"max", 1}} {
			d, c := percentile(de, p.q), percentile(ve, p.q)
			r := row{metric: fmt.Sprintf("SSE event delay, %d streams, %s", sz.streams, p.label), direct: us(d), ccmux: us(c), added: signedUS(c - d)}
			if p.label == "max" {
				r.target, r.verdict = "each ≤ 1 ms after written", verdict(c <= time.Millisecond)
			}
			tb.add(r)
		}
	}

	if want("openai") {
		step("OpenAI upstream, translated, against the passthrough")
		if err := openaiPhase(proc, up, chat, sz.ttfe, sz.open/5, tb, &cs); err != nil {
			return err
		}
	}

	// Claude Code's shape: large bodies, long streams, and other builds.
	var ccOut func(io.Writer)
	if want("cc") {
		var err error
		if ccOut, err = runClaude(quick, proc, up, direct, via, yard, caFile, &cs, step); err != nil {
			return err
		}
	}

	// CPU and connection reuse.
	if want("seq") {
		tb.add(row{metric: "proxy CPU per request, 1 KB, 1 client", ccmux: us(cpuSeq1K)})
	}
	if want("conc") {
		tb.add(row{metric: "proxy CPU per request, 1 KB, 32 clients", ccmux: us(cpuConc)})
		tb.add(row{metric: "  httputil.ReverseProxy instead", ccmux: us(cpuConcRP), target: "(yardstick, not ccmux)"})
	}
	if want("seq") {
		tb.add(row{metric: "proxy CPU per request, 400 KB, 1 client", ccmux: us(cpuSeq400K)})
	}
	if want("conc") {
		tb.add(row{metric: "new upstream connections per 1,000 requests", ccmux: fmt.Sprintf("%.2f", per1000), target: "≈ 0 once warm", verdict: verdict(per1000 < 1)})
	}

	// Slow request bodies: each declares 32 MiB and sends one byte.
	_, rssAfter := proc.sample()

	// The memory phases run in a fresh proxy process: the one the request
	// phases used also served the ReverseProxy yardstick, whose garbage
	// (a 32 KB buffer per request) would count as ccmux's RSS.
	used := want("burst") || want("seq") || want("conc") || want("stream") || want("openai") || want("cc")
	fresh := func() error {
		if !used {
			used = true
			return nil
		}
		proc.stop()
		p, err := startChild(up.URL, caFile)
		if err != nil {
			return err
		}
		proc = p
		via = newTarget("ccmux", "http://"+proc.addr, nil)
		return nil
	}

	if want("slow") {
		step(fmt.Sprintf("%d slow bodies", sz.slow))
		if err := fresh(); err != nil {
			return err
		}
		rssSlow, closed, took, err := slowBodies(proc, proc.addr, sz.slow, 32<<20, bodyTimeout+30*time.Second)
		if err != nil {
			return err
		}
		cs.add(fmt.Sprintf("%d bodies declaring 32 MiB, 1 byte sent: RSS", sz.slow), mb(rssSlow), "≤ 100 MB", rssSlow <= 100<<20)
		cs.add(fmt.Sprintf("  closed by the %v body deadline", bodyTimeout), fmt.Sprintf("%d of %d, last after %.1f s", closed, sz.slow, took.Seconds()),
			"all", closed == sz.slow && took < bodyTimeout+5*time.Second)
	}

	// Large bodies at once: the budget answers the excess with 529.
	if want("big") {
		step(fmt.Sprintf("%d concurrent 30 MB bodies", sz.big))
		if err := fresh(); err != nil {
			return err
		}
		// One user message of 30 MB (RequestBody's realistic conversation
		// takes minutes to build at this size).
		big := []byte(`{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"` + strings.Repeat("a", 30<<20) + `"}]}`)
		peak, statuses, back, after, err := bigBodies(proc, via, big, sz.big, 60<<20)
		if err != nil && statuses[0] == 0 {
			return err
		}
		cs.add(fmt.Sprintf("%d concurrent 30 MB bodies: peak RSS", sz.big), mb(peak), "≤ 600 MB", peak <= 600<<20)
		cs.add("  answers", fmt.Sprintf("%d × 200, %d × 529, %d other", statuses[200], statuses[529], sz.big-statuses[200]-statuses[529]),
			"the excess 529", statuses[200] > 0 && statuses[200]+statuses[529] == sz.big)
		backText := fmt.Sprintf("%s after %.0f s", mb(after), back.Seconds())
		if back < 0 {
			backText = fmt.Sprintf("%s after 60 s", mb(after))
		}
		cs.add("  RSS back under 60 MB", backText, "within 60 s", back >= 0)
	}

	if want("burst") {
		tb.add(row{metric: fmt.Sprintf("proxy RSS with %d open streams (cold)", sz.open), ccmux: mb(rssOpen)})
	}
	tb.add(row{metric: "proxy RSS after the request phases", ccmux: mb(rssAfter)})

	fmt.Printf("ccmux proxy vs direct to a fake Anthropic upstream over %s (%s, %d CPUs, %s; bodies %d B and %d B)\n\n",
		upstream, runtime.Version(), runtime.NumCPU(), time.Now().Format("2006-01-02"), len(body1K), len(body400K))
	tb.print(os.Stdout)
	fmt.Println()
	if ccOut != nil {
		ccOut(os.Stdout)
	}
	cs.print(os.Stdout)
	fmt.Printf("\nfinished in %.0f s\n", time.Since(began).Seconds())
	if err := proc.stop(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("the proxy process: %w", err)
	}
	return nil
}
