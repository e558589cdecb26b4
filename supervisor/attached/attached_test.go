package attached

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor"
	"golang.org/x/sys/unix"
)

func TestRegisterListClose(t *testing.T) {
	dir := Dir(t.TempDir())
	if got, err := List(dir); err != nil || len(got) != 0 {
		t.Fatalf("no folder yet: %v, %v", got, err)
	}
	r, err := Register(dir, supervisor.DynoStatus{Name: "run.1234", Type: "run", Command: "bash", Size: "standard-1x", State: supervisor.Starting, Since: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := List(dir)
	if err != nil || len(got) != 1 || got[0].Name != "run.1234" || got[0].State != supervisor.Starting || got[0].Command != "bash" {
		t.Fatalf("registered: %+v, %v", got, err)
	}
	if err := r.SetState(supervisor.Up); err != nil {
		t.Fatal(err)
	}
	if got, _ := List(dir); len(got) != 1 || got[0].State != supervisor.Up {
		t.Fatalf("up: %+v", got)
	}
	if _, err := Register(dir, supervisor.DynoStatus{Name: "run.1234"}); err == nil {
		t.Error("a second run took a name that is running")
	}
	if _, err := Register(dir, supervisor.DynoStatus{Name: "../x"}); err == nil {
		t.Error("a name with a slash was taken")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := List(dir); len(got) != 0 {
		t.Fatalf("closed: %+v", got)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("Close left %v", left)
	}
}

// A run that dies without Close (kill -9) leaves files whose lock no one
// holds: List leaves the entry out and removes it.
func TestDeadRunIsSwept(t *testing.T) {
	if os.Getenv("ATTACHED_HELPER") != "" {
		r, err := Register(os.Getenv("ATTACHED_HELPER"), supervisor.DynoStatus{Name: "run.7777", Type: "run", State: supervisor.Up, Pid: os.Getpid()})
		if err != nil {
			os.Exit(3)
		}
		_ = r
		os.Stdout.WriteString("registered\n")
		time.Sleep(time.Hour)
	}
	dir := Dir(t.TempDir())
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeadRunIsSwept$")
	cmd.Env = append(os.Environ(), "ATTACHED_HELPER="+dir)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("registered\n"))
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	if got, _ := List(dir); len(got) != 1 || got[0].Name != "run.7777" {
		t.Fatalf("a live run in another process: %+v", got)
	}
	// ps:kill run.7777: the pid it registered gets the signal.
	if err := Signal(dir, "run.7777", unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("the run's process: %v; want killed", err)
	}
	if err := Signal(dir, "run.7777", unix.SIGKILL); !errors.Is(err, ErrNoRun) {
		t.Errorf("a dead run signalled: %v", err)
	}
	if got, _ := List(dir); len(got) != 0 {
		t.Fatalf("a dead run is listed: %+v", got)
	}
	for _, name := range []string{"run.7777.lock", "run.7777.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s not swept: %v", name, err)
		}
	}
}
