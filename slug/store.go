package slug

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dyno-run/dyno/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Store is the slug store, a directory ($DYNO_HOME/slugs).
//
// For a digest sha256:<hex> it holds:
//
//	<hex>.tgz          the slug, read-only, named by the sha256 of its bytes
//	<hex>/             the slug unpacked, with the modes the build gave its
//	                   files: the lower layer of dynos
//	<hex>.lock         shared-locked by every user of the slug (Acquire)
//	<hex>.unpack.lock  exclusive-locked while <hex>/ is being made
//
// and, transiently, temporary files and directories whose names begin
// with a dot.
//
// The unpacked trees keep their write bits, so that a dyno may write
// its /app as a build left it (the overlay copies a file up before it
// changes, so the tree itself never does). What keeps them unchanged is
// that the store's directory is private to its owner (0700: no other
// user reaches a tree), and each .tgz is checked against its digest
// before it is unpacked.
type Store struct {
	Dir string
}

// A Slug is a slug in a Store.
type Slug struct {
	Digest string // "sha256:<hex>" of the .tgz bytes
	Size   int64  // size of the .tgz in bytes
	Path   string // the .tgz
}

const digestPrefix = "sha256:"

// parseDigest returns the hex part of a "sha256:<hex>" digest. Only the
// canonical lower-case form is accepted, so that one slug has one file name.
func parseDigest(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, digestPrefix)
	if !ok || len(h) != sha256.Size*2 || strings.ToLower(h) != h {
		return "", fmt.Errorf("invalid slug digest %q: want sha256: and 64 lower-case hex digits", digest)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("invalid slug digest %q: want sha256: and 64 lower-case hex digits", digest)
	}
	return h, nil
}

// Path returns the path of the .tgz of digest, whether or not it exists.
func (s *Store) Path(digest string) (string, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, h+".tgz"), nil
}

// Has reports whether the store holds the .tgz of digest.
func (s *Store) Has(digest string) bool {
	p, err := s.Path(digest)
	if err != nil {
		return false
	}
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Unpacked returns the directory holding the unpacked slug of digest,
// unpacking the .tgz there first if needed. The directory never changes
// until GC removes it, so callers that use it must hold the slug with
// Acquire first (Unpacked holds it itself only while it works).
//
// The .tgz is verified against its digest before anything is extracted; a
// mismatch is Heroku's R17 (checksum error). Concurrent callers, in this
// process or others, unpack once: the others wait and get the same directory.
func (s *Store) Unpacked(digest string) (string, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return "", fmt.Errorf("unpack slug: %w", err)
	}
	dir := filepath.Join(s.Dir, h)
	if isDir(dir) && !readOnlyTree(dir) {
		return dir, nil
	}
	if err := s.private(); err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	if isDir(dir) {
		// Unpacked by an earlier dyno, which took every write bit away:
		// unpacked again when no dyno uses it; when one does (its
		// overlay's lower must not be swapped), its owner gets the write
		// bits back in place.
		if err := s.dropReadOnlyTree(h); err != nil {
			return "", fmt.Errorf("unpack slug %s again: %w", digest, err)
		}
		if isDir(dir) {
			if err := ownerWritable(dir); err != nil {
				return "", fmt.Errorf("unpack slug %s again: %w", digest, err)
			}
			return dir, nil
		}
	}

	// Hold the slug while working so that GC can remove neither the .tgz
	// being read nor the tree being made.
	held, err := s.hold(h)
	if err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	defer held.Close()

	// One unpacker per digest; the others wait here and find the result.
	unlock, err := lockExclusive(filepath.Join(s.Dir, h+".unpack.lock"))
	if err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	defer unlock()
	if isDir(dir) {
		return dir, nil
	}
	// Holding the lock, any temporary tree of this digest is the leftover
	// of an unpacker that died.
	if err := removeTemps(s.Dir, h); err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}

	f, err := s.verified(h)
	if err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	defer f.Close()
	if err := unpackFor(f, dir, Limits{}, nil); err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	return dir, nil
}

// private makes the store's directory, or makes it again, readable by
// its owner alone: nobody else may reach the trees dynos mount.
func (s *Store) private() error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(s.Dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(s.Dir, 0o700); err != nil {
			return fmt.Errorf("make the slug store private: %w", err)
		}
	}
	return nil
}

// readOnlyTree says whether the tree at dir was unpacked by a dyno that
// took every write bit away: its top directory has none, where
// Unpacked now gives it 0755.
func readOnlyTree(dir string) bool {
	fi, err := os.Lstat(dir)
	return err == nil && fi.Mode().Perm()&0o200 == 0
}

// dropReadOnlyTree removes slug h's read-only tree, unless someone holds
// the slug (a running dyno's overlay may have it as its lower layer,
// which must not change under it).
func (s *Store) dropReadOnlyTree(h string) error {
	f, err := tryLockHeld(filepath.Join(s.Dir, h+".lock"))
	if f == nil || err != nil {
		return err
	}
	defer f.Close()
	dir := filepath.Join(s.Dir, h)
	if !isDir(dir) || !readOnlyTree(dir) {
		return nil
	}
	aside, err := os.MkdirTemp(s.Dir, "."+h+".tmp-")
	if err != nil {
		return err
	}
	if err := unix.Rename(dir, aside); err != nil {
		os.Remove(aside)
		return &os.LinkError{Op: "rename", Old: dir, New: aside, Err: err}
	}
	return fsutil.RemoveAll(aside)
}

// ownerWritable gives the owner write permission on every directory
// and regular file under dir, the top last: a tree is taken for read-only
// (readOnlyTree) until all of it is done.
func ownerWritable(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()|0o200)
	})
	if err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// verified opens the .tgz of slug h, checks it against its digest and
// returns it at its start. Verifying first rather than while extracting
// means a corrupt or substituted slug is never handed to the extractor
// at all, and the second read comes from the page cache.
func (s *Store) verified(h string) (*os.File, error) {
	f, err := os.Open(filepath.Join(s.Dir, h+".tgz"))
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		f.Close()
		return nil, err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h {
		f.Close()
		return nil, fmt.Errorf("checksum error (R17): %s has sha256:%s", f.Name(), got)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Open opens the .tgz of digest for reading, verified against its
// digest first, as Unpacked does before it extracts.
func (s *Store) Open(digest string) (*os.File, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, err
	}
	f, err := s.verified(h)
	if err != nil {
		return nil, fmt.Errorf("open slug %s: %w", digest, err)
	}
	return f, nil
}

// Owner owns one app's copies of slugs (UnpackedFor): it hands a tree
// to the app's ids, and removes trees that hold their files, which the
// store's user may not do itself once they belong to other ids.
type Owner interface {
	Give(path string) error
	Remove(path string) error
}

// UnpackedFor returns dir/<hex>, the slug of digest unpacked for one
// owner: with the modes the build gave, not read-only (an app writes its
// own files through its dynos' overlay, whose copy-up keeps it their
// owner), and every file handed to o before the tree appears at its
// name. dir is made 0700: the owner's processes never see it from the
// host, only through a dyno's mounts.
//
// Like Unpacked, it verifies the .tgz first and unpacks once: concurrent
// callers, in this process or others, wait on dir/<hex>.unpack.lock and
// get the same tree. Callers that use it hold the slug with Acquire:
// GCFor leaves held slugs alone.
func (s *Store) UnpackedFor(digest, dir string, o Owner) (string, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return "", fmt.Errorf("unpack slug: %w", err)
	}
	dst := filepath.Join(dir, h)
	if isDir(dst) {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	// Held while working, so that neither GC nor GCFor removes what is
	// read or made.
	held, err := s.hold(h)
	if err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	defer held.Close()
	unlock, err := lockExclusive(filepath.Join(dir, h+".unpack.lock"))
	if err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	defer unlock()
	if isDir(dst) {
		return dst, nil
	}
	// Holding the lock, a temporary tree of this digest is the leftover
	// of an unpacker that died, perhaps after handing it over.
	if err := removeTempsWith(dir, h, o.Remove); err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	f, err := s.verified(h)
	if err != nil {
		return "", fmt.Errorf("unpack slug %s: %w", digest, err)
	}
	defer f.Close()
	if err := unpackFor(f, dst, Limits{}, o); err != nil {
		return "", fmt.Errorf("unpack slug %s for %s: %w", digest, dir, err)
	}
	return dst, nil
}

// GCFor removes from dir the trees UnpackedFor made whose digest is not
// in keep and whose slug no one holds with Acquire. It returns the
// digests it removed, in order, and goes on past errors.
func (s *Store) GCFor(dir string, keep map[string]bool, o Owner) ([]string, error) {
	return gcDir(dir, keep, func(h string) (bool, error) { return s.removeFor(dir, h, o) })
}

// removeFor removes dir's tree of slug h unless someone holds the slug.
// The store's exclusive lock keeps UnpackedFor, which holds it shared,
// away meanwhile.
func (s *Store) removeFor(dir, h string, o Owner) (bool, error) {
	if err := s.private(); err != nil {
		return false, err
	}
	lockPath := filepath.Join(s.Dir, h+".lock")
	f, err := tryLockHeld(lockPath)
	if f == nil || err != nil {
		return false, err // held (nil, nil): someone uses the slug
	}
	defer f.Close()
	if _, err := os.Lstat(filepath.Join(s.Dir, h+".tgz")); errors.Is(err, fs.ErrNotExist) {
		// GC removed the slug already; this lock file is lockFile's.
		defer os.Remove(lockPath)
	}
	var errs []error
	tree := filepath.Join(dir, h)
	if isDir(tree) {
		// Aside first, onto an empty directory that rename(2) replaces,
		// so the tree is whole or gone, never half removed.
		aside, err := os.MkdirTemp(dir, "."+h+".tmp-")
		if err == nil {
			if err = unix.Rename(tree, aside); err != nil {
				err = &os.LinkError{Op: "rename", Old: tree, New: aside, Err: err}
			} else {
				err = o.Remove(aside)
			}
		}
		errs = append(errs, err)
	}
	errs = append(errs, removeTempsWith(dir, h, o.Remove))
	if err := os.Remove(filepath.Join(dir, h+".unpack.lock")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	err = errors.Join(errs...)
	return err == nil, err
}

// Acquire marks digest as in use by a running dyno until the returned
// Closer is closed: GC does not remove a slug that anyone holds. The mark
// is a shared flock, so it disappears with the process holding it.
func (s *Store) Acquire(digest string) (io.Closer, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("acquire slug: %w", err)
	}
	f, err := s.hold(h)
	if err != nil {
		return nil, fmt.Errorf("acquire slug %s: %w", digest, err)
	}
	return f, nil
}

// hold takes the shared lock of slug h, which must be stored.
func (s *Store) hold(h string) (*os.File, error) {
	f, err := lockFile(filepath.Join(s.Dir, h+".lock"), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	// Checked under the lock: GC holds it exclusively while removing, so
	// the .tgz cannot disappear from now on.
	if fi, err := os.Lstat(filepath.Join(s.Dir, h+".tgz")); err != nil || !fi.Mode().IsRegular() {
		// Remove the lock file this call may have created, unless another
		// holder shares it.
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil && sameFile(f, f.Name()) {
			os.Remove(f.Name())
		}
		f.Close()
		return nil, fmt.Errorf("not in the store %s: %w", s.Dir, fs.ErrNotExist)
	}
	return f, nil
}

// GC removes every slug (the .tgz, the unpacked tree and the lock files)
// whose digest is not in keep and that no one holds with Acquire. It
// returns the digests it removed, in order; it goes on past errors and
// returns them all.
//
// A slug that was just packed but is not yet recorded in keep is removed
// too: callers serialize GC with whatever records new slugs.
func (s *Store) GC(keep map[string]bool) ([]string, error) {
	return gcDir(s.Dir, keep, s.remove)
}

// gcDir calls remove with each slug named in dir (by its .tgz, its tree
// or its lock file) whose digest is not in keep, in order, and returns
// the digests removed; it goes on past errors and returns them all.
func gcDir(dir string, keep map[string]bool, remove func(h string) (bool, error)) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gc slugs %s: %w", dir, err)
	}
	var hexes []string
	for _, e := range entries {
		if h := slugOf(e.Name()); h != "" && !keep[digestPrefix+h] {
			hexes = append(hexes, h)
		}
	}
	slices.Sort(hexes)
	hexes = slices.Compact(hexes)
	var removed []string
	var errs []error
	for _, h := range hexes {
		ok, err := remove(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("gc slug %s%s in %s: %w", digestPrefix, h, dir, err))
		}
		if ok {
			removed = append(removed, digestPrefix+h)
		}
	}
	return removed, errors.Join(errs...)
}

// tryLockHeld takes a slug's lock exclusively if no one holds it (with
// Acquire or an unpack); nil, nil when someone does.
func tryLockHeld(lockPath string) (*os.File, error) {
	f, err := lockFile(lockPath, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, nil
	}
	return f, err
}

// remove removes the slug h unless someone holds it. It reports whether it
// removed it.
func (s *Store) remove(h string) (bool, error) {
	lockPath := filepath.Join(s.Dir, h+".lock")
	f, err := tryLockHeld(lockPath)
	if f == nil || err != nil {
		return false, err // held (nil, nil): someone uses the slug
	}
	defer f.Close()

	var errs []error
	dir := filepath.Join(s.Dir, h)
	if isDir(dir) {
		// Move the tree aside first so that nobody ever sees it half
		// removed: it is there, whole, or not at all. It goes onto an
		// empty directory in the same parent, which rename(2) replaces:
		// moving a directory to another parent would need write
		// permission on the tree itself, which a slug may not give.
		aside, err := os.MkdirTemp(s.Dir, "."+h+".tmp-")
		if err == nil {
			// os.Rename refuses to replace a directory; rename(2) does not.
			if err = unix.Rename(dir, aside); err != nil {
				err = &os.LinkError{Op: "rename", Old: dir, New: aside, Err: err}
			} else {
				err = fsutil.RemoveAll(aside)
			}
		}
		errs = append(errs, err)
	}
	// Temporary trees of this digest belong to unpackers that died: a live
	// one would hold the lock.
	errs = append(errs, removeTemps(s.Dir, h))
	for _, name := range []string{h + ".tgz", h + ".unpack.lock", h + ".lock"} {
		if err := os.Remove(filepath.Join(s.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	err = errors.Join(errs...)
	return err == nil, err
}

// slugOf returns the hex digest that a store entry name belongs to, or ""
// for names that are not a slug's (a pack in progress, foreign files).
func slugOf(name string) string {
	name = strings.TrimPrefix(name, ".") // temporary unpack trees
	h, _, _ := strings.Cut(name, ".")
	if _, err := parseDigest(digestPrefix + h); err != nil {
		return ""
	}
	return h
}

// removeTemps removes the temporary trees of digest h in dir.
func removeTemps(dir, h string) error { return removeTempsWith(dir, h, fsutil.RemoveAll) }

// removeTempsWith removes the temporary trees of digest h in dir with
// remove.
func removeTempsWith(dir, h string, remove func(string) error) error {
	matches, err := filepath.Glob(filepath.Join(dir, "."+h+".tmp-*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range matches {
		errs = append(errs, remove(m))
	}
	return errors.Join(errs...)
}

func isDir(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir()
}

// lockFile opens path, creating it, and flocks it with how. Lock files are
// removed by their holders (GC, the unpacker), so a lock taken on a file
// that was meanwhile unlinked protects nothing: lockFile then tries again,
// and returns only a lock on the file that is at path.
func lockFile(path string, how int) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err = fsutil.Flock(f, how); err != nil {
			f.Close()
			return nil, &fs.PathError{Op: "flock", Path: path, Err: err}
		}
		if sameFile(f, path) {
			return f, nil
		}
		f.Close()
	}
}

// lockExclusive takes an exclusive lock on path, and returns the function
// that releases it. The lock file is removed on release, so that it leaves
// nothing behind once everyone is done.
func lockExclusive(path string) (func(), error) {
	f, err := lockFile(path, unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	return func() {
		os.Remove(path)
		f.Close()
	}, nil
}

// sameFile reports whether f is the file now at path.
func sameFile(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Lstat(path)
	return err == nil && os.SameFile(fi, pi)
}

// renameNoReplace renames oldpath to newpath, failing with fs.ErrExist
// when newpath exists: rename(2) alone would silently replace an empty
// directory or any file at newpath.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		// A file system without RENAME_NOREPLACE: check, then rename.
		if _, err := os.Lstat(newpath); err == nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrExist}
		}
		return os.Rename(oldpath, newpath)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}
