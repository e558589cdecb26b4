package isolate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestReadSubRanges(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(file, []byte("# comment\nalice:100000:65536\n1000:300000:131072\nbob:200000:65536\nalice:bad:1\nalice:5:0\n"), 0o644)
	got, err := ReadSubRanges(file, "alice", 1000)
	if err != nil || !slices.Equal(got, []SubRange{{100000, 65536}, {300000, 131072}}) {
		t.Errorf("got %v, %v", got, err)
	}
	if got, err := ReadSubRanges(filepath.Join(t.TempDir(), "none"), "alice", 1000); got != nil || err != nil {
		t.Errorf("missing file: %v, %v", got, err)
	}
	// A range holding host root or the user itself is never handed out.
	os.WriteFile(file, []byte("alice:0:65536\nalice:900:200\nalice:1000:1\nalice:1001:10\n"), 0o644)
	if got, err := ReadSubRanges(file, "alice", 1000); err != nil || !slices.Equal(got, []SubRange{{1001, 10}}) {
		t.Errorf("ranges over root or the user: got %v, %v; want only 1001:10", got, err)
	}
}

// Each app gets its own slice, the same one every time; a slice is
// given to another app only once its app is gone; when none is left the
// error names the fix.
func TestIDAllocator(t *testing.T) {
	t.Parallel()
	a := &IDAllocator{
		File: filepath.Join(t.TempDir(), "subids.json"),
		UIDs: []SubRange{{100000, 2 * AppIDs}},
		GIDs: []SubRange{{500000, AppIDs}, {900000, AppIDs + 5}},
	}
	apps := map[string]bool{"alpha": true, "beta": true, "gamma": true}
	exists := func(app string) bool { return apps[app] }
	alpha, err := a.Alloc("alpha", exists)
	if err != nil || alpha != (IDRange{UID: 100000, GID: 500000, Size: AppIDs}) {
		t.Fatalf("alpha: %+v, %v", alpha, err)
	}
	beta, err := a.Alloc("beta", exists)
	if err != nil || beta != (IDRange{UID: 100000 + AppIDs, GID: 900000, Size: AppIDs}) {
		t.Fatalf("beta: %+v, %v", beta, err)
	}
	if again, err := a.Alloc("alpha", exists); err != nil || again != alpha {
		t.Errorf("alpha again: %+v, %v; want %+v", again, err, alpha)
	}
	if _, err := a.Alloc("gamma", exists); err == nil || !strings.Contains(err.Error(), "usermod --add-subuids") {
		t.Errorf("gamma with every slice taken: %v; want an error naming usermod", err)
	}
	delete(apps, "alpha")
	gamma, err := a.Alloc("gamma", exists)
	if err != nil || gamma != alpha {
		t.Errorf("gamma after alpha is gone: %+v, %v; want alpha's %+v", gamma, err, alpha)
	}
	if fi, err := os.Stat(a.File); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("allocation file: %v, %v; want mode 0600", fi, err)
	}
	// The user's ranges shrank: the recorded slice is refused, not moved.
	a.UIDs = []SubRange{{100000, AppIDs}}
	if _, err := a.Alloc("beta", exists); err == nil || !strings.Contains(err.Error(), a.File) {
		t.Errorf("beta outside the ranges: %v; want an error naming %s", err, a.File)
	}
}

// appDyno is what appsManagerMain reports of one app's dyno.
type appDyno struct {
	Pid   int      `json:"pid"`
	Upper string   `json:"upper"`
	Lower string   `json:"lower"`
	Said  []string `json:"said"`
	Warm  bool     `json:"warm"` // started by the init kept warm for it
}

// appsManagerMain is the unprivileged manager of two apps, each with its
// own ids unless mode is "shared": it starts one dyno of each, reports
// them on stdout, and stops them when stdin closes.
func appsManagerMain(mode string) int {
	stateDir, shared := os.Args[3], mode == "shared"
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sp, err := NewSpawner()
	if err != nil {
		return fail(err)
	}
	defer sp.Close()
	sp.SetPrewarm(true)
	ids, err := NewIDAllocator(filepath.Join(stateDir, "subids.json"))
	if err != nil || ids == nil {
		return fail(fmt.Errorf("no ids: %v: %s", err, NoRangesWarning()))
	}
	lower := filepath.Join(stateDir, "lower")
	if err := os.MkdirAll(filepath.Join(lower, "sub"), 0o755); err != nil {
		return fail(err)
	}
	// The app's code, as a slug unpacks it: the manager's files, some
	// private to their owner.
	if err := os.WriteFile(filepath.Join(lower, "sub", "private"), []byte("code\n"), 0o600); err != nil {
		return fail(err)
	}
	out := map[string]*appDyno{}
	var dynos []*Dyno
	for _, app := range []string{"alpha", "beta"} {
		r, err := ids.Alloc(app, nil)
		if err != nil {
			return fail(err)
		}
		own, appLower := &r, lower
		if shared {
			own = nil
		} else {
			// The app's own copy, given to its ids, as
			// slug.Store.UnpackedFor makes it.
			appLower = filepath.Join(stateDir, "lower-"+app)
			if err := os.Mkdir(appLower, 0o755); err != nil {
				return fail(err)
			}
			if err := fsutil.CopyTree(lower, appLower, nil); err != nil {
				return fail(err)
			}
			if err := GiveTree(appLower, r, true); err != nil {
				return fail(err)
			}
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		// A warm init, mapped with the app's ids ahead of the start.
		dynosDir := filepath.Join(stateDir, "dynos", app)
		sp.WarmUp(dynosDir, own)
		sp.warming.Wait()
		sp.mu.Lock()
		var warm *launched
		if slot := sp.warm[dynosDir]; slot != nil {
			warm = slot.l
		}
		sp.mu.Unlock()
		d, err := sp.Start(Spec{
			Name:   "web.1",
			Argv:   ShellArgv(`id -u; id -g; id -un; id -gn; echo $HOME; grep -c . /proc/self/uid_map; awk '{ print $3 }' /proc/self/uid_map; touch /tmp/f; { chown 65534:65534 /tmp/f && echo chowned; } 2>&1 | sed 's/.*: //'; ls -ln /tmp/f | cut -d' ' -f3,4; cat /proc/self/setgroups; awk '/^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):/ { printf "%s ", $2 } END { print "" }' /proc/self/status; echo mine > /app/mine; ls -ln /app/mine | cut -d' ' -f3,4; cat sub/private; echo more >> sub/private && echo new > sub/new && stat -c '%u %g %a' sub sub/private sub/new; awk '$5 == "/app" { for (i = 7; $i != "-"; i++); print $(i+1) }' /proc/self/mountinfo; echo ready; exec sleep 1000`),
			Dir:    "/app",
			Env:    []string{"PATH=/usr/bin:/bin", "HOME=/app", "SECRET=" + app + "-secret"},
			Stdout: pw, Stderr: pw,
			Sandbox: &Sandbox{Lower: appLower, StateDir: dynosDir, Seccomp: true, IDs: own},
		})
		pw.Close()
		if err != nil {
			return fail(err)
		}
		dynos = append(dynos, d)
		a := &appDyno{Upper: filepath.Join(d.dir.path, "upper"), Lower: appLower, Warm: warm != nil && d.cmd == warm.cmd}
		sc := bufio.NewScanner(pr)
		for sc.Scan() && sc.Text() != "ready" {
			a.Said = append(a.Said, sc.Text())
		}
		// The app's host pid: d.Pid is the dyno's own namespace's.
		if kids, err := descendants(d.InitPid()); err == nil && len(kids) == 1 {
			a.Pid = kids[0]
		} else {
			return fail(fmt.Errorf("dyno of %s has processes %v (%v), want one; it said %q", app, kids, err, a.Said))
		}
		out[app] = a
	}
	json.NewEncoder(os.Stdout).Encode(out)
	// Until the test is done reading.
	os.Stdin.Read(make([]byte, 1))
	// alpha's init dies without emptying its upper dir, whose files are
	// alpha's ids: its dir must go all the same.
	unix.Kill(dynos[0].InitPid(), unix.SIGKILL)
	dynos[1].Kill()
	for _, d := range dynos {
		d.Wait()
	}
	sp.Close()
	if left, _ := filepath.Glob(filepath.Join(stateDir, "dynos", "*", "*")); len(left) != 0 {
		return fail(fmt.Errorf("dyno dirs left: %v (removing again: %v)", left, removeDynoDir(left[0])))
	}
	return 0
}

// hostIDs reads the host uid and gid of pid.
func hostIDs(t *testing.T, pid int) (uid, gid int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == "Uid:" {
			uid, _ = strconv.Atoi(f[1])
		}
		if len(f) > 1 && f[0] == "Gid:" {
			gid, _ = strconv.Atoi(f[1])
		}
	}
	return uid, gid
}

// readAs reads path (a file, or a directory's names) as uid and gid.
func readAs(uid, gid int, path string) (string, error) {
	cmd := exec.Command("sh", "-c", `if [ -d "$1" ]; then ls -A "$1"; else cat "$1"; fi`, "sh", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Two apps' dynos run as host ids of their own, so one app's processes
// cannot read the other's environment, root or upper layer, even
// through the host's /proc. Without their own ids (as without
// subordinate ids) the same reads succeed: were both apps one uid, this
// test would fail.
func TestAppsOwnIDs(t *testing.T) {
	t.Parallel()
	base := testutil.SubIDs(t, 3*AppIDs)
	if reason := userNSBlocker(sysctlDir); reason != "" {
		t.Skip(reason)
	}
	bin := unprivilegedBinary(t)
	for _, mode := range []string{"shared", "own"} {
		state := ownedDir(t)
		cmd := exec.Command(bin, "apps-manager", mode, state)
		testutil.AsNobody(cmd)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var apps map[string]*appDyno
		err := json.NewDecoder(stdout).Decode(&apps)
		if err != nil {
			stdin.Close()
			cmd.Wait()
			t.Fatalf("%s: manager: %v: %s", mode, err, stderr.String())
		}
		a, b := apps["alpha"], apps["beta"]
		uidA, gidA := hostIDs(t, a.Pid)
		uidB, gidB := hostIDs(t, b.Pid)
		// Inside, each app is the dyno user, not root, and owns what it
		// writes. It reads and writes its code, which it owns, through
		// an overlay over its own lower (nothing copied), whose copy-up
		// keeps the dyno user the owner of the file it wrote. With its
		// own ids it has a whole range and, as the only capabilities
		// left in every set, bounding included, CAP_CHOWN (0),
		// CAP_FOWNER (3), CAP_KILL (5), CAP_SETGID (6) and CAP_SETUID
		// (7) of its own namespace, 0xe9: it gives its file to nobody,
		// a uid of that range, and setgroups is allowed there, for a
		// privilege drop. A single uid has no nobody at all (EINVAL),
		// no capabilities and setgroups denied.
		wantSaid := []string{"12345", "12345", "u12345", "dyno", "/app", "1", "1", "Invalid argument", "12345 12345", "deny", strings.Repeat("0000000000000000 ", 5) + "1 ", "12345 12345", "code", "12345 12345 755", "12345 12345 600", "12345 12345 644", "overlay"}
		if mode == "own" {
			wantSaid[6], wantSaid[7], wantSaid[8], wantSaid[9] = "65536", "chowned", "65534 65534", "allow"
			wantSaid[10] = strings.Repeat("00000000000000e9 ", 5) + "1 "
			inRange := func(id int) bool { return id >= base && id < base+3*AppIDs }
			if uidA == uidB || !inRange(uidA) || !inRange(uidB) || !inRange(gidA) || !inRange(gidB) {
				t.Errorf("host ids: alpha %d:%d, beta %d:%d; want each app its own, from %d", uidA, gidA, uidB, gidB, base)
			}
		} else if uidA != testutil.Nobody || uidB != testutil.Nobody {
			t.Errorf("shared: host uids %d and %d, want the manager's", uidA, uidB)
		}
		for name, d := range apps {
			if !d.Warm {
				t.Errorf("%s: %s's dyno did not start from its warm init", mode, name)
			}
			if !slices.Equal(d.Said, wantSaid) {
				t.Errorf("%s: %s's dyno said %q; want %q (uid, gid, their names, HOME, uid_map, chown to nobody and the owner it left, setgroups, capabilities, owner of its file, its code)", mode, name, d.Said, wantSaid)
			}
		}
		// The overlay wrote nothing into the lower.
		if b, err := os.ReadFile(filepath.Join(a.Lower, "sub", "private")); err != nil || string(b) != "code\n" {
			t.Errorf("%s: alpha's lower holds %q, %v; want it untouched", mode, b, err)
		}
		for p, secret := range map[string]string{
			"/proc/" + strconv.Itoa(a.Pid) + "/environ":          "SECRET=alpha-secret",
			"/proc/" + strconv.Itoa(a.Pid) + "/root/app":         "mine",
			"/proc/" + strconv.Itoa(a.Pid) + "/root/app/sub/new": "new",
			a.Upper: "mine",
			// The build's private file, in alpha's own lower.
			filepath.Join(a.Lower, "sub", "private"): "code",
		} {
			out, err := readAs(uidB, gidB, p)
			read := err == nil && strings.Contains(out, secret)
			if mode == "own" && read {
				t.Errorf("beta's host uid read alpha's %s: %q", p, out)
			}
			if mode == "shared" && !read {
				t.Errorf("shared uid: beta's host uid cannot read alpha's %s (%v, %q): the test is broken", p, err, out)
			}
		}
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s: manager: %v: %s", mode, err, stderr.String())
		}
	}
}

// buildManagerMain runs a build-like sandbox (no /app, a writable bind)
// with an app's own ids, before and after giving the bind to them, and
// then takes the bind back and removes it, as a build's manager does.
func buildManagerMain(stateDir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	sp, err := NewSpawner()
	if err != nil {
		return fail(err)
	}
	defer sp.Close()
	ids, err := NewIDAllocator(filepath.Join(stateDir, "subids.json"))
	if err != nil || ids == nil {
		return fail(fmt.Errorf("no ids: %v", err))
	}
	r, err := ids.Alloc("alpha", nil)
	if err != nil {
		return fail(err)
	}
	work := filepath.Join(stateDir, "build")
	if err := os.Mkdir(work, 0o755); err != nil {
		return fail(err)
	}
	build := func() int {
		d, err := sp.Start(Spec{
			Name:    "build",
			Argv:    ShellArgv("cd " + work + " && { chown 12345:12345 . && echo owned; } 2>&1 | sed 's/.*: //'; mkdir out && echo made > out/file && chown 65534:65534 out/file && stat -c %u:%g out/file && chmod 700 out && id -u"),
			Env:     []string{"PATH=/usr/bin:/bin"},
			Stdout:  os.Stdout,
			Stderr:  os.Stdout,
			Sandbox: &Sandbox{StateDir: filepath.Join(stateDir, "dynos"), Binds: []Bind{{Path: work, Writable: true}}, Seccomp: true, IDs: &r},
		})
		if err != nil {
			fail(err)
			return -1
		}
		st, _ := d.Wait()
		return st
	}
	fmt.Println("before:", build())
	if err := GiveTree(work, r, true); err != nil {
		return fail(err)
	}
	fmt.Println("given:", build())
	if err := GiveTree(work, r, false); err != nil {
		return fail(err)
	}
	b, err := os.ReadFile(filepath.Join(work, "out", "file"))
	fmt.Printf("read back: %q %v\n", b, err)
	fmt.Println("removed:", os.RemoveAll(work))
	return 0
}

// A build sandbox with the app's ids writes its binds once GiveTree has
// handed them over, and the manager reads and removes what it made once
// they are handed back.
func TestGiveTree(t *testing.T) {
	t.Parallel()
	testutil.SubIDs(t, AppIDs)
	if reason := userNSBlocker(sysctlDir); reason != "" {
		t.Skip(reason)
	}
	cmd := exec.Command(unprivilegedBinary(t), "build-manager", ownedDir(t))
	testutil.AsNobody(cmd)
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// The build's capabilities (appCaps) act only on what its own ids
	// own: the manager's folder, owned by an id its namespace does not
	// map, it can neither take (chown: EPERM) nor write to. In its own
	// folder it gives a file to nobody, and the manager gets it back
	// with the rest.
	want := []string{"before: 1", "owned", "65534:65534", "12345", "given: 0", `read back: "made\n" <nil>`, "removed: <nil>"}
	if err != nil || len(lines) != len(want)+2 || lines[0] != "Operation not permitted" || !strings.Contains(lines[1], "Permission denied") || !slices.Equal(lines[2:], want) {
		t.Errorf("%v: %q; want the build refused the manager's folder before it is given, then %q", err, lines, want)
	}
}
