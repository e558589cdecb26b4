package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCopyTreeAndRemoveAll(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "a", ".git"), 0o755)
	os.WriteFile(filepath.Join(src, "a", "x"), []byte("x"), 0o751)
	os.WriteFile(filepath.Join(src, "a", ".git", "HEAD"), []byte("h"), 0o644)
	os.Symlink("a/x", filepath.Join(src, "link"))
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "a", "x"), old, old)
	os.Chmod(filepath.Join(src, "a"), 0o555)
	defer os.Chmod(filepath.Join(src, "a"), 0o755)

	err := CopyTree(src, dst, func(_ string, d fs.DirEntry) bool { return d.Name() == ".git" })
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dst, "a", "x"))
	if err != nil || fi.Mode().Perm() != 0o751 || !fi.ModTime().Equal(old) {
		t.Errorf("copied file: %v, %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "a/x" {
		t.Errorf("symlink: %q, %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "a", ".git")); err == nil {
		t.Error("skipped dir copied")
	}

	// A tree with a mode-000 directory inside, as overlay leaves.
	locked := filepath.Join(dst, "a", "locked")
	os.Mkdir(locked, 0o755)
	os.WriteFile(filepath.Join(locked, "f"), nil, 0o644)
	os.Chmod(locked, 0)
	if err := RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("tree still there")
	}
}

// A directory swapped for a symlink to one outside the tree after it
// was listed: the chmod pass must not change the symlink's target (it
// did: os.Chmod by path follows symlinks), and the removal leaves it.
func TestRemoveAllSwappedSymlink(t *testing.T) {
	top, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "target")
	if err := os.MkdirAll(filepath.Join(top, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(target, "kept"), []byte("k"), 0o644)
	if err := os.Chmod(target, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(target, 0o755)
	chmodTree(top, func(p string) {
		if p != "a/b" {
			return
		}
		real := filepath.Join(top, "a", "b")
		if err := os.Rename(real, real+".real"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, real); err != nil {
			t.Fatal(err)
		}
	})
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o500 {
		t.Errorf("the symlink's target outside the tree: %v, %v; want mode 0500, unchanged", fi.Mode(), err)
	}
	if err := RemoveAll(top); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target, "kept")); err != nil {
		t.Errorf("the symlink's target lost its content: %v", err)
	}
	if _, err := os.Lstat(top); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", top, err)
	}
}

// Directories of mode 000 deep in the tree, and a symlink to one outside
// it, which keeps its mode.
func TestRemoveAllUnreadable(t *testing.T) {
	top, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(top, "w", "work", "deep"), 0o755)
	os.WriteFile(filepath.Join(top, "w", "work", "deep", "f"), nil, 0o644)
	os.Chmod(filepath.Join(top, "w", "work", "deep"), 0)
	os.Chmod(filepath.Join(top, "w", "work"), 0)
	os.Chmod(outside, 0o500)
	defer os.Chmod(outside, 0o755)
	os.Symlink(outside, filepath.Join(top, "out"))
	if err := RemoveAll(top); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(top); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", top, err)
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o500 {
		t.Errorf("outside: mode %v, want 0500", fi.Mode().Perm())
	}
}
