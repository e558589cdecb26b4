package supervisor

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor/logmux"
)

// gatedRunner holds every start until gate starts are in flight at
// once, so a formation that starts one dyno after another never gets
// past its first. It records the most starts it saw in flight, and the
// log as it was when the gate opened.
type gatedRunner struct {
	gate int
	logs *logBuffer
	open chan struct{}

	mu       sync.Mutex
	inFlight int
	most     int
	atOpen   string // logs when the gate opened
}

func newGatedRunner(gate int, logs *logBuffer) *gatedRunner {
	return &gatedRunner{gate: gate, logs: logs, open: make(chan struct{})}
}

func (r *gatedRunner) Start(spec DynoSpec) (Process, error) {
	r.mu.Lock()
	r.inFlight++
	r.most = max(r.most, r.inFlight)
	if r.inFlight == r.gate && r.atOpen == "" {
		r.atOpen = r.logs.String()
		close(r.open)
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	select {
	case <-r.open:
	case <-time.After(10 * time.Second):
		// Not a sleep to wait for: a bound on how long a failing test
		// hangs before it says why.
		return nil, errors.New("the gate never opened: starts did not overlap")
	}
	return &fakeProcess{spec: spec, exit: make(chan int, 1), exitTerm: true}, nil
}

// formation returns n dynos of the types in turn: web.1, worker.1,
// clock.1, web.2, ...
func formation(n int, types ...string) []DynoConfig {
	var out []DynoConfig
	for i := range n {
		typ := types[i%len(types)]
		name := fmt.Sprintf("%s.%d", typ, i/len(types)+1)
		out = append(out, DynoConfig{Name: name, Type: typ, Command: "run " + name})
	}
	return out
}

var startingLine = regexp.MustCompile(`heroku\[([^\]]+)\]: Starting process with command`)

// startingOrder returns the dyno names of log's Starting lines, in order.
func startingOrder(log string) []string {
	var out []string
	for _, m := range startingLine.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestFormationStartsSideBySide(t *testing.T) {
	t.Parallel()
	const n, limit = 24, 8
	logs := newLogBuffer()
	r := newGatedRunner(limit, logs)
	s := NewSupervisor(Options{Runner: r, Logs: logmux.New(logs, logmux.Options{Format: logmux.FormatLogplex}),
		StopTimeout: 10 * time.Second, MaxStarting: limit})
	t.Cleanup(s.ShutdownNow)
	dynos := formation(n, "worker")
	s.Reconcile(dynos)
	logs.wait(t, "State changed from starting to up", n)

	r.mu.Lock()
	most := r.most
	r.mu.Unlock()
	if most != limit {
		t.Errorf("at most %d starts in flight, want %d (MaxStarting)", most, limit)
	}
	var want []string
	for _, d := range dynos {
		want = append(want, d.Name)
	}
	if got := startingOrder(logs.String()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Starting lines in the order %v, want %v", got, want)
	}
}

// dyno start's first lines are its dynos' commands in Procfile order,
// even though their processes start side by side.
func TestManagerFirstLinesInProcfileOrder(t *testing.T) {
	t.Parallel()
	const n, limit = 21, 6
	logs := newLogBuffer()
	r := newGatedRunner(limit, logs)
	dynos := formation(n, "web", "worker", "clock")
	m := New(Options{Runner: r, Logs: logmux.New(logs, logmux.Options{Format: logmux.FormatLogplex}),
		StopTimeout: 10 * time.Second, MaxStarting: limit}, dynos)
	done := runAsync(m)
	logs.wait(t, "State changed from starting to up", n)
	m.Stop()
	<-done

	var want []string
	for _, d := range dynos {
		want = append(want, d.Name)
	}
	// Until the gate opened, nothing had started: every line logged by
	// then is a Starting line, and they come in Procfile order.
	r.mu.Lock()
	atOpen := r.atOpen
	r.mu.Unlock()
	lines := strings.Split(strings.TrimSuffix(atOpen, "\n"), "\n")
	first := startingOrder(atOpen)
	if len(first) < limit || len(first) != len(lines) {
		t.Fatalf("first lines, when %d processes were starting:\n%s\nwant only Starting lines, at least %d", limit, atOpen, limit)
	}
	if strings.Join(first, " ") != strings.Join(want[:len(first)], " ") {
		t.Errorf("first lines for %v, want %v", first, want[:len(first)])
	}
	if got := startingOrder(logs.String()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Starting lines in the order %v, want %v", got, want)
	}
}

// heldRunner holds every start until release is closed, and says on
// arrived each time one begins.
type heldRunner struct {
	arrived chan string
	release chan struct{}
}

func (r *heldRunner) Start(spec DynoSpec) (Process, error) {
	r.arrived <- spec.Name
	<-r.release
	return &fakeProcess{spec: spec, exit: make(chan int, 1), exitTerm: true}, nil
}

// A scale down while dynos wait for a start slot stops them before they
// start, as it did when they waited for the dyno before them.
func TestQueuedStartsLeaveOnScaleDown(t *testing.T) {
	t.Parallel()
	const n, limit = 12, 4
	r := &heldRunner{arrived: make(chan string, n), release: make(chan struct{})}
	changed := make(chan struct{}, 1)
	s := NewSupervisor(Options{Runner: r, Logs: logmux.New(newLogBuffer(), logmux.Options{Format: logmux.FormatLogplex}),
		StopTimeout: 10 * time.Second, MaxStarting: limit,
		OnChange: func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		}})
	t.Cleanup(s.ShutdownNow)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(r.release) }) }
	t.Cleanup(release) // before ShutdownNow, which waits for the starts
	s.Reconcile(formation(n, "worker"))
	for range limit {
		<-r.arrived
	}
	s.Reconcile(nil)
	waitStatus := func(want int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for len(s.Status()) != want {
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("Status = %v, want %d dynos", names(s.Status()), want)
			}
		}
	}
	// Those starting stay until their processes have started and
	// stopped; the queued ones leave at once.
	waitStatus(limit)
	release()
	waitStatus(0)
	if extra := len(r.arrived); extra != 0 {
		t.Errorf("%d queued dynos started after the scale down", extra)
	}
}
