package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const supervisorPid = 4242

func TestSetup(t *testing.T) {
	f := newFakeCgroupFS(t, "cpuset cpu io memory pids", supervisorPid)
	tree, err := setup(f.root, supervisorPid, f.ops())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tree.Controllers(), []string{"memory", "pids", "cpu"}; !slices.Equal(got, want) {
		t.Errorf("Controllers() = %q, want %q", got, want)
	}
	if err := tree.Refused(); err != nil {
		t.Errorf("Refused() = %v, want nil", err)
	}
	if got, want := f.writesTo("supervisor/cgroup.procs"), []string{"4242"}; !slices.Equal(got, want) {
		t.Errorf("supervisor/cgroup.procs got %q, want %q", got, want)
	}
	if got := f.get("cgroup.procs"); got != "" {
		t.Errorf("delegated cgroup still holds %q after Setup", got)
	}
	one := []string{"+memory", "+pids", "+cpu"}
	if got := f.writesTo("cgroup.subtree_control"); !slices.Equal(got, one) {
		t.Errorf("cgroup.subtree_control got %q, want %q one at a time", got, one)
	}
	if got := f.writesTo("dynos/cgroup.subtree_control"); !slices.Equal(got, one) {
		t.Errorf("dynos/cgroup.subtree_control got %q, want %q one at a time", got, one)
	}
	if got, want := f.get("dynos/cgroup.subtree_control"), "cpu memory pids\n"; got != want {
		t.Errorf("dynos/cgroup.subtree_control reads %q, want %q", got, want)
	}
}

func TestSetupAgain(t *testing.T) {
	f := newFakeCgroupFS(t, "memory pids", supervisorPid)
	if _, err := setup(f.root, supervisorPid, f.ops()); err != nil {
		t.Fatal(err)
	}
	// A new supervisor after a crash finds supervisor/ and dynos/.
	tree, err := setup(f.root, supervisorPid+1, f.ops())
	if err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	if got, want := tree.Controllers(), []string{"memory", "pids"}; !slices.Equal(got, want) {
		t.Errorf("Controllers() = %q, want %q", got, want)
	}
}

func TestSetupRefusedControllers(t *testing.T) {
	f := newFakeCgroupFS(t, "memory pids", supervisorPid)
	// +memory at dynos/ fails, +pids goes through, and cpu is not
	// offered at all.
	f.failNext("dynos/cgroup.subtree_control", unix.EINVAL)
	tree, err := setup(f.root, supervisorPid, f.ops())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tree.Controllers(), []string{"pids"}; !slices.Equal(got, want) {
		t.Errorf("Controllers() = %q, want %q", got, want)
	}
	refused := tree.Refused()
	if refused == nil {
		t.Fatal("Refused() = nil, want memory and cpu")
	}
	for _, want := range []string{"enable memory", "invalid argument", "cpu is not in", "Delegate=cpu"} {
		if !strings.Contains(refused.Error(), want) {
			t.Errorf("Refused() = %q, want it to contain %q", refused, want)
		}
	}
}

func TestSetupRetriesBusy(t *testing.T) {
	f := newFakeCgroupFS(t, "memory pids", supervisorPid)
	f.failNext("cgroup.subtree_control", unix.EBUSY, unix.EBUSY)
	tree, err := setup(f.root, supervisorPid, f.ops())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tree.Controllers(), []string{"memory", "pids"}; !slices.Equal(got, want) {
		t.Errorf("Controllers() = %q, want %q", got, want)
	}
	if got, want := f.writesTo("cgroup.subtree_control"), []string{"+memory", "+memory", "+memory", "+pids"}; !slices.Equal(got, want) {
		t.Errorf("cgroup.subtree_control got %q, want %q", got, want)
	}
}

func TestSetupOtherProcesses(t *testing.T) {
	// Another process in the delegated cgroup keeps the kernel from
	// enabling controllers there; Refused names it.
	f := newFakeCgroupFS(t, "memory pids", supervisorPid, 777)
	tree, err := setup(f.root, supervisorPid, f.ops())
	if err != nil {
		t.Fatal(err)
	}
	if got := tree.Controllers(); len(got) != 0 {
		t.Errorf("Controllers() = %q, want none", got)
	}
	refused := tree.Refused()
	if refused == nil || !strings.Contains(refused.Error(), "still holds pids 777") {
		t.Errorf("Refused() = %v, want it to name pid 777", refused)
	}
	if !errors.Is(refused, unix.EBUSY) {
		t.Errorf("Refused() = %v, want EBUSY", refused)
	}
}

func TestSetupMoveFails(t *testing.T) {
	f := newFakeCgroupFS(t, "memory pids", supervisorPid)
	if err := os.Mkdir(f.path("supervisor"), 0o755); err != nil {
		t.Fatal(err)
	}
	// supervisor/ without interface files: the write finds no cgroup.procs.
	_, err := setup(f.root, supervisorPid, f.ops())
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "supervisor/cgroup.procs") {
		t.Errorf("Setup = %v, want ENOENT naming supervisor/cgroup.procs", err)
	}
}

func newFakeTree(t *testing.T, controllers string) (*fakeCgroupFS, *Tree) {
	t.Helper()
	f := newFakeCgroupFS(t, controllers, supervisorPid)
	tree, err := setup(f.root, supervisorPid, f.ops())
	if err != nil {
		t.Fatal(err)
	}
	return f, tree
}

func TestNewLeaf(t *testing.T) {
	f, tree := newFakeTree(t, "cpu memory pids")
	lim := Limits{
		MemoryMax: 1 << 30,
		SwapMax:   0,
		PidsMax:   256,
		CPUWeight: 200,
		CPUQuota:  150 * time.Millisecond,
	}
	leaf, err := tree.NewLeaf("web.1", lim)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := leaf.Path(), f.path("dynos/web.1"); got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	for file, want := range map[string]string{
		"memory.max":       "1073741824",
		"memory.swap.max":  "0",
		"memory.oom.group": "1",
		"pids.max":         "256",
		"cpu.weight":       "200",
		"cpu.max":          "150000 100000",
	} {
		if got := f.get("dynos/web.1/" + file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

func TestNewLeafDefaults(t *testing.T) {
	f, tree := newFakeTree(t, "cpu memory pids")
	if _, err := tree.NewLeaf("run.1", Limits{SwapMax: -1}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"memory.max":      "max",
		"memory.swap.max": "max\n", // left as the kernel made it
		"pids.max":        "max",
		"cpu.weight":      "100\n", // left as the kernel made it
		"cpu.max":         "max 100000",
	} {
		if got := f.get("dynos/run.1/" + file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

func TestNewLeafWithoutSwapAccounting(t *testing.T) {
	f, tree := newFakeTree(t, "memory pids")
	f.omitting("memory.swap.max", "memory.swap.current")
	leaf, err := tree.NewLeaf("web.1", Limits{MemoryMax: 64 << 20})
	if err != nil {
		t.Fatalf("NewLeaf without memory.swap.max: %v", err)
	}
	if _, err := os.Stat(leaf.file("memory.swap.max")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("memory.swap.max was created: %v", err)
	}
	if got, want := f.get("dynos/web.1/memory.max"), "67108864"; got != want {
		t.Errorf("memory.max = %q, want %q", got, want)
	}
}

func TestNewLeafControllersOff(t *testing.T) {
	// Only pids offered: no memory or cpu file is written, and none is
	// missed.
	f, tree := newFakeTree(t, "pids")
	if _, err := tree.NewLeaf("web.1", DefaultSizes()["standard-1x"].Limits()); err != nil {
		t.Fatal(err)
	}
	if got, want := f.get("dynos/web.1/pids.max"), "256"; got != want {
		t.Errorf("pids.max = %q, want %q", got, want)
	}
	for _, w := range f.writes {
		if strings.HasPrefix(w.file, "dynos/web.1/") && w.file != "dynos/web.1/pids.max" {
			t.Errorf("wrote %q to %s, whose controller is off", w.value, w.file)
		}
	}
}

func TestNewLeafWriteFails(t *testing.T) {
	f, tree := newFakeTree(t, "memory pids")
	f.failNext("dynos/web.1/pids.max", unix.EINVAL)
	_, err := tree.NewLeaf("web.1", Limits{PidsMax: 10})
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "pids.max") {
		t.Errorf("NewLeaf = %v, want EINVAL naming pids.max", err)
	}
	if _, err := os.Stat(f.path("dynos/web.1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("half-made leaf was left behind: %v", err)
	}
}

func TestNewLeafReplacesStale(t *testing.T) {
	f, tree := newFakeTree(t, "memory pids")
	if _, err := tree.NewLeaf("web.1", Limits{PidsMax: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.NewLeaf("web.1", Limits{PidsMax: 20}); err != nil {
		t.Fatalf("NewLeaf over an empty leaf: %v", err)
	}
	if got, want := f.get("dynos/web.1/pids.max"), "20"; got != want {
		t.Errorf("pids.max = %q, want %q", got, want)
	}

	f.set("dynos/web.1/cgroup.events", "populated 1\nfrozen 0\n")
	_, err := tree.NewLeaf("web.1", Limits{PidsMax: 30})
	if err == nil || !strings.Contains(err.Error(), "still holds processes") {
		t.Errorf("NewLeaf over a populated leaf = %v, want an error", err)
	}
}

func TestNewLeafRefuses(t *testing.T) {
	_, tree := newFakeTree(t, "cpu memory pids")
	for _, name := range []string{"", ".", "..", "a/b", "a\nb"} {
		if _, err := tree.NewLeaf(name, Limits{}); err == nil {
			t.Errorf("NewLeaf(%q) succeeded", name)
		}
	}
	for _, lim := range []Limits{
		{MemoryMax: -1},
		{SwapMax: -2},
		{PidsMax: -1},
		{CPUWeight: 10001},
		{CPUPeriod: time.Microsecond},
		{CPUQuota: time.Microsecond},
	} {
		if _, err := tree.NewLeaf("web.1", lim); err == nil {
			t.Errorf("NewLeaf with %+v succeeded", lim)
		}
	}
}

func TestSweep(t *testing.T) {
	f, tree := newFakeTree(t, "memory pids")
	for _, name := range []string{"web.1", "web.2", "run.3"} {
		if _, err := tree.NewLeaf(name, Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	f.set("dynos/web.2/cgroup.events", "populated 1\nfrozen 0\n")
	if err := tree.Sweep(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(f.path("dynos"))
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		if e.IsDir() {
			left = append(left, e.Name())
		}
	}
	if want := []string{"web.2"}; !slices.Equal(left, want) {
		t.Errorf("after Sweep dynos/ holds %q, want %q", left, want)
	}
}
