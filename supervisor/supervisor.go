package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrNoDyno is returned, wrapped, when an action names no dyno there is.
var ErrNoDyno = errors.New("no such dyno")

// ErrShutdown is returned by StartOneOff after Shutdown.
var ErrShutdown = errors.New("supervisor is shutting down")

// Supervisor keeps one app's dynos at a desired formation and lets an
// operator act on single dynos: the daemon's dyno manager. Each dyno has
// a goroutine that runs it through Heroku's states; the methods only say
// what they want and return at once, except Shutdown.
type Supervisor struct {
	opts Options
	// crashed, when set, is told of each crash of a formation dyno and
	// says whether the dyno may start again; a dyno it refuses stays
	// crashed and its goroutine ends. Manager ends a run through it.
	crashed func(status int) bool

	wg       sync.WaitGroup // dyno goroutines and stopping predecessors
	starting chan struct{}  // one token per process starting (dyno.awaitSlot)
	killed   chan struct{}  // closed by ShutdownNow
	killOnce sync.Once

	mu sync.Mutex
	// dynos are the formation in the order last desired, then dynos
	// still stopping after a scale down, then one-offs.
	dynos   []*dyno
	closing bool // after Shutdown: nothing starts any more
	asleep  bool // Sleep was called and Wake not since (sleep.go)
}

// NewSupervisor returns a Supervisor with no dynos; Reconcile gives it
// its formation. Options.ExitOnCrash is ignored.
func NewSupervisor(opts Options) *Supervisor {
	opts = opts.withDefaults()
	return &Supervisor{opts: opts, killed: make(chan struct{}), starting: make(chan struct{}, opts.MaxStarting)}
}

// Reconcile makes the formation's dynos those of desired, matched by
// name: it starts the missing ones, side by side (Options.MaxStarting),
// their first lines logged in the order given; stops the ones no longer
// desired, which leave Status once down (those still waiting to start
// leave without starting); and restarts those whose config changed. A restart, a scale to 0 and
// back, or a new config forgets a dyno's crashes. Reconcile returns at
// once; the dynos' goroutines do the work.
func (s *Supervisor) Reconcile(desired []DynoConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	want := make(map[string]bool, len(desired))
	order := make([]*dyno, 0, len(s.dynos)+len(desired))
	prev := make(chan struct{})
	close(prev)
	for _, c := range desired {
		if want[c.Name] {
			continue
		}
		d := s.find(c.Name)
		if d != nil && d.oneOff {
			// The name is a running one-off's; the formation dyno waits
			// for the next Reconcile after it has gone.
			continue
		}
		want[c.Name] = true
		if d == nil {
			d = newDyno(s, c, false)
			d.idle = s.asleep
			d.after, prev = prev, d.announced
			s.wg.Add(1)
			go s.supervise(d)
		} else {
			d.update(c)
		}
		order = append(order, d)
	}
	var oneOffs []*dyno
	for _, d := range s.dynos {
		switch {
		case d.oneOff:
			oneOffs = append(oneOffs, d)
		case !want[d.name]:
			d.ask(request{stop: true}, true)
			order = append(order, d)
		}
	}
	s.dynos = append(order, oneOffs...)
}

// Restart restarts the formation dynos match names: all for "", those of
// a process type ("web"), or one dyno ("web.1"). Each logs "Restarting"
// and starts anew as soon as its old process has been sent SIGTERM.
// One-off dynos are never restarted.
func (s *Supervisor) Restart(match string) error {
	ds := s.match(match, false)
	if len(ds) == 0 {
		return fmt.Errorf("restart %q: %w", match, ErrNoDyno)
	}
	for _, d := range ds {
		d.ask(request{restart: "Restarting"}, false)
	}
	return nil
}

// Stop is ps:stop for a process type or a dyno name: Heroku's stop
// sequence. A formation dyno then starts again, since the formation is
// unchanged; a one-off is gone for good.
func (s *Supervisor) Stop(match string) error { return s.stop(match, false) }

// Kill is Stop with SIGKILL at once.
func (s *Supervisor) Kill(match string) error { return s.stop(match, true) }

func (s *Supervisor) stop(match string, kill bool) error {
	if match == "" {
		// As ps:stop, which refuses to stop the whole app by accident.
		return errors.New("stop: a process type or dyno name is required")
	}
	ds := s.match(match, true)
	if len(ds) == 0 {
		return fmt.Errorf("stop %q: %w", match, ErrNoDyno)
	}
	for _, d := range ds {
		d.ask(request{stop: true, kill: kill}, d.oneOff)
	}
	return nil
}

// StartOneOff starts a detached one-off dyno, cfg.Name being its name
// ("run.1234"). It is listed by Status while it runs, logs like any
// dyno, is never restarted and leaves Status once it has exited. It
// returns once the process has started.
func (s *Supervisor) StartOneOff(cfg DynoConfig) error {
	if cfg.Name == "" {
		return errors.New("start one-off: no dyno name")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", cfg.Name, ErrShutdown)
	}
	if s.find(cfg.Name) != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: a dyno of that name is running", cfg.Name)
	}
	d := newDyno(s, cfg, true)
	// Not shared yet, so set without d.mu and without telling OnChange,
	// which may call Status and so must never run under s.mu.
	d.state = Starting
	d.markAnnounced()
	s.dynos = append(s.dynos, d)
	s.wg.Add(1)
	s.mu.Unlock()

	p, err := d.start()
	if err != nil {
		s.mu.Lock()
		s.remove(d)
		s.mu.Unlock()
		d.setState(Crashed)
		s.wg.Done()
		return err
	}
	go s.runOneOff(d, p)
	return nil
}

// Status lists the dynos: the formation in the order last given to
// Reconcile, dynos still stopping after a scale down, then one-offs.
func (s *Supervisor) Status() []DynoStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DynoStatus, 0, len(s.dynos))
	for _, d := range s.dynos {
		out = append(out, d.status())
	}
	return out
}

// Shutdown stops every dyno at once with Heroku's stop sequence and
// returns when all have exited. Formation dynos stay in Status, down.
// Nothing starts afterwards.
func (s *Supervisor) Shutdown() {
	s.stopAll(false)
	s.wait()
}

// ShutdownNow is Shutdown with SIGKILL at once, also for a Shutdown under
// way (a second signal).
func (s *Supervisor) ShutdownNow() {
	s.stopAll(true)
	s.wait()
}

// stopAll asks every dyno to stop for good, without waiting.
func (s *Supervisor) stopAll(kill bool) {
	s.mu.Lock()
	s.closing = true
	ds := slices.Clone(s.dynos)
	s.mu.Unlock()
	if kill {
		s.killOnce.Do(func() { close(s.killed) })
	}
	for _, d := range ds {
		d.ask(request{stop: true, kill: kill}, true)
	}
}

// changed tells Options.OnChange that a dyno changed.
func (s *Supervisor) changed() {
	if s.opts.OnChange != nil {
		s.opts.OnChange()
	}
}

// wait returns when every dyno goroutine has ended. Once closing, none
// starts, so a wait then is a wait for good.
func (s *Supervisor) wait() { s.wg.Wait() }

// leave ends d if it is leaving and reports whether it did: out of
// Status (except formation dynos at shutdown, which stay listed), then
// in state last. Taking it out under s.mu keeps a Reconcile from
// bringing back a dyno whose goroutine has decided to end.
func (s *Supervisor) leave(d *dyno, last State) bool {
	s.mu.Lock()
	if !d.isLeaving() {
		s.mu.Unlock()
		return false
	}
	if !s.closing || d.oneOff {
		s.remove(d)
	}
	s.mu.Unlock()
	d.setState(last)
	return true
}

// match returns the dynos that match names, those not leaving: all
// formation dynos for "", a process type, or a dyno name. One-offs match
// only by name or type, and only with oneOffs.
func (s *Supervisor) match(match string, oneOffs bool) []*dyno {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*dyno
	for _, d := range s.dynos {
		if d.oneOff && (!oneOffs || match == "") || d.isLeaving() {
			continue
		}
		d.mu.Lock()
		typ := d.cfg.Type
		d.mu.Unlock()
		if match == "" || match == d.name || match == typ {
			out = append(out, d)
		}
	}
	return out
}

// find returns the dyno called name, or nil; s.mu is held.
func (s *Supervisor) find(name string) *dyno {
	for _, d := range s.dynos {
		if d.name == name {
			return d
		}
	}
	return nil
}

// remove takes d out of the list; s.mu is held.
func (s *Supervisor) remove(d *dyno) {
	s.dynos = slices.DeleteFunc(s.dynos, func(e *dyno) bool { return e == d })
}
