package cgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
)

// hogEnv makes the test binary a memory hog instead of running tests.
const hogEnv = "DYNO_CGROUP_TEST_MEMORY_HOG"

// hogLimit is what the hog allocates before it gives up and exits 0: far
// above the 32 MiB limit it runs under, well below any test machine's RAM.
const hogLimit = 256 << 20

func TestMain(m *testing.M) {
	if os.Getenv(hogEnv) == "1" {
		hogMemory()
		return
	}
	os.Exit(m.Run())
}

// hogMemory allocates and touches memory a MiB at a time up to hogLimit,
// so that every page is resident and charged to its cgroup.
func hogMemory() {
	var chunks [][]byte
	for len(chunks) < hogLimit>>20 {
		chunk := make([]byte, 1<<20)
		for i := 0; i < len(chunk); i += 4096 {
			chunk[i] = 1
		}
		chunks = append(chunks, chunk)
	}
	fmt.Printf("allocated %d MiB and survived\n", len(chunks))
}

// evacuatedName is the child cgroup the test process moves into when it
// must empty its own cgroup (step 3 of kernelTree).
const evacuatedName = "dyno-test-self"

// kernelTree returns a Tree that Setup built in a fresh cgroup, with need
// among its controllers, or skips the test with the probe's reason. Its
// cleanup removes the tree. The tests that use it run real processes in
// real cgroups, to check that the kernel enforces what the package writes.
//
// Where the tree goes. Setup(root, pid) moves pid into root/supervisor and
// then enables controllers in root, so root must be a cgroup that holds no
// process, and its parent must offer the controllers, that is list them in
// its own cgroup.subtree_control ("Top-down Constraint"). The parent here
// is the test process's own cgroup (Probe.Path), and the kernel lets a
// cgroup enable controllers for its children only while it holds no
// process ("No Internal Process Constraint"), which the test process
// breaks by being there. So kernelTree
//
//  1. uses the test's cgroup as it is if its subtree_control already
//     lists the controllers, which is the case only for a root cgroup that
//     has them on (the root is exempt from the constraint);
//
//  2. else tries to enable them there, which again works only in a root
//     cgroup, as for root on a host without systemd;
//
//  3. else, if the test process is alone in its cgroup, as when the test
//     binary runs by itself in a delegated scope,
//
//     go test -c ./isolate/cgroup
//     systemd-run --user --scope -p Delegate=yes ./cgroup.test -test.run Enforce -test.v
//
//     moves itself into a child cgroup, dyno-test-self, and enables them
//     then, exactly as the supervisor does at start-up; later tests find
//     their parent so prepared;
//
//  4. else skips, saying how to run the test alone: under plain `go test`
//     the go command shares the cgroup, and moving it would be too much.
//
// Then it makes a fresh cgroup under that base and calls Setup for a
// stand-in supervisor, a `sleep` child, so that the test process never
// moves into a tree it then tears down.
//
// A test that needs no controller (Kill, Remove, CLONE_INTO_CGROUP) also
// runs on a hybrid host's cgroup2 mount, such as /sys/fs/cgroup/unified,
// which holds no controllers but every core interface file.
//
// Every limit is small (32 MiB, 32 processes) and every wait bounded.
func kernelTree(t *testing.T, need ...string) *Tree {
	t.Helper()
	probe := ProbeSystem("/sys/fs/cgroup", "/proc/self/cgroup")
	if !probe.Writable && len(need) == 0 {
		if mount := cgroup2Mount(t); mount != "" && mount != "/sys/fs/cgroup" {
			if p := ProbeSystem(mount, "/proc/self/cgroup"); p.Writable {
				probe = p
			}
		}
	}
	if !probe.Writable {
		testutil.SkipOutsideKernel(t, probe.Reason)
	}
	for _, c := range need {
		if !slices.Contains(probe.Controllers, c) {
			testutil.SkipOutsideKernel(t, probe.Reason)
		}
	}

	base := prepareBase(t, probe.Path, probe.Mountpoint, need)
	root, err := os.MkdirTemp(base, "dyno-test-")
	if err != nil {
		t.Fatalf("make a test cgroup under %s: %v", base, err)
	}
	t.Cleanup(func() { removeKernelCgroup(t, root) })

	standIn := exec.Command("sleep", "600")
	if err := standIn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		standIn.Process.Kill()
		standIn.Wait()
	})

	tree, err := Setup(root, standIn.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tree at %s with controllers %q (refused: %v)", root, tree.Controllers(), tree.Refused())
	for _, c := range need {
		if !slices.Contains(tree.Controllers(), c) {
			t.Fatalf("Setup left %s off although %s offers it: %v", c, base, tree.Refused())
		}
	}
	return tree
}

// prepareBase returns a cgroup that offers need to new children, making
// one out of own as the comment at the top of this file describes.
func prepareBase(t *testing.T, own, mount string, need []string) string {
	t.Helper()
	if filepath.Base(own) == evacuatedName && own != mount {
		if parent := filepath.Dir(own); offers(t, parent, need) {
			return parent
		}
	}
	if offers(t, own, need) || enableAll(own, need) == nil {
		return own
	}
	pids, err := readPids(filepath.Join(own, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids, []int{os.Getpid()}) {
		testutil.SkipOutsideKernel(t, fmt.Sprintf("%s holds other processes too (%s), so it cannot hand %q to its children; run the test binary alone in a delegated cgroup: go test -c ./isolate/cgroup && systemd-run --user --scope -p Delegate=yes ./cgroup.test -test.run Enforce -test.v",
			own, joinPids(pids, 5), need))
	}
	evacuated := filepath.Join(own, evacuatedName)
	if err := os.Mkdir(evacuated, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(evacuated, "cgroup.procs"), fmt.Sprint(os.Getpid())); err != nil {
		t.Fatal(err)
	}
	t.Logf("moved the test process into %s", evacuated)
	if err := enableAll(own, need); err != nil {
		t.Fatal(err)
	}
	return own
}

// offers reports whether dir's cgroup.subtree_control lists every
// controller in need.
func offers(t *testing.T, dir string, need []string) bool {
	t.Helper()
	enabled, err := readList(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range need {
		if !slices.Contains(enabled, c) {
			return false
		}
	}
	return true
}

// enableAll enables each controller in need for dir's children.
func enableAll(dir string, need []string) error {
	for _, c := range need {
		err := retryBusy(func() error { return writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+c) })
		if err != nil {
			return err
		}
	}
	return nil
}

// cgroup2Mount returns where cgroup2 is mounted with its root at "/", from
// /proc/self/mountinfo (proc(5): the filesystem type follows " - ").
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		mount, fsys, ok := strings.Cut(scanner.Text(), " - ")
		fields := strings.Fields(mount)
		if !ok || len(fields) < 5 || !strings.HasPrefix(fsys, "cgroup2 ") || fields[3] != "/" {
			continue
		}
		return fields[4]
	}
	return ""
}

// removeKernelCgroup removes a test's root cgroup and what Setup made in
// it, once the stand-in supervisor and every dyno are gone.
func removeKernelCgroup(t *testing.T, root string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dynos := filepath.Join(root, "dynos")
	if entries, err := os.ReadDir(dynos); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				leaf := &Leaf{path: filepath.Join(dynos, e.Name()), ops: kernelOps()}
				leaf.Kill()
				if err := leaf.Remove(ctx); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
	}
	for _, dir := range []string{filepath.Join(root, "supervisor"), dynos, root} {
		leaf := &Leaf{path: dir, ops: kernelOps()}
		if err := leaf.Remove(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// newKernelLeaf makes a leaf whose cleanup kills and removes it.
func newKernelLeaf(t *testing.T, tree *Tree, name string, lim Limits) *Leaf {
	t.Helper()
	leaf, err := tree.NewLeaf(name, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := leaf.Kill(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := leaf.Remove(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return leaf
}

// startInLeaf starts the command newCmd makes in leaf with
// clone3(CLONE_INTO_CGROUP), or, where the kernel refuses that, as
// startGated does with a second one (a Cmd starts only once).
func startInLeaf(t *testing.T, leaf *Leaf, newCmd func() *exec.Cmd) *exec.Cmd {
	t.Helper()
	dir, err := leaf.Open()
	if err != nil {
		t.Fatal(err)
	}
	cmd := newCmd()
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	err = cmd.Start()
	dir.Close()
	if err != nil {
		// make test-kernel's kernel (6.1) has clone3 and
		// CLONE_INTO_CGROUP (5.7): there the fallback is a failure.
		if testutil.InKernelTest() {
			t.Fatalf("start in %s with CLONE_INTO_CGROUP: %v", leaf.Path(), err)
		}
		t.Logf("start in %s with CLONE_INTO_CGROUP: %v; moving it there instead", leaf.Path(), err)
		return startGated(t, leaf, newCmd())
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// startGated starts cmd held at a gate, moves it into leaf with
// AddProcess, and only then lets it run: the fallback order of runc.
func startGated(t *testing.T, leaf *Leaf, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	// sh waits for a line on stdin, then execs the command in its place.
	cmd.Args = append([]string{"sh", "-c", `read -r _ && exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
	gate, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if err := leaf.AddProcess(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := gate.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	gate.Close()
	return cmd
}

// waitFor polls cond every few milliseconds until it holds or timeout
// passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killedBySIGKILL reports whether err from Wait says SIGKILL.
func killedBySIGKILL(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	status, ok := exit.Sys().(syscall.WaitStatus)
	return ok && status.Signaled() && status.Signal() == syscall.SIGKILL
}

// countProcs returns how many processes cgroup.procs of leaf lists.
func countProcs(t *testing.T, leaf *Leaf) int {
	t.Helper()
	pids, err := readPids(leaf.file("cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return len(pids)
}

func TestEnforceMemory(t *testing.T) {
	tree := kernelTree(t, "memory", "pids")
	leaf := newKernelLeaf(t, tree, "hog.1", Limits{MemoryMax: 32 << 20, SwapMax: 0, PidsMax: 32})
	if _, err := os.Stat(leaf.file("memory.swap.max")); errors.Is(err, fs.ErrNotExist) && hostSwaps() {
		t.Skip("the host has swap but the kernel does not account it (no memory.swap.max), so the hog could page out instead of being killed")
	}
	before, err := leaf.OOMKills()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var output strings.Builder
	hog := startInLeaf(t, leaf, func() *exec.Cmd {
		output.Reset()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		// Two Ps keep the Go runtime to a few threads, far below
		// pids.max: a runtime that cannot make a thread dies with
		// exit status 2, not by the OOM killer.
		cmd.Env = append(os.Environ(), hogEnv+"=1", "GOMAXPROCS=2")
		cmd.Stdout, cmd.Stderr = &output, &output
		return cmd
	})
	err = hog.Wait()
	if !killedBySIGKILL(err) || ctx.Err() != nil {
		t.Fatalf("memory hog ended with %v (context: %v, output %q), want it OOM-killed at 32 MiB", err, ctx.Err(), output.String())
	}
	after, err := leaf.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("OOMKills() = %d after the hog was killed, want more than %d", after, before)
	}
}

// hostSwaps reports whether /proc/swaps lists a swap area.
func hostSwaps() bool {
	b, err := os.ReadFile("/proc/swaps")
	return err == nil && strings.Count(string(b), "\n") > 1
}

func TestEnforcePids(t *testing.T) {
	const pidsMax = 32
	tree := kernelTree(t, "memory", "pids")
	leaf := newKernelLeaf(t, tree, "bomb.1", Limits{MemoryMax: 64 << 20, SwapMax: 0, PidsMax: pidsMax})
	// A bounded fork bomb: 200 background sleeps asked of a leaf that
	// may hold 32 tasks. A shell whose fork fails either exits (dash)
	// or retries for a while (bash); either way the leaf fills up.
	startInLeaf(t, leaf, func() *exec.Cmd {
		return exec.Command("sh", "-c", `i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); done; wait`)
	})

	// pids.events counts the forks refused at pids.max ("PID Interface
	// Files"); sample pids.current until one was, and a while after.
	var peak int64
	var refusedAt time.Time
	deadline := time.Now().Add(20 * time.Second)
	for refusedAt.IsZero() || time.Since(refusedAt) < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("no fork was refused in 20s; pids.current peaked at %d", peak)
		}
		stats, err := leaf.Stats()
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, stats.PidsCurrent)
		if stats.PidsCurrent > pidsMax {
			t.Fatalf("pids.current = %d, above pids.max %d", stats.PidsCurrent, pidsMax)
		}
		if refusedAt.IsZero() {
			refused, err := readKey(leaf.file("pids.events"), "max")
			if err != nil {
				t.Fatal(err)
			}
			if refused > 0 {
				refusedAt = time.Now()
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("pids.current peaked at %d of %d", peak, pidsMax)
	if peak < pidsMax/2 {
		t.Errorf("pids.current peaked at %d: the bomb never came near pids.max %d", peak, pidsMax)
	}

	if err := leaf.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leaf.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

// testKill runs a shell with eight children in a leaf, kills the leaf
// with kill, and checks that no process is left.
func testKill(t *testing.T, kill func(*Leaf) error) {
	tree := kernelTree(t)
	leaf := newKernelLeaf(t, tree, "run.1", Limits{PidsMax: 32})
	sh := startGated(t, leaf, exec.Command("sh", "-c", `for i in 1 2 3 4 5 6 7 8; do sleep 300 & done; wait`))
	waitFor(t, 10*time.Second, "nine processes in the leaf", func() bool { return countProcs(t, leaf) >= 9 })

	stats, err := leaf.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before the kill: %+v", stats)
	if slices.Contains(tree.Controllers(), "pids") && stats.PidsCurrent < 9 {
		t.Errorf("pids.current = %d with nine processes in the leaf", stats.PidsCurrent)
	}

	if err := kill(leaf); err != nil {
		t.Fatal(err)
	}
	if err := sh.Wait(); !killedBySIGKILL(err) {
		t.Errorf("sh ended with %v, want SIGKILL", err)
	}
	// Remove returns only once cgroup.events says populated 0: no
	// process, orphaned sleeps included, is left in the leaf.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leaf.Remove(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEnforceKill(t *testing.T) {
	testKill(t, (*Leaf).Kill)
}

func TestEnforceKillFallback(t *testing.T) {
	testKill(t, (*Leaf).killEach)
}

func TestEnforceCloneIntoCgroupAndSweep(t *testing.T) {
	tree := kernelTree(t)
	empty := newKernelLeaf(t, tree, "web.1", Limits{})
	busy := newKernelLeaf(t, tree, "web.2", Limits{})
	startInLeaf(t, busy, func() *exec.Cmd { return exec.Command("sleep", "300") })
	if got := countProcs(t, busy); got != 1 {
		t.Fatalf("web.2 holds %d processes after the start, want 1", got)
	}
	if err := tree.Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(empty.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Sweep left the empty leaf: %v", err)
	}
	if _, err := os.Stat(busy.Path()); err != nil {
		t.Errorf("Sweep removed the populated leaf: %v", err)
	}
}
