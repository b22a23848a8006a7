package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"ccmux/proxy/internal/fakeanthropic"
)

// The cc phase sends what Claude Code sends: conversations of 200 KB and
// more (system prompt, tools, history), most of them streamed back as
// hundreds of events. Each scenario alternates ccmux, the ReverseProxy
// yardstick, direct calls and, with -against, other commits' builds of
// ccmux (each in a proxy process of its own), in short turns of equal
// length, so a regression shows as a ratio within one run.

var (
	ccBodies   string        // -cc-body
	against    string        // -against
	pinCPUs    string        // -pin
	afterBurst time.Duration // -after-burst
)

// ccEvents is the number of text deltas in each streamed answer.
const ccEvents = 200

// scenario is one cc measurement: a body size, streamed or not, clients.
type scenario struct {
	size    int
	stream  bool
	clients int
}

func (s scenario) String() string {
	kind := "non-stream"
	if s.stream {
		kind = fmt.Sprintf("stream %d events", ccEvents)
	}
	return fmt.Sprintf("%s, %s, %d client%s", kind, sizeName(s.size), s.clients, map[bool]string{true: "s"}[s.clients > 1])
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// parseSizes reads -cc-body: sizes like 200K, 1M or 512, comma-separated.
func parseSizes(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "K"):
			mult, f = 1<<10, strings.TrimSuffix(f, "K")
		case strings.HasSuffix(f, "M"):
			mult, f = 1<<20, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 || n*mult > 30<<20 {
			return nil, fmt.Errorf("-cc-body: %q is not a size like 200K or 1M (at most 30M)", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// ccTarget is a target with the process whose CPU time its turns cost
// (nil for direct calls).
type ccTarget struct {
	*target
	proc *child
}

// ccResult is one target's turns in one scenario.
type ccResult struct {
	ttfb     []time.Duration // to the answer's first body byte
	requests int
	elapsed  time.Duration
	cpu      time.Duration
	syscalls int64 // reads and writes (Linux)
}

func (r ccResult) cpuPer() time.Duration { return r.cpu / time.Duration(max(r.requests, 1)) }
func (r ccResult) rps() float64          { return float64(r.requests) / r.elapsed.Seconds() }

// firstByte sends one request and reads the whole answer, returning when
// its first body byte arrived.
func (t *target) firstByte(body []byte) (time.Duration, error) {
	start := time.Now()
	resp, err := t.request(context.Background(), body)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		return 0, fmt.Errorf("%s: reading the answer: %w", t.name, err)
	}
	d := time.Since(start)
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("%s: reading the answer: %w", t.name, err)
	}
	return d, nil
}

// ccTurn runs clients clients, each sending one request after the other,
// for d.
func ccTurn(t *target, body []byte, clients int, d time.Duration) (ccResult, error) {
	var (
		mu    sync.Mutex
		res   ccResult
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				lat, err := t.firstByte(body)
				if err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
					return
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			res.ttfb = append(res.ttfb, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed, res.requests = time.Since(start), len(res.ttfb)
	return res, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// ioSyscalls is the read and write system calls pid made so far, from
// /proc/PID/io (0 where absent): reading it does not wake the process.
func ioSyscalls(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	var total int64
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		if k == "syscr" || k == "syscw" {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += n
		}
	}
	return total
}

// buildCommit builds commit's bench command (its proxy process speaks the
// same LISTEN/STATS protocol) from `git archive`, so no worktree of the
// repository changes, and caches the binary by the commit's hash.
func buildCommit(commit string) (string, error) {
	out, err := exec.Command("git", "rev-parse", "--verify", commit+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("-against: %q is not a commit of this repository", commit)
	}
	hash := strings.TrimSpace(string(out))
	exe := filepath.Join(os.TempDir(), "ccmux-bench-"+hash)
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}
	dir, err := os.MkdirTemp("", "ccmux-bench-src-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	archive := exec.Command("git", "archive", "--format=tar", hash)
	untar := exec.Command("tar", "-x", "-C", dir)
	if untar.Stdin, err = archive.StdoutPipe(); err != nil {
		return "", err
	}
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		return "", fmt.Errorf("-against %s: git archive: %w", commit, err)
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("-against %s: tar: %w", commit, err)
	}
	build := exec.Command("go", "build", "-o", exe+".tmp", "./proxy/cmd/bench")
	build.Dir = dir
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("-against %s: go build: %v\n%s", commit, err, msg)
	}
	return exe, os.Rename(exe+".tmp", exe)
}

// runClaude runs the cc phase and returns what prints its tables; its
// targets go into cs.
func runClaude(quick bool, proc *child, up *fakeanthropic.Upstream, direct, via, yard *target, caFile string, cs *checks, step func(string)) (func(io.Writer), error) {
	sizes, err := parseSizes(ccBodies)
	if err != nil {
		return nil, err
	}
	targets := []ccTarget{{direct, nil}, {via, proc}, {yard, proc}}
	var others []*child
	defer func() {
		for _, c := range others {
			c.stop()
		}
	}()
	if against != "" {
		for _, commit := range strings.Split(against, ",") {
			step("building " + commit)
			exe, err := buildCommit(strings.TrimSpace(commit))
			if err != nil {
				return nil, err
			}
			c, err := startChildExe(exe, up.URL, caFile)
			if err != nil {
				return nil, fmt.Errorf("-against %s: %w", commit, err)
			}
			others = append(others, c)
			targets = append(targets, ccTarget{newTarget("ccmux "+commit, "http://"+c.addr, nil), c})
		}
	}
	rounds, turn := 12, 250*time.Millisecond
	if quick {
		rounds, turn = 2, 100*time.Millisecond
	}
	up.SetBehavior(fakeanthropic.Behavior{Deltas: ccEvents})
	defer up.SetBehavior(fakeanthropic.Behavior{})
	var tables []*table
	profiled := 0
	for _, size := range sizes {
		for _, sc := range []scenario{{size, false, 1}, {size, false, 32}, {size, true, 1}, {size, true, 32}} {
			step("cc: " + sc.String())
			body := fakeanthropic.RequestBody(size, "claude-sonnet-4-5", sc.stream)
			res := map[*target]ccResult{}
			for _, t := range targets { // warm: connections for 32 clients
				if _, err := ccTurn(t.target, body, sc.clients, turn/2); err != nil {
					return nil, err
				}
			}
			for i := 0; i < rounds; i++ {
				for _, t := range targets {
					var cpu0 time.Duration
					var sys0 int64
					if t.proc != nil {
						sys0 = ioSyscalls(t.proc.cmd.Process.Pid)
						if prefix := os.Getenv("CCMUX_BENCH_CPUPROFILE"); prefix != "" && (t.target == via || t.target == yard) {
							profiled++
							who := "cc"
							if t.target == yard {
								who = "rp"
							}
							t.proc.profile(fmt.Sprintf("%s.%s.%d", prefix, who, profiled))
						}
						cpu0, _ = t.proc.sample()
					}
					r, err := ccTurn(t.target, body, sc.clients, turn)
					if err != nil {
						return nil, err
					}
					if t.proc != nil {
						cpu1, _ := t.proc.sample()
						r.cpu = cpu1 - cpu0
						r.syscalls = ioSyscalls(t.proc.cmd.Process.Pid) - sys0
						if t.target == via || t.target == yard {
							t.proc.profile("")
						}
					}
					m := res[t.target]
					m.ttfb = append(m.ttfb, r.ttfb...)
					m.requests += r.requests
					m.elapsed += r.elapsed
					m.cpu += r.cpu
					m.syscalls += r.syscalls
					res[t.target] = m
				}
			}
			tables = append(tables, ccTable(sc, targets, res))
			v, y := res[via], res[yard]
			d50 := percentile(res[direct].ttfb, 0.5)
			vAdd, yAdd := percentile(v.ttfb, 0.5)-d50, percentile(y.ttfb, 0.5)-d50
			cpuRatio := float64(v.cpuPer()) / float64(y.cpuPer())
			cs.add("CPU per request, "+sc.String()+", vs ReverseProxy", fmt.Sprintf("%s vs %s = %.2fx", us(v.cpuPer()), us(y.cpuPer()), cpuRatio), "≤ 0.9x", cpuRatio <= 0.9)
			cs.add("  added first byte p50, vs ReverseProxy", fmt.Sprintf("%s vs %s", signedUS(vAdd), signedUS(yAdd)), "≤ ReverseProxy's", vAdd <= yAdd)
			for _, o := range targets[3:] {
				r := res[o.target]
				ratio := float64(v.cpuPer()) / float64(r.cpuPer())
				cs.add("  CPU per request vs "+o.name, fmt.Sprintf("%s vs %s = %.2fx", us(v.cpuPer()), us(r.cpuPer()), ratio), "≤ 1.0x", ratio <= 1)
			}
		}
	}
	return func(w io.Writer) {
		for _, tb := range tables {
			tb.print(w)
			fmt.Fprintln(w)
		}
	}, nil
}

// ccTable is one scenario's table: each target's CPU per request, first
// byte p50 and requests per second, with ccmux's ratios to it.
func ccTable(sc scenario, targets []ccTarget, res map[*target]ccResult) *table {
	tb := &table{head: &row{metric: sc.String(), direct: "CPU/req", ccmux: "1st byte p50", ratio: "added", added: "req/s", target: "r+w/req", verdict: "ccmux's CPU, req/s as a ratio to it"}}
	d50 := percentile(res[targets[0].target].ttfb, 0.5)
	v := res[targets[1].target]
	for _, t := range targets {
		r := res[t.target]
		p50 := percentile(r.ttfb, 0.5)
		out := row{metric: "  " + t.name, direct: "-", ccmux: us(p50), ratio: signedUS(p50 - d50), added: fmt.Sprintf("%.0f", r.rps())}
		if t.proc != nil {
			out.direct = us(r.cpuPer())
			out.target = fmt.Sprintf("%.1f", float64(r.syscalls)/float64(max(r.requests, 1)))
			if t.target != targets[1].target {
				out.verdict = fmt.Sprintf("%.2fx CPU, %.2fx req/s", float64(v.cpuPer())/float64(r.cpuPer()), v.rps()/r.rps())
			}
		}
		tb.add(out)
	}
	return tb
}
