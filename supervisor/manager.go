package supervisor

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dyno-run/dyno/supervisor/logmux"
)

// State is a dyno's state, named as Heroku's API names them.
type State string

const (
	Starting State = "starting"
	Up       State = "up"
	Crashed  State = "crashed"
	Down     State = "down"
)

// DynoConfig is one dyno of the formation.
type DynoConfig struct {
	Name    string // "web.1"
	Type    string // "web"
	Command string
	Dir     string
	Env     []string
	Port    int
	// Web dynos are up once something listens on Port; others once
	// started.
	Web bool
	// MemoryQuota is the size's memory in bytes, for R14 on metered
	// dynos; 0 means none.
	MemoryQuota int64
}

// Options configure a Manager.
type Options struct {
	Runner      Runner
	Logs        *logmux.Mux
	StopTimeout time.Duration // SIGTERM to SIGKILL; Heroku's is 30 s
	BootTimeout time.Duration // web dynos must listen within it (R10); Heroku's is 60 s
	Restart     RestartPolicy
	// ExitOnCrash is Foreman's behaviour: the first exit of any dyno
	// stops all and becomes the exit status of Run.
	ExitOnCrash bool
	// BootPoll is how often a booting web dyno's port is checked; 0
	// means 50 ms.
	BootPoll time.Duration
	// MemoryCheck is how often a metered dyno's memory is compared with
	// its quota (R14); 0 means 20 s, Heroku's rhythm.
	MemoryCheck time.Duration
}

// Manager runs a formation until stopped.
type Manager struct {
	opts  Options
	dynos []*dyno

	stopOnce, killOnce sync.Once
	stop, kill         chan struct{}

	mu       sync.Mutex
	status   int // Run's result
	statusOK bool
}

type dyno struct {
	cfg DynoConfig

	// Dynos start one after another in formation order, as Foreman
	// starts them, so the log reads in Procfile order; after is closed
	// when the previous one has started, started when this one has.
	after       <-chan struct{}
	started     chan struct{}
	startedOnce sync.Once

	mu    sync.Mutex
	state State
	since time.Time
	pid   int
}

// DynoStatus is a dyno as `ps` shows it.
type DynoStatus struct {
	Name    string
	Type    string
	Command string
	State   State
	Since   time.Time
	Pid     int
}

// New returns a Manager for the given formation. Nothing runs until Run.
func New(opts Options, formation []DynoConfig) *Manager {
	if opts.BootPoll == 0 {
		opts.BootPoll = 50 * time.Millisecond
	}
	if opts.MemoryCheck == 0 {
		opts.MemoryCheck = 20 * time.Second
	}
	m := &Manager{opts: opts, stop: make(chan struct{}), kill: make(chan struct{})}
	for _, c := range formation {
		m.dynos = append(m.dynos, &dyno{cfg: c, state: Down, since: time.Now()})
	}
	return m
}

// ErrPortInUse is returned by Run when a web dyno's port is taken before
// anything started.
var ErrPortInUse = errors.New("port already in use")

// Run starts every dyno and returns when all are down: after Stop or
// Kill, after the first crash with ExitOnCrash, or when every dyno has
// exited and the policy never restarts. The status is 0 after a stop,
// else the status of the dyno that ended the run.
func (m *Manager) Run() (int, error) {
	for _, d := range m.dynos {
		if !d.cfg.Web || d.cfg.Port == 0 {
			continue
		}
		if busy, _ := listening(d.cfg.Port); busy {
			return 1, fmt.Errorf("%w: port %d (%s) is taken by another process; stop it or choose another base port with -p",
				ErrPortInUse, d.cfg.Port, d.cfg.Name)
		}
	}
	prev := make(chan struct{})
	close(prev)
	for _, d := range m.dynos {
		d.after, d.started = prev, make(chan struct{})
		prev = d.started
	}
	var wg sync.WaitGroup
	for _, d := range m.dynos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.supervise(d)
		}()
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status, nil
}

// Stop starts Heroku's stop sequence on every dyno at once: SIGTERM to
// all their processes, SIGKILL after StopTimeout.
func (m *Manager) Stop() { m.stopOnce.Do(func() { close(m.stop) }) }

// Kill SIGKILLs every dyno now (the second Ctrl-C).
func (m *Manager) Kill() {
	m.Stop()
	m.killOnce.Do(func() { close(m.kill) })
}

// Status lists the dynos in formation order.
func (m *Manager) Status() []DynoStatus {
	out := make([]DynoStatus, 0, len(m.dynos))
	for _, d := range m.dynos {
		d.mu.Lock()
		out = append(out, DynoStatus{Name: d.cfg.Name, Type: d.cfg.Type, Command: d.cfg.Command,
			State: d.state, Since: d.since, Pid: d.pid})
		d.mu.Unlock()
	}
	return out
}

// finish records the status that ends the run; the first one wins.
func (m *Manager) finish(status int) {
	m.mu.Lock()
	if !m.statusOK {
		m.status, m.statusOK = status, true
	}
	m.mu.Unlock()
}

func (m *Manager) stopping() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

func (m *Manager) log(d *dyno, format string, args ...any) {
	m.opts.Logs.System(d.cfg.Name, fmt.Sprintf(format, args...))
}

// setState moves d to s and logs it as Heroku does.
func (m *Manager) setState(d *dyno, s State) {
	d.mu.Lock()
	from := d.state
	d.state, d.since = s, time.Now()
	d.mu.Unlock()
	if from != s {
		m.log(d, "State changed from %s to %s", from, s)
	}
}

// supervise runs one dyno of the formation until the manager stops,
// restarting it after crashes by the restart policy.
func (m *Manager) supervise(d *dyno) {
	b := backoff{policy: m.opts.Restart}
	defer d.markStarted()
	select {
	case <-d.after:
	case <-m.stop:
	}
	first := true
	for {
		if m.stopping() {
			m.setState(d, Down)
			return
		}
		if first {
			// Heroku's first line for a new dyno is the command; there is
			// no "from down" transition in its logs.
			d.mu.Lock()
			d.state = Starting
			d.mu.Unlock()
			first = false
		} else {
			m.setState(d, Starting)
		}
		status, uptime, stopped := m.runOnce(d)
		if stopped {
			m.setState(d, Down)
			return
		}
		m.setState(d, Crashed)
		if m.opts.ExitOnCrash {
			m.finish(status)
			m.Stop()
			return
		}
		if m.opts.Restart.Never {
			if status != 0 {
				m.finish(status)
			}
			return
		}
		if wait := b.next(uptime); wait > 0 {
			m.log(d, "Restarting in %s", wait)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-m.stop:
				t.Stop()
				m.setState(d, Down)
				return
			}
		}
	}
}

// runOnce starts the dyno, watches it boot, and waits for it to exit,
// carrying out a stop if one is asked for. It returns the exit status,
// how long the process ran and whether it ended because of a stop.
func (m *Manager) runOnce(d *dyno) (status int, uptime time.Duration, stopped bool) {
	name := d.cfg.Name
	m.log(d, "Starting process with command `%s`", expandEnv(d.cfg.Command, d.cfg.Env))
	src, err := m.opts.Logs.Source(name)
	if err != nil {
		m.log(d, "Error starting process: %v", err)
		return 127, 0, m.stopping()
	}
	p, err := m.opts.Runner.Start(DynoSpec{Name: name, Command: d.cfg.Command, Dir: d.cfg.Dir, Env: d.cfg.Env, Output: src.Writer()})
	src.CloseWriter()
	d.markStarted()
	if err != nil {
		src.Close()
		m.log(d, "Error starting process: %v", err)
		m.log(d, "Process exited with status 127")
		return 127, 0, m.stopping()
	}
	started := time.Now()
	d.mu.Lock()
	d.pid = p.Pid()
	d.mu.Unlock()

	exited := make(chan int, 1)
	go func() {
		s, err := p.Wait()
		if err != nil {
			m.log(d, "Error waiting for process: %v", err)
		}
		exited <- s
	}()

	var poll *time.Ticker
	var pollC, bootC <-chan time.Time
	if d.cfg.Web && d.cfg.Port != 0 {
		poll = time.NewTicker(m.opts.BootPoll)
		defer poll.Stop()
		pollC = poll.C
		boot := time.NewTimer(m.opts.BootTimeout)
		defer boot.Stop()
		bootC = boot.C
	} else {
		m.setState(d, Up)
	}

	var memC <-chan time.Time
	metered, isMetered := p.(Metered)
	if isMetered && d.cfg.MemoryQuota > 0 {
		t := time.NewTicker(m.opts.MemoryCheck)
		defer t.Stop()
		memC = t.C
	}

	stopC, killC := m.stop, m.kill
	var graceC <-chan time.Time
	for {
		select {
		case <-memC:
			if st, err := metered.Stats(); err == nil {
				if used := st.MemoryCurrent + st.SwapCurrent; used > d.cfg.MemoryQuota {
					m.log(d, "%s", memoryLine(used, d.cfg.MemoryQuota))
					m.log(d, "Error R14 (Memory quota exceeded)")
				}
			}
		case <-pollC:
			if ok, _ := listening(d.cfg.Port); ok {
				poll.Stop()
				pollC, bootC = nil, nil
				m.setState(d, Up)
			}
		case <-bootC:
			pollC, bootC = nil, nil
			m.log(d, "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within %s of launch", seconds(m.opts.BootTimeout))
			m.log(d, "Stopping process with SIGKILL")
			p.Kill()
		case <-stopC:
			stopC = nil
			stopped = true
			m.log(d, "Stopping all processes with SIGTERM")
			p.Signal(syscall.SIGTERM)
			grace := time.NewTimer(m.opts.StopTimeout)
			defer grace.Stop()
			graceC = grace.C
		case <-graceC:
			graceC = nil
			m.log(d, "Error R12 (Exit timeout) -> Process failed to exit within %s of SIGTERM", seconds(m.opts.StopTimeout))
			m.log(d, "Stopping process with SIGKILL")
			p.Kill()
		case <-killC:
			killC, graceC = nil, nil
			m.log(d, "Stopping process with SIGKILL")
			p.Kill()
		case status = <-exited:
			uptime = time.Since(started)
			// The last lines a process wrote come before the line that
			// says it exited. Every process of the dyno is gone once init
			// has exited, so end of file follows at once; the timer only
			// guards against a writer that escaped.
			select {
			case <-src.Done():
			case <-time.After(2 * time.Second):
				src.Close()
			}
			if isMetered && metered.OOMKilled() {
				m.log(d, "Error R15 (Memory quota vastly exceeded)")
				m.log(d, "Stopping process with SIGKILL")
			}
			m.log(d, "Process exited with status %d", status)
			return status, uptime, stopped || m.stopping()
		}
	}
}

func (d *dyno) markStarted() { d.startedOnce.Do(func() { close(d.started) }) }

// seconds writes a duration as Heroku's messages do: "30 seconds".
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		n := int(d / time.Second)
		if n == 1 {
			return "1 second"
		}
		return fmt.Sprintf("%d seconds", n)
	}
	return d.String()
}

// expandEnv expands $NAME and ${NAME} for names set in env, as the log
// line `Starting process with command` shows the command after the
// shell's expansion on Heroku. Anything else is left as written.
func expandEnv(command string, env []string) string {
	if !strings.Contains(command, "$") {
		return command
	}
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var b strings.Builder
	for i := 0; i < len(command); i++ {
		c := command[i]
		if c != '$' || i+1 >= len(command) {
			b.WriteByte(c)
			continue
		}
		rest := command[i+1:]
		braced := rest[0] == '{'
		if braced {
			rest = rest[1:]
		}
		n := 0
		for n < len(rest) && (rest[n] == '_' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= 'a' && rest[n] <= 'z' || n > 0 && rest[n] >= '0' && rest[n] <= '9') {
			n++
		}
		v, ok := vars[rest[:n]]
		if n == 0 || !ok || braced && (n >= len(rest) || rest[n] != '}') {
			b.WriteByte(c)
			continue
		}
		b.WriteString(v)
		i += n
		if braced {
			i += 2
		}
	}
	return b.String()
}
