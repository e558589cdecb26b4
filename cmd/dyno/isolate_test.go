package main

// Isolation through the binary: dyno runs as an unprivileged user (uid
// 65534 when the tests run as root), because being root proves nothing
// about rootless operation.

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/isolate/cgroup"
	"golang.org/x/sys/unix"
)

// isolatedEnv is a project folder and a DYNO_HOME owned by the
// unprivileged user.
type isolatedEnv struct {
	project, home string
}

func newIsolatedEnv(t testing.TB, files map[string]string) *isolatedEnv {
	t.Helper()
	if reason := testutil.UserNSOff(); reason != "" {
		t.Skip(reason)
	}
	testutil.NoForeignSubIDs(t)
	e := &isolatedEnv{project: testutil.SharedDir(t), home: testutil.SharedDir(t)}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(e.project, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.GiveToNobody(t, e.project, e.home)
	return e
}

func (e *isolatedEnv) command(args ...string) *exec.Cmd {
	cmd := exec.Command(dynoBin, args...)
	cmd.Dir = e.project
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "DYNO_HOME=" + e.home, "NO_COLOR=1", "HOME=/nonexistent"}
	testutil.AsNobody(cmd)
	return cmd
}

func (e *isolatedEnv) start(t *testing.T, args ...string) *session {
	t.Helper()
	return startSession(t, e.command(append([]string{"start", "--isolate", "--log-format", "logplex"}, args...)...))
}

// markerAlive reports whether any process on the host has marker in its
// command line. Pids inside a dyno are its own namespace's, so tests
// find their processes by a unique argument instead.
func markerAlive(marker string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && holdsMarker(string(b), marker) {
			stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && len(stat) > i+2 && stat[i+2] != 'Z' {
				return true
			}
		}
	}
	return false
}

// holdsMarker says whether cmdline holds marker with no digit either
// side: other tests' processes, running at the same time, have numbers
// of their own in their command lines (temp folders, sleeps).
func holdsMarker(cmdline, marker string) bool {
	for i := 0; ; {
		j := strings.Index(cmdline[i:], marker)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(marker)
		if (start == 0 || !isDigit(cmdline[start-1])) && (end == len(cmdline) || !isDigit(cmdline[end])) {
			return true
		}
		i = start + 1
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func waitMarkerGone(t *testing.T, marker string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for markerAlive(marker) {
		if time.Now().After(deadline) {
			t.Fatalf("a process with %q outlived the dyno by %v", marker, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// uniqueSleep is a sleep length no other process on the host is likely
// to name, so that a test can find its own processes by it.
func uniqueSleep() string { return strconv.Itoa(900000000 + rand.IntN(99999999)) }

func TestIsolatedStart(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, map[string]string{
		"Procfile": "a: echo \"uid=$(id -u)($(whoami)) home=$HOME pwd=$(pwd) dyno=$DYNO\"; until grep -q . /proc/1/cmdline; do :; done; echo \"pid1=$(tr '\\0' ' ' < /proc/1/cmdline)($(cat /proc/1/comm))\"; echo host=$(cat /proc/sys/kernel/hostname); echo scribble > scribble; cat scribble; exec sleep 1000\n",
	})
	host, _ := os.Hostname()
	s := e.start(t)
	s.waitFor(`app\[a\.1\]: uid=12345\(u12345\) home=/app pwd=/app dyno=a\.1$`)
	// A cold init has the dyno's name in its command line; one started
	// warm, ahead of its dyno, is named by its comm.
	s.waitFor(`app\[a\.1\]: pid1=dyno init (a\.1 )?\(a\.1\)$`)
	h := s.waitFor(`app\[a\.1\]: host=(\S+)$`)[1]
	if h == host {
		t.Errorf("dyno hostname is the host's, %q", h)
	}
	s.waitFor(`app\[a\.1\]: scribble$`)
	s.waitFor(`State changed from starting to up`)
	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 0 {
		t.Fatalf("exit %d:\n%s", st, strings.Join(s.lines(), "\n"))
	}
	if _, err := os.Stat(filepath.Join(e.project, "scribble")); err == nil {
		t.Error("the dyno's write reached the project folder")
	}
	left, _ := os.ReadDir(filepath.Join(e.home, "dynos", localAppName(e.project)))
	if len(left) != 0 {
		t.Errorf("dyno dirs left: %v", left)
	}
}

// A SIGTERM-ignoring app is killed after the grace period, and its
// background processes with it.
func TestIsolatedStopTimeout(t *testing.T) {
	t.Parallel()
	marker := uniqueSleep()
	e := newIsolatedEnv(t, map[string]string{
		"Procfile": "stubborn: trap '' TERM; sleep " + marker + " & echo ready; while :; do sleep 0.05; done\n",
	})
	s := e.start(t, "-t", "0.3")
	s.waitFor(`app\[stubborn\.1\]: ready`)
	s.signal(syscall.SIGINT)
	s.waitFor(`heroku\[stubborn\.1\]: Error R12 \(Exit timeout\)`)
	s.waitFor(`heroku\[stubborn\.1\]: Process exited with status 137`)
	if st := s.wait(); st != 0 {
		t.Errorf("exit %d", st)
	}
	waitMarkerGone(t, marker, time.Second)
}

// kill -9 of dyno: every dyno dies within a second, a double-forked
// daemon included.
func TestIsolatedKill9(t *testing.T) {
	t.Parallel()
	marker := uniqueSleep()
	e := newIsolatedEnv(t, map[string]string{
		"Procfile": "d: setsid sh -c 'sleep " + marker + " &'; sleep " + marker + " & echo ready; exec sleep " + marker + "\n",
	})
	s := e.start(t)
	s.waitFor(`app\[d\.1\]: ready`)
	if !markerAlive(marker) {
		t.Fatal("test is broken: the marker processes are not visible")
	}
	s.signal(syscall.SIGKILL)
	s.wait()
	waitMarkerGone(t, marker, time.Second)

	// Nobody removed the dead dyno's directory; the next start sweeps it.
	dynos := filepath.Join(e.home, "dynos", localAppName(e.project))
	// (and that of the init kept warm for the next dyno)
	if left, _ := os.ReadDir(dynos); len(left) == 0 {
		t.Fatalf("want the killed dyno's dir left behind, found none")
	}
	// The warm init notices its manager's death a moment later than the
	// dynos do; a dir stays locked until it has gone, so start again
	// until the sweep finds everything unlocked.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, err := e.command("run", "--isolate", "true").CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		left, _ := os.ReadDir(dynos)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale dyno dirs not swept: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIsolatedRunStatus(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, map[string]string{"existing": "x\n"})
	cmd := e.command("run", "--isolate", "cat existing; echo $DYNO; touch new; exit 9")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, _ := cmd.Output()
	if st := cmd.ProcessState.ExitCode(); st != 9 || string(out) != "x\nrun.1\n" {
		t.Errorf("exit %d, %q; want 9, \"x\\nrun.1\\n\"", st, out)
	}
	// A one-off's output is the command's alone: degraded mode is said
	// by dyno start, once per formation.
	if stderr.String() != "" {
		t.Errorf("stderr %q; want nothing from dyno", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(e.project, "new")); err == nil {
		t.Error("the one-off's write reached the folder")
	}
}

func TestIsolatedRunPTY(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	pty.Setsize(slave, &pty.Winsize{Rows: 41, Cols: 99})
	st, text := runOnTTY(t, e.command("run", "--isolate", "tty; stty size; exit 6"), master, slave)
	if st != 6 {
		t.Errorf("exit %d, want 6: %q", st, text)
	}
	// The terminal is the dyno's own: its devpts numbers from 0.
	if !regexp.MustCompile(`(?m)^/dev/pts/\d+$`).MatchString(text) || !strings.Contains(text, "41 99\n") {
		t.Errorf("output %q; want a /dev/pts path and the size 41 99", text)
	}
}

// limitsReason says why cgroup v2 limits are unavailable here, or "".
func limitsReason() string {
	p := cgroup.ProbeSystem("/sys/fs/cgroup", "/proc/self/cgroup")
	if p.Usable {
		return ""
	}
	return p.Reason
}

// Without usable cgroup v2, --require-limits is a one-line error; with
// it, the dyno runs.
func TestIsolatedRequireLimits(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	cmd := e.command("run", "--isolate", "--require-limits", "echo ran")
	out, _ := cmd.CombinedOutput()
	st := cmd.ProcessState.ExitCode()
	if reason := limitsReason(); reason != "" {
		if st == 0 || !strings.Contains(string(out), "--require-limits") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("exit %d, %q; want one line of error", st, out)
		}
		return
	}
	if st != 0 || string(out) != "ran\n" {
		t.Errorf("exit %d, %q", st, out)
	}
}

// A dyno that blows through twice its quota is OOM-killed by its cgroup
// and reported as R15. Runs only where cgroup v2 can be delegated
// (testutil.DelegatedCgroup): make test-kernel runs it.
func TestIsolatedOOMIsR15(t *testing.T) {
	t.Parallel()
	cg := testutil.DelegatedCgroup(t)
	e := newIsolatedEnv(t, map[string]string{
		// dd's buffer is bs bytes, all touched: 200 MB against a 64 MB
		// memory.max (quota 32 MB, R15 at 2x).
		"Procfile": "hog: echo start; dd if=/dev/zero of=/dev/null bs=200M count=1; echo survived; exec sleep 1000\n",
	})
	os.WriteFile(filepath.Join(e.home, "dyno.toml"), []byte("[sizes.tiny]\nmemory = \"32MB\"\npids = 64\n"), 0o644)
	testutil.GiveToNobody(t, e.home)
	s := e.startIn(t, cg, "--size", "tiny", "--require-limits")
	s.waitFor(`heroku\[hog\.1\]: Error R15 \(Memory quota vastly exceeded\)`)
	s.waitFor(`heroku\[hog\.1\]: Process exited with status 137`)
	s.signal(syscall.SIGTERM)
	s.wait()
	for _, l := range s.lines() {
		if strings.HasSuffix(l, "]: survived") {
			t.Errorf("the hog survived its memory limit")
		}
	}
}

// A project folder that holds DYNO_HOME (~/.local/share/dyno when the
// folder is ~) and the daemon's runtime folder: its dynos see both
// empty, in dyno start and dyno run alike, and no app's ledger (config
// vars included) is readable from them.
func TestIsolatedHidesDynoHome(t *testing.T) {
	t.Parallel()
	if reason := testutil.UserNSOff(); reason != "" {
		t.Skip(reason)
	}
	secret := "hunter2-" + uniqueSleep()
	const inside = `for d in .local/share/dyno run/dyno; do echo "$d: [$(ls -A $d)]"; done; ` +
		`touch .local/share/dyno/x 2>/dev/null && echo home writable; ` +
		`grep -rsl "hunter2-[0-9]" . /tmp; echo done`
	project := testutil.SharedDir(t)
	e := &isolatedEnv{project: project, home: filepath.Join(project, ".local", "share", "dyno")}
	runtime := filepath.Join(project, "run")
	for _, dir := range []string{e.home, filepath.Join(runtime, "dyno")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(runtime, "dyno", "dyno.sock"), []byte(secret+"\n"), 0o600)
	os.WriteFile(filepath.Join(project, "Procfile"), []byte("a: "+inside+"; exec sleep 1000\n"), 0o644)
	testutil.GiveToNobody(t, project)
	command := func(args ...string) *exec.Cmd {
		cmd := e.command(args...)
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+runtime)
		return cmd
	}
	for _, args := range [][]string{{"apps:create", "secretapp"}, {"config:set", "SECRET=" + secret, "-a", "secretapp"}} {
		if out, err := command(args...).CombinedOutput(); err != nil {
			t.Fatalf("dyno %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ledger, err := os.ReadFile(filepath.Join(e.home, "apps", "secretapp", "ledger.jsonl"))
	if err != nil || !strings.Contains(string(ledger), secret) {
		t.Fatalf("test is broken: the ledger does not hold the secret (%v)", err)
	}
	want := []string{".local/share/dyno: []", "run/dyno: []", "done"}

	out, err := command("run", "--isolate", inside).CombinedOutput()
	if err != nil || strings.Join(strings.Split(strings.TrimSpace(string(out)), "\n"), "|") != strings.Join(want, "|") {
		t.Errorf("dyno run --isolate: %v, %q; want %q", err, out, want)
	}

	s := startSession(t, command("start", "--isolate", "--log-format", "logplex"))
	s.waitFor(`app\[a\.1\]: done$`)
	s.signal(syscall.SIGTERM)
	s.wait()
	var got []string
	for _, l := range s.lines() {
		if _, text, ok := strings.Cut(l, "app[a.1]: "); ok {
			got = append(got, text)
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("dyno start --isolate: the dyno said %q; want %q", got, want)
	}
}

// sleepPid finds the host pid of the live `sleep marker`.
func sleepPid(t *testing.T, marker string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && string(b) == "sleep\x00"+marker+"\x00" && testutil.Alive(pid) {
			return pid
		}
	}
	return 0
}

// procIDs reads a process's host uid and gid.
func procIDs(t *testing.T, pid int) (uid, gid int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			uid, _ = strconv.Atoi(f[1])
		} else if len(f) > 1 && f[0] == "Gid:" {
			gid, _ = strconv.Atoi(f[1])
		}
	}
	return uid, gid
}

// With subordinate ids, the daemon runs each app's dynos as host ids of
// the app's own, so one app's uid cannot read another's environment
// (its config vars) through /proc; without, it says once how to get them.
// Each app's dynos mount an overlay over the app's own copy of its slug,
// made once and owned by its ids: a second start copies nothing, the
// app writes its files and reads its private ones, another app reads
// neither, and destroy and slugs:gc remove the copies.
func TestDaemonAppsOwnIDs(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	testutil.WithoutSubIDs(t, func() {
		noIDs := e.startDaemon(t)
		noIDs.stop(syscall.SIGTERM)
		if !strings.Contains(noIDs.out.String(), "usermod --add-subuids") {
			t.Errorf("without subordinate ids the daemon did not say how to get them:\n%s", noIDs.out.String())
		}
	})

	base := testutil.SubIDs(t, 3*65536)
	markers := map[string]string{"alpha": uniqueSleep(), "beta": ""}
	markers["beta"] = strconv.Itoa(100 + mustAtoi(t, markers["alpha"]))
	for name, m := range markers {
		e.deployPrivate(t, name, "worker: exec sleep "+m+"\n")
		e.must(t, "config:set", "SECRET="+name+"-secret", "-a", name)
		e.must(t, "ps:scale", "worker=1", "-a", name)
	}
	d := e.startDaemon(t)
	if strings.Contains(d.out.String(), "usermod") {
		t.Errorf("the daemon warned with subordinate ids there:\n%s", d.out.String())
	}
	pids := map[string]int{}
	defer func() {
		if t.Failed() {
			t.Logf("daemon:\n%s", d.out.String())
			for name := range markers {
				out, _ := e.dynoOut(t, "logs", "-a", name, "-n", "50")
				t.Logf("%s logs:\n%s", name, out)
			}
		}
	}()
	e.eventually(t, "both apps' workers", func() bool {
		for name, m := range markers {
			pids[name] = sleepPid(t, m)
		}
		return pids["alpha"] != 0 && pids["beta"] != 0
	})
	uidA, _ := procIDs(t, pids["alpha"])
	uidB, gidB := procIDs(t, pids["beta"])
	if uidA == uidB || uidA < base || uidB < base || uidA >= base+3*65536 || uidB >= base+3*65536 {
		t.Fatalf("host uids: alpha %d, beta %d; want each app its own, from %d", uidA, uidB, base)
	}
	readAsB := func(path string) (string, error) {
		cmd := exec.Command("cat", path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uidB), Gid: uint32(gidB), Groups: []uint32{}}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := readAsB("/proc/" + strconv.Itoa(pids["alpha"]) + "/environ"); err == nil || strings.Contains(out, "alpha-secret") {
		t.Errorf("beta's uid read alpha's environment: %q", out)
	}

	// alpha's own copy of its slug: its ids', in a folder of the
	// daemon's user alone.
	owned := ownLowers(t, e.home, "alpha")
	if len(owned) != 1 {
		t.Fatalf("alpha's own copies of its slug: %v; want one", owned)
	}
	lowerA := owned[0]
	if st := statT(t, lowerA); int(st.Uid) != uidA {
		t.Errorf("%s is uid %d's; want alpha's %d", lowerA, st.Uid, uidA)
	}
	if st := statT(t, filepath.Dir(lowerA)); st.Mode&0o777 != 0o700 || st.Uid != testutil.Nobody {
		t.Errorf("%s: mode %#o, uid %d; want 0700, the daemon's user's", filepath.Dir(lowerA), st.Mode&0o777, st.Uid)
	}
	// The file the build made 0600 is alpha's alone.
	for _, p := range []string{filepath.Join(lowerA, "private.txt"), "/proc/" + strconv.Itoa(pids["alpha"]) + "/root/app/private.txt"} {
		if out, err := readAsB(p); err == nil || strings.Contains(out, "alpha-private") {
			t.Errorf("beta's uid read alpha's %s: %q", p, out)
		}
	}
	// Two one-offs next to the worker: each an overlay over the same
	// tree, made once; the app reads its private file and writes its
	// files, which stay its own, and nothing reaches the lower.
	ino := statT(t, lowerA).Ino
	script := `awk '$5 == "/app" { for (i = 7; $i != "-"; i++); print $(i+1) }' /proc/self/mountinfo; cat private.txt; echo more >> private.txt && stat -c '%u %a' private.txt; echo new > /app/new && echo wrote`
	for i := range 2 {
		out := e.must(t, "run", "-a", "alpha", script)
		if want := "overlay\nalpha-private\n12345 600\nwrote\n"; !strings.Contains(out, want) {
			t.Errorf("run %d: said %q; want %q", i+1, out, want)
		}
		if got := ownLowers(t, e.home, "alpha"); len(got) != 1 || got[0] != lowerA || statT(t, lowerA).Ino != ino {
			t.Errorf("run %d: alpha's copies %v; want %s, the same inode, made once", i+1, got, lowerA)
		}
	}
	if b, err := os.ReadFile(filepath.Join(lowerA, "private.txt")); err != nil || string(b) != "alpha-private\n" {
		t.Errorf("alpha's lower holds %q, %v; want it untouched", b, err)
	}
	d.stop(syscall.SIGTERM)
	// Nothing of the apps' dynos is left in the daemon's home.
	left, _ := filepath.Glob(filepath.Join(e.home, "dynos", "*", "*.*-*"))
	if len(left) != 0 {
		t.Errorf("dyno dirs left: %v", left)
	}

	// slugs:gc removes beta's copy of a slug no release of its keeps.
	old := ownLowers(t, e.home, "beta")
	e.deployPrivate(t, "", "worker: exec sleep 2\n")
	e.must(t, "run", "-a", "beta", "true")
	if got := ownLowers(t, e.home, "beta"); len(got) != 2 || len(old) != 1 {
		t.Fatalf("beta's copies %v after a new release; want the old %v and a new one", got, old)
	}
	out := e.must(t, "slugs:gc", "--keep", "1")
	if !strings.Contains(out, "Removed beta's copy of sha256:"+filepath.Base(old[0])) {
		t.Errorf("slugs:gc said %q; want beta's copy of %s removed", out, filepath.Base(old[0]))
	}
	if got := ownLowers(t, e.home, "beta"); len(got) != 1 || got[0] == old[0] {
		t.Errorf("beta's copies after slugs:gc: %v; want only the new one", got)
	}
	// A copy that is not the app's ids' (subids.json lost and the app
	// given another slice) is refused, naming the fix.
	cur := ownLowers(t, e.home, "beta")[0]
	if err := os.Lchown(cur, uidB+1, gidB+1); err != nil {
		t.Fatal(err)
	}
	if out, st := e.dynoOut(t, "run", "-a", "beta", "true"); st == 0 || !strings.Contains(out, "remove it as root") {
		t.Errorf("run over a copy of other ids: exit %d, %q; want an error naming the fix", st, out)
	}
	if err := os.Lchown(cur, uidB, gidB); err != nil {
		t.Fatal(err)
	}
	// Destroying alpha removes its copies, its ids' files, with it.
	e.must(t, "apps:destroy", "alpha", "--confirm", "alpha")
	for _, p := range []string{filepath.Join(e.home, "apps", "alpha"), filepath.Join(e.home, "trash", "*", "*")} {
		if m, _ := filepath.Glob(p); len(m) != 0 {
			t.Errorf("left after apps:destroy alpha: %v", m)
		}
	}
}

// deployPrivate builds a release of app name whose slug holds
// private.txt, made 0600 by the build; name "" builds beta again.
func (e *isolatedEnv) deployPrivate(t *testing.T, name, procfile string) {
	t.Helper()
	if name == "" {
		name = "beta"
	} else {
		e.must(t, "apps:create", name)
	}
	src := source(t, map[string]string{".fixture": "", "Procfile": procfile, "private.txt": name + "-private\n"})
	if err := os.Chmod(filepath.Join(src, "private.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must(t, "build", src, "-a", name, "-b", fixtureBuildpack(t))
}

// ownLowers lists app's own copies of its slugs.
func ownLowers(t *testing.T, home, app string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(home, "apps", app, "slugs", strings.Repeat("[0-9a-f]", 64)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func statT(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkRunOwnIDs is `dyno run -a APP true` for an app whose slug
// holds 2,000 files, 50 MB: the whole one-off, the CLI's start and exit
// included, once with the daemon user's one uid (shared) and once with
// the app's own ids (own), whose first run made the app's copy of the
// slug. Run as root: go test ./cmd/dyno -run '^$' -bench RunOwnIDs
func BenchmarkRunOwnIDs(b *testing.B) {
	for _, mode := range []string{"shared", "own"} {
		b.Run(mode, func(b *testing.B) {
			e := newIsolatedEnv(b, nil)
			if mode == "own" {
				testutil.SubIDs(b, 65536)
			}
			src := source(b, map[string]string{".fixture": "", "Procfile": "web: exec sleep 1000\n"})
			block := strings.Repeat("0123456789abcdef", 25<<10/16)
			for i := range 2000 {
				dir := filepath.Join(src, fmt.Sprintf("d%02d", i%40))
				os.MkdirAll(dir, 0o755)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), []byte(strconv.Itoa(i)+block), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			testutil.GiveToNobody(b, src)
			e.must(b, "apps:create", "bench")
			e.must(b, "build", src, "-a", "bench", "-b", fixtureBuildpack(b))
			e.must(b, "run", "-a", "bench", "true")
			for b.Loop() {
				e.must(b, "run", "-a", "bench", "true")
			}
		})
	}
}

// A DYNO_HOME that does not exist yet is made by the first dyno's own
// state dir, after the spawner was told to hide it: it is hidden all the
// same, from the first dyno on.
func TestIsolatedHidesNewDynoHome(t *testing.T) {
	t.Parallel()
	if reason := testutil.UserNSOff(); reason != "" {
		t.Skip(reason)
	}
	project := testutil.SharedDir(t)
	os.WriteFile(filepath.Join(project, "Procfile"), []byte("a: true\n"), 0o644)
	testutil.GiveToNobody(t, project)
	e := &isolatedEnv{project: project, home: filepath.Join(project, "dh")}
	out, err := e.command("run", "--isolate", `echo "[$(ls -A /app/dh)]"`).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "[]" {
		t.Errorf("dyno run --isolate with a new DYNO_HOME under the project: %v, %q; want it empty", err, out)
	}
	if _, err := os.Stat(filepath.Join(e.home, "dynos")); err != nil {
		t.Errorf("the test is broken: the run did not make DYNO_HOME: %v", err)
	}
}

// runOnTTY runs cmd as Nobody with slave as its controlling terminal and
// returns its exit status and all it wrote there, CRs dropped.
func runOnTTY(t *testing.T, cmd *exec.Cmd, master, slave *os.File) (int, string) {
	t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	testutil.AsNobody(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out, _ := io.ReadAll(master)
	cmd.Wait()
	return cmd.ProcessState.ExitCode(), strings.ReplaceAll(string(out), "\r", "")
}
