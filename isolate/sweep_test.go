package isolate

import (
	"os/exec"
	"testing"

	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

// running reports whether pid is a live process, not a zombie: a child
// killed and not yet waited for still answers kill(pid, 0).
func running(pid int) bool {
	p, ok := readStat(pid, make([]byte, 512))
	return ok && !p.zombie
}

// The sweep after a killed init takes that dyno's orphans only: a child
// that another part of the process started (git in a build) and another
// Spawner's dyno live on. Before, the sweep killed every child that was
// not one of its own Spawner's inits.
func TestSweepSparesForeignChildren(t *testing.T) {
	t.Parallel()
	foreign := exec.Command("sleep", "1000")
	if err := foreign.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { foreign.Process.Kill(); foreign.Wait() })
	other, otherOut := startDyno(t, `echo $$; exec sleep 1000`)
	otherApp := readPids(t, otherOut, 1)[0]

	// An orphan of the dyno (its parent sh exited, so it is init's child
	// until init dies), a child of the app, and the app.
	d, sc := startDyno(t, `o=$(sh -c 'sleep 1000 >/dev/null & echo $!'); sleep 1000 & echo $$ $! $o; wait`)
	pids := readPids(t, sc, 3)
	unix.Kill(d.InitPid(), unix.SIGKILL)
	if st, _ := d.Wait(); st != 137 {
		t.Errorf("status %d, want 137", st)
	}
	testutil.WaitGone(t, pids...)

	if !running(foreign.Process.Pid) {
		t.Error("the sweep killed a child the dyno did not start")
	}
	if !running(other.InitPid()) || !running(otherApp) {
		t.Error("the sweep killed another Spawner's dyno")
	}
}
