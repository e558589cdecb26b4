package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A wrkResult is what the benchmark reads from wrk's report.
type wrkResult struct {
	rps      float64 // Requests/sec
	requests int64   // "N requests in 10.00s"
	p50, p99 time.Duration
	// Errors wrk counted: socket errors (connect, read, write, timeout)
	// and responses other than 2xx or 3xx. A proxy that answers errors
	// fast would otherwise look good.
	socketErrors int64
	non2xx       int64
}

// parseWrk reads wrk's report, as `wrk --latency` prints it:
//
//	  Latency Distribution
//	     50%  525.00us
//	     99%    5.40ms
//	  210178 requests in 3.01s, 13.43MB read
//	  Socket errors: connect 0, read 2, write 0, timeout 0
//	  Non-2xx or 3xx responses: 5
//	Requests/sec:  69934.17
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveReqs, have50, have99 bool
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var err error
		switch {
		case f[0] == "Requests/sec:" && len(f) == 2:
			r.rps, err = strconv.ParseFloat(f[1], 64)
			haveRPS = true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.requests, err = strconv.ParseInt(f[0], 10, 64)
			haveReqs = true
		case (f[0] == "50%" || f[0] == "99%") && len(f) == 2:
			var d time.Duration
			d, err = parseWrkDuration(f[1])
			if f[0] == "50%" {
				r.p50, have50 = d, true
			} else {
				r.p99, have99 = d, true
			}
		case f[0] == "Socket" && len(f) > 2 && f[1] == "errors:":
			// "connect 0, read 2, write 0, timeout 0"
			for i := 3; i < len(f); i += 2 {
				var n int64
				n, err = strconv.ParseInt(strings.TrimSuffix(f[i], ","), 10, 64)
				if err != nil {
					break
				}
				r.socketErrors += n
			}
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			r.non2xx, err = strconv.ParseInt(f[len(f)-1], 10, 64)
		}
		if err != nil {
			return r, fmt.Errorf("wrk output: line %q: %w", strings.TrimSpace(line), err)
		}
	}
	if !haveRPS || !haveReqs || !have50 || !have99 {
		return r, fmt.Errorf("wrk output has no Requests/sec, request count or latency distribution (was it run with --latency?):\n%s", out)
	}
	return r, nil
}

// parseWrkDuration parses a latency as wrk prints it: a number with two
// decimals and one of the units us, ms, s, m or h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("bad latency %q", s)
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("latency %q has no unit us, ms, s, m or h", s)
}

// A gcCounter is the daemon's stderr: it counts the lines that
// GODEBUG=gctrace=1 makes the Go runtime print at the end of each
// garbage collection ("gc 12 @3.456s 1%: ..."), and passes every line on
// to a log file, so that the daemon's own messages stay readable.
//
// It tells apart the cycles that allocation started from the runtime's
// periodic one: whatever the load, sysmon starts a collection when none
// has run for two minutes (runtime.forcegcperiod), and gctrace announces
// it with a "GC forced" line just before its summary. A steady run of a
// router that allocates nothing still meets that one now and then.
type gcCounter struct {
	mu      sync.Mutex
	partial []byte // the start of a line not yet ended
	cycles  gcCycles
	timed   bool // a "GC forced" line came and its cycle's summary has not
	log     io.Writer
}

// gcCycles counts garbage collections.
type gcCycles struct {
	heap  int // started because the heap grew to its goal (or by runtime.GC)
	timed int // the runtime's two-minute periodic collection
}

func (c gcCycles) sub(d gcCycles) gcCycles {
	return gcCycles{heap: c.heap - d.heap, timed: c.timed - d.timed}
}

func (g *gcCounter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.log != nil {
		g.log.Write(p)
	}
	data := p
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			// Keep at most a line's worth: a runaway line without an end
			// cannot be a gc line anyway.
			if len(g.partial) < 4096 {
				g.partial = append(g.partial, data...)
			}
			return len(p), nil
		}
		line := data[:i]
		if len(g.partial) > 0 {
			line = append(g.partial, line...)
			g.partial = g.partial[:0]
		}
		switch {
		case string(line) == "GC forced":
			g.timed = true
		case isGCLine(line):
			if g.timed {
				g.cycles.timed++
			} else {
				g.cycles.heap++
			}
			g.timed = false
		}
		data = data[i+1:]
	}
}

// Cycles is the cycles whose gc lines have been seen so far.
func (g *gcCounter) Cycles() gcCycles {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cycles
}

// isGCLine reports whether line is the runtime's gctrace summary of one
// cycle: "gc N @Ts ...", N the cycle's number. Lines about forced GCs
// ("GC forced") and the scavenger ("scvg") do not count.
func isGCLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("gc "))
	if !ok {
		return false
	}
	num, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(num) == 0 || !bytes.HasPrefix(rest, []byte("@")) {
		return false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// A cpuTimes is the machine-wide line of /proc/stat, in ticks of
// USER_HZ.
type cpuTimes struct {
	busy    uint64 // user, nice, system, irq, softirq and steal
	softirq uint64 // receive work of loopback TCP, charged to no process
}

// parseProcStat reads the "cpu " line of /proc/stat (proc(5)).
func parseProcStat(b []byte) (cpuTimes, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("/proc/stat: cpu field %d: %w", i+1, err)
			}
			v[i] = n
		}
		// user nice system idle iowait irq softirq steal
		return cpuTimes{busy: v[0] + v[1] + v[2] + v[5] + v[6] + v[7], softirq: v[6]}, nil
	}
	return cpuTimes{}, fmt.Errorf("/proc/stat: no cpu line")
}
