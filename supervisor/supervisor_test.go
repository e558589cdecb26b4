package supervisor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor/logmux"
)

// newTestSupervisor returns a Supervisor over the fake runner. Processes
// exit 143 on SIGTERM unless ignoreTerm. It is shut down with SIGKILL when
// the test ends.
func newTestSupervisor(t *testing.T, opts Options, ignoreTerm bool) (*Supervisor, *fakeRunner, *logBuffer) {
	t.Helper()
	logs := newLogBuffer()
	r := &fakeRunner{exitTerm: !ignoreTerm, started: make(chan *fakeProcess, 256)}
	opts.Runner = r
	opts.Logs = logmux.New(logs, logmux.Options{Format: logmux.FormatLogplex})
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 10 * time.Second
	}
	if opts.Restart == (RestartPolicy{}) {
		opts.Restart = RestartPolicy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, ResetAfter: time.Hour}
	}
	s := NewSupervisor(opts)
	t.Cleanup(s.ShutdownNow)
	return s, r, logs
}

func workers(names ...string) []DynoConfig {
	var out []DynoConfig
	for _, n := range names {
		typ, _, _ := strings.Cut(n, ".")
		out = append(out, DynoConfig{Name: n, Type: typ, Command: "run " + typ})
	}
	return out
}

// next returns the next process the runner started.
func (r *fakeRunner) next(t *testing.T) *fakeProcess {
	t.Helper()
	select {
	case p := <-r.started:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no process started")
		return nil
	}
}

// none fails if a process has been started and not taken yet.
func (r *fakeRunner) none(t *testing.T) {
	t.Helper()
	select {
	case p := <-r.started:
		t.Fatalf("unexpected start of %s", p.spec.Name)
	default:
	}
}

// byName takes n started processes, keyed by dyno name.
func (r *fakeRunner) byName(t *testing.T, n int) map[string]*fakeProcess {
	t.Helper()
	out := make(map[string]*fakeProcess)
	for range n {
		p := r.next(t)
		out[p.spec.Name] = p
	}
	return out
}

func names(st []DynoStatus) []string {
	var out []string
	for _, d := range st {
		out = append(out, d.Name+"="+string(d.State))
	}
	return out
}

// wantStatus fails unless Status lists exactly want, as "name=state".
func wantStatus(t *testing.T, s *Supervisor, want ...string) {
	t.Helper()
	if got := names(s.Status()); !slices.Equal(got, want) {
		t.Errorf("Status = %v, want %v", got, want)
	}
}

// inOrder fails unless log holds the lines in that order.
func inOrder(t *testing.T, log string, lines ...string) {
	t.Helper()
	at := 0
	for _, l := range lines {
		i := strings.Index(log[at:], l)
		if i < 0 {
			t.Fatalf("log lacks %q in order:\n%s", l, log)
		}
		at += i + len(l)
	}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{}, false)
	s.Reconcile(workers("worker.1", "worker.2"))
	ps := r.byName(t, 2)
	logs.wait(t, "State changed from starting to up", 2)
	inOrder(t, logs.String(), "heroku[worker.1]: Starting process", "heroku[worker.2]: Starting process")

	// Scale up: one more starts, the others are left alone.
	s.Reconcile(workers("worker.1", "worker.2", "worker.3"))
	ps["worker.3"] = r.next(t)
	logs.wait(t, "heroku[worker.3]: State changed from starting to up", 1)
	wantStatus(t, s, "worker.1=up", "worker.2=up", "worker.3=up")

	// Scale down: two stop with Heroku's sequence and leave.
	s.Reconcile(workers("worker.1"))
	logs.wait(t, "State changed from up to down", 2)
	wantStatus(t, s, "worker.1=up")
	for _, n := range []string{"worker.2", "worker.3"} {
		if !ps[n].gotSignal(syscall.SIGTERM) {
			t.Errorf("%s got no SIGTERM", n)
		}
		inOrder(t, logs.String(), "heroku["+n+"]: Stopping all processes with SIGTERM",
			"heroku["+n+"]: Process exited with status 143", "heroku["+n+"]: State changed from up to down")
	}
	if ps["worker.1"].gotSignal(syscall.SIGTERM) {
		t.Error("worker.1 was stopped by a scale down")
	}

	// A changed config restarts the dyno: the old process gets SIGTERM
	// and a new one starts with the new config.
	changed := workers("worker.1")
	changed[0].Env = []string{"RELEASE=v2"}
	s.Reconcile(changed)
	p := r.next(t)
	logs.wait(t, "heroku[worker.1]: State changed from starting to up", 2)
	if !slices.Equal(p.spec.Env, changed[0].Env) {
		t.Errorf("restarted with env %q, want %q", p.spec.Env, changed[0].Env)
	}
	if !ps["worker.1"].gotSignal(syscall.SIGTERM) {
		t.Error("old worker.1 got no SIGTERM")
	}
	logs.wait(t, "heroku[worker.1]: Process exited with status 143", 1)
	inOrder(t, logs.String(), "heroku[worker.1]: Restarting", "heroku[worker.1]: State changed from up to starting",
		"heroku[worker.1]: Stopping all processes with SIGTERM", "heroku[worker.1]: Starting process",
		"heroku[worker.1]: State changed from starting to up")

	// The same config again, with a dyno more: only the new one starts.
	s.Reconcile(append(changed, workers("worker.2")...))
	r.next(t)
	logs.wait(t, "heroku[worker.2]: State changed from starting to up", 2)
	s.mu.Lock()
	pending := s.find("worker.1").req
	s.mu.Unlock()
	if !pending.empty() || logs.count("heroku[worker.1]: Restarting") != 1 || p.gotSignal(syscall.SIGTERM) {
		t.Errorf("unchanged worker.1 restarted (pending %+v):\n%s", pending, logs.String())
	}
	r.none(t)
}

// A dyno scaled down and back up while it is still stopping stays and
// starts again once its process has gone.
func TestReconcileBackWhileStopping(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{StopTimeout: time.Hour}, true)
	s.Reconcile(workers("worker.1", "worker.2"))
	ps := r.byName(t, 2)
	logs.wait(t, "State changed from starting to up", 2)
	s.Reconcile(workers("worker.1"))
	logs.wait(t, "heroku[worker.2]: Stopping all processes with SIGTERM", 1)
	s.Reconcile(workers("worker.1", "worker.2"))
	wantStatus(t, s, "worker.1=up", "worker.2=up")
	ps["worker.2"].end(143)
	p := r.next(t)
	if p.spec.Name != "worker.2" {
		t.Fatalf("started %s, want worker.2", p.spec.Name)
	}
	logs.wait(t, "heroku[worker.2]: State changed from starting to up", 2)
	inOrder(t, logs.String(), "heroku[worker.2]: Process exited with status 143",
		"heroku[worker.2]: State changed from up to down", "heroku[worker.2]: State changed from down to starting")
	wantStatus(t, s, "worker.1=up", "worker.2=up")
}

func TestRestartMatch(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{}, false)
	s.Reconcile(workers("web.1", "web.2", "worker.1"))
	ps := r.byName(t, 3)
	logs.wait(t, "State changed from starting to up", 3)

	if err := s.Restart("web"); err != nil {
		t.Fatal(err)
	}
	again := r.byName(t, 2)
	if again["web.1"] == nil || again["web.2"] == nil {
		t.Fatalf("restarted %v, want web.1 and web.2", again)
	}
	logs.wait(t, "heroku[web.1]: State changed from starting to up", 2)
	logs.wait(t, "heroku[web.2]: State changed from starting to up", 2)
	if ps["worker.1"].gotSignal(syscall.SIGTERM) || logs.count("heroku[worker.1]: Restarting") != 0 {
		t.Errorf("Restart(web) restarted worker.1:\n%s", logs.String())
	}

	if err := s.Restart("web.2"); err != nil {
		t.Fatal(err)
	}
	if p := r.next(t); p.spec.Name != "web.2" {
		t.Fatalf("Restart(web.2) started %s", p.spec.Name)
	}
	logs.wait(t, "heroku[web.2]: State changed from starting to up", 3)
	if again["web.1"].gotSignal(syscall.SIGTERM) || logs.count("heroku[web.1]: Restarting") != 1 {
		t.Errorf("Restart(web.2) restarted web.1:\n%s", logs.String())
	}
	r.none(t)

	err := s.Restart("nope")
	if !errors.Is(err, ErrNoDyno) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Restart(nope) = %v, want ErrNoDyno naming it", err)
	}
}

func TestRestartResetsBackoff(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{Restart: RestartPolicy{Initial: time.Hour, Max: time.Hour, ResetAfter: time.Hour}}, false)
	s.Reconcile(workers("worker.1"))
	r.next(t).end(1) // the first crash restarts at once
	r.next(t).end(1) // the second waits an hour
	logs.wait(t, "heroku[worker.1]: Restarting in 1h0m0s", 1)
	if err := s.Restart("worker.1"); err != nil {
		t.Fatal(err)
	}
	p := r.next(t)
	logs.wait(t, "heroku[worker.1]: State changed from starting to up", 3)
	inOrder(t, logs.String(), "Restarting in 1h0m0s", "heroku[worker.1]: Restarting\n",
		"heroku[worker.1]: State changed from crashed to starting")
	// The crash after the restart is a first crash again.
	p.end(1)
	r.next(t)
	logs.wait(t, "heroku[worker.1]: State changed from starting to up", 4)
	if n := logs.count("Restarting in"); n != 1 {
		t.Errorf("%d waits, want 1:\n%s", n, logs.String())
	}
}

func TestStopFormationDyno(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{}, false)
	s.Reconcile(workers("worker.1"))
	p := r.next(t)
	logs.wait(t, "State changed from starting to up", 1)
	if err := s.Stop("worker.1"); err != nil {
		t.Fatal(err)
	}
	r.next(t) // the formation is unchanged: it comes back
	logs.wait(t, "State changed from starting to up", 2)
	if !p.gotSignal(syscall.SIGTERM) {
		t.Error("stopped dyno got no SIGTERM")
	}
	inOrder(t, logs.String(), "Stopping all processes with SIGTERM", "Process exited with status 143",
		"State changed from up to down", "State changed from down to starting", "Starting process")
	wantStatus(t, s, "worker.1=up")
	if err := s.Stop(""); err == nil {
		t.Error(`Stop("") stopped everything`)
	}
	if err := s.Stop("nope"); !errors.Is(err, ErrNoDyno) {
		t.Errorf("Stop(nope) = %v, want ErrNoDyno", err)
	}
}

func TestKillFormationDyno(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{StopTimeout: time.Hour}, true)
	s.Reconcile(workers("worker.1"))
	p := r.next(t)
	logs.wait(t, "State changed from starting to up", 1)
	if err := s.Kill("worker"); err != nil {
		t.Fatal(err)
	}
	r.next(t)
	logs.wait(t, "State changed from starting to up", 2)
	inOrder(t, logs.String(), "Stopping process with SIGKILL", "Process exited with status 137",
		"State changed from up to down", "State changed from down to starting")
	if p.gotSignal(syscall.SIGTERM) || logs.count("SIGTERM") != 0 {
		t.Errorf("Kill sent SIGTERM:\n%s", logs.String())
	}
}

func TestOneOff(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{}, false)
	s.Reconcile(workers("web.1"))
	r.next(t)
	one := DynoConfig{Name: "run.1234", Type: "run", Command: "bash"}
	if err := s.StartOneOff(one); err != nil {
		t.Fatal(err)
	}
	p := r.next(t)
	logs.wait(t, "heroku[run.1234]: State changed from starting to up", 1)
	logs.wait(t, "heroku[web.1]: State changed from starting to up", 1)
	wantStatus(t, s, "web.1=up", "run.1234=up")
	if st := s.Status(); !st[1].OneOff || st[0].OneOff {
		t.Errorf("OneOff flags wrong: %+v", st)
	}
	if err := s.StartOneOff(one); err == nil {
		t.Error("a second run.1234 started")
	}
	// An app restart leaves one-offs alone.
	if err := s.Restart(""); err != nil {
		t.Fatal(err)
	}
	r.next(t)
	logs.wait(t, "heroku[web.1]: State changed from starting to up", 2)
	if p.gotSignal(syscall.SIGTERM) {
		t.Error("Restart(\"\") stopped the one-off")
	}

	p.end(0)
	logs.wait(t, "heroku[run.1234]: State changed from up to complete", 1)
	inOrder(t, logs.String(), "heroku[run.1234]: Starting process with command `bash`",
		"heroku[run.1234]: State changed from starting to up", "heroku[run.1234]: Process exited with status 0",
		"heroku[run.1234]: State changed from up to complete")
	wantStatus(t, s, "web.1=up")

	// Stopping a one-off ends it for good.
	if err := s.StartOneOff(DynoConfig{Name: "run.2", Type: "run", Command: "sleep"}); err != nil {
		t.Fatal(err)
	}
	p = r.next(t)
	logs.wait(t, "heroku[run.2]: State changed from starting to up", 1)
	if err := s.Stop("run.2"); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, "heroku[run.2]: State changed from up to complete", 1)
	if !p.gotSignal(syscall.SIGTERM) {
		t.Error("stopped one-off got no SIGTERM")
	}
	wantStatus(t, s, "web.1=up")
	r.none(t)
	if err := s.Restart("run.2"); !errors.Is(err, ErrNoDyno) {
		t.Errorf("Restart of a one-off = %v, want ErrNoDyno", err)
	}
}

func TestCycling(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{Cycle: 50 * time.Millisecond}, false)
	still, _, stillLogs := newTestSupervisor(t, Options{}, false)
	still.Reconcile(workers("worker.1"))
	s.Reconcile(workers("worker.1"))
	old := r.next(t)
	r.next(t)
	logs.wait(t, "heroku[worker.1]: Cycling", 1)
	logs.wait(t, "heroku[worker.1]: State changed from starting to up", 2)
	if !old.gotSignal(syscall.SIGTERM) {
		t.Error("cycled process got no SIGTERM")
	}
	inOrder(t, logs.String(), "heroku[worker.1]: Cycling", "heroku[worker.1]: State changed from up to starting",
		"heroku[worker.1]: Stopping all processes with SIGTERM", "heroku[worker.1]: Starting process")

	// A one-off's day ends it.
	if err := s.StartOneOff(DynoConfig{Name: "run.1", Type: "run", Command: "bash"}); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, "heroku[run.1]: State changed from up to complete", 1)
	inOrder(t, logs.String(), "heroku[run.1]: Cycling", "heroku[run.1]: Stopping all processes with SIGTERM",
		"heroku[run.1]: State changed from up to complete")

	// Several cycles later, the supervisor without cycling has not cycled.
	logs.wait(t, "heroku[worker.1]: Cycling", 3)
	if strings.Contains(stillLogs.String(), "Cycling") {
		t.Errorf("cycled with Cycle 0:\n%s", stillLogs.String())
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{StopTimeout: time.Hour}, true)
	s.Reconcile(workers("web.1", "web.2", "worker.1"))
	ps := r.byName(t, 3)
	if err := s.StartOneOff(DynoConfig{Name: "run.1", Type: "run", Command: "bash"}); err != nil {
		t.Fatal(err)
	}
	ps["run.1"] = r.next(t)
	logs.wait(t, "State changed from starting to up", 4)
	done := make(chan struct{})
	go func() {
		s.Shutdown()
		close(done)
	}()
	// Every dyno is sent SIGTERM before any has exited.
	logs.wait(t, "Stopping all processes with SIGTERM", 4)
	for _, p := range ps {
		select {
		case <-done:
			t.Fatal("Shutdown returned before the dynos exited")
		default:
		}
		p.end(143)
	}
	<-done
	for _, p := range ps {
		if !p.gotSignal(syscall.SIGTERM) {
			t.Errorf("%s got no SIGTERM", p.spec.Name)
		}
	}
	wantStatus(t, s, "web.1=down", "web.2=down", "worker.1=down")
	if err := s.StartOneOff(DynoConfig{Name: "run.2", Command: "x"}); !errors.Is(err, ErrShutdown) {
		t.Errorf("StartOneOff after Shutdown = %v, want ErrShutdown", err)
	}
	s.Reconcile(workers("web.1", "web.2", "web.3"))
	r.none(t)
	wantStatus(t, s, "web.1=down", "web.2=down", "worker.1=down")
}

func TestShutdownNow(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{StopTimeout: time.Hour}, true)
	s.Reconcile(workers("worker.1", "worker.2"))
	r.byName(t, 2)
	logs.wait(t, "State changed from starting to up", 2)
	// A restarted dyno's old process is still stopping when the second
	// signal comes: it is killed too.
	if err := s.Restart("worker.1"); err != nil {
		t.Fatal(err)
	}
	r.next(t)
	logs.wait(t, "heroku[worker.1]: State changed from starting to up", 2)
	done := make(chan struct{})
	go func() {
		s.Shutdown()
		close(done)
	}()
	logs.wait(t, "Stopping all processes with SIGTERM", 3)
	s.ShutdownNow()
	<-done
	if n := logs.count("Process exited with status 137"); n != 3 {
		t.Errorf("%d processes killed, want 3:\n%s", n, logs.String())
	}
	wantStatus(t, s, "worker.1=down", "worker.2=down")
}

// Reconcile, Restart and Status from several goroutines while dynos
// crash: run with -race.
func TestConcurrentReconcile(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{}, false)
	stop := make(chan struct{})
	var crasher sync.WaitGroup
	crasher.Add(1)
	go func() {
		defer crasher.Done()
		for {
			select {
			case p := <-r.started:
				p.end(1)
			case <-stop:
				return
			}
		}
	}()
	all := workers("worker.1", "worker.2", "worker.3", "worker.4", "worker.5")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 50 {
				var desired []DynoConfig
				for _, c := range all {
					if rnd.IntN(2) == 0 {
						c.Env = []string{fmt.Sprintf("V=%d", rnd.IntN(3))}
						desired = append(desired, c)
					}
				}
				s.Reconcile(desired)
				switch i % 5 {
				case 1:
					s.Restart("")
				case 2:
					s.Stop("worker")
				case 3:
					s.Status()
				}
			}
		}()
	}
	wg.Wait()
	s.Reconcile(all[:2])
	// Wait, on the log, for the others to have left.
	deadline := time.After(10 * time.Second)
	for len(s.Status()) != 2 {
		select {
		case <-logs.changed:
		case <-deadline:
			t.Fatalf("Status = %v, want worker.1 and worker.2 only", names(s.Status()))
		}
	}
	s.Shutdown()
	close(stop)
	crasher.Wait()
	for _, d := range s.Status() {
		if d.State != Down {
			t.Errorf("%s is %s after Shutdown", d.Name, d.State)
		}
	}
}

// With NewPort, each process gets a port of its own: a replacement must
// not fight the process it replaces for the port during its grace period.
func TestNewPortPerProcess(t *testing.T) {
	t.Parallel()
	next := 7000
	s, r, logs := newTestSupervisor(t, Options{NewPort: func() int { next++; return next }}, true)
	s.Reconcile([]DynoConfig{{Name: "web.1", Type: "web", Command: "x", Env: []string{"PORT=1", "A=b"}}})
	first := <-r.started
	logs.wait(t, "heroku[web.1]: Starting process", 1)
	if err := s.Restart("web.1"); err != nil {
		t.Fatal(err)
	}
	second := <-r.started
	port := func(p *fakeProcess) string {
		for _, kv := range p.spec.Env {
			if v, ok := strings.CutPrefix(kv, "PORT="); ok {
				return v
			}
		}
		return ""
	}
	if port(first) != "7001" || port(second) != "7002" {
		t.Errorf("PORTs %q then %q, want 7001 then 7002, each once", port(first), port(second))
	}
	if n := strings.Count(strings.Join(second.spec.Env, "\n"), "PORT="); n != 1 {
		t.Errorf("PORT set %d times in %q", n, second.spec.Env)
	}
	s.ShutdownNow()
}

// The router learns from OnChange and Status which dynos take requests:
// each process's port, and that one sent SIGTERM takes no more.
func TestOnChangeTellsPortAndStopping(t *testing.T) {
	t.Parallel()
	changes := make(chan struct{}, 1)
	next := 7000
	s, r, _ := newTestSupervisor(t, Options{
		NewPort: func() int { next++; return next },
		OnChange: func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		},
	}, true)
	await := func(what string, ok func(DynoStatus) bool) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			if st := s.Status(); len(st) == 1 && ok(st[0]) {
				return
			}
			select {
			case <-changes:
			case <-timeout:
				t.Fatalf("no change to %s; status %+v", what, s.Status())
			}
		}
	}
	s.Reconcile(workers("worker.1"))
	r.next(t)
	await("up on port 7001", func(d DynoStatus) bool { return d.State == Up && d.Port == 7001 && !d.Stopping })
	if err := s.Stop("worker.1"); err != nil {
		t.Fatal(err)
	}
	// The process ignores SIGTERM: it is still up, and stopping.
	await("stopping", func(d DynoStatus) bool { return d.State == Up && d.Stopping })
	s.ShutdownNow()
}

// With a port per process, a restarted web dyno is up as soon as its new
// process listens, while the old one still finishes its requests: the
// router must not wait out the old one's grace period.
func TestNewProcessUpWhileItsPredecessorStops(t *testing.T) {
	t.Parallel()
	var ports []int
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	next := 0
	changes := make(chan struct{}, 1)
	s, r, _ := newTestSupervisor(t, Options{
		NewPort:  func() int { next++; return ports[next-1] },
		BootPoll: time.Millisecond,
		OnChange: func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		},
	}, true) // processes ignore SIGTERM: the old one keeps stopping
	s.Reconcile([]DynoConfig{{Name: "web.1", Type: "web", Command: "serve", Web: true}})
	r.next(t)
	await := func(port int) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			if st := s.Status(); len(st) == 1 && st[0].State == Up && st[0].Port == port {
				return
			}
			select {
			case <-changes:
			case <-timeout:
				t.Fatalf("web.1 not up on %d: %+v", port, s.Status())
			}
		}
	}
	await(ports[0])
	if err := s.Restart("web.1"); err != nil {
		t.Fatal(err)
	}
	r.next(t)
	await(ports[1])
	s.ShutdownNow()
}

// OnChange may ask for Status: it is never called under the
// supervisor's lock (a one-off's start once deadlocked the daemon here).
func TestOnChangeMayCallStatus(t *testing.T) {
	t.Parallel()
	var s *Supervisor
	ready := make(chan struct{})
	s, r, _ := newTestSupervisor(t, Options{OnChange: func() {
		<-ready
		s.Status()
	}}, false)
	close(ready)
	s.Reconcile(workers("worker.1"))
	r.next(t)
	if err := s.StartOneOff(DynoConfig{Name: "run.1", Type: "run", Command: "x"}); err != nil {
		t.Fatal(err)
	}
	r.next(t)
	s.ShutdownNow()
}
