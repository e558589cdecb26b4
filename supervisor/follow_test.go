package supervisor

import (
	"slices"
	"testing"
)

// On a fixed port (no NewPort), a restarted dyno's new process starts
// only once the old one has exited: it could not bind the port before.
func TestFixedPortReplacementWaitsForTheOldProcess(t *testing.T) {
	t.Parallel()
	s, r, logs := newTestSupervisor(t, Options{}, true)
	s.Reconcile([]DynoConfig{{Name: "web.1", Type: "web", Command: "x", Web: true, Port: freePort(t)}})
	old := r.next(t)
	if err := s.Restart("web.1"); err != nil {
		t.Fatal(err)
	}
	logs.wait(t, "heroku[web.1]: Stopping all processes with SIGTERM", 1)
	r.none(t)
	old.end(143)
	if p := r.next(t); p.spec.Name != "web.1" {
		t.Fatalf("started %s", p.spec.Name)
	}
	inOrder(t, logs.String(), "heroku[web.1]: Process exited with status 143", "heroku[web.1]: Starting process")
}

// A running Manager takes a new formation: a changed config restarts
// its dyno, a new dyno starts, and Status lists the new formation.
func TestManagerReconcile(t *testing.T) {
	t.Parallel()
	first := workers("worker.1")
	first[0].Release = 1
	m, r, logs := newTestManager(t, Options{}, first...)
	done := runAsync(m)
	r.next(t)
	next := workers("worker.1", "worker.2")
	next[0].Release, next[1].Release = 2, 2
	m.Reconcile(next)
	started := r.byName(t, 2)
	if started["worker.1"] == nil || started["worker.2"] == nil {
		t.Fatalf("started %v", started)
	}
	logs.wait(t, "heroku[worker.1]: Restarting", 1)
	var names []string
	for _, st := range m.Status() {
		names = append(names, st.Name)
	}
	if !slices.Equal(names, []string{"worker.1", "worker.2"}) {
		t.Errorf("status lists %v", names)
	}
	m.Stop()
	if st := <-done; st != 0 {
		t.Errorf("Run: %d", st)
	}
}
