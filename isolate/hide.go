package isolate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Hidden is a path inside a dyno's root that an empty, read-only mount
// covers: a host path the dyno would otherwise see (Spawner.Hide).
type Hidden struct {
	Path string `json:"path"` // inside the dyno, as it is after pivot_root
	Dir  bool   `json:"dir"`  // a directory (else a file, a socket say)
}

// hiddenPath is a host path no dyno may see, symlinks resolved.
type hiddenPath struct {
	path string
	dir  bool
}

// Hide makes host paths invisible inside every sandboxed dyno started
// from now on: where one lies below the dyno's /app (its lower dir), a
// bind or a read-only host path, an empty read-only tmpfs (a directory)
// or an empty file (anything else) is mounted over it. dyno's own state
// (DYNO_HOME, with every app's ledger and config vars) and the daemon's
// socket go here: a project folder may well hold DYNO_HOME
// (~/.local/share/dyno when the folder is ~). A path that does not exist
// yet is looked for again at each start: DYNO_HOME is made by the first
// dyno's own state dir, a socket by a daemon started later.
func (sp *Spawner) Hide(paths ...string) error {
	var hidden []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("hide %s from dynos: %w", p, err)
		}
		if _, err := resolveHidden(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hide %s from dynos: %w", p, err)
		}
		hidden = append(hidden, abs)
	}
	sp.mu.Lock()
	sp.hidden = append(sp.hidden, hidden...)
	sp.mu.Unlock()
	return nil
}

// resolveHidden is the hidden path p as it is now: symlinks resolved,
// and whether it is a directory.
func resolveHidden(p string) (hiddenPath, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return hiddenPath{}, err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return hiddenPath{}, err
	}
	return hiddenPath{path: real, dir: fi.IsDir()}, nil
}

// hiddenNow resolves the paths given to Hide as they are at this start;
// those that do not exist have nothing to show.
func hiddenNow(paths []string) []hiddenPath {
	var out []hiddenPath
	for _, p := range paths {
		if h, err := resolveHidden(p); err == nil {
			out = append(out, h)
		}
	}
	return out
}

// hiddenIn says where, inside a dyno with this lower dir, binds and
// read-only host paths, each of hidden shows, so it can be covered.
func hiddenIn(hidden []hiddenPath, lower string, binds []Bind, readOnly []string) []Hidden {
	if len(hidden) == 0 {
		return nil
	}
	// Each place a host directory is seen inside: the host path, symlinks
	// resolved, and where it is mounted.
	type view struct{ host, inside string }
	var views []view
	add := func(host, inside string) {
		if real, err := filepath.EvalSymlinks(host); err == nil {
			views = append(views, view{real, inside})
		}
	}
	if lower != "" {
		add(lower, "/app")
	}
	for _, b := range binds {
		add(b.Path, b.Path)
	}
	for _, r := range readOnly {
		// A symlink on the host is the same symlink inside (merged
		// /usr): its target is covered where it is bound. Mounting
		// through an absolute link before pivot_root would land on the
		// host's tree instead of the dyno's.
		if fi, err := os.Lstat(r); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			add(r, r)
		}
	}
	var out []Hidden
	for _, h := range hidden {
		for _, v := range views {
			rel, err := filepath.Rel(v.host, h.path)
			// Strictly below: a bind of the hidden path itself, or of a
			// directory below it, is deliberate (a build's cache, say).
			if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
				continue
			}
			out = append(out, Hidden{Path: filepath.Join(v.inside, rel), Dir: h.dir})
		}
	}
	return out
}

// hideAll covers each hidden path under root: an empty read-only tmpfs
// on a directory, an empty read-only file bound on anything else. The
// dyno has no capability to unmount them (dropPrivileges; with the
// app's own ids, appCaps, which holds no CAP_SYS_ADMIN, in a user
// namespace that does not own the dyno's mount namespace), and seccomp
// denies umount besides.
func hideAll(root string, hidden []Hidden) error {
	var empty string
	for _, h := range hidden {
		target := filepath.Join(root, h.Path)
		fi, err := os.Lstat(target)
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since the parent looked
		}
		if err != nil {
			return fmt.Errorf("hide %s: %w", h.Path, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// Something in the dyno's own tree changed since the parent
			// resolved it; a mount through a link could land elsewhere.
			return fmt.Errorf("hide %s: it has become a symlink; start the dyno again", h.Path)
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=4k")
		} else {
			if empty == "" {
				// On the root's tmpfs, still writable here; unlinked
				// below, as a bind holds the file, not its name.
				empty = filepath.Join(root, ".dyno-hidden")
				if err := os.WriteFile(empty, nil, 0o400); err != nil {
					return fmt.Errorf("hide %s: %w", h.Path, err)
				}
				defer os.Remove(empty)
			}
			if err = unix.Mount(empty, target, "", unix.MS_BIND, ""); err == nil {
				err = readOnly(target)
			}
		}
		if err != nil {
			return fmt.Errorf("hide %s: %w", h.Path, err)
		}
	}
	return nil
}
