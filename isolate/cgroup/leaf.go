package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Leaf is the cgroup of one dyno: its init and every process below it.
type Leaf struct {
	path string
	ops  fsOps
	proc string // /proc, unless a test says otherwise (procRoot)
}

// Path returns the leaf's directory.
func (l *Leaf) Path() string {
	return l.path
}

// Open opens the leaf's directory for SysProcAttr.UseCgroupFD and
// CgroupFD: clone3(2) with CLONE_INTO_CGROUP (Linux 5.7) then starts the
// child in the leaf, so no instant of its life is accounted elsewhere and
// no migration is needed. The caller closes the file once the child
// started.
func (l *Leaf) Open() (*os.File, error) {
	fd, err := unix.Open(l.path, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.path, err)
	}
	return os.NewFile(uintptr(fd), l.path), nil
}

// AddProcess moves the process pid, with all its threads, into the leaf:
// the fallback where clone3 with CLONE_INTO_CGROUP is refused (ENOSYS on a
// kernel before 5.7, EPERM from a seccomp profile). The child must not run
// the app before it is moved, or what it did meanwhile is accounted to the
// supervisor's cgroup.
func (l *Leaf) AddProcess(pid int) error {
	return l.ops.writeBusy(l.file("cgroup.procs"), strconv.Itoa(pid))
}

// Kill sends SIGKILL to every process in the leaf. It writes 1 to
// cgroup.kill (Linux 5.14), which kills the whole subtree in the kernel,
// forks that race with it included ("Core Interface Files"). Without
// cgroup.kill it freezes the leaf, kills each process listed in
// cgroup.procs and thaws it. Kill does not wait for the processes to exit;
// Remove does. Killing a leaf that was removed does nothing.
func (l *Leaf) Kill() error {
	err := l.ops.write(l.file("cgroup.kill"), "1")
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !exists(l.path) {
		return nil
	}
	return l.killEach()
}

// maxKillRounds bounds killEach against a leaf that keeps forking faster
// than it is killed, which pids.max and the freezer make unlikely.
const maxKillRounds = 100

// killEach kills every process in cgroup.procs, on kernels without
// cgroup.kill. Freezing first (cgroup.freeze, Linux 5.2) stops the
// processes from forking while their pids are read; a frozen process still
// dies of SIGKILL ("Core Interface Files": "Processes in the frozen cgroup
// can be killed by a fatal signal"). The freeze takes effect
// asynchronously, and a kernel may lack the freezer too, so the pids are
// read again until a round finds none that was not already killed. A pid
// that exits and is reused between the read and the kill would be the
// wrong process; frozen processes do not exit, which narrows that to the
// ones already dying.
func (l *Leaf) killEach() error {
	freeze := l.file("cgroup.freeze")
	frozen := l.ops.write(freeze, "1") == nil
	if frozen {
		defer l.ops.write(freeze, "0")
	}
	procs := l.file("cgroup.procs")
	killed := make(map[int]bool)
	for range maxKillRounds {
		pids, err := readPids(procs)
		if err != nil {
			return err
		}
		fresh := 0
		for _, pid := range pids {
			if killed[pid] {
				continue
			}
			// ESRCH: it exited since cgroup.procs was read.
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("kill pid %d of %s: %w", pid, l.path, err)
			}
			killed[pid] = true
			fresh++
		}
		if fresh == 0 {
			return nil
		}
		// Let the freeze settle and forks in flight show up.
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("kill %s: processes still forking after %d rounds", l.path, maxKillRounds)
}

// Stats is a leaf's resource usage.
type Stats struct {
	// MemoryCurrent is memory.current: anonymous memory, page cache and
	// kernel memory charged to the leaf, in bytes.
	MemoryCurrent int64
	// SwapCurrent is memory.swap.current, in bytes.
	SwapCurrent int64
	// PidsCurrent is pids.current: tasks, threads included.
	PidsCurrent int64
	// CPUUsage is the usage_usec of cpu.stat: CPU time used so far.
	CPUUsage time.Duration
}

// Stats reads the leaf's usage. A figure whose file is missing, because
// its controller is off or the kernel does not account it, reads as 0.
func (l *Leaf) Stats() (Stats, error) {
	var s Stats
	var err error
	if s.MemoryCurrent, err = optional(readInt(l.file("memory.current"))); err != nil {
		return Stats{}, err
	}
	if s.SwapCurrent, err = optional(readInt(l.file("memory.swap.current"))); err != nil {
		return Stats{}, err
	}
	if s.PidsCurrent, err = optional(readInt(l.file("pids.current"))); err != nil {
		return Stats{}, err
	}
	// cpu.stat exists without the cpu controller too: usage_usec is
	// always accounted ("CPU Interface Files").
	usec, err := optional(readKey(l.file("cpu.stat"), "usage_usec"))
	if err != nil {
		return Stats{}, err
	}
	s.CPUUsage = time.Duration(usec) * time.Microsecond
	return s, nil
}

// OOMKills returns the oom_kill count of memory.events: the processes in
// the leaf killed by an OOM killer. The count only rises; compare it with
// the count when the dyno started to tell an OOM kill (R15) from another
// SIGKILL. Without the memory controller it is 0.
func (l *Leaf) OOMKills() (int64, error) {
	return optional(readKey(l.file("memory.events"), "oom_kill"))
}

// file returns the path of the leaf's interface file name.
func (l *Leaf) file(name string) string {
	return filepath.Join(l.path, name)
}

// optional turns the error of reading a missing file into a reading of 0.
func optional(n int64, err error) (int64, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return n, err
}

// Remove removes the leaf once it holds no process, waiting until it does
// or ctx is done. The kernel refuses rmdir(2) of a populated cgroup with
// EBUSY ("Removing Cgroups"), and processes killed by Kill take a moment
// to exit. A leaf that is already gone is not an error.
func (l *Leaf) Remove(ctx context.Context) error {
	if err := l.waitEmpty(ctx); err != nil {
		return err
	}
	// rmdir can still fail with EBUSY for a moment after populated went
	// to 0, while the last task is released (containers/crun#758), so it
	// is retried until ctx is done.
	delay := busyDelay
	for {
		err := l.ops.rmdir(l.path)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("rmdir %s: %w", l.path, pathErrno(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rmdir %s: %w (%w)", l.path, pathErrno(err), context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// waitEmpty waits until cgroup.events says "populated 0". The kernel
// raises a file-modified event on cgroup.events whenever a value in it
// changes ("Core Interface Files"), so an inotify watch on IN_MODIFY wakes
// the wait instead of polling. The watch is added before the first read,
// so a change between the two is not missed.
func (l *Leaf) waitEmpty(ctx context.Context) error {
	events := l.file("cgroup.events")
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify_init1: %w", err)
	}
	// A non-blocking fd becomes a pollable os.File: Read parks the
	// goroutine in the netpoller rather than a thread, and a read deadline
	// interrupts it when ctx is done.
	watcher := os.NewFile(uintptr(fd), "inotify")
	defer watcher.Close()
	if _, err := unix.InotifyAddWatch(fd, events, unix.IN_MODIFY); err != nil {
		if errors.Is(err, unix.ENOENT) && !exists(l.path) {
			return nil
		}
		return fmt.Errorf("watch %s: %w", events, err)
	}
	stop := context.AfterFunc(ctx, func() { watcher.SetReadDeadline(time.Now()) })
	defer stop()

	buf := make([]byte, 4096)
	for {
		populated, err := readKey(events, "populated")
		if errors.Is(err, fs.ErrNotExist) && !exists(l.path) {
			return nil
		}
		if err != nil {
			return err
		}
		if populated == 0 {
			return nil
		}
		if _, err := watcher.Read(buf); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("remove %s: still holds processes: %w", l.path, context.Cause(ctx))
			}
			return fmt.Errorf("read inotify events for %s: %w", events, err)
		}
	}
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
