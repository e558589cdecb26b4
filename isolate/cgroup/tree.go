package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Tree is dyno's part of a delegated cgroup:
//
//	<root>/supervisor/     the supervisor process
//	<root>/dynos/          controllers enabled for its children
//	<root>/dynos/<name>/   one leaf per dyno
//
// The supervisor cannot stay in <root>: a cgroup that enables controllers
// for its children may hold no processes ("No Internal Process
// Constraint"), and the root of the delegated subtree must enable them for
// dynos/ to have any.
type Tree struct {
	dynos       string
	controllers []string
	refused     error
	ops         fsOps
}

// Setup builds the Tree at root, a cgroup delegated to this process (see
// Probe.Path), and moves the process selfPid, the supervisor, into
// root/supervisor. It enables the memory, pids and cpu controllers that
// root offers for dynos/, one at a time so that one refused controller
// leaves the others on; Controllers says which are on and Refused why the
// others are not. Setup can run again over a tree left by an earlier
// supervisor; call Sweep next to remove its leftover leaves.
func Setup(root string, selfPid int) (*Tree, error) {
	return setup(root, selfPid, kernelOps())
}

func setup(root string, selfPid int, ops fsOps) (*Tree, error) {
	t := &Tree{dynos: filepath.Join(root, "dynos"), ops: ops}
	available, err := readList(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}

	supervisor := filepath.Join(root, "supervisor")
	if err := t.mkdirExisting(supervisor); err != nil {
		return nil, err
	}
	// Writing a pid to cgroup.procs moves the whole process, all its
	// threads ("Processes").
	if err := ops.writeBusy(filepath.Join(supervisor, "cgroup.procs"), strconv.Itoa(selfPid)); err != nil {
		return nil, fmt.Errorf("move the supervisor into %s: %w", supervisor, err)
	}

	// A controller can be enabled in a cgroup's subtree_control only if
	// it is in its cgroup.controllers, that is enabled in the parent's
	// subtree_control ("Top-down Constraint"): root first, then dynos/.
	var refused []error
	var offered []string
	for _, c := range []string{"memory", "pids", "cpu"} {
		if slices.Contains(available, c) {
			offered = append(offered, c)
			continue
		}
		refused = append(refused, fmt.Errorf("%s is not in %s; delegate it to dyno's cgroup (systemd: Delegate=%s)", c, filepath.Join(root, "cgroup.controllers"), c))
	}
	onRoot := t.enable(root, offered, &refused)
	if err := t.mkdirExisting(t.dynos); err != nil {
		return nil, err
	}
	t.controllers = t.enable(t.dynos, onRoot, &refused)
	t.refused = errors.Join(refused...)
	return t, nil
}

// enable writes "+name" to dir/cgroup.subtree_control for each controller
// and returns those the kernel accepted, adding an error for each other
// one to refused.
func (t *Tree) enable(dir string, controllers []string, refused *[]error) []string {
	var on []string
	control := filepath.Join(dir, "cgroup.subtree_control")
	for _, c := range controllers {
		err := t.ops.writeBusy(control, "+"+c)
		if err == nil {
			on = append(on, c)
			continue
		}
		if errors.Is(err, unix.EBUSY) {
			if pids, perr := readPids(filepath.Join(dir, "cgroup.procs")); perr == nil && len(pids) > 0 {
				err = fmt.Errorf("%w (%s still holds pids %s, and a cgroup with processes cannot enable controllers for its children)", err, dir, joinPids(pids, 5))
			}
		}
		*refused = append(*refused, fmt.Errorf("enable %s: %w", c, err))
	}
	return on
}

// mkdirExisting makes the cgroup dir, or keeps it if it exists.
func (t *Tree) mkdirExisting(dir string) error {
	err := t.ops.mkdir(dir)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("mkdir %s: %w", dir, pathErrno(err))
	}
	return nil
}

// Controllers returns the controllers enabled for the dynos' leaves, a
// subset of memory, pids and cpu.
func (t *Tree) Controllers() []string {
	return slices.Clone(t.controllers)
}

// Refused returns why each of memory, pids and cpu that is not in
// Controllers is off, joined into one error, or nil when all three are on.
func (t *Tree) Refused() error {
	return t.refused
}

// NewLeaf makes the leaf dynos/<name> and sets lim in it, as far as the
// enabled controllers allow: a limit whose controller is off is skipped,
// as is swap where the kernel does not account it. An empty leaf of the
// same name, left by a dyno that is gone, is replaced; one that still
// holds processes is an error.
func (t *Tree) NewLeaf(name string, lim Limits) (*Leaf, error) {
	if err := checkLeafName(name); err != nil {
		return nil, err
	}
	if err := lim.check(); err != nil {
		return nil, fmt.Errorf("limits of leaf %s: %w", name, err)
	}
	path := filepath.Join(t.dynos, name)
	if err := t.removeStale(path); err != nil {
		return nil, err
	}
	if err := t.ops.mkdir(path); err != nil {
		return nil, fmt.Errorf("mkdir %s: %w", path, pathErrno(err))
	}
	for _, s := range lim.settings(t.controllers) {
		err := t.ops.write(filepath.Join(path, s.file), s.value)
		if err == nil || s.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		// The leaf holds no process yet, so it goes at once.
		t.ops.rmdir(path)
		return nil, err
	}
	return &Leaf{path: path, ops: t.ops}, nil
}

// checkLeafName refuses a name that is not a single path element, or that
// the kernel refuses (cgroup_mkdir rejects a newline).
func checkLeafName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\n\x00") {
		return fmt.Errorf("leaf name %q is not a single path element", name)
	}
	return nil
}

// removeStale removes the leaf at path if it exists and is empty.
func (t *Tree) removeStale(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	populated, err := readKey(filepath.Join(path, "cgroup.events"), "populated")
	if err != nil {
		return err
	}
	if populated != 0 {
		return fmt.Errorf("leaf %s exists and still holds processes", path)
	}
	if err := retryBusy(func() error { return t.ops.rmdir(path) }); err != nil {
		return fmt.Errorf("rmdir %s: %w", path, pathErrno(err))
	}
	return nil
}

// Sweep removes the leaves under dynos/ that hold no process: leftovers
// of a supervisor that crashed. A leaf that still holds processes stays
// (its dyno's init kills its tree when the supervisor's socket closes,
// after which a later Sweep removes it). Call Sweep before NewLeaf: it
// would remove a new leaf whose dyno has not started yet.
func (t *Tree) Sweep() error {
	entries, err := os.ReadDir(t.dynos)
	if err != nil {
		return fmt.Errorf("sweep %s: %w", t.dynos, pathErrno(err))
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue // an interface file
		}
		path := filepath.Join(t.dynos, e.Name())
		populated, err := readKey(filepath.Join(path, "cgroup.events"), "populated")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if populated != 0 {
			continue
		}
		if err := retryBusy(func() error { return t.ops.rmdir(path) }); err != nil {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", path, pathErrno(err)))
		}
	}
	return errors.Join(errs...)
}
