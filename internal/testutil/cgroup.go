package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// KernelEnv is set by the init of make test-kernel (internal/kerneltest),
// in a kernel known to offer cgroup v2 with the memory and pids
// controllers. There a test that would skip for want of them fails
// instead: a skip inside that kernel is a broken check, not a host that
// lacks something.
const KernelEnv = "DYNO_KERNEL_TEST"

// InKernelTest reports whether the tests run inside make test-kernel.
func InKernelTest() bool { return os.Getenv(KernelEnv) != "" }

// SkipOutsideKernel skips t with reason, or fails it inside make
// test-kernel's kernel, where nothing it needs may be missing.
func SkipOutsideKernel(t testing.TB, reason string) {
	t.Helper()
	if InKernelTest() {
		t.Fatalf("inside make test-kernel's kernel, which must offer it: %s", reason)
	}
	t.Skip(reason)
}

// evacuated is the child cgroup the test process moves itself into so
// that its own cgroup may enable controllers for new children.
const evacuated = "dyno-test-self"

var delegation struct {
	once sync.Once
	base string // the cgroup that offers controllers to new children
	err  error  // why there is none: a reason to skip
}

// DelegatedCgroup returns a new, empty cgroup v2 directory with the memory
// and pids controllers (and cpu where the kernel allows it) in its
// cgroup.controllers, handed over the way systemd's Delegate=yes hands a
// unit's cgroup over: owned, the directory and its files, by the uid the
// tests run dyno as (Nobody when the tests run as root). Start dyno in it
// with StartInCgroup so that it is alone there, as in its own unit. The
// cgroup and anything left in it are killed and removed at the end of the
// test. Where the host offers no such cgroup the test is skipped with the
// reason (SkipOutsideKernel).
//
// Its parent is the test process's own cgroup. The kernel lets a cgroup
// enable controllers for its children only while it holds no process
// ("No Internal Process Constraint" in the kernel's cgroup-v2.rst), the
// root cgroup excepted, so a test process alone in a non-root cgroup (a
// delegated scope) first moves itself into a child, dyno-test-self, as
// dyno's supervisor does.
func DelegatedCgroup(t testing.TB) string {
	t.Helper()
	delegation.once.Do(func() { delegation.base, delegation.err = prepareDelegation() })
	if delegation.err != nil {
		SkipOutsideKernel(t, delegation.err.Error())
	}
	dir, err := os.MkdirTemp(delegation.base, "dyno-test-")
	if err != nil {
		t.Fatalf("make a delegated cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := removeCgroupTree(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if os.Getuid() == 0 {
		// systemd chowns the directory and its cgroup.procs,
		// cgroup.subtree_control and cgroup.threads; all of it is as
		// good, since the limits a delegate may not raise are its
		// parent's.
		err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, Nobody, Nobody)
		})
		if err != nil {
			t.Fatalf("delegate %s to uid %d: %v", dir, Nobody, err)
		}
	}
	return dir
}

// prepareDelegation finds or makes the cgroup whose children
// DelegatedCgroup makes, with memory and pids enabled for them.
func prepareDelegation() (string, error) {
	const mount = "/sys/fs/cgroup"
	var st unix.Statfs_t
	if err := unix.Statfs(mount, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		return "", fmt.Errorf("cgroup v2 is not mounted at %s (a cgroup v1 or hybrid host)", mount)
	}
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	own = filepath.Join(mount, own)
	if filepath.Base(own) == evacuated {
		own = filepath.Dir(own)
	}
	controllers, err := readWords(filepath.Join(own, "cgroup.controllers"))
	if err != nil {
		return "", err
	}
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(controllers, c) {
			return "", fmt.Errorf("%s offers no %s controller (cgroup.controllers: %q)", own, c, controllers)
		}
	}
	if unix.Access(filepath.Join(own, "cgroup.subtree_control"), unix.W_OK) != nil {
		return "", fmt.Errorf("%s is not delegated to uid %d", own, os.Getuid())
	}
	procs, err := readWords(filepath.Join(own, "cgroup.procs"))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(own, "cgroup.type")); err == nil && len(procs) > 0 {
		// Not the root cgroup (it alone has no cgroup.type), and
		// populated: move out if this process is alone there.
		if !slices.Equal(procs, []string{strconv.Itoa(os.Getpid())}) {
			return "", fmt.Errorf("%s holds other processes than the test, so it cannot enable controllers for its children; run the test binary alone in a delegated cgroup (make test-kernel does)", own)
		}
		self := filepath.Join(own, evacuated)
		if err := os.Mkdir(self, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(self, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return "", fmt.Errorf("move the test process into %s: %w", self, err)
		}
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		err := os.WriteFile(filepath.Join(own, "cgroup.subtree_control"), []byte("+"+c), 0)
		if err != nil && c != "cpu" {
			return "", fmt.Errorf("enable %s in %s: %w", c, own, err)
		}
	}
	return own, nil
}

// ownCgroup returns this process's cgroup v2 path, the "0::PATH" line of
// /proc/self/cgroup (cgroups(7)).
func ownCgroup() (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if path, ok := strings.CutPrefix(s.Text(), "0::"); ok {
			return path, nil
		}
	}
	return "", errors.New("/proc/self/cgroup has no cgroup v2 line")
}

func readWords(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// StartInCgroup makes cmd start in the cgroup dir, born there by clone3
// with CLONE_INTO_CGROUP (Linux 5.7), so that the test process, which
// starts it, never shares dir with it.
func StartInCgroup(t testing.TB, cmd *exec.Cmd, dir string) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(f.Fd())
}

// CgroupFile reads the interface file name of the cgroup dir, trimmed.
func CgroupFile(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// removeCgroupTree kills every process in dir and its descendants
// (cgroup.kill, Linux 5.14) and removes the cgroups, deepest first, once
// each is empty: rmdir of a populated cgroup fails with EBUSY.
func removeCgroupTree(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kill %s: %w", dir, err)
	}
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range slices.Backward(dirs) {
		for {
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("rmdir %s: %w", d, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}
