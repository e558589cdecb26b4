package daemon

// The machine's add-on servers (one PostgreSQL cluster, one
// redis-server) run as services of the daemon's own, not as dynos of an
// app: each set-up one (addons.Server.IsSetUp) is started at the
// daemon's start, in the foreground, as its child; one not set up yet is
// set up and started when a command first needs it (POST
// /dyno/services/{service}, on the socket only). Its output goes to
// its own log store, $DYNO_HOME/addons/SERVICE/logs, as app[SERVICE]
// lines, the daemon's words about it as heroku[SERVICE] lines; it is
// restarted with the dynos' back-off when it exits; it is stopped
// cleanly (PostgreSQL's fast shutdown) after every app's dynos stopped,
// and dies with the daemon even of kill -9 (Pdeathsig), stopping as
// cleanly as it would be stopped.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/logmux"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"golang.org/x/sys/unix"
)

// services are the add-on servers a daemon runs.
type services struct {
	d *Daemon
	// servers returns the add-on servers by their service's alias, and
	// logsDir where each one's logs go; tests replace them.
	servers func() map[string]addons.Server
	logsDir func(name string) string

	mu      sync.Mutex
	closed  bool // the daemon is stopping: no server starts any more
	running map[string]*service
}

func newServices(d *Daemon) *services {
	m := &addons.Manager{Home: d.cfg.Home}
	return &services{d: d, servers: m.Servers, logsDir: m.LogsDir, running: map[string]*service{}}
}

// Service states, as the service's log says them.
const (
	serviceStarting = "starting"
	serviceUp       = "up"
	serviceCrashed  = "crashed"
	serviceDown     = "down"
)

// A service is one add-on server and the goroutine that runs it.
type service struct {
	ss   *services
	name string // the service's alias: postgresql
	srv  addons.Server
	// wasSetUp says whether the server was set up before the daemon
	// first ran it: one that fails to set up is not retried.
	wasSetUp bool
	store    *logstore.Store
	logs     *logmux.Mux
	wake     chan struct{} // cuts a back-off short
	stopped  chan struct{} // closed when the daemon stops it
	done     chan struct{} // closed when its goroutine has ended

	mu       sync.Mutex
	state    string
	proc     *os.Process // the server while it runs
	fg       addons.Foreground
	attempts int           // starts begun
	tried    int           // starts ended: up and exited since, or failed
	err      error         // why the last start ended
	changed  chan struct{} // closed and replaced at every change
	stopping bool
}

// errNoService is a service that runs no server of its own.
var errNoService = errors.New("no add-on service runs a server of that name")

// boot starts every set-up server.
func (ss *services) boot() {
	for name, srv := range ss.servers() {
		if srv.IsSetUp() {
			if _, err := ss.run(name, srv); err != nil {
				ss.d.logf("%s: %v", name, err)
			}
		}
	}
}

// awaitBoot waits, at most timeout, until every server started has
// come up or failed once, so that apps do not boot before their
// databases.
func (ss *services) awaitBoot(timeout time.Duration) {
	ss.mu.Lock()
	var all []*service
	for _, s := range ss.running {
		all = append(all, s)
	}
	ss.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, s := range all {
		s.await(ctx, 1)
	}
}

// run returns the service name, started if it was not running.
func (ss *services) run(name string, srv addons.Server) (*service, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil, errShuttingDown
	}
	if s, ok := ss.running[name]; ok {
		return s, nil
	}
	store, err := logstore.Open(ss.logsDir(name), logstore.Options{KeepBytes: ss.d.cfg.LogKeep})
	if err != nil {
		return nil, err
	}
	s := &service{ss: ss, name: name, srv: srv, wasSetUp: srv.IsSetUp(), store: store,
		logs: logmux.New(store, logmux.Options{Format: logmux.FormatLogplex}),
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{}),
		state: serviceDown, changed: make(chan struct{})}
	ss.running[name] = s
	go s.supervise()
	return s, nil
}

// ensure makes sure the server of service name runs, setting it up the
// first time, and returns once it accepts connections, or why it did
// not come up. A server in its back-off is started at once.
func (ss *services) ensure(ctx context.Context, name string) error {
	srv, ok := ss.servers()[name]
	if !ok {
		return fmt.Errorf("%w: %q", errNoService, name)
	}
	s, err := ss.run(name, srv)
	if err != nil {
		return err
	}
	s.mu.Lock()
	target := s.attempts
	switch s.state {
	case serviceCrashed: // in its back-off
		select {
		case s.wake <- struct{}{}:
		default:
		}
		target++
	case serviceDown: // its first start is about to begin
		target++
	}
	s.mu.Unlock()
	return s.await(ctx, target)
}

// await waits until the server is up or start number target has ended.
// Every end of a start changes the state, so the wait ends with it.
func (s *service) await(ctx context.Context, target int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.state == serviceUp:
			return nil
		case s.tried >= target && s.err != nil:
			return s.err
		case s.stopping:
			return errShuttingDown
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.done:
			// Ended between our look and our wait: its last word
			// stands.
			s.mu.Lock()
			switch {
			case s.stopping:
				return errShuttingDown
			case s.err != nil:
				return s.err
			}
			return fmt.Errorf("%s is not running", s.name)
		case <-ctx.Done():
			s.mu.Lock()
			return fmt.Errorf("%s did not come up within the time given: %w (dyno addons:logs %s says why)", s.name, ctx.Err(), s.name)
		}
		s.mu.Lock()
	}
}

// setState moves the service to st, logging the change as Heroku logs a
// dyno's; s.mu is held.
func (s *service) setState(st string) {
	if s.state != st {
		s.log("State changed from %s to %s", s.state, st)
		s.state = st
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// log writes a heroku[SERVICE] line to the service's logs.
func (s *service) log(format string, args ...any) {
	s.logs.System(s.name, fmt.Sprintf(format, args...))
}

// supervise runs the server until the daemon stops it, restarting it
// with back-off. Its goroutine stays on one OS thread for its whole
// life: the kernel sends a child its Pdeathsig when the thread that
// forked it ends, not the process, and Go ends threads (a goroutine
// that exits locked, say) as it sees fit.
func (s *service) supervise() {
	runtime.LockOSThread()
	defer func() {
		s.store.Close()
		s.ss.mu.Lock()
		if s.ss.running[s.name] == s {
			delete(s.ss.running, s.name)
		}
		s.ss.mu.Unlock()
		close(s.done)
	}()
	b := supervisor.Backoff{Policy: s.ss.d.cfg.Restart}
	for {
		s.mu.Lock()
		if s.stopping {
			s.setState(serviceDown)
			s.mu.Unlock()
			return
		}
		s.attempts++
		s.setState(serviceStarting)
		s.mu.Unlock()

		uptime, setUp, err := s.runOnce()

		s.mu.Lock()
		s.tried++
		s.err = fmt.Errorf("%s: %w", s.name, err)
		if s.stopping {
			s.setState(serviceDown)
			s.mu.Unlock()
			return
		}
		if !setUp && !s.wasSetUp {
			// A first setup that fails (PostgreSQL refuses root) is
			// not retried: the command that asked says why, and the
			// next one asks again.
			s.log("Setup failed: %v", err)
			s.ss.d.logf("%s: setting up the add-on server failed: %v", s.name, err)
			s.setState(serviceDown)
			s.mu.Unlock()
			return
		}
		s.setState(serviceCrashed)
		s.mu.Unlock()

		wait := b.Next(uptime)
		s.ss.d.logf("%s: the add-on server %v; restarting it in %s", s.name, err, wait)
		if wait > 0 {
			s.log("Restarting in %s", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.wake:
			b.Reset()
		case <-s.stopped:
		}
		t.Stop()
	}
}

// runOnce sets the server up if it is not, stops a server that runs
// without the daemon, then runs the server until it exits. It returns
// how long it ran, whether it got as far as being set up, and why it
// ended.
func (s *service) runOnce() (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	fg, err := s.srv.Foreground(ctx)
	if err != nil {
		return 0, false, err
	}
	if len(fg.Argv) == 0 {
		return 0, true, errors.New("no command to run")
	}
	// One started by a command while no daemon ran, or one still
	// shutting down after a daemon killed a moment ago: stopped
	// cleanly, so that the daemon's own starts on consistent data.
	if pid, err := s.srv.Running(ctx); err != nil {
		return 0, true, err
	} else if pid != 0 {
		s.ss.d.logf("%s: an add-on server the daemon did not start runs (pid %d); stopping it cleanly to run it under the daemon", s.name, pid)
		s.log("Stopping the server started outside the daemon (pid %d) to run it here", pid)
		if err := s.srv.Stop(ctx); err != nil {
			return 0, true, err
		}
		// redis-server's SHUTDOWN answers before it has let go of
		// its port: the process's end is what counts.
		if err := awaitGone(ctx, pid); err != nil {
			return 0, true, fmt.Errorf("the server started outside the daemon (pid %d) did not end: %w", pid, err)
		}
	}
	src, err := s.logs.Source(s.name)
	if err != nil {
		return 0, true, err
	}
	cmd := exec.Command(fg.Argv[0], fg.Argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = serviceEnv()
	cmd.Stdout, cmd.Stderr = src.Writer(), src.Writer()
	// A process group of its own, so that a ^C on the daemon's
	// terminal does not signal it (the daemon's shutdown stops it
	// after the apps); Pdeathsig stops it when the daemon dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: fg.Stop}
	s.log("Starting process with command `%s`", strings.Join(fg.Argv, " "))
	err = cmd.Start()
	src.CloseWriter()
	if err != nil {
		src.Close()
		return 0, true, err
	}
	started := time.Now()
	s.setProc(cmd.Process, fg)
	readyCtx, stopReady := context.WithCancel(context.Background())
	go s.awaitReady(readyCtx, cmd.Process.Pid)
	err = cmd.Wait()
	stopReady()
	s.setProc(nil, fg)
	uptime := time.Since(started)
	sweepOrphans(filepath.Base(fg.Argv[0]), orphanGrace)
	select {
	case <-src.Done():
	case <-time.After(time.Second):
		src.Close() // something the server left holds the pipe
		<-src.Done()
	}
	status := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = 128 + int(ws.Signal())
		} else {
			status = ee.ExitCode()
		}
	case err != nil:
		return uptime, true, err
	}
	s.log("Process exited with status %d", status)
	return uptime, true, fmt.Errorf("exited with status %d", status)
}

const (
	// setupTimeout bounds a server's setup (initdb) and the clean stop
	// of one the daemon did not start.
	setupTimeout = 2 * time.Minute
	// orphanGrace is how long what a dead server left is waited for
	// before it is killed.
	orphanGrace = 5 * time.Second
	// readyPoll is how often a starting server is asked whether it is
	// ready.
	readyPoll = 50 * time.Millisecond
	// serviceBootWait bounds how long the daemon's start waits for the
	// servers before it brings the apps up (a crash recovery can take
	// longer; apps that boot meanwhile restart on their back-off).
	serviceBootWait = 30 * time.Second
	// serviceWait bounds how long POST /dyno/services/{service} waits
	// for the server, within the API's write timeout.
	serviceWait = 50 * time.Second
)

// setProc records the running server; a stop that came before it
// started is passed on at once.
func (s *service) setProc(p *os.Process, fg addons.Foreground) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc, s.fg = p, fg
	if p != nil && s.stopping {
		p.Signal(fg.Stop)
	}
}

// awaitReady asks the server started as pid whether it is ready until
// it is or ctx ends (the server exited).
func (s *service) awaitReady(ctx context.Context, pid int) {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.srv.Ready(rctx, pid)
		cancel()
		if err == nil {
			s.mu.Lock()
			if s.proc != nil && s.proc.Pid == pid && s.state == serviceStarting {
				s.setState(serviceUp)
				s.ss.d.logf("%s: the add-on server is up (pid %d)", s.name, pid)
			}
			s.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop stops the server cleanly and waits for it; after timeout it is
// sent its Kill signal, and SIGKILL if even that does not end it.
func (s *service) stop(timeout time.Duration) {
	s.mu.Lock()
	if !s.stopping {
		s.stopping = true
		close(s.stopped)
	}
	p, fg := s.proc, s.fg
	s.mu.Unlock()
	if p != nil {
		s.log("Stopping process with %s", unix.SignalName(fg.Stop))
		p.Signal(fg.Stop)
	}
	select {
	case <-s.done:
		return
	case <-time.After(timeout):
	}
	s.mu.Lock()
	p, fg = s.proc, s.fg
	s.mu.Unlock()
	if p != nil {
		s.ss.d.logf("%s: the add-on server did not stop within %s; sending %s", s.name, timeout, unix.SignalName(fg.Kill))
		s.log("Error R12 (Exit timeout) -> At least one process failed to exit within %s of %s", timeout, unix.SignalName(fg.Stop))
		s.log("Stopping process with %s", unix.SignalName(fg.Kill))
		p.Signal(fg.Kill)
	}
	select {
	case <-s.done:
		return
	case <-time.After(killWait):
	}
	if p != nil {
		p.Kill()
	}
	<-s.done
}

// killWait is how long a server has after its Kill signal.
const killWait = 10 * time.Second

// stopAll stops every server at once and waits; none starts after.
func (ss *services) stopAll(timeout time.Duration) {
	ss.mu.Lock()
	ss.closed = true
	var all []*service
	for _, s := range ss.running {
		all = append(all, s)
	}
	ss.mu.Unlock()
	if len(all) == 0 {
		return
	}
	ss.d.logf("stopping the add-on servers")
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.stop(timeout) })
	}
	wg.Wait()
}

// serviceEnv is a server's environment: PATH and TZ of the daemon's,
// nothing else (NOTIFY_SOCKET would let PostgreSQL, built with systemd,
// tell systemd it is the daemon and ready).
func serviceEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + path}
	if tz, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+tz)
	}
	return env
}

// awaitGone waits until pid, which is not the daemon's child, has ended
// (a pid below 1 is none known).
func awaitGone(ctx context.Context, pid int) error {
	for pid > 0 && unix.Kill(pid, 0) != unix.ESRCH {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// sweepOrphans reaps what a server that ended left behind and came to
// the daemon, a child subreaper (isolate.NewSpawner): PostgreSQL's
// backends, when the postmaster was killed, end by themselves on seeing
// it gone; what is still there after grace is killed. They are the
// daemon's children named comm (a process's name is its program's); a
// server is restarted only once they are gone, as PostgreSQL wants.
func sweepOrphans(comm string, grace time.Duration) {
	if len(comm) > 15 {
		comm = comm[:15] // the kernel's TASK_COMM_LEN
	}
	self := os.Getpid()
	deadline := time.Now().Add(grace)
	for {
		left := orphans(self, comm)
		if len(left) == 0 {
			return
		}
		late := time.Now().After(deadline)
		for pid, zombie := range left {
			if zombie {
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			} else if late {
				unix.Kill(pid, unix.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orphans returns the children of parent named comm, by pid, and
// whether each is a zombie.
func orphans(parent int, comm string) map[int]bool {
	out := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and ')'.
		st := string(b)
		open, end := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(st[end+1:])
		if len(f) < 2 || st[open+1:end] != comm {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == parent {
			out[pid] = f[0] == "Z"
		}
	}
	return out
}

// startService is POST /dyno/services/{service}, on the socket only: a
// command that needs an add-on server has the daemon run it rather than
// start one detached. It answers once the server accepts connections.
func (d *Daemon) startService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("service")
	ctx, cancel := context.WithTimeout(r.Context(), serviceWait)
	defer cancel()
	err := d.services.ensure(ctx, name)
	switch {
	case errors.Is(err, errNoService):
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", "%v", err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"service": name, "state": serviceUp})
	}
}
