package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// fsOps are the operations on cgroupfs whose effect a plain directory
// cannot imitate: mkdir(2) in cgroupfs creates the interface files of the
// new cgroup, rmdir(2) removes a cgroup although it still lists them, and
// a write is parsed by the kernel rather than stored ("Creating Cgroups",
// "Removing Cgroups"). Production uses kernelOps; tests substitute a fake
// that imitates the kernel in a temporary directory and records writes.
type fsOps struct {
	mkdir func(path string) error
	rmdir func(path string) error
	write func(path, value string) error
}

// kernelOps returns the fsOps for a real cgroupfs.
func kernelOps() fsOps {
	return fsOps{
		mkdir: func(path string) error { return os.Mkdir(path, 0o755) },
		rmdir: func(path string) error { return unix.Rmdir(path) },
		write: writeFile,
	}
}

// busyAttempts and busyDelay bound the retries of a write or rmdir that
// fails with EBUSY. The kernel can report EBUSY for a moment after a
// process migrated or exited, before its css_set is released
// (containers/crun#758 retries the same way); a cgroup that really holds
// processes keeps failing and the error is returned.
const (
	busyAttempts = 6
	busyDelay    = 5 * time.Millisecond
)

// retryBusy calls op until it succeeds, fails with another error than
// EBUSY, or busyAttempts ran out. The delay doubles each time, 155ms in all.
func retryBusy(op func() error) error {
	delay := busyDelay
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || !errors.Is(err, unix.EBUSY) || attempt == busyAttempts {
			return err
		}
		time.Sleep(delay)
		delay *= 2
	}
}

// writeBusy writes value to the interface file at path, retrying EBUSY.
func (o fsOps) writeBusy(path, value string) error {
	return retryBusy(func() error { return o.write(path, value) })
}

// writeFile writes value to an existing interface file in one write(2),
// which is how the kernel expects it: each write is parsed on its own. The
// file is not created when missing. cgroupfs cannot create files, and a
// missing one means that a controller is off or the kernel predates the
// file; callers that tolerate that look for fs.ErrNotExist. O_TRUNC is
// ignored by kernfs, as by any shell's "echo 1 > cgroup.kill", and makes a
// plain file standing in for cgroupfs hold the last value written.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, pathErrno(err))
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, pathErrno(err))
	}
	return nil
}

// pathErrno unwraps an *fs.PathError, whose operation and path the caller
// states itself, keeping the errno for errors.Is.
func pathErrno(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readFile reads an interface file.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, pathErrno(err))
	}
	return b, nil
}

// readInt reads a file holding a single number, such as memory.current.
func readInt(path string) (int64, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, err
	}
	s := string(bytes.TrimSpace(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: %q is not a number", path, s)
	}
	return n, nil
}

// readKey reads one key of a flat keyed file ("Interface Files": lines of
// "KEY VALUE", as in cpu.stat, memory.events and cgroup.events). A key the
// file does not list reads as 0: newer kernels add keys, older ones lack
// them, and every key this package reads is a counter or a flag.
func readKey(path, key string) (int64, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s: %s %q is not a number", path, key, v)
		}
		return n, nil
	}
	return 0, nil
}

// readPids reads cgroup.procs: one pid a line.
func readPids(path string) ([]int, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, field := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(field)
		if err != nil {
			return nil, fmt.Errorf("read %s: %q is not a pid", path, field)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// readList reads a space-separated list such as cgroup.controllers.
func readList(path string) ([]string, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}
