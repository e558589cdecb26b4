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

	err := CopyTree(src, dst, func(d fs.DirEntry) bool { return d.Name() == ".git" })
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
