package supervisor

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// Sleep stops the formation with Heroku's lines and keeps it down and
// idle, one-offs running; a dyno added meanwhile sleeps too; Wake starts
// them all again with theirs.
func TestSleepAndWake(t *testing.T) {
	t.Parallel()
	changes := make(chan struct{}, 1)
	s, r, logs := newTestSupervisor(t, Options{OnChange: func() {
		select {
		case changes <- struct{}{}:
		default:
		}
	}}, false)
	s.Reconcile(workers("web.1", "worker.1"))
	r.next(t)
	r.next(t)
	logs.wait(t, "State changed from starting to up", 2)
	if err := s.StartOneOff(DynoConfig{Name: "run.1", Type: "run", Command: "bash"}); err != nil {
		t.Fatal(err)
	}
	oneOff := r.next(t)

	s.Sleep()
	logs.wait(t, "Process exited with status 143", 2)
	for _, name := range []string{"web.1", "worker.1"} {
		want := []string{"Idling", "State changed from up to down", "Stopping all processes with SIGTERM", "Process exited with status 143"}
		if got := linesOf(logs.String(), name); !containsInOrder(got, want) {
			t.Errorf("%s's lines:\n%s\nwant, in order:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	awaitStatus(t, s, changes, func(st []DynoStatus) bool {
		idle := 0
		for _, d := range st {
			if d.Idle && d.State == Down && !d.OneOff {
				idle++
			}
		}
		return idle == 2
	})
	if oneOff.got(syscall.SIGTERM) {
		t.Errorf("Sleep stopped a one-off")
	}
	if !s.Asleep() {
		t.Errorf("Asleep = false after Sleep")
	}
	// Scaled up while asleep: the new dyno sleeps too.
	s.Reconcile(workers("web.1", "worker.1", "worker.2"))
	r.none(t)

	s.Wake()
	started := r.byName(t, 3)
	for _, name := range []string{"web.1", "worker.1", "worker.2"} {
		if started[name] == nil {
			t.Errorf("%s did not start on Wake", name)
		}
	}
	logs.wait(t, "State changed from starting to up", 5)
	for _, name := range []string{"web.1", "worker.1"} {
		want := []string{"Unidling", "State changed from down to starting", "Starting process with command"}
		if got := linesOf(logs.String(), name); !containsInOrder(got, want) {
			t.Errorf("%s's lines:\n%s\nwant, in order:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// linesOf is the texts of dyno's lines in log, as logplex writes them:
// "... heroku[web.1]: TEXT".
func linesOf(log, dyno string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if _, text, ok := strings.Cut(l, "["+dyno+"]: "); ok {
			out = append(out, text)
		}
	}
	return out
}

// containsInOrder reports whether lines hold lines starting with each
// of want, in that order.
func containsInOrder(lines, want []string) bool {
	i := 0
	for _, l := range lines {
		if i < len(want) && strings.HasPrefix(l, want[i]) {
			i++
		}
	}
	return i == len(want)
}

// awaitStatus waits, on each change the supervisor reports, until its
// status satisfies ok.
func awaitStatus(t *testing.T, s *Supervisor, changes <-chan struct{}, ok func([]DynoStatus) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !ok(s.Status()) {
		select {
		case <-changes:
		case <-timeout:
			t.Fatalf("status never as wanted: %+v", s.Status())
		}
	}
}

// A dyno in its crash back-off sleeps too, and starts only on Wake; one
// scaled away while asleep is gone, and Wake starts nothing for it.
func TestSleepWhileCrashedAndScaledDown(t *testing.T) {
	t.Parallel()
	changes := make(chan struct{}, 1)
	s, r, logs := newTestSupervisor(t, Options{
		Restart: RestartPolicy{Initial: time.Hour, Max: time.Hour, ResetAfter: time.Hour},
		OnChange: func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		},
	}, false)
	s.Reconcile(workers("web.1", "worker.1"))
	procs := r.byName(t, 2)
	logs.wait(t, "State changed from starting to up", 2)
	// The first crash restarts at once, as Heroku's does; the second
	// waits out the back-off.
	procs["worker.1"].end(1)
	r.next(t).end(1)
	logs.wait(t, "Restarting in", 1)
	s.Sleep()
	awaitStatus(t, s, changes, func(st []DynoStatus) bool {
		return len(st) == 2 && st[0].Idle && st[1].Idle && st[0].State == Down && st[1].State == Down
	})
	if got := linesOf(logs.String(), "worker.1"); !containsInOrder(got, []string{"State changed from up to crashed", "Idling", "State changed from crashed to down"}) {
		t.Errorf("worker.1's lines:\n%s", strings.Join(got, "\n"))
	}
	s.Reconcile(workers("web.1"))
	awaitStatus(t, s, changes, func(st []DynoStatus) bool { return len(st) == 1 && st[0].Name == "web.1" })
	s.Wake()
	if p := r.next(t); p.spec.Name != "web.1" {
		t.Errorf("Wake started %s", p.spec.Name)
	}
	r.none(t)
}
