package supervisor

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/supervisor/logmux"
)

// logBuffer collects the mux's output and lets a test wait for a line.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{}, 1)} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	select {
	case l.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// count returns how many lines contain s.
func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

// wait blocks until n lines contain s.
func (l *logBuffer) wait(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for l.count(s) < n {
		select {
		case <-l.changed:
		case <-deadline:
			t.Fatalf("waited for %d lines with %q; log:\n%s", n, s, l.String())
		}
	}
}

// fakeProcess is a dyno the test controls.
type fakeProcess struct {
	spec     DynoSpec // what it was started with
	exit     chan int
	once     sync.Once
	mu       sync.Mutex
	signals  []syscall.Signal
	exitTerm bool // exits 143 on SIGTERM
}

func (p *fakeProcess) Pid() int { return 1 }
func (p *fakeProcess) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	p.signals = append(p.signals, sig)
	p.mu.Unlock()
	if p.exitTerm && sig == syscall.SIGTERM {
		p.end(143)
	}
	return nil
}
func (p *fakeProcess) Kill() error        { p.end(137); return nil }
func (p *fakeProcess) Wait() (int, error) { return <-p.exit, nil }
func (p *fakeProcess) end(status int)     { p.once.Do(func() { p.exit <- status }) }

// fakeRunner hands every started process to the test.
type fakeRunner struct {
	exitTerm bool
	started  chan *fakeProcess
	// wrap, when set, gives the manager another view of the process.
	wrap func(*fakeProcess) Process
}

func (r *fakeRunner) Start(spec DynoSpec) (Process, error) {
	p := &fakeProcess{spec: spec, exit: make(chan int, 1), exitTerm: r.exitTerm}
	r.started <- p
	if r.wrap != nil {
		return r.wrap(p), nil
	}
	return p, nil
}

// meteredProcess is a fake with a cgroup's view of memory.
type meteredProcess struct {
	*fakeProcess
	mem int64
	oom bool
}

func (p *meteredProcess) Stats() (cgroup.Stats, error) {
	return cgroup.Stats{MemoryCurrent: p.mem}, nil
}
func (p *meteredProcess) Runtime() (cgroup.Runtime, error) {
	return cgroup.Runtime{Stats: cgroup.Stats{MemoryCurrent: p.mem}, Anon: p.mem, Runnable: 1}, nil
}
func (p *meteredProcess) OOMKilled() bool { return p.oom }

func newTestManager(t *testing.T, opts Options, dynos ...DynoConfig) (*Manager, *fakeRunner, *logBuffer) {
	t.Helper()
	logs := newLogBuffer()
	r := &fakeRunner{exitTerm: true, started: make(chan *fakeProcess, 16)}
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
	return New(opts, dynos), r, logs
}

func runAsync(m *Manager) chan int {
	done := make(chan int, 1)
	go func() {
		st, _ := m.Run()
		done <- st
	}()
	return done
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := Backoff{Policy: RestartPolicy{Initial: time.Second, Max: 30 * time.Second, ResetAfter: 10 * time.Minute}}
	want := []time.Duration{0, 1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		if got := b.Next(time.Second); got != w*time.Second {
			t.Fatalf("crash %d: wait %v, want %v", i+1, got, w*time.Second)
		}
	}
	// A run of ten minutes resets the count: the next restart is immediate.
	if got := b.Next(10 * time.Minute); got != 0 {
		t.Fatalf("after a long run: wait %v, want 0", got)
	}
	if got := b.Next(0); got != time.Second {
		t.Fatalf("second crash after reset: wait %v, want 1s", got)
	}
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	t.Parallel()
	m, r, logs := newTestManager(t, Options{}, DynoConfig{Name: "worker.1", Type: "worker", Command: "w"})
	done := runAsync(m)
	for i := range 4 {
		p := <-r.started
		logs.wait(t, "heroku[worker.1]: State changed from starting to up", i+1)
		p.end(0) // exit 0 is a crash too
	}
	<-r.started
	logs.wait(t, "Starting process with command `w`", 5)
	m.Stop()
	if st := <-done; st != 0 {
		t.Errorf("status after stop = %d, want 0", st)
	}
	log := logs.String()
	for _, s := range []string{
		"heroku[worker.1]: Process exited with status 0",
		"heroku[worker.1]: State changed from up to crashed",
		"heroku[worker.1]: State changed from crashed to starting",
		"heroku[worker.1]: Restarting in 10ms",
		"heroku[worker.1]: Restarting in 20ms",
		"heroku[worker.1]: Restarting in 40ms",
		"heroku[worker.1]: Stopping all processes with SIGTERM",
		"heroku[worker.1]: State changed from up to down",
	} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
	// The first restart is immediate: no wait logged before it.
	first := strings.Index(log, "State changed from up to crashed")
	second := strings.Index(log, "State changed from crashed to starting")
	if strings.Contains(log[first:second], "Restarting in") {
		t.Errorf("first restart waited:\n%s", log)
	}
}

func TestExitOnCrash(t *testing.T) {
	t.Parallel()
	m, r, logs := newTestManager(t, Options{ExitOnCrash: true},
		DynoConfig{Name: "a.1", Type: "a", Command: "a"}, DynoConfig{Name: "b.1", Type: "b", Command: "b"})
	done := runAsync(m)
	p1, p2 := <-r.started, <-r.started
	logs.wait(t, "State changed from starting to up", 2)
	p1.end(3)
	if st := <-done; st != 3 {
		t.Errorf("status = %d, want 3", st)
	}
	if !p2.gotSignal(syscall.SIGTERM) {
		t.Error("the other dyno was not sent SIGTERM")
	}
	if n := logs.count("Starting process"); n != 2 {
		t.Errorf("%d starts, want 2 (no restart with --exit-on-crash):\n%s", n, logs.String())
	}
}

func (p *fakeProcess) gotSignal(sig syscall.Signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.signals {
		if s == sig {
			return true
		}
	}
	return false
}

func TestStopTimeoutKills(t *testing.T) {
	t.Parallel()
	m, r, logs := newTestManager(t, Options{StopTimeout: 50 * time.Millisecond}, DynoConfig{Name: "web.1", Type: "worker", Command: "x"})
	r.exitTerm = false // ignores SIGTERM
	done := runAsync(m)
	<-r.started
	logs.wait(t, "State changed from starting to up", 1)
	m.Stop()
	if st := <-done; st != 0 {
		t.Errorf("status = %d, want 0", st)
	}
	log := logs.String()
	want := []string{
		"Stopping all processes with SIGTERM",
		"Error R12 (Exit timeout) -> Process failed to exit within 50ms of SIGTERM",
		"Stopping process with SIGKILL",
		"Process exited with status 137",
		"State changed from up to down",
	}
	at := 0
	for _, w := range want {
		i := strings.Index(log[at:], w)
		if i < 0 {
			t.Fatalf("log lacks %q in order:\n%s", w, log)
		}
		at += i
	}
}

func TestKillNow(t *testing.T) {
	t.Parallel()
	m, r, logs := newTestManager(t, Options{StopTimeout: time.Hour}, DynoConfig{Name: "w.1", Type: "w", Command: "x"})
	r.exitTerm = false
	done := runAsync(m)
	<-r.started
	logs.wait(t, "State changed from starting to up", 1)
	m.Stop()
	logs.wait(t, "Stopping all processes with SIGTERM", 1)
	m.Kill()
	<-done
	if !strings.Contains(logs.String(), "Process exited with status 137") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// freePort returns a TCP port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestWebUpWhenListening(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	m, r, logs := newTestManager(t, Options{BootPoll: 5 * time.Millisecond}, DynoConfig{Name: "web.1", Type: "web", Command: "x", Port: port, Web: true})
	done := runAsync(m)
	<-r.started
	logs.wait(t, "Starting process", 1)
	if n := logs.count("to up"); n != 0 {
		t.Fatalf("web dyno up before listening:\n%s", logs.String())
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	logs.wait(t, "heroku[web.1]: State changed from starting to up", 1)
	m.Stop()
	<-done
}

func TestBootTimeout(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	m, r, logs := newTestManager(t, Options{BootTimeout: 100 * time.Millisecond, BootPoll: 5 * time.Millisecond},
		DynoConfig{Name: "web.1", Type: "web", Command: "x", Port: port, Web: true})
	done := runAsync(m)
	<-r.started
	logs.wait(t, "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 100ms of launch", 1)
	logs.wait(t, "State changed from starting to crashed", 1)
	<-r.started // restarted: a boot timeout is a crash
	m.Stop()
	<-done
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	m, _, _ := newTestManager(t, Options{}, DynoConfig{Name: "web.1", Type: "web", Command: "x", Port: port, Web: true})
	_, err = m.Run()
	if err == nil || !strings.Contains(err.Error(), "port "+itoa(port)+" (web.1)") {
		t.Fatalf("err = %v, want port in use naming it", err)
	}
}

func TestNoRestart(t *testing.T) {
	t.Parallel()
	m, r, _ := newTestManager(t, Options{Restart: RestartPolicy{Never: true}},
		DynoConfig{Name: "a.1", Type: "a", Command: "a"}, DynoConfig{Name: "b.1", Type: "b", Command: "b"})
	done := runAsync(m)
	p1, p2 := <-r.started, <-r.started
	p1.end(0)
	p2.end(5)
	if st := <-done; st != 5 {
		t.Errorf("status = %d, want 5", st)
	}
}

func TestMemoryErrors(t *testing.T) {
	t.Parallel()
	const quota = 512 << 20
	m, r, logs := newTestManager(t, Options{MemoryCheck: 5 * time.Millisecond, Restart: RestartPolicy{Never: true}},
		DynoConfig{Name: "web.1", Type: "worker", Command: "x", MemoryQuota: quota})
	r.wrap = func(p *fakeProcess) Process { return &meteredProcess{fakeProcess: p, mem: 520 << 20, oom: true} }
	done := runAsync(m)
	p := <-r.started
	logs.wait(t, "heroku[web.1]: Process running mem=520M(101.6%)", 1)
	logs.wait(t, "heroku[web.1]: Error R14 (Memory quota exceeded)", 1)
	p.end(137) // as the OOM killer would
	<-done
	log := logs.String()
	r15 := strings.Index(log, "Error R15 (Memory quota vastly exceeded)")
	kill := strings.LastIndex(log, "Stopping process with SIGKILL")
	exit := strings.Index(log, "Process exited with status 137")
	if r15 < 0 || kill < r15 || exit < kill {
		t.Errorf("want R15, SIGKILL, exit 137 in that order:\n%s", log)
	}
}

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := []string{"PORT=5000", "NAME=x"}
	for in, want := range map[string]string{
		"bin/web -p $PORT":      "bin/web -p 5000",
		"bin/web -p ${PORT}/$X": "bin/web -p 5000/$X",
		"echo $$ $1 ${NAME":     "echo $$ $1 ${NAME",
		"a$NAME$PORT":           "ax5000",
		"trailing $":            "trailing $",
	} {
		if got := expandEnv(in, env); got != want {
			t.Errorf("expandEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
