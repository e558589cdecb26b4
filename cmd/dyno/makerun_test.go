package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// make run, stopped with Ctrl-C at a terminal (the line discipline
// sends SIGINT to the whole foreground process group, make and dyno
// alike), ends as a command stopped by Ctrl-C does: dyno stops its
// processes and exits 0, and make, which got SIGINT too, dies of it
// quietly. GNU make prints "make: *** [Makefile:N: run] Interrupt" only
// for a recipe whose child died of the signal, as a shell between make
// and dyno would.
func TestMakeRunCtrlC(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// -o build: the binary under test, not a build of bin/dyno.
	cmd := exec.Command("make", "-s", "-C", filepath.Join("..", ".."), "-o", "build", "run", "DYNO="+dynoBin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "NO_COLOR=1", "MAKEFLAGS=", "MAKELEVEL=")
	out, _ := onPTY(t, cmd, "web.1: State changed from starting to up", "\x03")
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !(ws.Signaled() && ws.Signal() == syscall.SIGINT) && ws.ExitStatus() != 0 {
		t.Errorf("make run after Ctrl-C: %v; want death by SIGINT or exit 0", cmd.ProcessState)
	}
	for _, bad := range []string{"Interrupt", "make: ***"} {
		if strings.Contains(out, bad) {
			t.Errorf("make run after Ctrl-C says %q:\n%s", bad, out)
		}
	}
	wantLines(t, out, "Starting examples/hello under dyno start", "Stopping all processes with SIGTERM")
}
