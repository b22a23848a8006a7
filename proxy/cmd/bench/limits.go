package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The phases here measure the limits issue 9 sets: a cold burst of streams,
// slow and large request bodies, and an idle process.

// check is one of the targets with its measurement.
type check struct {
	what, measured, want string
	ok                   bool
}

type checks []check

func (cs *checks) add(what, measured, want string, ok bool) {
	*cs = append(*cs, check{what, measured, want, ok})
}

func (cs checks) print(w io.Writer) {
	tb := &table{}
	for _, c := range cs {
		tb.add(row{metric: c.what, ccmux: c.measured, target: c.want, verdict: verdict(c.ok)})
	}
	head := row{"target (issues 9 and 16)", "", "measured", "", "", "want", ""}
	widths := make([]int, 7)
	for _, r := range append([]row{head}, tb.rows...) {
		for i, c := range r.cells() {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for n, r := range append([]row{head}, tb.rows...) {
		cells := []string{r.metric, r.ccmux, r.target, r.verdict}
		ws := []int{widths[0], widths[2], widths[5], widths[6]}
		var b strings.Builder
		for i, c := range cells {
			b.WriteString(c + strings.Repeat(" ", ws[i]-len([]rune(c))) + "  ")
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if n == 0 {
			fmt.Fprintln(w, strings.Repeat("-", ws[0]+ws[1]+ws[2]+ws[3]+6))
		}
	}
}

// wakeups is the voluntary context switches of every thread of pid: how
// often the process went to sleep and was woken (Linux; -1 elsewhere).
func wakeups(pid int) int64 {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		return -1
	}
	var total int64
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				total += n
			}
		}
	}
	return total
}

// idle measures the proxy process's wake-ups per second and RSS while
// nothing happens for d, after settle (the runtime's own start-up work, a
// few wake-ups a second for the first seconds, is not what a tray app
// does all day).
func idle(proc *child, settle, d time.Duration) (perSecond float64, rss int64) {
	pid := proc.cmd.Process.Pid
	time.Sleep(settle)
	// Nothing talks to the child while it is watched; the counters come
	// from /proc, which does not wake it. RSS, asked for over stdin, is
	// sampled after the count: that request wakes the child, and the Go
	// runtime's monitor thread then winds down in short sleeps, each one a
	// context switch (62 within a second of the request on a machine busy
	// compiling), which were counted as ccmux's when RSS was sampled first.
	w0 := wakeups(pid)
	time.Sleep(d)
	w1 := wakeups(pid)
	_, rss = proc.sample()
	if w0 < 0 || w1 < 0 {
		return -1, rss
	}
	return float64(w1-w0) / d.Seconds(), rss
}

// afterBurstRate is the proxy's wake-ups per second from settle to
// settle+d, counted in 10 s windows from now, each window's rate printed
// with step (a timer the burst left shows as a window of its own).
func afterBurstRate(proc *child, settle, d time.Duration, step func(string)) float64 {
	pid := proc.cmd.Process.Pid
	start := time.Now()
	w := wakeups(pid)
	if w < 0 {
		return -1
	}
	var from int64
	for at := time.Duration(0); at < settle+d; {
		window := min(10*time.Second, settle+d-at)
		if at < settle {
			window = min(window, settle-at)
		}
		time.Sleep(time.Until(start.Add(at + window)))
		next := wakeups(pid)
		step(fmt.Sprintf("  %3.0f–%3.0f s after the burst: %.2f wake-ups/s", at.Seconds(), (at + window).Seconds(), float64(next-w)/window.Seconds()))
		at += window
		w = next
		if at == settle {
			from = w
		}
	}
	return float64(w-from) / d.Seconds()
}

// slowBodies opens n connections to addr that each declare a declared-byte
// body and send one byte of it, and reports the proxy's RSS while they are
// open and how many the proxy closed within wait.
func slowBodies(proc *child, addr string, n, declared int, wait time.Duration) (rss int64, closed int, took time.Duration, err error) {
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, 0, 0, err
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", declared)
	}
	time.Sleep(500 * time.Millisecond) // let the proxy read what was sent
	_, rss = proc.sample()
	var wg sync.WaitGroup
	var done atomic.Int64
	var last atomic.Int64
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(start.Add(wait))
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				done.Add(1)
				last.Store(int64(time.Since(start)))
			}
		}()
	}
	wg.Wait()
	return rss, int(done.Load()), time.Duration(last.Load()), nil
}

// bigBodies sends n concurrent requests of body through t and reports the
// proxy's peak RSS, the statuses, and how long its RSS took to fall under
// settle (-1 when it did not within a minute) and where it ended.
func bigBodies(proc *child, t *target, body []byte, n int, settle int64) (peak int64, statuses map[int]int, back time.Duration, after int64, err error) {
	statuses = map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, rss := proc.sample(); rss > peak {
					peak = rss
				}
			}
		}
	}()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, t.url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("anthropic-version", "2023-06-01")
			resp, e := t.client.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if e != nil {
				statuses[0]++
				if err == nil {
					err = e
				}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[resp.StatusCode]++
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	end := time.Now()
	back = -1
	for time.Since(end) < time.Minute {
		if _, after = proc.sample(); after < settle {
			back = time.Since(end)
			break
		}
		time.Sleep(time.Second)
	}
	return peak, statuses, back, after, err
}
