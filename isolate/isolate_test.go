package isolate

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

// The test binary is also the dyno init (Start re-executes
// /proc/self/exe) and, for the parent-death test, a throwaway manager.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "init":
			Init()
		case "manager":
			os.Exit(managerMain(os.Args[2]))
		case "sandbox-manager":
			os.Exit(sandboxManagerMain(os.Args[2]))
		case "apps-manager":
			os.Exit(appsManagerMain(os.Args[2]))
		case "build-manager":
			os.Exit(buildManagerMain(os.Args[2]))
		case "resident-host":
			os.Exit(residentHostMain(os.Args[2], os.Args[3]))
		}
	}
	os.Exit(m.Run())
}

// managerMain starts one dyno running command, copies its output to
// stdout and waits: the test SIGKILLs it.
func managerMain(command string) int {
	sp, err := NewSpawner()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := sp.Start(Spec{Name: "web.1", Argv: ShellArgv(command), Env: os.Environ(), Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, _ := d.Wait()
	return st
}

// startDyno starts command in a dyno and returns it with a reader of its
// output lines.
func startDyno(t *testing.T, command string) (*Dyno, *bufio.Scanner) {
	t.Helper()
	sp, err := NewSpawner()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d, err := sp.Start(Spec{Name: "test.1", Argv: ShellArgv(command), Env: os.Environ(), Stdout: w, Stderr: w})
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Kill(); r.Close() })
	return d, bufio.NewScanner(r)
}

// readPids reads lines until one holds n space-separated pids.
func readPids(t *testing.T, sc *bufio.Scanner, n int) []int {
	t.Helper()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != n {
			continue
		}
		var pids []int
		for _, s := range f {
			p, err := strconv.Atoi(s)
			if err != nil {
				break
			}
			pids = append(pids, p)
		}
		if len(pids) == n {
			return pids
		}
	}
	t.Fatalf("no line with %d pids: %v", n, sc.Err())
	return nil
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		command string
		want    int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"kill -TERM $$", 143},
		{"no-such-command-dyno-test", 127},
	} {
		d, _ := startDyno(t, tc.command)
		got, err := d.Wait()
		if err != nil || got != tc.want {
			t.Errorf("%q: status %d, %v; want %d", tc.command, got, err, tc.want)
		}
	}
}

func TestStartFailsClearly(t *testing.T) {
	t.Parallel()
	sp, err := NewSpawner()
	if err != nil {
		t.Fatal(err)
	}
	_, err = sp.Start(Spec{Name: "x.1", Argv: []string{"/nonexistent/dyno-test"}, Env: os.Environ()})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/dyno-test") {
		t.Fatalf("err = %v, want one naming the command", err)
	}
}

// A simple command replaces the shell: the dyno's main process is the
// app itself, not a resident sh.
func TestShellExecsSimpleCommand(t *testing.T) {
	t.Parallel()
	d, _ := startDyno(t, "sleep 1000")
	// The pid is the shell's until it execs; wait for that event.
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", d.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("main process is still %q, want sleep (the shell should have exec'd it)", comm)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if kids, _ := descendants(d.InitPid()); len(kids) != 1 {
		t.Fatalf("dyno has processes %v, want only sleep", kids)
	}
}

// SIGTERM reaches every process of the dyno: the main one, a background
// job and a double-forked daemon in its own session.
func TestSignalReachesWholeTree(t *testing.T) {
	t.Parallel()
	d, sc := startDyno(t, `sleep 1000 & bg=$!; setsid sh -c 'sleep 1000 & echo $!' > /tmp/.dyno-test-$$; sleep 0.1; echo $$ $bg $(cat /tmp/.dyno-test-$$); rm /tmp/.dyno-test-$$; wait`)
	pids := readPids(t, sc, 3)
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st, err := d.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st != 143 {
		t.Errorf("status %d, want 143", st)
	}
	testutil.WaitGone(t, pids...)
}

// A process that ignores SIGTERM survives Signal and dies on Kill.
func TestKillAfterIgnoredTerm(t *testing.T) {
	t.Parallel()
	d, sc := startDyno(t, `trap '' TERM; echo $$ ready; while :; do sleep 0.05; done`)
	for sc.Scan() && !strings.HasSuffix(sc.Text(), "ready") {
	}
	pid := d.Pid()
	d.Signal(syscall.SIGTERM)
	// Give it a fair chance to (wrongly) die; then it must still be there.
	time.Sleep(100 * time.Millisecond)
	if !testutil.Alive(pid) {
		t.Fatal("process ignoring SIGTERM died from it")
	}
	d.Kill()
	st, _ := d.Wait()
	if st != 137 {
		t.Errorf("status %d, want 137", st)
	}
	testutil.WaitGone(t, pid)
}

// When the main process exits, whatever it left running goes too.
func TestMainExitEndsDyno(t *testing.T) {
	t.Parallel()
	d, sc := startDyno(t, `sleep 1000 & echo $!; exit 3`)
	pids := readPids(t, sc, 1)
	st, _ := d.Wait()
	if st != 3 {
		t.Errorf("status %d, want 3", st)
	}
	testutil.WaitGone(t, pids...)
}

// SIGKILL of the manager leaves nothing of the dyno alive: init sees the
// control socket close and kills the tree.
func TestManagerDeathKillsDyno(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("/proc/self/exe", "manager", `setsid sh -c 'sleep 1000 & echo $!' > /tmp/.dyno-m-$$; sleep 1000 & sleep 0.1; echo $$ $! $(cat /tmp/.dyno-m-$$); rm /tmp/.dyno-m-$$; wait`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := readPids(t, bufio.NewScanner(out), 3)
	cmd.Process.Kill()
	cmd.Wait()
	testutil.WaitGone(t, pids...)
}

// SIGKILL of a dyno's init: its app dies by PDEATHSIG, and the app's
// children, re-parented to the spawner (a subreaper), are swept by Wait.
func TestInitDeathSweepsOrphans(t *testing.T) {
	t.Parallel()
	d, sc := startDyno(t, `sleep 1000 & echo $$ $!; wait`)
	pids := readPids(t, sc, 2)
	unix.Kill(d.InitPid(), unix.SIGKILL)
	if st, _ := d.Wait(); st != 137 {
		t.Errorf("status %d, want 137", st)
	}
	testutil.WaitGone(t, pids...)
}

func TestShellArgv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"bin/web -p $PORT", "exec bin/web -p $PORT"},
		{"FOO=1 BAR=2 bin/web", "FOO=1 BAR=2 exec bin/web"},
		{`FOO="a b" bin/web`, `FOO="a b" bin/web`},
		{"a && b", "a && b"},
		{"a; b", "a; b"},
		{"a | b", "a | b"},
		{"a > log", "a > log"},
		{"x &", "x &"},
		{"while true; do x; done", "while true; do x; done"},
		{"echo 'a;b'", "exec echo 'a;b'"},
		{`echo "a|b"`, `exec echo "a|b"`},
		{"exec foo", "exec foo"},
		{"FOO=1", "FOO=1"},
		{"exit 3", "exit 3"},
		{"cd sub", "cd sub"},
		{"echo $(date)", "echo $(date)"},
		{"echo `date`", "echo `date`"},
		{"echo 'unterminated", "echo 'unterminated"},
	} {
		got := ShellArgv(tc.in)
		if len(got) != 3 || got[0] != "/bin/sh" || got[1] != "-c" || got[2] != tc.want {
			t.Errorf("ShellArgv(%q) = %q, want [/bin/sh -c %q]", tc.in, got, tc.want)
		}
	}
}

func TestDescendants(t *testing.T) {
	t.Parallel()
	d, sc := startDyno(t, `sleep 1000 & sh -c 'sleep 1000 & wait' & sleep 0.1; echo ready; wait`)
	for sc.Scan() && sc.Text() != "ready" {
	}
	pids, err := descendants(d.InitPid())
	if err != nil {
		t.Fatal(err)
	}
	// sh, sleep, sh, sleep
	if len(pids) != 4 {
		t.Fatalf("descendants = %v, want 4 processes", pids)
	}
}

func TestProfileArgv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(dir+"/.profile.d", 0o755)
	os.WriteFile(dir+"/.profile.d/b.sh", []byte("export ORDER=\"$ORDER b\"\n"), 0o644)
	os.WriteFile(dir+"/.profile.d/a.sh", []byte("export ORDER=\"$ORDER a\"; export KEPT=${KEPT:-default}\n"), 0o644)
	os.WriteFile(dir+"/.profile", []byte("export ORDER=\"$ORDER profile\"\n"), 0o644)
	argv := ProfileArgv(`echo "$ORDER|$KEPT"`)
	// The script names /app: run it with /app pointing at dir.
	script := strings.ReplaceAll(argv[2], "/app/", dir+"/")
	out, err := exec.Command(argv[0], argv[1], script).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != " a b profile|default\n" {
		t.Errorf("got %q: want .profile.d in lexical order, then .profile", out)
	}
	cmd := exec.Command(argv[0], argv[1], script)
	cmd.Env = append(os.Environ(), "KEPT=config")
	out, _ = cmd.Output()
	if !strings.HasSuffix(string(out), "|config\n") {
		t.Errorf("a config var did not win over the profile default: %q", out)
	}
}
