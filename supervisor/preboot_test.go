package supervisor

import (
	"net"
	"slices"
	"syscall"
	"testing"
	"time"
)

// freeTCPPort is a port nothing listens on now, and a listen function
// that makes it listen: the test says when a fake web process is up.
func freeTCPPort(t *testing.T) (int, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port, func() {
		ln, err := net.Listen("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
	}
}

func (p *fakeProcess) got(sig syscall.Signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.signals, sig)
}

// prebootEnv runs web.1 with preboot on ports the test makes listen.
type prebootEnv struct {
	s       *Supervisor
	r       *fakeRunner
	logs    *logBuffer
	changes chan struct{}
	ports   []int
	listen  []func()
}

func newPrebootEnv(t *testing.T, n int) *prebootEnv {
	return newPrebootEnvPolicy(t, n, RestartPolicy{})
}

// newPrebootEnvPolicy is newPrebootEnv with a restart policy; the zero
// one is newTestSupervisor's quick back-off.
func newPrebootEnvPolicy(t *testing.T, n int, policy RestartPolicy) *prebootEnv {
	e := &prebootEnv{changes: make(chan struct{}, 1)}
	for range n {
		port, listen := freeTCPPort(t)
		e.ports, e.listen = append(e.ports, port), append(e.listen, listen)
	}
	next := 0
	e.s, e.r, e.logs = newTestSupervisor(t, Options{
		Restart:  policy,
		NewPort:  func() int { next++; return e.ports[next-1] },
		BootPoll: time.Millisecond,
		OnChange: func() {
			select {
			case e.changes <- struct{}{}:
			default:
			}
		},
	}, false)
	return e
}

// await waits until web.1's status satisfies ok.
func (e *prebootEnv) await(t *testing.T, what string, ok func(DynoStatus) bool) DynoStatus {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if st := e.s.Status(); len(st) == 1 && ok(st[0]) {
			return st[0]
		}
		select {
		case <-e.changes:
		case <-timeout:
			t.Fatalf("web.1 never %s: %+v", what, e.s.Status())
		}
	}
}

func web(release int) []DynoConfig {
	return []DynoConfig{{Name: "web.1", Type: "web", Command: "serve", Web: true, Release: release, Preboot: true}}
}

// A new release with preboot starts the new process beside the old one,
// which keeps serving (ServingPort) until the new one is up; only then
// does the old one get SIGTERM.
func TestPrebootKeepsTheOldProcessServingUntilTheNewIsUp(t *testing.T) {
	t.Parallel()
	e := newPrebootEnv(t, 3)
	e.s.Reconcile(web(1))
	old := e.r.next(t)
	e.listen[0]()
	e.await(t, "up on the first port", func(st DynoStatus) bool { return st.State == Up && st.Port == e.ports[0] })

	e.s.Reconcile(web(2))
	fresh := e.r.next(t)
	st := e.await(t, "starting beside the old process", func(st DynoStatus) bool {
		return st.State == Starting && st.Port == e.ports[1] && st.ServingPort == e.ports[0]
	})
	if old.got(syscall.SIGTERM) {
		t.Fatalf("the old process got SIGTERM before the new one was up: %+v", st)
	}
	e.listen[1]()
	e.await(t, "up on the new port with nothing else serving", func(st DynoStatus) bool {
		return st.State == Up && st.Port == e.ports[1] && st.ServingPort == 0
	})
	e.logs.wait(t, "Process exited with status 143", 1)
	if !old.got(syscall.SIGTERM) || fresh.got(syscall.SIGTERM) {
		t.Errorf("SIGTERM: old %v, new %v; want the old one only", old.got(syscall.SIGTERM), fresh.got(syscall.SIGTERM))
	}
	// Without preboot, a new release stops the old process at once.
	cfg := web(3)
	cfg[0].Preboot = false
	e.s.Reconcile(cfg)
	e.logs.wait(t, "Process exited with status 143", 2)
	if !fresh.got(syscall.SIGTERM) {
		t.Errorf("without preboot the running process was not stopped at once")
	}
}

// A new process that never comes up leaves the old one serving, and
// the log says so; a stop then stops both.
func TestPrebootThatFailsKeepsTheOldProcessServing(t *testing.T) {
	t.Parallel()
	e := newPrebootEnv(t, 5)
	e.s.Reconcile(web(1))
	old := e.r.next(t)
	e.listen[0]()
	e.await(t, "up", func(st DynoStatus) bool { return st.State == Up })

	e.s.Reconcile(web(2))
	e.r.next(t).end(1) // the new release crashes at boot
	e.logs.wait(t, "Preboot failed: the new process did not come up; the process before it keeps serving requests", 1)
	// The first crash restarts at once, so crashed is passed in a blink:
	// the line is the event; the old process is the one serving still.
	if st := e.s.Status(); len(st) != 1 || st[0].ServingPort != e.ports[0] || old.got(syscall.SIGTERM) {
		t.Fatalf("after a failed preboot: %+v, old process sent SIGTERM: %v", st, old.got(syscall.SIGTERM))
	}
	// The restart policy tries again, beside the old process still.
	e.r.next(t)
	e.await(t, "retrying beside the old process", func(st DynoStatus) bool {
		return st.State == Starting && st.Port == e.ports[2] && st.ServingPort == e.ports[0]
	})
	if err := e.s.Stop("web.1"); err != nil {
		t.Fatal(err)
	}
	e.logs.wait(t, "Process exited with status 143", 2)
	if !old.got(syscall.SIGTERM) {
		t.Errorf("ps:stop left the old process running")
	}
}

// A stop while the replacement waits out its crash back-off stops the
// old process too; so does a second deploy's preboot once the old one is
// up, without waiting for the first old process to finish.
func TestPrebootStopDuringBackoff(t *testing.T) {
	t.Parallel()
	e := newPrebootEnvPolicy(t, 5, RestartPolicy{Initial: time.Hour, Max: time.Hour, ResetAfter: time.Hour})
	e.s.Reconcile(web(1))
	old := e.r.next(t)
	e.listen[0]()
	e.await(t, "up", func(st DynoStatus) bool { return st.State == Up })
	e.s.Reconcile(web(2))
	e.r.next(t).end(1) // crashes; the first crash restarts at once
	e.r.next(t).end(1) // and again: the back-off begins
	e.logs.wait(t, "Restarting in", 1)
	if old.got(syscall.SIGTERM) {
		t.Fatal("the old process was stopped during the back-off")
	}
	if err := e.s.Kill("web.1"); err != nil {
		t.Fatal(err)
	}
	e.await(t, "nothing serving", func(st DynoStatus) bool { return st.ServingPort == 0 })
	e.logs.wait(t, "Process exited with status 137", 1)
}
