package supervisor

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
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
	// Complete is where a one-off ends; Heroku's logs show it, its API
	// never does, since the dyno is gone by then.
	Complete State = "complete"
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
	// Size is the dyno size ("standard-1x"), for ps and for a Runner
	// that sets limits per dyno.
	Size string
	// Lower is the folder the dyno sees as /app, for a Runner that takes
	// it per dyno (a new release brings a new slug); "" means the
	// Runner's own.
	Lower string
	// Release is the version of the app's release the dyno runs; 0 for
	// a project folder. A new release restarts the dyno even when nothing
	// else changed: a rebuild of the same commit packs a slug with the
	// same digest, and Heroku restarts an app on every release.
	Release int
	// Preboot: a restart for a new config starts the new process beside
	// the running one and stops that one once the new one is up
	// (preboot.go); for web dynos on ports of their own.
	Preboot bool
	// RuntimeMetrics, when set, is the dyno's id prefix in Heroku's
	// log-runtime-metrics lines ("heroku.APP"): a metered dyno logs its
	// load average and memory every 20 s (metrics.go). Turning it on or
	// off restarts nothing.
	RuntimeMetrics string
}

// sameConfig reports whether a dyno started with a would run as one
// started with b; a changed config restarts the dyno.
func sameConfig(a, b DynoConfig) bool {
	if !slices.Equal(a.Env, b.Env) {
		return false
	}
	// DeepEqual, not a list of fields, so that a field added later
	// counts too; Env apart, since a nil and an empty environment are
	// the same to a dyno.
	a.Env, b.Env = nil, nil
	// Turning preboot on or off says how the next restart goes; it is
	// no reason for one.
	a.Preboot, b.Preboot = false, false
	a.RuntimeMetrics, b.RuntimeMetrics = "", ""
	return reflect.DeepEqual(a, b)
}

// Options configure a Manager or a Supervisor.
type Options struct {
	Runner      Runner
	Logs        *logmux.Mux
	StopTimeout time.Duration // SIGTERM to SIGKILL; Heroku's is 30 s
	BootTimeout time.Duration // web dynos must listen within it (R10); Heroku's is 60 s
	Restart     RestartPolicy
	// ExitOnCrash is Foreman's behaviour: the first exit of any dyno
	// stops all and becomes the exit status of Run. Only Manager has a
	// run to end; a Supervisor ignores it.
	ExitOnCrash bool
	// BootPoll is how often a booting web dyno's port is checked; 0
	// means 50 ms.
	BootPoll time.Duration
	// MemoryCheck is how often a metered dyno's memory is compared with
	// its quota (R14); 0 means 20 s, Heroku's rhythm.
	MemoryCheck time.Duration
	// LoadSample is how often a metered dyno's load average takes a
	// sample; 0 means 5 s, the kernel's rhythm. Runtime metrics are
	// logged every fourth sample (20 s).
	LoadSample time.Duration
	// Cycle is Heroku's daily cycling: each process is restarted (a
	// one-off stopped) once it has run for Cycle plus a random part of
	// CycleJitter, so none lives longer than their sum; Heroku's are 24 h
	// and 216 minutes. 0 disables it.
	Cycle       time.Duration
	CycleJitter time.Duration
	// NewPort, when set, gives every process a port of its own at start
	// (its PORT): dynos share the host's network, and a replacement
	// starts while the process it replaces may still hold the old port
	// during its grace period. DynoConfig.Port is then left 0, so a
	// dyno's config stays the same across restarts.
	NewPort func() int
	// MaxStarting bounds how many processes start at once (Runner.Start
	// calls in flight). A start mostly waits on its init, so starting
	// side by side keeps the cores busy: 200 dynos one after another take
	// 200 start latencies. 0 means startsPerCPU per CPU.
	MaxStarting int
	// OnChange, when set, is called after any dyno changes state or is
	// sent a stop signal, never with a lock of the supervisor held (it
	// may call Status):
	// the router learns from it which web dynos take requests. It must
	// not block.
	OnChange func()
}

// startsPerCPU is how many processes start at once per CPU by default.
const startsPerCPU = 4

// withDefaults fills in the options whose zero value means a default.
func (o Options) withDefaults() Options {
	if o.BootPoll == 0 {
		o.BootPoll = 50 * time.Millisecond
	}
	if o.MemoryCheck == 0 {
		o.MemoryCheck = 20 * time.Second
	}
	if o.LoadSample == 0 {
		o.LoadSample = loadEvery
	}
	if o.MaxStarting <= 0 {
		o.MaxStarting = startsPerCPU * runtime.NumCPU()
	}
	return o
}

// DynoStatus is a dyno as `ps` shows it.
type DynoStatus struct {
	Name    string
	Type    string
	Command string
	Size    string
	State   State
	Since   time.Time
	Pid     int
	// InitPid is the dyno's init as the host numbers it, the root of
	// all its processes (Pid may be a number in its own namespace); 0
	// when the runner does not say.
	InitPid int
	OneOff  bool // started by StartOneOff
	// Port is the running process's PORT (0 before the first start);
	// Stopping says it has been sent SIGTERM (or SIGKILL) and takes no
	// new requests while it finishes those it has.
	Port     int
	Stopping bool
	// ServingPort is the port of the dyno's previous process, which
	// keeps taking requests while this one boots (a preboot); 0 when
	// none.
	ServingPort int
	// Idle says the dyno sleeps (Supervisor.Sleep): down until woken;
	// ps shows it idle.
	Idle   bool
	Memory int64         // bytes, from the dyno's cgroup; 0 without limits
	CPU    time.Duration // CPU time used, from the dyno's cgroup
	// Metrics are the figures of the dyno's last log-runtime-metrics
	// sample (taken whether the feature is on or not); nil before the
	// first, or without limits.
	Metrics *RuntimeMetrics
	// Crashes counts the dyno's crashes since it was made (a new
	// release makes it anew); OOMKilled says the kernel killed it the
	// last time, for going far over its memory quota (R15).
	Crashes   int
	OOMKilled bool
}

// Manager runs a fixed formation until stopped: `dyno start`. It is a
// Supervisor given its formation once, plus the conditions that end a
// run in the foreground.
type Manager struct {
	s         *Supervisor
	opts      Options
	formation []DynoConfig
	created   time.Time

	mu       sync.Mutex
	running  bool // Run has given the supervisor the formation
	status   int  // Run's result
	statusOK bool
}

// New returns a Manager for the given formation. Nothing runs until Run.
func New(opts Options, formation []DynoConfig) *Manager {
	m := &Manager{s: NewSupervisor(opts), opts: opts, formation: formation, created: time.Now()}
	m.s.crashed = m.crashed
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
	m.mu.Lock()
	formation := m.formation
	m.mu.Unlock()
	for _, d := range formation {
		if !d.Web || d.Port == 0 {
			continue
		}
		if busy, _ := listening(d.Port); busy {
			return 1, fmt.Errorf("%w: port %d (%s) is taken by another process; stop it or choose another base port with -p",
				ErrPortInUse, d.Port, d.Name)
		}
	}
	m.mu.Lock()
	m.running = true
	m.s.Reconcile(m.formation)
	m.mu.Unlock()
	m.s.wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status, nil
}

// Reconcile makes formation what the Manager runs from now on, as
// Supervisor.Reconcile does: dyno start -a follows its app's ledger
// with it. Called before Run, it only replaces the formation.
func (m *Manager) Reconcile(formation []DynoConfig) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.formation = formation
	if m.running {
		m.s.Reconcile(formation)
	}
}

// Stop starts Heroku's stop sequence on every dyno at once: SIGTERM to
// all their processes, SIGKILL after StopTimeout.
func (m *Manager) Stop() { m.s.stopAll(false) }

// Kill SIGKILLs every dyno now (the second Ctrl-C).
func (m *Manager) Kill() { m.s.stopAll(true) }

// Status lists the dynos in formation order; those not started yet are
// down.
func (m *Manager) Status() []DynoStatus {
	byName := make(map[string]DynoStatus)
	for _, st := range m.s.Status() {
		byName[st.Name] = st
	}
	m.mu.Lock()
	formation := m.formation
	m.mu.Unlock()
	out := make([]DynoStatus, 0, len(formation))
	for _, c := range formation {
		st, ok := byName[c.Name]
		if !ok {
			st = DynoStatus{Name: c.Name, Type: c.Type, Command: c.Command, Size: c.Size, State: Down, Since: m.created}
		}
		out = append(out, st)
	}
	return out
}

// crashed decides for the supervisor whether a crashed dyno restarts:
// not when the crash ends the run.
func (m *Manager) crashed(status int) bool {
	switch {
	case m.opts.ExitOnCrash:
		m.finish(status)
		m.Stop()
		return false
	case m.opts.Restart.Never:
		if status != 0 {
			m.finish(status)
		}
		return false
	}
	return true
}

// finish records the status that ends the run; the first one wins.
func (m *Manager) finish(status int) {
	m.mu.Lock()
	if !m.statusOK {
		m.status, m.statusOK = status, true
	}
	m.mu.Unlock()
}

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
