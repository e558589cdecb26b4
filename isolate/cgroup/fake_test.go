package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeCgroupFS imitates, in a temporary directory, the parts of cgroupfs
// this package relies on (Documentation/admin-guide/cgroup-v2.rst):
//
//   - mkdir creates the interface files, with cgroup.controllers taken
//     from the parent's cgroup.subtree_control and the files of those
//     controllers;
//   - a write of "+name" or "-name" to cgroup.subtree_control edits the
//     list that the file shows, failing with ENOENT for a controller the
//     cgroup does not offer and EBUSY for a cgroup that holds processes;
//   - a write of a pid to cgroup.procs moves the pid there from wherever
//     it was in the fake tree, failing with EBUSY for a cgroup with
//     controllers enabled for its children;
//   - rmdir fails with EBUSY while the cgroup is populated or has
//     children, and otherwise removes it with its files.
//
// Other writes store the value, through writeFile itself. Every write is
// recorded, and failNext makes writes to a file fail. The fake does not
// maintain cgroup.events; tests set "populated" themselves.
type fakeCgroupFS struct {
	t    *testing.T
	root string
	// omit names interface files that mkdir does not create, to imitate
	// an older kernel or one without swap accounting.
	omit []string

	mu     sync.Mutex
	writes []fakeWrite
	fail   map[string][]error
}

// fakeWrite is one recorded write: the file relative to the fake root.
type fakeWrite struct {
	file, value string
}

// newFakeCgroupFS makes a fake delegated cgroup offering controllers, and
// puts pids in it.
func newFakeCgroupFS(t *testing.T, controllers string, pids ...int) *fakeCgroupFS {
	t.Helper()
	f := &fakeCgroupFS{t: t, root: filepath.Join(t.TempDir(), "delegated"), fail: make(map[string][]error)}
	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	f.makeFiles(f.root, strings.Fields(controllers))
	var procs strings.Builder
	for _, pid := range pids {
		fmt.Fprintf(&procs, "%d\n", pid)
	}
	f.set("cgroup.procs", procs.String())
	return f
}

// omitting makes later mkdirs leave out the named files.
func (f *fakeCgroupFS) omitting(files ...string) *fakeCgroupFS {
	f.omit = append(f.omit, files...)
	return f
}

func (f *fakeCgroupFS) ops() fsOps {
	return fsOps{mkdir: f.mkdir, rmdir: f.rmdir, write: f.write}
}

// path returns the absolute path of rel, a path relative to the fake root.
func (f *fakeCgroupFS) path(rel string) string {
	return filepath.Join(f.root, rel)
}

// set writes content to rel directly, as the kernel would update it.
func (f *fakeCgroupFS) set(rel, content string) {
	f.t.Helper()
	if err := os.WriteFile(f.path(rel), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// get reads rel.
func (f *fakeCgroupFS) get(rel string) string {
	f.t.Helper()
	b, err := os.ReadFile(f.path(rel))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

// failNext makes the next writes to rel fail with errs, one each.
func (f *fakeCgroupFS) failNext(rel string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[rel] = append(f.fail[rel], errs...)
}

// writesTo returns the values written to rel, in order, failed ones
// included.
func (f *fakeCgroupFS) writesTo(rel string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var values []string
	for _, w := range f.writes {
		if w.file == rel {
			values = append(values, w.value)
		}
	}
	return values
}

// makeFiles creates the interface files of a cgroup offering controllers.
func (f *fakeCgroupFS) makeFiles(dir string, controllers []string) {
	f.t.Helper()
	files := map[string]string{
		"cgroup.controllers":     strings.Join(controllers, " ") + "\n",
		"cgroup.subtree_control": "\n",
		"cgroup.procs":           "",
		"cgroup.events":          "populated 0\nfrozen 0\n",
		"cgroup.type":            "domain\n",
		"cgroup.freeze":          "0\n",
		"cgroup.kill":            "",
		"cpu.stat":               "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
	}
	if slices.Contains(controllers, "memory") {
		files["memory.current"] = "0\n"
		files["memory.max"] = "max\n"
		files["memory.swap.current"] = "0\n"
		files["memory.swap.max"] = "max\n"
		files["memory.oom.group"] = "0\n"
		files["memory.events"] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"
	}
	if slices.Contains(controllers, "pids") {
		files["pids.current"] = "0\n"
		files["pids.max"] = "max\n"
	}
	if slices.Contains(controllers, "cpu") {
		files["cpu.weight"] = "100\n"
		files["cpu.max"] = "max 100000\n"
	}
	for name, content := range files {
		if slices.Contains(f.omit, name) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fakeCgroupFS) mkdir(path string) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	controllers, err := readList(filepath.Join(filepath.Dir(path), "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	f.makeFiles(path, controllers)
	return nil
}

func (f *fakeCgroupFS) rmdir(path string) error {
	populated, err := readKey(filepath.Join(path, "cgroup.events"), "populated")
	if err != nil {
		return err
	}
	pids, err := readPids(filepath.Join(path, "cgroup.procs"))
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	hasChild := slices.ContainsFunc(entries, fs.DirEntry.IsDir)
	if populated != 0 || len(pids) > 0 || hasChild {
		return &fs.PathError{Op: "rmdir", Path: path, Err: unix.EBUSY}
	}
	return os.RemoveAll(path)
}

func (f *fakeCgroupFS) write(path, value string) error {
	rel, err := filepath.Rel(f.root, path)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.writes = append(f.writes, fakeWrite{rel, value})
	var injected error
	if errs := f.fail[rel]; len(errs) > 0 {
		injected, f.fail[rel] = errs[0], errs[1:]
	}
	f.mu.Unlock()
	if injected != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, injected)
	}
	if _, err := os.Stat(path); err != nil {
		// cgroupfs cannot create files: writeFile reports the ENOENT.
		return writeFile(path, value)
	}
	switch filepath.Base(path) {
	case "cgroup.subtree_control":
		if err := f.editSubtree(filepath.Dir(path), value); err != nil {
			return fmt.Errorf("write %q to %s: %w", value, path, err)
		}
		return nil
	case "cgroup.procs":
		if err := f.move(filepath.Dir(path), value); err != nil {
			return fmt.Errorf("write %q to %s: %w", value, path, err)
		}
		return nil
	}
	return writeFile(path, value)
}

// editSubtree applies "+name" and "-name" words to dir's
// cgroup.subtree_control, as cgroup_subtree_control_write does.
func (f *fakeCgroupFS) editSubtree(dir, value string) error {
	offered, err := readList(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	enabled, err := readList(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	for _, word := range strings.Fields(value) {
		name := word[1:]
		switch word[0] {
		case '+':
			if !slices.Contains(offered, name) {
				return unix.ENOENT
			}
			pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
			if err != nil {
				return err
			}
			if len(pids) > 0 && !isRootCgroup(dir) {
				return unix.EBUSY
			}
			if !slices.Contains(enabled, name) {
				enabled = append(enabled, name)
			}
		case '-':
			enabled = slices.DeleteFunc(enabled, func(c string) bool { return c == name })
		default:
			return unix.EINVAL
		}
	}
	slices.Sort(enabled)
	return os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(enabled, " ")+"\n"), 0o644)
}

// move moves the pid in value into dir, taking it out of every other
// cgroup of the fake tree.
func (f *fakeCgroupFS) move(dir, value string) error {
	pid := strings.TrimSpace(value)
	enabled, err := readList(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	if len(enabled) > 0 && !isRootCgroup(dir) {
		return unix.EBUSY
	}
	err = filepath.WalkDir(f.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return err
		}
		pids, err := readList(path)
		if err != nil {
			return err
		}
		pids = slices.DeleteFunc(pids, func(p string) bool { return p == pid })
		if filepath.Dir(path) == dir {
			pids = append(pids, pid)
		}
		var b strings.Builder
		for _, p := range pids {
			b.WriteString(p + "\n")
		}
		return os.WriteFile(path, []byte(b.String()), 0o644)
	})
	if err != nil {
		return errors.New("fake cgroupfs: " + err.Error())
	}
	return nil
}
