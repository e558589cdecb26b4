// Package fsutil holds the file-tree operations several of dyno's
// packages need: copying a tree as it is, and removing one that its
// users made unreadable.
package fsutil

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CopyTree copies the directory src into dst, which must exist: regular
// files with their permission bits and modification times, symlinks as
// symlinks (never followed), directories writable by their owner so the
// copy can be filled. Sockets, pipes and devices are skipped. skip, when
// not nil, leaves out an entry (and, for a directory, all below it); it
// gets the entry's path under src.
func CopyTree(src, dst string, skip func(path string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == src {
			return nil
		}
		if skip != nil && skip(p, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			return os.Chmod(target, mode.Perm()|0o700)
		case mode.IsRegular():
			return copyFile(p, target, info)
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		}
		return nil
	})
}

func copyFile(src, dst string, info fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(dst, info.Mode().Perm()); err != nil {
		return err
	}
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}

// RemoveAll removes path like os.RemoveAll, also where directories lost
// their owner's permissions: overlay's work/work is mode 000, apps and
// buildpacks leave read-only trees, and slugs are unpacked read-only.
//
// The trees it removes are often written by code dyno did not write (a
// build's), which can swap a directory for a symlink while they are
// walked; so the chmod pass goes through an os.Root of path: no chmod
// ever lands outside the tree, and a symlink's target is never changed
// (os.Root's Chmod resolves symlinks inside the root only and does not
// follow one in the last element: fchmodat2 AT_SYMLINK_NOFOLLOW, or
// O_PATH|O_NOFOLLOW and /proc/self/fd where the kernel lacks it). path
// itself is the caller's, not a tree's, and is trusted. os.RemoveAll
// then removes with unlinkat relative to open directories and does not
// follow symlinks.
func RemoveAll(path string) error {
	chmodTree(path, nil)
	return os.RemoveAll(path)
}

// chmodTree makes the directories of the tree at path, path included,
// mode 0700. listed, when not nil, is called with each directory's path
// in the tree once it has been listed and before its chmod: tests swap
// it for a symlink there.
func chmodTree(path string, listed func(p string)) {
	if fi, err := os.Lstat(path); err != nil || !fi.IsDir() {
		return
	}
	// A directory of mode 000 cannot be opened as the root.
	os.Chmod(path, 0o700)
	root, err := os.OpenRoot(path)
	if err != nil {
		return
	}
	defer root.Close()
	// WalkDir visits a directory before reading it, so the chmod comes
	// first.
	fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != "." {
			if listed != nil {
				listed(p)
			}
			root.Chmod(p, 0o700)
		}
		return nil
	})
}
