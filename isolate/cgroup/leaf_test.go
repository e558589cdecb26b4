package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newFakeLeaf(t *testing.T, controllers string) (*fakeCgroupFS, *Leaf) {
	t.Helper()
	f, tree := newFakeTree(t, controllers)
	leaf, err := tree.NewLeaf("web.1", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return f, leaf
}

func TestStats(t *testing.T) {
	f, leaf := newFakeLeaf(t, "cpu memory pids")
	f.set("dynos/web.1/memory.current", "536870912\n")
	f.set("dynos/web.1/memory.swap.current", "4096\n")
	f.set("dynos/web.1/pids.current", "17\n")
	f.set("dynos/web.1/cpu.stat", "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n")
	got, err := leaf.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{MemoryCurrent: 512 << 20, SwapCurrent: 4096, PidsCurrent: 17, CPUUsage: 1234567 * time.Microsecond}
	if got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestStatsMissingFiles(t *testing.T) {
	// With no controller enabled only cpu.stat exists.
	f, leaf := newFakeLeaf(t, "")
	f.set("dynos/web.1/cpu.stat", "usage_usec 42\nuser_usec 40\nsystem_usec 2\n")
	got, err := leaf.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{CPUUsage: 42 * time.Microsecond}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	n, err := leaf.OOMKills()
	if n != 0 || err != nil {
		t.Errorf("OOMKills() without memory.events = %d, %v; want 0, nil", n, err)
	}
}

func TestStatsMalformed(t *testing.T) {
	f, leaf := newFakeLeaf(t, "memory pids")
	f.set("dynos/web.1/pids.current", "lots\n")
	if _, err := leaf.Stats(); err == nil || !strings.Contains(err.Error(), "pids.current") {
		t.Errorf("Stats() with a malformed pids.current = %v, want an error naming it", err)
	}
}

func TestOOMKills(t *testing.T) {
	f, leaf := newFakeLeaf(t, "memory pids")
	f.set("dynos/web.1/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 1\n")
	n, err := leaf.OOMKills()
	if n != 1 || err != nil {
		t.Errorf("OOMKills() = %d, %v; want 1, nil", n, err)
	}
}

func TestAddProcess(t *testing.T) {
	f, leaf := newFakeLeaf(t, "memory pids")
	if err := leaf.AddProcess(31337); err != nil {
		t.Fatal(err)
	}
	if got, want := f.get("dynos/web.1/cgroup.procs"), "31337\n"; got != want {
		t.Errorf("cgroup.procs = %q, want %q", got, want)
	}
}

func TestOpen(t *testing.T) {
	_, leaf := newFakeLeaf(t, "memory pids")
	dir, err := leaf.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	info, err := dir.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if !info.IsDir() {
		t.Errorf("Open() opened %v, not a directory", info.Mode())
	}
	flags, err := fcntlFlags(dir)
	if err != nil {
		t.Fatal(err)
	}
	if flags&syscall.FD_CLOEXEC == 0 {
		t.Error("Open() returned an fd without FD_CLOEXEC")
	}
}

func fcntlFlags(f *os.File) (int, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var flags int
	var ferr error
	err = raw.Control(func(fd uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFD, 0)
		if errno != 0 {
			ferr = errno
		}
		flags = int(r)
	})
	return flags, errors.Join(err, ferr)
}

func TestKillWritesCgroupKill(t *testing.T) {
	f, leaf := newFakeLeaf(t, "memory pids")
	if err := leaf.Kill(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.writesTo("dynos/web.1/cgroup.kill"), []string{"1"}; !slices.Equal(got, want) {
		t.Errorf("cgroup.kill got %q, want %q", got, want)
	}
	if got := f.writesTo("dynos/web.1/cgroup.freeze"); len(got) != 0 {
		t.Errorf("cgroup.freeze got %q with cgroup.kill present", got)
	}
}

func TestKillFallback(t *testing.T) {
	// A kernel before 5.14 has no cgroup.kill: Kill freezes, kills each
	// pid in cgroup.procs, and thaws. The pids are real processes.
	f, tree := newFakeTree(t, "memory pids")
	f.omitting("cgroup.kill")
	leaf, err := tree.NewLeaf("web.1", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	var procs strings.Builder
	for range 3 {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		cmds = append(cmds, cmd)
		fmt.Fprintf(&procs, "%d\n", cmd.Process.Pid)
	}
	f.set("dynos/web.1/cgroup.procs", procs.String())

	if err := leaf.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range cmds {
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("sleep %d ended with %v, want SIGKILL", cmd.Process.Pid, err)
		}
	}
	if got, want := f.writesTo("dynos/web.1/cgroup.freeze"), []string{"1", "0"}; !slices.Equal(got, want) {
		t.Errorf("cgroup.freeze got %q, want %q", got, want)
	}
}

func TestRemoveWaitsUntilEmpty(t *testing.T) {
	f, leaf := newFakeLeaf(t, "memory pids")
	f.set("dynos/web.1/cgroup.events", "populated 1\nfrozen 0\n")
	emptied := make(chan struct{})
	go func() {
		defer close(emptied)
		time.Sleep(50 * time.Millisecond)
		// The kernel rewrites cgroup.events when the last process
		// exits; the write raises IN_MODIFY here as it does there.
		os.WriteFile(f.path("dynos/web.1/cgroup.events"), []byte("populated 0\nfrozen 0\n"), 0o644)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := leaf.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	<-emptied
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Errorf("Remove returned after %v, before the leaf was empty", elapsed)
	}
	if _, err := os.Stat(leaf.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leaf still exists after Remove: %v", err)
	}
}

func TestRemoveTimeout(t *testing.T) {
	f, leaf := newFakeLeaf(t, "memory pids")
	f.set("dynos/web.1/cgroup.events", "populated 1\nfrozen 0\n")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := leaf.Remove(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still holds processes") {
		t.Errorf("Remove of a populated leaf = %v, want a deadline error", err)
	}
	if _, err := os.Stat(leaf.Path()); err != nil {
		t.Errorf("populated leaf was removed: %v", err)
	}
}

func TestRemoveRetriesBusy(t *testing.T) {
	// rmdir can fail with EBUSY for a moment after populated went to 0.
	f, leaf := newFakeLeaf(t, "memory pids")
	busy := 2
	ops := leaf.ops
	leaf.ops.rmdir = func(path string) error {
		if busy > 0 {
			busy--
			return &fs.PathError{Op: "rmdir", Path: path, Err: syscall.EBUSY}
		}
		return ops.rmdir(path)
	}
	if err := leaf.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.path("dynos/web.1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leaf still exists after Remove: %v", err)
	}
}

func TestRemoveGone(t *testing.T) {
	f, leaf := newFakeLeaf(t, "memory pids")
	if err := os.RemoveAll(f.path("dynos/web.1")); err != nil {
		t.Fatal(err)
	}
	if err := leaf.Remove(context.Background()); err != nil {
		t.Errorf("Remove of a removed leaf = %v, want nil", err)
	}
}
