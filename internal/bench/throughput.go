package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runs is how many times each manager runs the throughput test; the
// report gives the median and the range.
const runs = 3

// Published numbers for other Procfile managers on this kind of machine,
// for the same test: 4 processes writing 200,000 lines of 80 bytes.
const (
	refHivemind      = 241000 // lines/s, at refHivemindCPU
	refHivemindCPU   = 4.3    // µs of manager CPU per line
	refForeman       = 126000 // node-foreman
	refGoreman       = 87000
	refOvermind      = 82000
	targetCPUPerLine = 2.0 // µs
)

// A contender is a Procfile manager whose throughput is measured.
type contender struct {
	label string
	argv  []string
	parse lineParser
	dyno  bool // dyno itself, rather than a manager compared with it
}

// A runStats is one run of the throughput test.
type runStats struct {
	tally
	wall    time.Duration // from start to the manager's exit
	cpu     time.Duration // the manager's own user+system time, not its children's
	status  int           // exit status; -1 when a signal ended it
	timeout bool          // the run hung and was stopped
}

func (r runStats) linesPerSec() float64 { return float64(r.intact) / r.wall.Seconds() }

// cpuPerLine returns µs of manager CPU per line delivered.
func (r runStats) cpuPerLine() float64 {
	if r.intact == 0 {
		return math.Inf(1)
	}
	return float64(r.cpu.Nanoseconds()) / 1e3 / float64(r.intact)
}

func (b *bench) throughput() {
	fmt.Fprintf(b.out, "log throughput: %d processes x %d lines x %d bytes (median of %d runs)\n",
		b.procs, b.lines, lineBytes, runs)
	dir, err := b.mkdirProcfile("throughput", "gen", "exec "+shellQuote(b.linegen)+" "+strconv.Itoa(b.lines))
	if err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		b.failed = true
		return
	}
	formation := "gen=" + strconv.Itoa(b.procs)
	dynoArgv := []string{b.dyno, "start", "--no-restart", "--no-color", "-m", formation}
	contenders := []contender{
		{label: "dyno (terminal)", argv: dynoArgv, parse: parseTerminal, dyno: true},
		{label: "dyno (logplex)", argv: append(slices.Clip(dynoArgv), "--log-format", "logplex"), parse: parseLogplex, dyno: true},
	}
	if b.nf != "" {
		// nf takes the formation as an argument and has no option to
		// let processes exit: the first exit stops all of them.
		contenders = append(contenders, contender{label: "node-foreman", argv: []string{b.nf, "start", formation}, parse: parseForeman})
	}

	results := make(map[string]summary)
	for _, c := range contenders {
		stats, err := b.measureThroughput(c, dir)
		if err != nil {
			fmt.Fprintf(b.out, "  %-16s error: %v\n", c.label, err)
			b.failed = b.failed || c.dyno
			continue
		}
		r := b.reportThroughput(c, stats)
		results[c.label] = r
		// A dyno that delivers nothing has not run, whatever it measured.
		b.failed = b.failed || c.dyno && r.rate == 0
	}

	if nf, ok := results["node-foreman"]; ok && nf.rate > 0 {
		var ratios []string
		for _, c := range contenders[:2] {
			if r, ok := results[c.label]; ok {
				ratios = append(ratios, fmt.Sprintf("%.1fx (%s)", r.rate/nf.rate, formatName(c.label)))
			}
		}
		fmt.Fprintf(b.out, "  %-16s %s\n", "ratio dyno/nf", strings.Join(ratios, ", "))
	}
	fmt.Fprintf(b.out, "  reference, measured by others on this kind of machine: hivemind %d lines/s at %.1f µs CPU/line;\n"+
		"    node-foreman %d; goreman %d; overmind %d\n", refHivemind, refHivemindCPU, refForeman, refGoreman, refOvermind)
	var verdicts []string
	for _, c := range contenders[:2] {
		r, ok := results[c.label]
		if !ok {
			continue
		}
		var missed []string
		if r.rate <= refHivemind {
			missed = append(missed, "lines/s")
		}
		if r.cpu > targetCPUPerLine {
			missed = append(missed, "CPU/line")
		}
		if r.worst.cut > 0 || r.worst.lost > 0 || r.worst.duplicated > 0 || r.worst.disordered > 0 {
			missed = append(missed, "intact lines")
		}
		verdict := "met"
		if len(missed) > 0 {
			verdict = "missed on " + strings.Join(missed, ", ")
		}
		verdicts = append(verdicts, formatName(c.label)+" "+verdict)
	}
	fmt.Fprintf(b.out, "  targets: > %d lines/s, <= %.0f µs CPU/line, cut 0, lost 0: %s\n",
		refHivemind, targetCPUPerLine, strings.Join(verdicts, "; "))
	fmt.Fprintf(b.out, "  a line cut in two counts as 2 cut and 1 lost; lines/s and CPU/line count intact lines;\n"+
		"    CPU is the manager process's own user+system time, not its children's, read in\n"+
		"    %d ms ticks (%.3f µs/line here) from the exited process before it is reaped\n",
		1000/userHZ, 1e6/userHZ/float64(b.procs*b.lines))
}

// measureThroughput runs c several times and checks each run's output.
func (b *bench) measureThroughput(c contender, dir string) ([]runStats, error) {
	names := make([]string, b.procs)
	for i := range names {
		names[i] = "gen." + strconv.Itoa(i+1)
	}
	out := filepath.Join(b.work, "output.log")
	// Only a hang guard: the slowest manager here needs seconds.
	timeout := 2*time.Minute + time.Duration(b.procs*b.lines/20000)*time.Second
	var all []runStats
	for range runs {
		r, err := timedRun(c.argv, dir, out, timeout)
		if err != nil {
			return nil, err
		}
		r.tally, err = checkOutput(out, c.parse, names, b.lines)
		os.Remove(out) // up to 100 MB a run
		if err != nil {
			return nil, err
		}
		all = append(all, r)
	}
	return all, nil
}

// timedRun runs argv in dir with stdout and stderr to the file out and
// measures its wall time and its own CPU time.
func timedRun(argv []string, dir, out string, timeout time.Duration) (runStats, error) {
	f, err := os.Create(out)
	if err != nil {
		return runStats{}, fmt.Errorf("create output file: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = f
	cmd.Stderr = f

	var r runStats
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return runStats{}, fmt.Errorf("start %s: %w", filepath.Base(argv[0]), err)
	}
	hung := make(chan struct{})
	guard := time.AfterFunc(timeout, func() {
		close(hung)
		cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(10 * time.Second)
		cmd.Process.Kill()
	})
	// Once it has exited its children may still be stopping, but its own
	// work, and so the measurement, is over.
	waitErr := waitExit(cmd.Process.Pid)
	r.wall = time.Since(start)
	guard.Stop()
	var statErr error
	if waitErr == nil {
		var p proc
		p, statErr = readProc(cmd.Process.Pid)
		r.cpu = p.cpu
	}
	cmd.Wait() // reap; the exit status is read from ProcessState below
	if waitErr != nil {
		return runStats{}, waitErr
	}
	if statErr != nil {
		return runStats{}, fmt.Errorf("read CPU time of %s: %w", filepath.Base(argv[0]), statErr)
	}
	r.status = cmd.ProcessState.ExitCode()
	select {
	case <-hung:
		r.timeout = true
	default:
	}
	return r, nil
}

// A summary is a contender's result over its runs: the medians and the
// worst counts.
type summary struct {
	rate  float64 // lines/s
	cpu   float64 // µs per line
	worst tally
}

// reportThroughput prints c's row and any anomalies.
func (b *bench) reportThroughput(c contender, stats []runStats) summary {
	rate := make([]float64, len(stats))
	cpu := make([]float64, len(stats))
	wall := make([]float64, len(stats))
	var worst tally
	var notes []string
	for i, r := range stats {
		rate[i], cpu[i], wall[i] = r.linesPerSec(), r.cpuPerLine(), r.wall.Seconds()
		worst.cut = max(worst.cut, r.cut)
		worst.lost = max(worst.lost, r.lost)
		worst.lostTail = max(worst.lostTail, r.lostTail)
		worst.duplicated = max(worst.duplicated, r.duplicated)
		worst.disordered = max(worst.disordered, r.disordered)
		worst.afterExit = max(worst.afterExit, r.afterExit)
		if worst.example == "" {
			worst.example = r.example
		}
		switch {
		case r.timeout:
			notes = append(notes, fmt.Sprintf("run %d hung and was stopped after %.0f s", i+1, r.wall.Seconds()))
		case r.status != 0:
			notes = append(notes, fmt.Sprintf("run %d exited with status %d", i+1, r.status))
		}
	}
	slices.Sort(rate)
	slices.Sort(cpu)
	slices.Sort(wall)
	med := len(stats) / 2
	fmt.Fprintf(b.out, "  %-16s %8.0f lines/s  %5.2f µs CPU/line  cut %d  lost %d   (%.0f-%.0f lines/s, %.2f-%.2f µs, %.2f s wall)\n",
		c.label, rate[med], cpu[med], worst.cut, worst.lost, rate[0], rate[len(rate)-1], cpu[0], cpu[len(cpu)-1], wall[med])
	if worst.duplicated > 0 {
		notes = append(notes, fmt.Sprintf("up to %d lines duplicated in a run", worst.duplicated))
	}
	if worst.disordered > 0 {
		notes = append(notes, fmt.Sprintf("up to %d lines out of order in a run", worst.disordered))
	}
	if worst.afterExit > 0 {
		notes = append(notes, fmt.Sprintf("up to %d lines in a run came after the manager's exit line for their process", worst.afterExit))
	}
	if worst.lostTail > 0 {
		notes = append(notes, fmt.Sprintf("up to %d of the lost lines in a run were the processes' last lines", worst.lostTail))
	}
	if worst.example != "" {
		notes = append(notes, "first cut line: "+worst.example)
	}
	if worst.cut > 0 || worst.lost > 0 {
		notes = append(notes, "cut and lost are the worst of the runs")
	}
	for _, n := range notes {
		fmt.Fprintf(b.out, "  %-16s %s\n", "", n)
	}
	return summary{rate: rate[med], cpu: cpu[med], worst: worst}
}

// formatName returns "terminal" for "dyno (terminal)".
func formatName(label string) string {
	return strings.Trim(strings.TrimPrefix(label, "dyno "), "()")
}

// shellQuote quotes s for sh, which runs Procfile commands: $TMPDIR may
// hold spaces.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
