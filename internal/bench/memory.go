package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	memoryTarget = 30e6 // bytes: what dyno start itself may hold
	idleCommand  = "exec sleep 1000000"
	upLine       = "State changed from starting to up"

	// Hang guards, generous: a healthy run needs a second or two.
	readyTimeout = time.Minute
	stopTimeout  = time.Minute
)

// An idleRun is a manager running idle processes, with its output
// drained in the background.
type idleRun struct {
	cmd    *exec.Cmd
	ready  chan struct{} // closed once the output holds the wanted lines
	exited chan struct{} // closed once the manager has exited and been reaped

	mu   sync.Mutex
	tail []string // the last lines of output, to explain a failure
}

// startIdle starts argv in dir and reads its output; ready closes after
// want lines containing readyText (never, if readyText is "").
func startIdle(argv []string, dir, readyText string, want int) (*idleRun, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("make output pipe: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = w
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	w.Close()
	run := &idleRun{cmd: cmd, ready: make(chan struct{}), exited: make(chan struct{})}
	// The manager must never block on a full pipe, so the output is read
	// to its end, long after the wanted lines.
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := 0
		for sc.Scan() {
			line := sc.Text()
			if readyText != "" && strings.Contains(line, readyText) {
				if seen++; seen == want {
					close(run.ready)
				}
			}
			run.mu.Lock()
			run.tail = append(run.tail, line)
			if len(run.tail) > 5 {
				run.tail = run.tail[1:]
			}
			run.mu.Unlock()
		}
		// A line too long to scan ends the scan, not the draining.
		io.Copy(io.Discard, r)
	}()
	go func() {
		cmd.Wait()
		close(run.exited)
	}()
	return run, nil
}

// failure describes why the run did not get ready, with its last output.
func (run *idleRun) failure(what string) error {
	run.mu.Lock()
	defer run.mu.Unlock()
	msg := what
	if len(run.tail) > 0 {
		msg += "; its last output:\n      " + strings.Join(run.tail, "\n      ")
	}
	return errors.New(msg)
}

// stop sends sig and waits for the manager to exit, killing it if it
// does not within stopTimeout.
func (run *idleRun) stop(sig syscall.Signal) (time.Duration, error) {
	start := time.Now()
	if err := run.cmd.Process.Signal(sig); err != nil {
		return 0, fmt.Errorf("send %v: %w", sig, err)
	}
	select {
	case <-run.exited:
		return time.Since(start), nil
	case <-time.After(stopTimeout):
		run.cmd.Process.Kill()
		<-run.exited
		return time.Since(start), fmt.Errorf("still running %v after %v; killed", sig, stopTimeout)
	}
}

// abandon kills a manager that is still running after a failure.
func (run *idleRun) abandon() {
	select {
	case <-run.exited:
	default:
		run.cmd.Process.Kill()
		<-run.exited
	}
}

// A memResult is one manager's memory test.
type memResult struct {
	ready   time.Duration // from start until all processes were up
	self    memory        // the manager process
	helpers []memory      // dyno: its dyno init processes
	odd     []string      // children that are not what they should be
	stopped time.Duration // from the stop signal to the manager's exit
	status  int           // the manager's exit status
	tree    int           // processes under the manager when all were up
	left    []proc        // processes of the run still running afterwards
}

func (b *bench) memory() {
	how := ""
	if b.isolate {
		how = ", isolated"
	}
	fmt.Fprintf(b.out, "memory: %d idle processes (%s%s)\n", b.idle, idleCommand, how)
	fmt.Fprintln(b.out, "  RSS counts shared pages (the binary, libraries) in every process; anon is private;")
	fmt.Fprintln(b.out, "  PSS splits shared pages among their sharers, so PSS totals add up")
	dir, err := b.mkdirProcfile("memory", "idle", idleCommand)
	if err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		b.failed = true
		return
	}
	formation := "idle=" + strconv.Itoa(b.idle)

	d, err := b.measureDynoMemory(dir, formation)
	if err != nil {
		fmt.Fprintf(b.out, "  dyno            error: %v\n", err)
		b.failed = true
	} else {
		verdict := "met"
		if d.self.rss >= memoryTarget {
			verdict = "missed"
		}
		fmt.Fprintf(b.out, "  dyno start RSS  %s (anon %s, PSS %s)   target < %.0f MB: %s\n",
			mb(d.self.rss), mb(d.self.anon), mb(d.self.pss), memoryTarget/1e6, verdict)
		var sum memory
		for _, h := range d.helpers {
			sum.rss += h.rss
			sum.anon += h.anon
			sum.pss += h.pss
		}
		if n := int64(len(d.helpers)); n > 0 {
			fmt.Fprintf(b.out, "  dyno init RSS   mean %s, total %s (%d processes)\n", mb(sum.rss/n), mb(sum.rss), n)
			fmt.Fprintf(b.out, "                  anon: mean %s, total %s; PSS: mean %s, total %s\n",
				mb(sum.anon/n), mb(sum.anon), mb(sum.pss/n), mb(sum.pss))
			// What dyno adds to the processes it runs, all told.
			fmt.Fprintf(b.out, "  dyno in all     PSS %s, dyno start and its %d inits\n", mb(d.self.pss+sum.pss), n)
		}
		b.reportLifecycle("dyno", "SIGTERM", d)
	}

	if b.nf == "" {
		return
	}
	nf, err := b.measureForemanMemory(dir, formation)
	if err != nil {
		fmt.Fprintf(b.out, "  node-foreman    error: %v\n", err)
		return
	}
	fmt.Fprintf(b.out, "  node-foreman RSS %s (anon %s, PSS %s); no helper process per app\n",
		mb(nf.self.rss), mb(nf.self.anon), mb(nf.self.pss))
	b.reportLifecycle("node-foreman", "SIGINT", nf)
}

// reportLifecycle prints how the manager started and stopped its
// processes, and whether any outlived it.
func (b *bench) reportLifecycle(name, sig string, r memResult) {
	fmt.Fprintf(b.out, "  %s: all %d up %.2f s after start; stopped %.2f s after %s, exit status %d;\n    ",
		name, b.idle, r.ready.Seconds(), r.stopped.Seconds(), sig, r.status)
	if len(r.left) == 0 {
		fmt.Fprintf(b.out, "none of its %d processes survived\n", r.tree)
	} else {
		var desc []string
		for _, p := range r.left {
			desc = append(desc, fmt.Sprintf("%d (%s)", p.pid, p.comm))
		}
		if len(desc) > 5 {
			desc = append(desc[:5], "...")
		}
		fmt.Fprintf(b.out, "%d of its %d processes SURVIVED and were killed: %s\n",
			len(r.left), r.tree, strings.Join(desc, ", "))
	}
	for _, o := range r.odd {
		fmt.Fprintf(b.out, "    %s\n", o)
	}
}

// measureDynoMemory runs dyno start on idle processes, reads its memory
// once every process is up, then stops it.
func (b *bench) measureDynoMemory(dir, formation string) (memResult, error) {
	start := time.Now()
	argv := []string{b.dyno, "start", "--no-color", "-m", formation}
	if b.isolate {
		argv = append(argv, "--isolate")
	}
	run, err := startIdle(argv, dir, upLine, b.idle)
	if err != nil {
		return memResult{}, err
	}
	defer run.abandon()
	b.setRunning(run, syscall.SIGTERM)
	defer b.setRunning(nil, 0)
	select {
	case <-run.ready:
	case <-run.exited:
		return memResult{}, run.failure("dyno start exited before its processes were up")
	case <-time.After(readyTimeout):
		return memResult{}, run.failure(fmt.Sprintf("not all %d processes up after %v", b.idle, readyTimeout))
	}
	var r memResult
	r.ready = time.Since(start)
	pid := run.cmd.Process.Pid

	tree, err := descendants(pid)
	if err != nil {
		return memResult{}, err
	}
	r.tree = len(tree)
	if r.self, err = readMemory(pid); err != nil {
		return memResult{}, err
	}
	for _, p := range tree {
		if p.ppid != pid {
			continue
		}
		if args := cmdline(p.pid); len(args) < 2 || args[1] != "init" {
			r.odd = append(r.odd, fmt.Sprintf("child %d is %q, not a dyno init", p.pid, args))
			continue
		}
		m, err := readMemory(p.pid)
		if err != nil {
			return memResult{}, err
		}
		r.helpers = append(r.helpers, m)
	}
	if len(r.helpers) != b.idle {
		r.odd = append(r.odd, fmt.Sprintf("%d dyno init processes for %d dynos", len(r.helpers), b.idle))
	}

	if r.stopped, err = run.stop(syscall.SIGTERM); err != nil {
		return memResult{}, fmt.Errorf("stop dyno start: %w", err)
	}
	r.status = run.cmd.ProcessState.ExitCode()
	r.left = reapSurvivors(tree)
	return r, nil
}

// measureForemanMemory does for nf what measureDynoMemory does for dyno.
// nf prints nothing when a process starts, so it is ready once all its
// children have become sleep.
func (b *bench) measureForemanMemory(dir, formation string) (memResult, error) {
	start := time.Now()
	run, err := startIdle([]string{b.nf, "start", formation}, dir, "", 0)
	if err != nil {
		return memResult{}, err
	}
	defer run.abandon()
	// nf only handles SIGINT; on SIGTERM node would die and leave its
	// children running.
	b.setRunning(run, syscall.SIGINT)
	defer b.setRunning(nil, 0)
	pid := run.cmd.Process.Pid
	var tree []proc
	for {
		tree, err = descendants(pid)
		if err != nil {
			return memResult{}, err
		}
		n := 0
		for _, p := range tree {
			if p.ppid == pid && p.comm == "sleep" {
				n++
			}
		}
		if n >= b.idle {
			break
		}
		select {
		case <-run.exited:
			return memResult{}, run.failure("nf exited before its processes were up")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > readyTimeout {
			return memResult{}, run.failure(fmt.Sprintf("not all %d processes up after %v", b.idle, readyTimeout))
		}
	}
	var r memResult
	r.ready = time.Since(start)
	r.tree = len(tree)
	if r.self, err = readMemory(pid); err != nil {
		return memResult{}, err
	}
	if r.stopped, err = run.stop(syscall.SIGINT); err != nil {
		return memResult{}, fmt.Errorf("stop nf: %w", err)
	}
	r.status = run.cmd.ProcessState.ExitCode()
	r.left = reapSurvivors(tree)
	return r, nil
}

// reapSurvivors returns the processes of tree still running, after a
// moment's grace for those already dying, and kills them: they were
// started by this benchmark and must not outlive it.
func reapSurvivors(tree []proc) []proc {
	left := survivors(tree)
	for i := 0; len(left) > 0 && i < 10; i++ {
		time.Sleep(20 * time.Millisecond)
		left = survivors(left)
	}
	for _, p := range left {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	return left
}
