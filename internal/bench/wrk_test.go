package main

import (
	"strings"
	"testing"
	"time"
)

// wrkReport is wrk 4.1.0's report of a run with --latency, as printed.
const wrkReport = `Running 3s test @ http://127.0.0.1:18181/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.96ms    1.24ms  14.34ms   87.98%
    Req/Sec    35.20k     5.74k   46.48k    81.67%
  Latency Distribution
     50%  525.00us
     75%    1.04ms
     90%    2.57ms
     99%    5.40ms
  210178 requests in 3.01s, 13.43MB read
Requests/sec:  69934.17
Transfer/sec:      4.47MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{rps: 69934.17, requests: 210178, p50: 525 * time.Microsecond, p99: 5400 * time.Microsecond}
	if r != want {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
}

func TestParseWrkErrors(t *testing.T) {
	report := strings.Replace(wrkReport, "Requests/sec:", `  Socket errors: connect 1, read 20, write 3, timeout 400
  Non-2xx or 3xx responses: 17
Requests/sec:`, 1)
	r, err := parseWrk(report)
	if err != nil {
		t.Fatal(err)
	}
	if r.socketErrors != 424 || r.non2xx != 17 {
		t.Errorf("socket errors %d, non-2xx %d; want 424, 17", r.socketErrors, r.non2xx)
	}
}

func TestParseWrkIncomplete(t *testing.T) {
	// Without --latency there is no distribution; a run that failed to
	// connect prints no rate.
	for name, report := range map[string]string{
		"no latency": strings.Replace(wrkReport, "     99%    5.40ms\n", "", 1),
		"no rate":    strings.Replace(wrkReport, "Requests/sec:  69934.17\n", "", 1),
		"bad number": strings.Replace(wrkReport, "69934.17", "lots", 1),
		"bad unit":   strings.Replace(wrkReport, "5.40ms", "5.40", 1),
		"empty":      "",
	} {
		if r, err := parseWrk(report); err == nil {
			t.Errorf("%s: parseWrk = %+v, want an error", name, r)
		}
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"525.00us": 525 * time.Microsecond,
		"1.04ms":   1040 * time.Microsecond,
		"2.00s":    2 * time.Second,
		"1.50m":    90 * time.Second,
		"0.00us":   0,
	} {
		got, err := parseWrkDuration(in)
		if err != nil || got != want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ms", "12", "-1.00ms", "1.0xs"} {
		if got, err := parseWrkDuration(in); err == nil {
			t.Errorf("parseWrkDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestGCCounter(t *testing.T) {
	var log strings.Builder
	g := &gcCounter{log: &log}
	out := "gc 1 @0.012s 2%: 0.010+0.50+0.003 ms clock, 0.021+0.10/0.20/0.30+0.006 ms cpu, 3->3->0 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n" +
		"daemon: listening on dyno.sock\n" +
		"GC forced\n" +
		"gc 2 @120.5s 0%: 0.011+0.4+0.002 ms clock, 0.02+0/0.1/0.2+0.004 ms cpu, 4->4->1 MB, 5 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)\n" +
		"scvg: 0 MB released\n" +
		"gc 3 @121.0s 0%: 0.01+0.3+0.002 ms clock\n" +
		"app says gc 4 @1s, not the runtime\n" +
		"gc x @1s\n" +
		"gc 5 1s\n"
	// Written in pieces that cut lines anywhere, as a pipe delivers them.
	for i := 0; i < len(out); i += 7 {
		g.Write([]byte(out[i:min(i+7, len(out))]))
	}
	if c := g.Cycles(); c != (gcCycles{heap: 2, timed: 1}) {
		t.Errorf("Cycles = %+v, want 2 heap and 1 timed (the one after GC forced)", c)
	}
	if log.String() != out {
		t.Errorf("log = %q, want every byte passed on", log.String())
	}
	// A line is counted once it ends.
	g.Write([]byte("gc 6 @122.0s 0%: ..."))
	if c := g.Cycles(); c.heap != 2 {
		t.Errorf("Cycles = %+v before the line ended, want 2 heap", c)
	}
	g.Write([]byte("\n"))
	if c := g.Cycles(); c != (gcCycles{heap: 3, timed: 1}) {
		t.Errorf("Cycles = %+v after the line ended, want 3 heap and 1 timed", c)
	}
}

func TestParseProcStat(t *testing.T) {
	stat := "cpu  100 2 30 5000 7 1 40 3 0 0\ncpu0 50 1 15 2500 3 0 20 1 0 0\nintr 12345\n"
	got, err := parseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := (cpuTimes{busy: 100 + 2 + 30 + 1 + 40 + 3, softirq: 40}); got != want {
		t.Errorf("parseProcStat = %+v, want %+v", got, want)
	}
	if _, err := parseProcStat([]byte("cpu0 1 2 3 4 5 6 7 8\n")); err == nil {
		t.Error("parseProcStat without the machine-wide line: no error")
	}
}

func TestTableHelpers(t *testing.T) {
	if got := thousands(24386.6); got != "24,387" {
		t.Errorf("thousands = %q", got)
	}
	if got := thousands(999); got != "999" {
		t.Errorf("thousands = %q", got)
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median of 4 = %v", got)
	}
	// Columns line up by characters, whatever their bytes.
	a := tableRow("nginx", "1", "2", "3", "–", "–", "×", "÷")
	b := tableRow("router", "10,000", "2.00", "3.00", "30.1", "0", "1.00", "1.00")
	if ra, rb := len([]rune(a)), len([]rune(b)); ra != rb {
		t.Errorf("rows of %d and %d characters:\n%s\n%s", ra, rb, a, b)
	}
}
