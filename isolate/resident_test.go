package isolate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

// The committed resident init is what its source builds to: a change to
// resident.c without `make resident` fails here. Another gcc than the
// one recorded may lay the same program out otherwise, so the test
// compares only where that one is installed, and says so where not.
func TestResidentBinaryFromSource(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the resident init is built for amd64 alone")
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	version, err := exec.Command(cc, "--version").Output()
	if err != nil {
		t.Skipf("no %s to rebuild the resident init with: %v", cc, err)
	}
	recorded, err := os.ReadFile("resident/gcc-version")
	if err != nil {
		t.Fatal(err)
	}
	have, _, _ := strings.Cut(string(version), "\n")
	if want := strings.TrimSpace(string(recorded)); have != want {
		t.Skipf("%s is %q; the resident init was built with %q", cc, have, want)
	}
	out := filepath.Join(t.TempDir(), "resident")
	if b, err := exec.Command("sh", "resident/build.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	built, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, residentInit) {
		t.Errorf("resident/resident-amd64 (%d bytes) is not what resident.c builds to (%d bytes): run make resident and commit it", len(residentInit), len(built))
	}
	// A few kilobytes, or the point of it is lost.
	if len(residentInit) > 16<<10 {
		t.Errorf("the resident init is %d bytes", len(residentInit))
	}
}

// residentHostMain stands in for a dyno's Go init, outside any sandbox:
// it starts command as its child, as init starts the app, says
// "started" and hands over to the resident init, which empties upper ("" for none) at the end.
// The test holds the other end of its fd 3.
func residentHostMain(command, upper string) int {
	runtime.LockOSThread()
	fd, err := residentMemfd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	unix.CloseOnExec(controlFD)
	// As init does: orphans of the app made before the exec are ours.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", command}, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 127
	}
	ufd := -1
	if upper != "" {
		if ufd, err = unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 125
		}
	}
	// As init does: "started" first, then the handover.
	if err := json.NewEncoder(os.NewFile(controlFD, "control")).Encode(Message{Type: msgStarted, Pid: pid}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	err = handOver(fd, "host.1", pid, false, ufd)
	fmt.Fprintln(os.Stderr, err)
	return 125
}

// residentRun is a resident init started by residentHostMain.
type residentRun struct {
	cmd  *exec.Cmd
	ctl  *os.File // the parent's end of the control socket
	out  *bufio.Scanner
	main int // the app's pid, from "started"
}

func startResident(t *testing.T, command, upper string) *residentRun {
	t.Helper()
	if len(residentInit) == 0 {
		t.Skip("no resident init for " + runtime.GOARCH)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctl, child := os.NewFile(uintptr(fds[0]), "ctl"), os.NewFile(uintptr(fds[1]), "ctl")
	defer child.Close()
	cmd := exec.Command("/proc/self/exe", "resident-host", command, upper)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &residentRun{cmd: cmd, ctl: ctl, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		ctl.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	var m Message
	if err := json.NewDecoder(ctl).Decode(&m); err != nil || m.Type != msgStarted || m.Pid <= 0 {
		t.Fatalf("resident init said %+v, %v; want started with a pid", m, err)
	}
	r.main = m.Pid
	return r
}

func (r *residentRun) wait(t *testing.T) int {
	t.Helper()
	r.cmd.Wait()
	return exitCode(unix.WaitStatus(r.cmd.ProcessState.Sys().(syscall.WaitStatus)))
}

// The resident init is what a dyno's init is once it has started: a
// few kilobytes of code run from the sealed memfd, under the dyno's
// name, and a few kilobytes of memory.
func TestResidentInitAfterStart(t *testing.T) {
	t.Parallel()
	if len(residentInit) == 0 {
		t.Skip("no resident init for " + runtime.GOARCH)
	}
	d, _ := startDyno(t, "sleep 1000")
	// "started" comes before the handover's exec: wait for the exec,
	// whose mark is init's code shrinking to the resident init's.
	var fields map[string]string
	kB := func(k string) int {
		n, _ := strconv.Atoi(strings.TrimSuffix(fields[k], " kB"))
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.InitPid()))
		if err != nil {
			t.Fatal(err)
		}
		fields = map[string]string{}
		for _, l := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		// Mid-exec the kernel shows neither program's name or code.
		if fields["Name"] == "test.1" && kB("VmExe") > 0 && kB("VmExe") <= 16 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if fields["Name"] != "test.1" || kB("VmExe") > 16 || kB("VmRSS") > 200 {
		t.Errorf("init is %s with %d kB of code, VmRSS %d kB; want test.1, the resident init, under 200 kB",
			fields["Name"], kB("VmExe"), kB("VmRSS"))
	}
	if fields["TracerPid"] != "0" {
		t.Errorf("TracerPid %s", fields["TracerPid"])
	}
	if os.Getuid() == 0 {
		// Not dumpable: only a capable reader gets this far.
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", d.InitPid())); err != nil || !strings.HasPrefix(exe, "/memfd:dyno-init") {
			t.Errorf("init's exe is %q, %v; want the memfd", exe, err)
		}
	}
}

// The exit status is the main process's, in the shell's convention.
func TestResidentExitStatus(t *testing.T) {
	t.Parallel()
	for command, want := range map[string]int{"exit 7": 7, "kill -TERM $$": 143, "true": 0} {
		if got := startResident(t, command, "").wait(t); got != want {
			t.Errorf("%q: status %d, want %d", command, got, want)
		}
	}
}

// Orphans are re-parented to the resident init (the subreaper attribute
// survived the exec) and reaped by it.
func TestResidentReapsOrphans(t *testing.T) {
	t.Parallel()
	r := startResident(t, `sh -c 'sleep 0.3 & echo $!'; exec sleep 1000`, "")
	r.out.Scan()
	orphan, _ := strconv.Atoi(r.out.Text())
	host := r.cmd.Process.Pid
	// Its parent, the inner sh, exits right after the echo.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, ok := readStat(orphan, make([]byte, 512))
		if ok && p.ppid == host {
			break
		}
		if !ok || time.Now().After(deadline) {
			t.Fatalf("orphan %d: parent %d (%v), want the resident init %d", orphan, p.ppid, ok, host)
		}
		time.Sleep(5 * time.Millisecond)
	}
	testutil.WaitGone(t, orphan)
	for {
		// Gone from /proc altogether: reaped, not a zombie.
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", orphan)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d is a zombie the resident init never reaped", orphan)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.ctl.Write(killRecord())
	if st := r.wait(t); st != 137 {
		t.Errorf("status %d, want 137", st)
	}
}

// A signal sent to the resident init reaches every process of the
// dyno, one in a session of its own included.
func TestResidentForwardsSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		r := startResident(t, `setsid sh -c 'sleep 1000 & echo $!' > /tmp/.dyno-r-$$; sleep 1000 & sleep 0.1; echo $$ $! $(cat /tmp/.dyno-r-$$); rm /tmp/.dyno-r-$$; wait`, "")
		pids := readPids(t, r.out, 3)
		r.cmd.Process.Signal(sig)
		if st := r.wait(t); st != 128+int(sig) {
			t.Errorf("%v: status %d, want %d", sig, st, 128+int(sig))
		}
		testutil.WaitGone(t, pids...)
	}
}

// The stop sequence: 's' SIGTERM reaches the dyno, a process ignoring it
// survives, and 'k' ends everything.
func TestResidentStopSequence(t *testing.T) {
	t.Parallel()
	r := startResident(t, `trap '' TERM; echo $$; while :; do sleep 0.05; done`, "")
	pids := readPids(t, r.out, 1)
	r.ctl.Write(signalRecord(syscall.SIGTERM))
	time.Sleep(100 * time.Millisecond)
	if !testutil.Alive(pids[0]) {
		t.Fatal("process ignoring SIGTERM died from it")
	}
	r.ctl.Write(killRecord())
	if st := r.wait(t); st != 137 {
		t.Errorf("status %d, want 137", st)
	}
	testutil.WaitGone(t, pids...)
}

// The parent gone (the socket closed), the resident init kills
// everything and exits.
func TestResidentParentGone(t *testing.T) {
	t.Parallel()
	r := startResident(t, `setsid sh -c 'sleep 1000 & echo $!' > /tmp/.dyno-g-$$; sleep 1000 & sleep 0.1; echo $$ $! $(cat /tmp/.dyno-g-$$); rm /tmp/.dyno-g-$$; wait`, "")
	pids := readPids(t, r.out, 3)
	r.ctl.Close()
	if st := r.wait(t); st != 137 {
		t.Errorf("status %d, want 137", st)
	}
	testutil.WaitGone(t, pids...)
}

// At the end, the resident init empties the upper dir it was given,
// without following a symbolic link out of it, and survives a tree
// deeper than it descends.
func TestResidentEmptiesUpper(t *testing.T) {
	t.Parallel()
	upper, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644)
	for _, p := range []string{"a/b/c/d", "e", ".hidden/f"} {
		os.MkdirAll(filepath.Join(upper, p), 0o755)
		for i := range 50 {
			os.WriteFile(filepath.Join(upper, p, fmt.Sprint("file", i)), nil, 0o644)
		}
	}
	os.Symlink(outside, filepath.Join(upper, "a", "out"))
	deep := filepath.Join(upper, "deep")
	os.Mkdir(deep, 0o755)
	dfd, err := unix.Open(deep, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 300 {
		unix.Mkdirat(dfd, "d", 0o755)
		next, err := unix.Openat(dfd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(dfd)
		if err != nil {
			t.Fatal(err)
		}
		dfd = next
	}
	unix.Close(dfd)

	if st := startResident(t, "exit 3", upper).wait(t); st != 3 {
		t.Errorf("status %d, want 3", st)
	}
	left, _ := os.ReadDir(upper)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	// Below its depth limit, "deep" is the manager's to remove.
	if len(names) > 1 || len(names) == 1 && names[0] != "deep" {
		t.Errorf("upper holds %v after the end", names)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("a file behind a symbolic link went: %v", err)
	}
}

// The Go init's own loop, where there is no resident init to hand over
// to, or the exec failed: the same behaviour, with the same records.
func TestGoInitLoop(t *testing.T) {
	t.Parallel()
	sp, err := NewSpawner()
	if err != nil {
		t.Fatal(err)
	}
	sp.keepGoInit = true
	start := func(command string) (*Dyno, *bufio.Scanner) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		d, err := sp.Start(Spec{Name: "go.1", Argv: ShellArgv(command), Env: os.Environ(), Stdout: w, Stderr: w})
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Kill(); r.Close() })
		return d, bufio.NewScanner(r)
	}
	d, _ := start("sleep 1000")
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.InitPid())); !strings.Contains(string(b), "Threads:") || strings.Contains(string(b), "Threads:\t1\n") {
		t.Errorf("init is not the Go init:\n%s", b)
	}
	d.Signal(syscall.SIGTERM)
	if st, _ := d.Wait(); st != 143 {
		t.Errorf("SIGTERM: status %d, want 143", st)
	}
	d, sc := start(`trap '' TERM; echo $$ ready; while :; do sleep 0.05; done`)
	for sc.Scan() && !strings.HasSuffix(sc.Text(), "ready") {
	}
	d.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	if !testutil.Alive(d.Pid()) {
		t.Fatal("process ignoring SIGTERM died from it")
	}
	d.Kill()
	if st, _ := d.Wait(); st != 137 {
		t.Errorf("kill: status %d, want 137", st)
	}
	d, _ = start("exit 5")
	if st, _ := d.Wait(); st != 5 {
		t.Errorf("exit 5: status %d", st)
	}
}
