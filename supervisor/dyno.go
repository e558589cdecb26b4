package supervisor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dyno is one dyno name under a Supervisor. Its goroutine runs a process
// for it, and the next one after a crash, a restart or a stop, until the
// dyno leaves. This is the one place that moves dynos through Heroku's
// states; Manager and the daemon both run their dynos here.
type dyno struct {
	s      *Supervisor
	name   string
	oneOff bool

	// Dynos added by one Reconcile log their first line one after
	// another in its order, as Foreman starts them, so the log begins in
	// Procfile order; their processes then start side by side (start).
	// after is closed once the previous one has logged its first line,
	// announced once this one has, or has left without a process.
	after         <-chan struct{}
	announced     chan struct{}
	announcedOnce sync.Once

	// wake tells the goroutine that req or leaving changed. One pending
	// token is enough: the goroutine reads both afresh when it wakes.
	wake chan struct{}

	mu      sync.Mutex
	cfg     DynoConfig // what the next process runs
	req     request
	leaving bool // stop for good: scaled down, a one-off stopped, shutdown
	// predecessors counts processes of this dyno replaced by a restart
	// and still stopping. On a shared port, until they are gone the port
	// may be theirs, so it says nothing about whether the new process is
	// up.
	predecessors int
	// serving is the process a preboot keeps taking requests while its
	// replacement boots, on servingPort (preboot.go); nil when none.
	serving     *serving
	servingPort int
	// idle: the dyno sleeps (sleep.go), down until woken.
	idle    bool
	state   State
	since   time.Time
	pid     int
	initPid int // the host's pid of its init, the root of its process tree
	// crashes counts the dyno's crashes; crashOOM says the kernel's
	// OOM killer ended the last one (R15).
	crashes  int
	crashOOM bool
	port     int     // the running process's PORT; 0 when none
	stopping bool    // the running process has been sent SIGTERM or SIGKILL
	metered  Metered // the running process's accounting, if any
	// metrics are the running process's last runtime sample (metrics.go).
	metrics *RuntimeMetrics
}

// request is what an operator or Reconcile asked of a dyno since its
// goroutine last looked. Starting a process answers every request made
// before it.
type request struct {
	restart string // "Restarting" or "Cycling": replace the process
	stop    bool   // stop the process; a formation dyno then starts again
	kill    bool   // stop with SIGKILL at once instead of SIGTERM
	fresh   bool   // scaled back up: start a crashed dyno now, back-off forgotten
	preboot bool   // with restart: start the replacement beside the process (preboot.go)
	sleep   bool   // stop the process and stay down until woken (sleep.go)
}

func (r request) empty() bool { return r == request{} }

// outcome says how a process of a dyno ended.
type outcome int

const (
	crashed   outcome = iota // by itself
	stopped                  // after a stop
	replaced                 // it is stopping while a new process starts
	prebooted                // it serves on while a new process starts (preboot.go)
)

func newDyno(s *Supervisor, cfg DynoConfig, oneOff bool) *dyno {
	return &dyno{
		s:         s,
		name:      cfg.Name,
		oneOff:    oneOff,
		announced: make(chan struct{}),
		wake:      make(chan struct{}, 1),
		cfg:       cfg,
		state:     Down,
		since:     time.Now(),
	}
}

func (d *dyno) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// ask adds r to what is asked of d and wakes its goroutine; leave makes
// the dyno leave once stopped instead of starting again.
func (d *dyno) ask(r request, leave bool) {
	d.mu.Lock()
	if r.restart != "" {
		// The latest restart says how: a release's may preboot, a
		// ps:restart's does not.
		d.req.restart, d.req.preboot = r.restart, r.preboot
	}
	d.req.stop = d.req.stop || r.stop
	d.req.kill = d.req.kill || r.kill
	d.req.fresh = d.req.fresh || r.fresh
	if leave {
		d.leaving = true
	}
	d.mu.Unlock()
	d.poke()
}

// take returns and forgets what was asked, and whether d is leaving.
func (d *dyno) take() (request, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.req
	d.req = request{}
	return r, d.leaving
}

// update makes cfg what d runs from now on, and brings back a dyno that
// was leaving. A changed config restarts the dyno, as a new release or a
// config var change does on Heroku.
func (d *dyno) update(cfg DynoConfig) {
	d.mu.Lock()
	r := request{fresh: d.leaving}
	if !sameConfig(d.cfg, cfg) {
		r.restart = "Restarting"
		r.preboot = cfg.Preboot
	}
	d.cfg = cfg
	d.leaving = false
	d.mu.Unlock()
	if !r.empty() {
		d.ask(r, false)
	}
}

func (d *dyno) isLeaving() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.leaving
}

func (d *dyno) status() DynoStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := DynoStatus{Name: d.name, Type: d.cfg.Type, Command: d.cfg.Command, Size: d.cfg.Size,
		State: d.state, Since: d.since, Pid: d.pid, InitPid: d.initPid, OneOff: d.oneOff, Port: d.port, Stopping: d.stopping,
		ServingPort: d.servingPort, Idle: d.idle}
	// Memory and CPU come from the dyno's cgroup when limits are on.
	if d.metered != nil && (d.state == Up || d.state == Starting) {
		if s, err := d.metered.Stats(); err == nil {
			st.Memory, st.CPU = s.MemoryCurrent+s.SwapCurrent, s.CPUUsage
		}
		st.Metrics = d.metrics
	}
	st.Crashes, st.OOMKilled = d.crashes, d.crashOOM
	return st
}

func (d *dyno) markAnnounced() { d.announcedOnce.Do(func() { close(d.announced) }) }

func (d *dyno) log(format string, args ...any) {
	d.s.opts.Logs.System(d.name, fmt.Sprintf(format, args...))
}

// setState moves d to st and logs it as Heroku does.
func (d *dyno) setState(st State) {
	d.mu.Lock()
	from := d.state
	d.state, d.since = st, time.Now()
	if st == Crashed && from != Crashed {
		// Counted here, before OnChange hears of it: a crash is
		// often over (restarting) before anyone looks.
		d.crashes++
		d.crashOOM = d.metered != nil && d.metered.OOMKilled()
	}
	d.mu.Unlock()
	if from != st {
		d.log("State changed from %s to %s", from, st)
	}
	d.s.changed()
}

// setStateQuietly moves d to st without a log line: Heroku's first line
// for a new dyno is its command, with no transition from down before it.
func (d *dyno) setStateQuietly(st State) {
	d.mu.Lock()
	d.state, d.since = st, time.Now()
	d.mu.Unlock()
	d.s.changed()
}

// supervise runs formation dyno d until it leaves, restarting it after
// crashes by the restart policy and after restarts and stops at once.
func (s *Supervisor) supervise(d *dyno) {
	defer s.wg.Done()
	defer d.markAnnounced()
	defer d.endServing(false)
	for waiting := true; waiting; {
		select {
		case <-d.after:
			waiting = false
		case <-d.wake:
			// Nothing runs yet, so only leaving matters: the first
			// process answers every other request.
			if s.leave(d, Down) {
				return
			}
		}
	}
	b := Backoff{Policy: s.opts.Restart}
	first := true
	for {
		if s.leave(d, Down) {
			return
		}
		if d.isIdle() {
			if !d.awaitWake() {
				continue // leaving
			}
			first = false // "State changed from down to starting" follows
		}
		if first {
			d.setStateQuietly(Starting)
			first = false
		} else {
			d.setState(Starting)
		}
		out, status, uptime := d.runOnce()
		if out != crashed {
			// Heroku forgets a dyno's crashes on a restart, a new
			// release and a stop.
			b.Reset()
		}
		switch out {
		case replaced, prebooted:
			continue
		case stopped:
			if !s.leave(d, Down) {
				d.setState(Down) // and up again: ps:stop keeps the formation
			}
			continue
		}
		// A crash while a stop was coming is a stop.
		if s.leave(d, Down) {
			return
		}
		d.setState(Crashed)
		if d.prebooting() {
			d.log("Preboot failed: the new process did not come up; the process before it keeps serving requests")
		}
		if s.crashed != nil && !s.crashed(status) {
			return
		}
		d.coolOff(&b, uptime)
	}
}

// coolOff waits after a crash as the restart policy says, or until
// someone acts on the dyno: a restart, a stop or a new config starts it
// at once with its back-off forgotten.
func (d *dyno) coolOff(b *Backoff, uptime time.Duration) {
	var timeout <-chan time.Time
	if !d.s.opts.Restart.Never {
		wait := b.Next(uptime)
		if wait == 0 {
			return
		}
		d.log("Restarting in %s", wait)
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-timeout:
			return
		case <-d.wake:
			r, leaving := d.take()
			if leaving || r.stop || r.sleep {
				// A preboot's old process, still serving after its
				// replacement crashed, stops with the dyno.
				d.endServing(r.kill)
			}
			if leaving {
				return // supervise's loop ends the dyno
			}
			if r.empty() {
				continue
			}
			if r.restart != "" {
				d.log("%s", r.restart)
			}
			b.Reset()
			return
		}
	}
}

// runOnce starts a process of d and watches it to its end.
func (d *dyno) runOnce() (out outcome, status int, uptime time.Duration) {
	p, err := d.start()
	if errors.Is(err, errLeft) {
		return stopped, 0, 0
	}
	if err != nil {
		return crashed, 127, 0
	}
	return d.watch(p)
}

// errLeft says a dyno was stopped for good while its process waited
// for a start slot: the process never started.
var errLeft = errors.New("stopped before its process started")

// awaitSlot waits until fewer than Options.MaxStarting processes are
// starting and returns the function that frees the slot it takes. ok is
// false when d is asked to leave meanwhile, as a scale down right after
// a scale up asks of the dynos still queued: they leave without
// starting. Other requests wait for the process, which watch answers.
func (d *dyno) awaitSlot() (release func(), ok bool) {
	woken := false
	defer func() {
		if woken {
			d.poke() // for watch
		}
	}()
	for {
		select {
		case d.s.starting <- struct{}{}:
			return func() { <-d.s.starting }, true
		case <-d.wake:
			if d.isLeaving() {
				return nil, false
			}
			woken = true
		}
	}
}

// start starts a process with d's current config. Its port and first
// line come in d's turn (after); the process itself starts beside those
// of other dynos, as many at once as the supervisor allows (awaitSlot).
func (d *dyno) start() (*proc, error) {
	d.mu.Lock()
	cfg := d.cfg
	d.req = request{}
	d.mu.Unlock()
	o := d.s.opts
	if o.NewPort != nil {
		cfg.Port = o.NewPort()
		cfg.Env = withEnv(cfg.Env, "PORT", strconv.Itoa(cfg.Port))
	}
	spec := DynoSpec{Name: d.name, Command: cfg.Command, Dir: cfg.Dir, Env: cfg.Env, Size: cfg.Size, Lower: cfg.Lower}
	announce(o.Logs, spec)
	d.markAnnounced()
	release, ok := d.awaitSlot()
	if !ok {
		return nil, errLeft
	}
	p, err := launchProc(o.Runner, o.Logs, spec, o.StopTimeout)
	release()
	if err != nil {
		d.log("Error starting process: %v", err)
		d.log("Process exited with status 127")
		return nil, fmt.Errorf("start %s: %w", d.name, err)
	}
	p.cfg = cfg
	d.mu.Lock()
	d.pid = p.p.Pid()
	d.initPid = 0
	if i, ok := p.p.(interface{ InitPid() int }); ok {
		d.initPid = i.InitPid()
	}
	d.port, d.stopping = cfg.Port, false
	d.metered, _ = p.p.(Metered)
	d.mu.Unlock()
	d.s.changed() // a new port
	return p, nil
}

// watch follows p from its start to its end: up once booted (R10 when a
// web process does not listen in time), R14 while over its memory quota,
// daily cycling, and what is asked of the dyno meanwhile.
func (d *dyno) watch(p *proc) (outcome, int, time.Duration) {
	o := d.s.opts
	var poll *time.Ticker
	var pollC, bootC <-chan time.Time
	if p.cfg.Web && p.cfg.Port != 0 {
		poll = time.NewTicker(o.BootPoll)
		defer poll.Stop()
		pollC = poll.C
		boot := time.NewTimer(o.BootTimeout)
		defer boot.Stop()
		bootC = boot.C
	} else {
		d.setState(Up)
	}

	var memC <-chan time.Time
	metered, isMetered := p.p.(Metered)
	if isMetered && p.cfg.MemoryQuota > 0 {
		t := time.NewTicker(o.MemoryCheck)
		defer t.Stop()
		memC = t.C
	}
	// Runtime metrics: a sample every LoadSample for the load average
	// and ps, logged every samplesPerLine-th when the app asks.
	var loadC <-chan time.Time
	var load loadAvg
	samples := 0
	if isMetered {
		t := time.NewTicker(o.LoadSample)
		defer t.Stop()
		loadC = t.C
		defer func() {
			d.mu.Lock()
			d.metrics = nil
			d.mu.Unlock()
		}()
	}

	var cycleC <-chan time.Time
	if o.Cycle > 0 {
		life := o.Cycle
		if o.CycleJitter > 0 {
			life += rand.N(o.CycleJitter + 1)
		}
		t := time.NewTimer(life)
		defer t.Stop()
		cycleC = t.C
	}

	stopping := false
	stop := func(kill bool) {
		// A dyno going down neither comes up nor cycles.
		stopping = true
		d.mu.Lock()
		d.stopping = true
		d.mu.Unlock()
		d.s.changed()
		pollC, bootC, cycleC = nil, nil, nil
		if kill {
			p.kill()
		} else {
			p.term()
		}
		d.endServing(kill)
	}
	for {
		select {
		case <-loadC:
			r, err := metered.Runtime()
			if err != nil {
				continue
			}
			load.sample(r.Runnable, o.LoadSample)
			m := runtimeMetrics(r, p.cfg.MemoryQuota, load)
			samples++
			d.mu.Lock()
			d.metrics = &m
			prefix := d.cfg.RuntimeMetrics
			d.mu.Unlock()
			if prefix != "" && samples%samplesPerLine == 0 {
				for _, l := range m.lines(d.name, prefix+"."+p.id) {
					d.log("%s", l)
				}
			}
		case <-memC:
			if st, err := metered.Stats(); err == nil {
				if used := st.MemoryCurrent + st.SwapCurrent; used > p.cfg.MemoryQuota {
					d.log("%s", memoryLine(used, p.cfg.MemoryQuota))
					d.log("Error R14 (Memory quota exceeded)")
				}
			}
		case <-pollC:
			// A process on a port of its own (NewPort) is up when that
			// port listens, whatever its predecessors still finish: the
			// router sends new requests to it while they end theirs.
			// On a shared port, a predecessor may be what listens.
			d.mu.Lock()
			alone := d.predecessors == 0 || o.NewPort != nil
			d.mu.Unlock()
			if ok, _ := listening(p.cfg.Port); ok && alone {
				pollC, bootC = nil, nil
				d.setState(Up)
				// A preboot's old process stops now that this one
				// takes its requests.
				d.endServing(false)
			}
		case <-bootC:
			pollC, bootC = nil, nil
			d.log("Error R10 (Boot timeout) -> Web process failed to bind to $PORT within %s of launch", seconds(o.BootTimeout))
			p.kill()
		case <-cycleC:
			cycleC = nil
			d.log("Cycling")
			if d.oneOff {
				// A one-off is never restarted: its day ends it.
				d.mu.Lock()
				d.leaving = true
				d.mu.Unlock()
				stop(false)
				continue
			}
			return d.replace(p)
		case <-d.wake:
			r, leaving := d.take()
			switch {
			case leaving || r.stop:
				stop(r.kill)
			case r.sleep && !stopping:
				d.goIdle(stop)
			case stopping || r.restart == "":
				// A dyno being stopped starts again with its latest
				// config anyway.
			case d.canPreboot(r, p):
				d.log("%s", r.restart)
				d.keepServing(p)
				return prebooted, 0, 0
			default:
				d.log("%s", r.restart)
				return d.replace(p)
			}
		case status := <-p.exited:
			uptime := time.Since(p.started)
			p.report(status)
			if stopping {
				return stopped, status, uptime
			}
			return crashed, status, uptime
		}
	}
}

// withEnv is env with key set to value, in place of any earlier value.
func withEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// replace stops p and lets a new process start at once, as Heroku starts
// a replacement dyno as soon as SIGTERM is sent. p's stop sequence goes
// on by itself; on a fixed port the new process waits for it.
func (d *dyno) replace(p *proc) (outcome, int, time.Duration) {
	d.setState(Starting)
	p.term()
	s := d.s
	if s.opts.NewPort == nil && p.cfg.Port != 0 {
		// A fixed port (dyno start's, Foreman's numbering): the
		// replacement could not bind it while p holds it, so it starts
		// once p has exited, within p's stop timeout.
		d.retire(p)
		return replaced, 0, 0
	}
	d.mu.Lock()
	d.predecessors++
	d.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		d.retire(p)
		d.mu.Lock()
		d.predecessors--
		d.mu.Unlock()
	}()
	return replaced, 0, 0
}

// retire waits for p, a replaced process, to end its stop sequence (or
// kills it when the supervisor is killed), and reports its exit.
func (d *dyno) retire(p *proc) {
	var status int
	select {
	case status = <-p.exited:
	case <-d.s.killed:
		p.kill()
		status = <-p.exited
	}
	p.report(status)
}

// runOneOff watches one-off dyno d, started as p, to its end: one-offs
// are never restarted.
func (s *Supervisor) runOneOff(d *dyno, p *proc) {
	defer s.wg.Done()
	d.watch(p)
	d.mu.Lock()
	d.leaving = true
	d.mu.Unlock()
	s.leave(d, Complete)
}
