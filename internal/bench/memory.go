package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dyno-run/dyno/internal/memtrim"
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
	added   int64         // PSS of the manager and every process under it but the sleeps
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
	fmt.Fprintln(b.out, "  PSS splits shared pages among their sharers, so PSS totals add up;")
	fmt.Fprintf(b.out, "  each manager is measured idle, %v after all its processes are up\n", restDelay)
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

	var all []peerTotal
	if d.self.pss > 0 {
		all = append(all, peerTotal{"dyno start", d.added, ""})
	}
	peersDir, err := b.mkdirPeerProcfile("memory-peers", b.idle)
	if err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		return
	}
	for _, p := range b.peers() {
		if p.bin == "" {
			all = append(all, peerTotal{name: p.name, why: p.missing})
			continue
		}
		r, err := b.measurePeerMemory(p, dir, peersDir, formation)
		if err != nil {
			fmt.Fprintf(b.out, "  %-15s error: %v\n", p.name, err)
			all = append(all, peerTotal{name: p.name, why: "error, above"})
			continue
		}
		fmt.Fprintf(b.out, "  %s RSS %s (anon %s, PSS %s); %d helper processes, PSS %s\n",
			p.name, mb(r.self.rss), mb(r.self.anon), mb(r.self.pss), len(r.helpers), mb(r.added-r.self.pss))
		b.reportLifecycle(p.name, p.sig.String(), r)
		all = append(all, peerTotal{p.name, r.added, ""})
	}
	fmt.Fprintf(b.out, "  in all, %d idle processes: PSS of the manager and every process it adds (not the %d sleeps)\n", b.idle, b.idle)
	for _, t := range all {
		if t.why != "" {
			fmt.Fprintf(b.out, "    %-15s %s\n", t.name, t.why)
			continue
		}
		fmt.Fprintf(b.out, "    %-15s %8s  %5.3f MB a process\n", t.name, mb(t.pss), float64(t.pss)/1e6/float64(b.idle))
	}
}

// A peerTotal is one manager's line in the memory comparison.
type peerTotal struct {
	name string
	pss  int64  // the manager's and its helpers' PSS
	why  string // why it was not measured, or ""
}

// A peer is another Procfile manager the memory test runs on the same
// idle processes, when it is installed.
type peer struct {
	name    string
	bin     string // its path, or "" when not installed
	missing string // what to say when it is not installed
	sig     syscall.Signal
	// argv is its command line for the folder with a one-type Procfile
	// and formation, and the folder with n one-process types for a
	// manager that has no formation option.
	argv func(bin, dir, peersDir, formation string) (args []string, inDir string)
}

// peers are the managers beside dyno in the memory test: node-foreman
// (nf), hivemind and goreman. hivemind and goreman take no formation, so
// they run a Procfile of b.idle types of one process each; each of those
// processes is the same `sh -c 'exec sleep ...'`.
func (b *bench) peers() []peer {
	look := func(name string) string {
		p, _ := exec.LookPath(name)
		return p
	}
	var ps []peer
	if !b.skipNF {
		ps = append(ps, peer{name: "node-foreman", bin: b.nf, missing: "not on PATH (npm install -g foreman)",
			// nf only handles SIGINT; on SIGTERM node would die and
			// leave its children running.
			sig: syscall.SIGINT,
			argv: func(bin, dir, _, formation string) ([]string, string) {
				return []string{bin, "start", formation}, dir
			}})
	}
	ps = append(ps,
		peer{name: "hivemind", bin: look("hivemind"), missing: "not on PATH (go install github.com/DarthSim/hivemind@latest)",
			sig: syscall.SIGINT,
			argv: func(bin, _, peersDir, _ string) ([]string, string) {
				return []string{bin, "Procfile"}, peersDir
			}},
		peer{name: "goreman", bin: look("goreman"), missing: "not on PATH (go install github.com/mattn/goreman@latest)",
			sig: syscall.SIGINT,
			argv: func(bin, _, peersDir, _ string) ([]string, string) {
				return []string{bin, "-f", "Procfile", "start"}, peersDir
			}})
	return ps
}

// mkdirPeerProcfile makes a folder holding a Procfile of n process types
// idle1 ... idleN, each the idle command.
func (b *bench) mkdirPeerProcfile(name string, n int) (string, error) {
	dir := filepath.Join(b.work, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("make folder for %s: %w", name, err)
	}
	var procfile strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&procfile, "idle%d: %s\n", i, idleCommand)
	}
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile.String()), 0o644); err != nil {
		return "", fmt.Errorf("write Procfile for %s: %w", name, err)
	}
	return dir, nil
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
	atRest(run)

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
	if r.added, err = addedPSS(pid, r.self, tree); err != nil {
		return memResult{}, err
	}

	if r.stopped, err = run.stop(syscall.SIGTERM); err != nil {
		return memResult{}, fmt.Errorf("stop dyno start: %w", err)
	}
	r.status = run.cmd.ProcessState.ExitCode()
	r.left = reapSurvivors(tree)
	return r, nil
}

// measurePeerMemory does for another manager what measureDynoMemory
// does for dyno. None of them says when a process has started, so it is
// ready once b.idle processes under it have become sleep; every other
// process under it (a node, a shell, a pty helper) is its helper.
func (b *bench) measurePeerMemory(p peer, dir, peersDir, formation string) (memResult, error) {
	start := time.Now()
	argv, inDir := p.argv(p.bin, dir, peersDir, formation)
	run, err := startIdle(argv, inDir, "", 0)
	if err != nil {
		return memResult{}, err
	}
	defer run.abandon()
	b.setRunning(run, p.sig)
	defer b.setRunning(nil, 0)
	pid := run.cmd.Process.Pid
	var tree []proc
	for {
		tree, err = descendants(pid)
		if err != nil {
			return memResult{}, err
		}
		n := 0
		for _, q := range tree {
			if q.comm == "sleep" {
				n++
			}
		}
		if n >= b.idle {
			break
		}
		select {
		case <-run.exited:
			return memResult{}, run.failure(p.name + " exited before its processes were up")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > readyTimeout {
			return memResult{}, run.failure(fmt.Sprintf("not all %d processes up after %v", b.idle, readyTimeout))
		}
	}
	var r memResult
	r.ready = time.Since(start)
	atRest(run)
	if tree, err = descendants(pid); err != nil {
		return memResult{}, err
	}
	r.tree = len(tree)
	if r.self, err = readMemory(pid); err != nil {
		return memResult{}, err
	}
	for _, q := range tree {
		if q.comm == "sleep" {
			continue
		}
		m, err := readMemory(q.pid)
		if err != nil {
			return memResult{}, err
		}
		r.helpers = append(r.helpers, m)
	}
	if r.added, err = addedPSS(pid, r.self, tree); err != nil {
		return memResult{}, err
	}
	if r.stopped, err = run.stop(p.sig); err != nil {
		return memResult{}, fmt.Errorf("stop %s: %w", p.name, err)
	}
	r.status = run.cmd.ProcessState.ExitCode()
	r.left = reapSurvivors(tree)
	return r, nil
}

// restDelay is how long after all its processes are up a manager is
// measured: idle, as the comparison means, and past the quiet period
// after which dyno gives back what start-up mapped (memtrim.QuietPeriod).
const restDelay = memtrim.QuietPeriod + 3*time.Second

// atRest waits restDelay, or until the manager exits.
func atRest(run *idleRun) {
	select {
	case <-time.After(restDelay):
	case <-run.exited:
	}
}

// addedPSS is what a manager adds to the processes it runs, all told:
// its own PSS (self) and that of every process under it that is not one
// of the idle sleeps, however the manager names them, read at one time
// so that pages they share are split among them alone.
func addedPSS(pid int, self memory, tree []proc) (int64, error) {
	sum := self.pss
	for _, q := range tree {
		if q.pid == pid || q.comm == "sleep" {
			continue
		}
		m, err := readMemory(q.pid)
		if err != nil {
			return 0, err
		}
		sum += m.pss
	}
	return sum, nil
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
