package slug

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

// Limits bound what Unpack extracts, so that a small archive cannot fill
// the disk. Zero fields take the defaults.
type Limits struct {
	MaxBytes     int64 // total size of the regular files; default 5 GiB
	MaxFiles     int   // entries of any type, and directories made for them; default 1,000,000
	MaxFileBytes int64 // size of one regular file; default 5 GiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 5 << 30
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 1_000_000
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = 5 << 30
	}
	return l
}

// Unpack extracts the gzip'd tar archive read from r into the directory
// dst, which must not exist. It extracts directories, regular files and
// symbolic links, with their permission bits and modification times, and
// refuses, naming the offending entry, any archive that could write
// outside dst or that is not a plain tree of files:
//
//   - absolute names and names with a ".." element;
//   - names that go through a symbolic link or a file made by an earlier
//     entry, or that would replace an earlier entry (a directory may be
//     named again, to set its mode);
//   - symbolic links whose target is absolute or climbs out of dst. Only
//     targets made of leading ".." elements followed by plain names are
//     accepted ("../lib/x", not "lib/../../x"): a ".." after a name that
//     is itself a link would climb from wherever that link points;
//   - hard links, devices, fifos and any other type, and setuid or setgid
//     bits;
//   - archives that expand past lim, checked before each file is written,
//     so that a gzip bomb is stopped while streaming.
//
// Unpack extracts into a temporary directory next to dst and renames it
// to dst at the end: on any error nothing is left on disk.
func Unpack(r io.Reader, dst string, lim Limits) error {
	if err := unpackFor(r, dst, lim, nil); err != nil {
		return fmt.Errorf("unpack %s: %w", dst, err)
	}
	return nil
}

// unpackFor is Unpack that, when o is set, hands the whole tree to o
// before it appears at dst (Store.UnpackedFor): nobody ever sees it at
// dst with other owners. A tree handed over is removed through o.
func unpackFor(r io.Reader, dst string, lim Limits, o Owner) error {
	if _, err := os.Lstat(dst); err == nil {
		return &fs.PathError{Op: "unpack", Path: dst, Err: fs.ErrExist}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	x := &extractor{
		root:  tmp,
		lim:   lim.withDefaults(),
		kinds: map[string]byte{".": tar.TypeDir},
		dirAt: map[string]int{},
	}
	if err := x.extract(r); err != nil {
		fsutil.RemoveAll(tmp)
		return err
	}
	remove := fsutil.RemoveAll
	if o != nil {
		if err := o.Give(tmp); err != nil {
			// Part of it may be the owner's already.
			if fsutil.RemoveAll(tmp) != nil {
				o.Remove(tmp)
			}
			return err
		}
		remove = o.Remove
	}
	// A rename in the same directory: moving a directory to another
	// parent would need write permission on the directory itself, which
	// a tree given to another owner does not grant (rename(2)).
	if err := renameNoReplace(tmp, dst); err != nil {
		remove(tmp)
		return err
	}
	return nil
}

type extractor struct {
	root string
	lim  Limits

	kinds map[string]byte // what each extracted path is: tar.TypeDir, TypeReg or TypeSymlink
	dirs  []dirMeta       // set once the directories' contents are complete
	dirAt map[string]int  // index in dirs by path
	files int
	bytes int64
}

type dirMeta struct {
	path  string
	mode  fs.FileMode
	mtime time.Time // zero for directories the archive names only as parents
}

// entryError is an error about one archive entry.
type entryError struct {
	name string
	err  error
}

func (e *entryError) Error() string { return fmt.Sprintf("entry %q: %v", e.name, e.err) }
func (e *entryError) Unwrap() error { return e.err }

func (x *extractor) extract(r io.Reader) error {
	zr, err := pgzip.NewReader(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	last := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if last != "" {
				return fmt.Errorf("after entry %q: %w", last, err)
			}
			return err
		}
		last = hdr.Name
		if err := x.entry(hdr, tr); err != nil {
			return &entryError{name: hdr.Name, err: err}
		}
	}
	// Read to the end of the gzip stream, where its checksum is verified:
	// a corrupt archive must not unpack. Only tar's padding should be
	// left; more would be a way to make the reader work for nothing.
	const maxTrailer = 1 << 20
	if n, err := io.CopyN(io.Discard, zr, maxTrailer+1); err != io.EOF {
		if err == nil {
			return fmt.Errorf("more than %d bytes after the end of the archive", n)
		}
		return err
	}
	// Directories last, each after everything in it (x.dirs is in the
	// order of creation, parents first): their mtimes change with every
	// entry made in them, and ones without write permission could not
	// take new entries.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
		if !d.mtime.IsZero() {
			if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil {
				return err
			}
		}
	}
	return os.Chmod(x.root, 0o755)
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	x.files++
	if x.files > x.lim.MaxFiles {
		return fmt.Errorf("archive has more than %d entries", x.lim.MaxFiles)
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // pax defaults for later entries, of which none matter here
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Mode&(0o4000|0o2000) != 0 {
		return fmt.Errorf("setuid or setgid bit in mode %#o", hdr.Mode)
	}
	perm := fs.FileMode(hdr.Mode & 0o777) // the sticky bit goes: nobody shares a slug's directories

	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the root, which is dst
		}
		return errors.New("non-directory entry for the root")
	}
	if err := x.parents(name); err != nil {
		return err
	}
	target := filepath.Join(x.root, filepath.FromSlash(name))
	prev := x.kinds[name]

	switch hdr.Typeflag {
	case tar.TypeDir:
		switch prev {
		case tar.TypeDir:
			// Named again, or first made as a parent: the entry's mode wins.
			d := &x.dirs[x.dirAt[name]]
			d.mode, d.mtime = perm, hdr.ModTime
			return nil
		case 0:
		default:
			return errors.New("directory would replace an earlier entry")
		}
		if err := os.Mkdir(target, 0o700); err != nil {
			return err
		}
		x.addDir(name, target, perm, hdr.ModTime)
		return nil

	case tar.TypeReg:
		if prev == tar.TypeDir {
			return errors.New("file would replace a directory")
		}
		if prev != 0 {
			return errors.New("duplicate entry")
		}
		if hdr.Size < 0 {
			return fmt.Errorf("negative size %d", hdr.Size)
		}
		if hdr.Size > x.lim.MaxFileBytes {
			return fmt.Errorf("file of %d bytes exceeds the limit of %d", hdr.Size, x.lim.MaxFileBytes)
		}
		if x.bytes+hdr.Size > x.lim.MaxBytes {
			return fmt.Errorf("archive expands past the limit of %d bytes", x.lim.MaxBytes)
		}
		x.bytes += hdr.Size
		x.kinds[name] = tar.TypeReg
		return x.writeFile(target, hdr, perm, r)

	case tar.TypeSymlink:
		if prev != 0 {
			return errors.New("symlink would replace an earlier entry")
		}
		if err := checkLinkTarget(name, hdr.Linkname); err != nil {
			return err
		}
		if err := os.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
		x.kinds[name] = tar.TypeSymlink
		ts := []unix.Timespec{unix.NsecToTimespec(hdr.ModTime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &fs.PathError{Op: "utimensat", Path: target, Err: err}
		}
		return nil

	case tar.TypeLink:
		// Slugs never need them (Pack stores each name as its own file),
		// and refusing them leaves no way to reach an inode outside dst.
		return fmt.Errorf("hard link to %q refused", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return errors.New("device node refused")
	case tar.TypeFifo:
		return errors.New("fifo refused")
	default:
		return fmt.Errorf("entry type %q refused", hdr.Typeflag)
	}
}

// parents makes the missing parent directories of name, and refuses a
// name that goes through anything but a directory made by this archive:
// above all a symlink, through which the entry would land anywhere.
func (x *extractor) parents(name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		p := name[:i]
		switch x.kinds[p] {
		case tar.TypeDir:
		case tar.TypeSymlink:
			return fmt.Errorf("path goes through the symlink %q", p)
		case tar.TypeReg:
			return fmt.Errorf("path goes through the file %q", p)
		default:
			// Counted like entries: one entry a/b/.../z could otherwise
			// make thousands of directories.
			x.files++
			if x.files > x.lim.MaxFiles {
				return fmt.Errorf("archive has more than %d entries", x.lim.MaxFiles)
			}
			dir := filepath.Join(x.root, filepath.FromSlash(p))
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			x.addDir(p, dir, 0o755, time.Time{})
		}
	}
	return nil
}

func (x *extractor) addDir(name, target string, mode fs.FileMode, mtime time.Time) {
	x.kinds[name] = tar.TypeDir
	x.dirAt[name] = len(x.dirs)
	x.dirs = append(x.dirs, dirMeta{path: target, mode: mode, mtime: mtime})
}

func (x *extractor) writeFile(target string, hdr *tar.Header, perm fs.FileMode, r io.Reader) error {
	// O_EXCL: the name is new, so nothing existing, a link least of all,
	// is opened in its place.
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && n != hdr.Size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		// Set explicitly rather than at creation, where the umask applies.
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Chtimes(target, hdr.ModTime, hdr.ModTime)
}

// cleanName returns the slash-separated relative path of a tar entry name,
// "." for the root, refusing absolute names and names with "..".
func cleanName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path")
	}
	var parts []string
	for _, part := range strings.Split(name, "/") {
		switch part {
		case "", ".":
		case "..":
			return "", errors.New(`path has a ".." element`)
		default:
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

// checkLinkTarget refuses a symlink at name (a clean relative path) whose
// target could resolve outside the tree. The target must be relative and
// consist of leading ".." elements, which may climb no higher than the
// root through the link's own parents (real directories: no entry goes
// through a symlink), followed by plain names. Cleaning "a/../.."
// lexically, as path.Clean does, would be wrong: if a is itself a link,
// the kernel climbs from a's target, not from a's parent.
func checkLinkTarget(name, target string) error {
	if target == "" {
		return errors.New("symlink with an empty target")
	}
	if path.IsAbs(target) {
		return fmt.Errorf("symlink target %q is absolute", target)
	}
	depth := strings.Count(name, "/") // directories between the root and the link
	named := false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if named {
				return fmt.Errorf(`symlink target %q has ".." after a name`, target)
			}
			depth--
			if depth < 0 {
				return fmt.Errorf("symlink target %q leaves the tree", target)
			}
		default:
			named = true
		}
	}
	return nil
}
