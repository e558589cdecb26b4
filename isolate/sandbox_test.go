package isolate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
)

// Sandbox tests run the manager side as an unprivileged user (uid 65534
// when the tests run as root): being root proves nothing about rootless
// operation. The test binary re-executes itself as that manager
// ("sandbox-manager"), which starts one sandboxed dyno and relays its
// output and status.

type sandboxRun struct {
	Lower    string `json:"lower"`
	StateDir string `json:"state"`
	Command  string `json:"command"`
	Seccomp  bool   `json:"seccomp"`
	Times    int    `json:"times"`   // dynos one after another; 0 means 1
	Prewarm  bool   `json:"prewarm"` // Spawner.SetPrewarm
	NoLower  bool   `json:"no_lower"`
	Binds    []Bind `json:"binds"`
	// FakeCgroup gives the dyno a cgroup leaf whose directory is not a
	// cgroup2 one, so clone3(CLONE_INTO_CGROUP) fails with EBADF, as it
	// does where the kernel or a seccomp profile refuses clone3.
	FakeCgroup bool `json:"fake_cgroup"`
	// Cgroup is a real cgroup2 leaf for the dyno, whose moves are
	// recorded as FakeCgroup's are.
	Cgroup string `json:"cgroup"`
	// ManagerCgroup, when set, is the cgroup the manager starts in.
	ManagerCgroup string `json:"-"`
	// Hide is passed to Spawner.Hide.
	Hide []string `json:"hide"`
}

// fakeLeaf is a CgroupLeaf that clone3 refuses and that records which
// processes were moved in.
type fakeLeaf struct {
	dir   string
	added []int
}

func (f *fakeLeaf) Open() (*os.File, error) { return os.Open(f.dir) }

func (f *fakeLeaf) AddProcess(pid int) error {
	f.added = append(f.added, pid)
	return nil
}

// sandboxManagerMain is the child's side: run one dyno, print its output,
// exit with its status.
func sandboxManagerMain(arg string) int {
	var r sandboxRun
	if err := json.Unmarshal([]byte(arg), &r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sp, err := NewSpawner()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sp.SetPrewarm(r.Prewarm)
	if err := sp.Hide(r.Hide...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer sp.Close()
	st := 0
	for range max(r.Times, 1) {
		if st = runSandboxed(sp, r); st == 2 {
			break
		}
		if r.Prewarm {
			waitWarm(sp, r.StateDir)
		}
	}
	return st
}

// waitWarm waits until a warm init for stateDir is ready, so the next
// start takes the warm path for sure.
func waitWarm(sp *Spawner, stateDir string) {
	for range 5000 {
		sp.mu.Lock()
		slot := sp.warm[stateDir]
		ready := slot != nil && slot.l != nil
		sp.mu.Unlock()
		if ready {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func runSandboxed(sp *Spawner, r sandboxRun) int {
	sb := &Sandbox{Lower: r.Lower, StateDir: r.StateDir, Seccomp: r.Seccomp, Binds: r.Binds}
	var leaf *fakeLeaf
	if r.FakeCgroup {
		leaf = &fakeLeaf{dir: r.StateDir}
		sb.Cgroup = leaf
	}
	if r.Cgroup != "" {
		leaf = &fakeLeaf{dir: r.Cgroup}
		sb.Cgroup = leaf
	}
	d, err := sp.Start(Spec{
		Name:    "test.1",
		Argv:    ShellArgv(r.Command),
		Dir:     "/app",
		Env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/app"},
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Sandbox: sb,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 2
	}
	for _, w := range d.Warnings() {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	st, err := d.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wait:", err)
		return 2
	}
	if leaf != nil {
		fmt.Printf("moved into the cgroup: %v, init %v\n", leaf.added, []int{d.InitPid()})
	}
	return st
}

// unprivilegedBinary copies the test binary where uid 65534 can run it.
func unprivilegedBinary(t *testing.T) string {
	t.Helper()
	dir := testutil.SharedDir(t)
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "isolate.test")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	// A parallel test's fork made while the copy was being written
	// holds its write fd until that fork execs, and an exec of the copy
	// meanwhile fails with ETXTBSY (Go issue 22315). No write fd is
	// made after Close, so once one exec works, every later one does.
	for try := 0; ; try++ {
		err := exec.Command(path, "-test.run=^$").Run()
		if !errors.Is(err, syscall.ETXTBSY) {
			break
		}
		if try == 200 {
			t.Fatalf("exec %s: %v", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return path
}

// ownedDir makes a temp dir owned by the unprivileged user.
func ownedDir(t *testing.T) string {
	t.Helper()
	dir := testutil.SharedDir(t)
	testutil.GiveToNobody(t, dir)
	return dir
}

type sandboxEnv struct {
	bin, lower, state string
}

func newSandboxEnv(t *testing.T) *sandboxEnv {
	t.Helper()
	if reason := userNSBlocker(sysctlDir); reason != "" {
		t.Skip(reason)
	}
	e := &sandboxEnv{bin: unprivilegedBinary(t), lower: ownedDir(t), state: ownedDir(t)}
	for name, content := range map[string]string{"existing": "original\n", "todelete": "x\n", "sub/file": "nested\n"} {
		p := filepath.Join(e.lower, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.GiveToNobody(t, e.lower)
	return e
}

// run runs command in a sandboxed dyno as the unprivileged user and
// returns its output and status.
func (e *sandboxEnv) run(t *testing.T, command string, seccomp bool) (string, int) {
	t.Helper()
	return e.runWith(t, sandboxRun{Command: command, Seccomp: seccomp})
}

func (e *sandboxEnv) runWith(t *testing.T, r sandboxRun) (string, int) {
	t.Helper()
	r.Lower, r.StateDir = e.lower, filepath.Join(e.state, "dynos")
	if r.NoLower {
		r.Lower = ""
	}
	arg, _ := json.Marshal(r)
	cmd := exec.Command(e.bin, "sandbox-manager", string(arg))
	testutil.AsNobody(cmd)
	if r.ManagerCgroup != "" {
		testutil.StartInCgroup(t, cmd, r.ManagerCgroup)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Run()
	st := cmd.ProcessState.ExitCode()
	if st == 2 && strings.Contains(out.String(), "start:") {
		t.Fatalf("sandbox did not start: %s", out.String())
	}
	return out.String(), st
}

func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := d.Info()
		fmt.Fprintf(h, "%s %v %d\n", strings.TrimPrefix(p, dir), info.Mode(), info.Size())
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

func TestSandboxProcAndPID1(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	// The app starts before its Go init hands over to the resident init
	// (handover.go): in its first instants PID 1 may be mid-exec, its
	// command line empty; the app waits until it is not.
	out, st := e.run(t, `until grep -q . /proc/1/cmdline; do :; done; tr '\0' ' ' < /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9][0-9]*$'`, false)
	if st != 0 {
		t.Fatalf("exit %d: %s", st, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.TrimSpace(lines[0]) != "dyno init test.1" {
		t.Fatalf("PID 1 is %q, want dyno init test.1 (output %q)", lines[0], out)
	}
	// init, sh, ls, grep (and tr may be gone): a handful, not the host's.
	if n := strings.TrimSpace(lines[1]); len(n) > 1 {
		t.Errorf("/proc shows %s processes; want only the dyno's", n)
	}
}

func TestSandboxHostnameAndReadOnly(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	host, _ := os.Hostname()
	out, st := e.run(t, `cat /proc/sys/kernel/hostname; for p in /usr /etc /bin /; do touch $p/dyno-probe 2>/dev/null && echo "$p writable" || echo "$p read-only"; done`, false)
	if st != 0 {
		t.Fatalf("exit %d: %s", st, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] == host || len(lines[0]) != 36 {
		t.Errorf("hostname %q, want a dyno id different from the host's %q", lines[0], host)
	}
	for _, l := range lines[1:] {
		if !strings.HasSuffix(l, "read-only") {
			t.Errorf("%s", l)
		}
	}
}

func TestSandboxEphemeralApp(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	before := treeDigest(t, e.lower)
	out, st := e.run(t, `cat existing; echo changed > existing; echo new > new; rm todelete; mkdir d; chmod 000 d; echo more >> sub/file; ls`, false)
	if st != 0 {
		t.Fatalf("exit %d: %s", st, out)
	}
	if !strings.HasPrefix(out, "original\n") || !strings.Contains(out, "new") {
		t.Errorf("dyno did not see and write /app: %q", out)
	}
	if after := treeDigest(t, e.lower); after != before {
		t.Error("the lower dir changed")
	}
	// A second dyno on the same lower dir sees none of the first's writes.
	out, _ = e.run(t, `cat existing; ls`, false)
	if out != "original\nexisting\nsub\ntodelete\n" {
		t.Errorf("second dyno saw %q", out)
	}
	// Nothing of either dyno is left in the state dir.
	entries, _ := os.ReadDir(filepath.Join(e.state, "dynos"))
	if len(entries) != 0 {
		t.Errorf("dyno dirs left behind: %v", entries)
	}
}

func TestSandboxPrivateTmp(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	name := "dyno-private-" + newID()
	out, st := e.run(t, "echo x > /tmp/"+name+" && ls /tmp", false)
	if st != 0 || strings.TrimSpace(out) != name {
		t.Fatalf("exit %d, /tmp holds %q; want only the dyno's own file", st, out)
	}
	if _, err := os.Stat("/tmp/" + name); err == nil {
		t.Error("the dyno's /tmp file is on the host")
	}
}

func TestSandboxNoPrivileges(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	out, st := e.run(t, `grep -E '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):' /proc/self/status`, false)
	if st != 0 {
		t.Fatalf("exit %d: %s", st, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		want := "0000000000000000"
		if f[0] == "NoNewPrivs:" {
			want = "1"
		}
		if f[1] != want {
			t.Errorf("%s %s, want %s", f[0], f[1], want)
		}
	}
}

// Without the app's own ids a dyno runs as the dyno user, the only uid
// its namespace maps, named by its /etc/passwd and /etc/group, cold or
// from a warm init: not root, writing /app (the lower's files are the
// manager's, which is that uid), and refused a chown to an uid it lacks.
func TestSandboxDynoUser(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	cmd := `echo "$(id -u) $(id -g) $(id -un) $(id -gn) $(whoami) $HOME $(stat -c %U:%G existing) $(awk '{ print $1, $3 }' /proc/self/uid_map)"; ` +
		`echo changed > existing && mkdir -p config && touch config/x && echo wrote; chown 65534 existing 2>&1 | sed 's/.*: //'; ` +
		`grep -c '^u12345:x:12345:12345:' /etc/passwd; grep -c '^root:' /etc/passwd`
	want := "12345 12345 u12345 dyno u12345 /app u12345:dyno 12345 1\nwrote\nInvalid argument\n1\n1\n"
	out, st := e.runWith(t, sandboxRun{Command: cmd, Seccomp: true, Times: 2, Prewarm: true})
	if st != 0 || out != want+want {
		t.Errorf("exit %d, %q; want twice %q", st, out, want)
	}
}

func TestSandboxReapsOrphans(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	// The grandchild is orphaned at once and exits later: PID 1 must reap
	// it, so no zombie is left.
	out, st := e.run(t, `sh -c 'sleep 0.2 &'; sleep 0.5; grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l`, false)
	if st != 0 || strings.TrimSpace(out) != "0" {
		t.Errorf("exit %d, zombies: %q", st, out)
	}
}

func TestSandboxExitStatus(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	if _, st := e.run(t, "exit 7", false); st != 7 {
		t.Errorf("exit %d, want 7", st)
	}
}

func TestSweepDynoDirs(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	live, err := makeDynoDir(parent, "live")
	if err != nil {
		t.Fatal(err)
	}
	defer live.remove()
	stale, err := makeDynoDir(parent, "stale")
	if err != nil {
		t.Fatal(err)
	}
	// A crash leaves overlay's mode-000 work dir behind.
	os.MkdirAll(filepath.Join(stale.path, "work", "work"), 0o755)
	os.Chmod(filepath.Join(stale.path, "work", "work"), 0)
	stale.lock.Close() // its init died: the lock is gone
	n, err := SweepDynoDirs(parent)
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(stale.path); err == nil {
		t.Error("stale dir still there")
	}
	if _, err := os.Stat(live.path); err != nil {
		t.Error("live dir swept")
	}
}

// With the deny list, the app cannot make namespaces or mount anything,
// and its children inherit the filter.
func TestSandboxSeccomp(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	out, st := e.run(t, `grep '^Seccomp:' /proc/self/status; unshare -U true 2>/dev/null && echo unshare allowed; mount -t tmpfs x /tmp 2>/dev/null && echo mount allowed; echo done`, true)
	if st != 0 || out != "Seccomp:\t2\ndone\n" {
		t.Errorf("exit %d, %q; want the filter on and unshare and mount refused", st, out)
	}
}

// Warm inits (started ahead, given their stdio and config later) run
// dynos as cold ones do, and leave nothing behind.
func TestSandboxPrewarm(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	// The first init starts cold, with the dyno's name in its command
	// line; the next two are warm ones, named later, which the resident
	// init they hand over to shows there as well: the app waits until
	// PID 1's command line names the dyno, the handover's mark, rather
	// than read it while the Go init is mid-exec.
	warm, wait := "dyno init test.1 ", `until tr '\0' ' ' < /proc/1/cmdline | grep -q test.1; do :; done; `
	if len(residentInit) == 0 {
		warm, wait = "dyno init ", ""
	}
	out, st := e.runWith(t, sandboxRun{Command: wait + `echo "$(tr '\0' ' ' < /proc/1/cmdline)| $(cat /proc/1/comm) $(cat existing)"; echo err >&2; touch new; exit 3`, Times: 3, Prewarm: true})
	want := "dyno init test.1 | test.1 original\nerr\n" + strings.Repeat(warm+"| test.1 original\nerr\n", 2)
	if st != 3 || out != want {
		t.Errorf("exit %d, %q; want %q", st, out, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.state, "dynos")); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// A build sandbox: no /app, host directories bound at their own paths,
// writable only where asked, even under the private /tmp.
func TestSandboxBinds(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	rw, ro := ownedDir(t), ownedDir(t)
	os.WriteFile(filepath.Join(ro, "in"), []byte("from host\n"), 0o644)
	testutil.GiveToNobody(t, ro)
	out, st := e.runWith(t, sandboxRun{NoLower: true, Binds: []Bind{{Path: rw, Writable: true}, {Path: ro}},
		Command: "ls -A /app; cat " + ro + "/in; echo made > " + rw + "/out; touch " + ro + "/x 2>/dev/null && echo ro-writable; echo done"})
	if st != 0 || out != "from host\ndone\n" {
		t.Errorf("exit %d, %q", st, out)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "out")); err != nil || string(b) != "made\n" {
		t.Errorf("write through the writable bind: %q, %v", b, err)
	}
}

// Where clone3(CLONE_INTO_CGROUP) is refused, init starts without it and
// is moved into its leaf before the app runs.
func TestSandboxCloneIntoCgroupFallback(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	out, st := e.runWith(t, sandboxRun{Command: "cat existing", FakeCgroup: true})
	lines := strings.Split(out, "\n")
	if st != 0 || len(lines) != 3 || lines[0] != "original" {
		t.Fatalf("exit %d, %q; want the dyno to run", st, out)
	}
	if !regexp.MustCompile(`^moved into the cgroup: \[(\d+)\], init \[(\d+)\]$`).MatchString(lines[1]) {
		t.Fatalf("%q; want init, and only init, moved into its cgroup", lines[1])
	}
	if m := regexp.MustCompile(`\d+`).FindAllString(lines[1], -1); m[0] != m[1] {
		t.Errorf("%q: the pid moved in is not init's", lines[1])
	}
}

// Where the kernel allows it, init is born in its leaf by clone3 with
// CLONE_INTO_CGROUP: nothing is moved in, and the leaf has accounted the
// dyno's CPU time. The manager runs as the delegate, in a cgroup beside
// the leaf, as dyno's supervisor does (cgroup.procs of the common
// ancestor, which the delegate owns, is what the kernel checks: "Delegation
// Containment").
func TestSandboxCloneIntoCgroup(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	delegated := testutil.DelegatedCgroup(t)
	manager, leaf := filepath.Join(delegated, "manager"), filepath.Join(delegated, "leaf")
	for _, dir := range []string{manager, leaf} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testutil.GiveToNobody(t, delegated)
	out, st := e.runWith(t, sandboxRun{Command: "cat existing; i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done", Cgroup: leaf, ManagerCgroup: manager})
	lines := strings.Split(out, "\n")
	if st != 0 || len(lines) != 3 || lines[0] != "original" {
		t.Fatalf("exit %d, %q; want the dyno to run", st, out)
	}
	if !strings.HasPrefix(lines[1], "moved into the cgroup: [], init ") {
		t.Errorf("%q; want init born in its leaf, nothing moved in", lines[1])
	}
	var usec int64
	for l := range strings.Lines(testutil.CgroupFile(t, leaf, "cpu.stat")) {
		fmt.Sscanf(l, "usage_usec %d", &usec)
	}
	if usec == 0 {
		t.Errorf("%s/cpu.stat: usage_usec 0; want the dyno's CPU time accounted there", leaf)
	}
}

// Hidden host paths show empty and read-only wherever the dyno would see
// them: below /app, below a bind, below a read-only host path; a file
// shows as an empty one.
func TestSandboxHide(t *testing.T) {
	t.Parallel()
	e := newSandboxEnv(t)
	rw := ownedDir(t)
	for _, p := range []string{filepath.Join(e.lower, "state", "apps", "ledger"), filepath.Join(e.lower, "sock"), filepath.Join(rw, "inner", "secret")} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testutil.GiveToNobody(t, e.lower, rw)
	// /etc/ssl or whatever /etc holds: any directory of a read-only path.
	etc, err := os.ReadDir("/etc")
	if err != nil {
		t.Fatal(err)
	}
	etcDir := ""
	for _, d := range etc {
		if d.IsDir() {
			if entries, err := os.ReadDir(filepath.Join("/etc", d.Name())); err == nil && len(entries) > 0 {
				etcDir = filepath.Join("/etc", d.Name())
				break
			}
		}
	}
	if etcDir == "" {
		t.Fatal("no directory with files in /etc")
	}
	// Twice: the second dyno takes a warm init.
	out, st := e.runWith(t, sandboxRun{
		Times: 2, Prewarm: true,
		Binds: []Bind{{Path: rw, Writable: true}},
		Hide:  []string{filepath.Join(e.lower, "state"), filepath.Join(e.lower, "sock"), filepath.Join(rw, "inner"), etcDir, "/nonexistent/dyno-test"},
		Command: "for p in state sock " + rw + "/inner " + etcDir + "; do echo \"$p: [$(ls -A $p)] [$(cat $p 2>/dev/null)]\"; done; " +
			"touch state/x " + rw + "/inner/x 2>/dev/null && echo writable; ls -A " + rw + "; echo done",
	})
	want := strings.Repeat("state: [] []\nsock: [sock] []\n"+rw+"/inner: [] []\n"+etcDir+": [] []\ninner\ndone\n", 2)
	if st != 0 || out != want {
		t.Errorf("exit %d, %q; want %q", st, out, want)
	}
	// The host's files are untouched.
	if b, err := os.ReadFile(filepath.Join(e.lower, "sock")); err != nil || string(b) != "secret\n" {
		t.Errorf("host file changed: %q, %v", b, err)
	}
}
