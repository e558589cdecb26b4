package slug

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

// PackOptions are the size limits of Pack, and where it writes.
type PackOptions struct {
	MaxSize  int64 // refuse a slug whose .tgz exceeds it; 0 means 500 MB (Heroku's limit)
	WarnSize int64 // 0 means 300 MB (Heroku's soft limit): Pack returns a Warning then
	// TempDir is where the .tgz is written before it is renamed into
	// the store; it must be on the store's filesystem. "" means the
	// store's folder, where a packer killed with SIGKILL leaves a
	// .pack-*.tgz (up to MaxSize) that nothing removes; a build gives
	// its scratch folder, which the next build sweeps.
	TempDir string
}

// A PackReport tells what Pack did besides making the slug.
type PackReport struct {
	Warning string   // set when the slug exceeds PackOptions.WarnSize
	Skipped []string // paths, relative to the build dir, of entries of types a slug cannot hold
	Files   int      // entries in the slug: directories, regular files and symlinks
}

const (
	defaultMaxSize  = 500 << 20
	defaultWarnSize = 300 << 20

	// packLevel and packBlockSize trade size for speed. Level 6 makes
	// slugs as small as tar czf (gzip -6) does, and klauspost/compress's
	// level 6 is still several times faster per core than gzip's, above
	// all on incompressible files (images, vendored archives), which it
	// gives up on early where gzip keeps searching for matches. Lower
	// levels save little time for a lot of size: on the text of
	// BenchmarkPack's tree, level 1 is 1.6 times as fast and 11% larger.
	// Blocks of 1 MiB keep every core busy on slugs of a few MiB already,
	// and cost almost no ratio because each block starts with the
	// previous 32 KiB as its dictionary.
	packLevel     = 6
	packBlockSize = 1 << 20

	// packEpoch is the modification time of every entry: 1980-01-01
	// 00:00:00 UTC. It is fixed so that the bytes depend on the tree alone;
	// it is not the Unix epoch because 0 commonly means "no time" and zip
	// (jars, Python wheels) cannot represent anything before 1980, so
	// tools that copy files out of the slug into an archive do not choke
	// on it; and it is a whole second within ustar's range, so entries
	// need no pax header for it. Files the app writes at run time are
	// then always newer than the slug's, which is what make-like
	// staleness checks expect.
	packEpoch = 315532800
)

// Pack makes a slug of dir (the build dir) in the store and returns it.
//
// The .tgz is deterministic: the same tree gives the same bytes, and so
// the same digest, whatever the host, the order of files on disk, their
// owners or their times. Entries are sorted by path, element by element
// (a directory just before its contents), owned by 0:0 with no user or
// group names, dated packEpoch, and keep their permission bits but not
// setuid, setgid or sticky. Directories, regular files and symlinks are
// packed; hard links become separate files; other types (sockets, fifos,
// devices) are skipped and listed in the report. A symlink whose target is
// absolute or leaves dir is an error, since no dyno could unpack it.
//
// The slug is written to a temporary file (in opts.TempDir, else in the
// store) and renamed into place; a slug already stored is kept as it is.
func (s *Store) Pack(dir string, opts PackOptions) (Slug, PackReport, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = defaultMaxSize
	}
	if opts.WarnSize <= 0 {
		opts.WarnSize = defaultWarnSize
	}
	// The build dir may be reached through a symlink; its contents are
	// packed as they are.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return Slug{}, PackReport{}, fmt.Errorf("pack slug %s: %w", dir, err)
	}
	entries, skipped, err := walkTree(root)
	if err != nil {
		return Slug{}, PackReport{}, fmt.Errorf("pack slug %s: %w", dir, err)
	}
	report := PackReport{Skipped: skipped, Files: len(entries)}

	if err := s.private(); err != nil {
		return Slug{}, report, fmt.Errorf("pack slug %s: %w", dir, err)
	}
	tmpDir := opts.TempDir
	if tmpDir == "" {
		tmpDir = s.Dir
	}
	tmp, err := os.CreateTemp(tmpDir, ".pack-*.tgz")
	if err != nil {
		return Slug{}, report, fmt.Errorf("pack slug %s: %w", dir, err)
	}
	tmpName := tmp.Name() // emptied once renamed into place
	defer func() {
		tmp.Close() // again, on the paths that closed it: harmless
		if tmpName != "" {
			os.Remove(tmpName)
		}
	}()

	sum := sha256.New()
	out := &capWriter{w: io.MultiWriter(tmp, sum), max: opts.MaxSize}
	if err := writeSlug(out, root, entries, packLevel, packBlockSize); err != nil {
		var tl *tooLargeError
		if errors.As(err, &tl) {
			return Slug{}, report, fmt.Errorf("pack slug %s: compiled slug size is too large (max is %s)", dir, megabytes(tl.max))
		}
		return Slug{}, report, fmt.Errorf("pack slug %s: %w", dir, err)
	}
	if out.n > opts.WarnSize {
		report.Warning = fmt.Sprintf("Warning: Your slug size (%s) exceeds our soft limit (%s) which may affect boot time.",
			megabytes(out.n), megabytes(opts.WarnSize))
	}
	// The slug is immutable: say so in its mode, and make it durable
	// before its name promises that it exists.
	if err := tmp.Chmod(0o444); err != nil {
		return Slug{}, report, fmt.Errorf("pack slug %s: %w", dir, err)
	}
	if err := tmp.Sync(); err != nil {
		return Slug{}, report, fmt.Errorf("pack slug %s: %w", dir, err)
	}
	if err := tmp.Close(); err != nil {
		return Slug{}, report, fmt.Errorf("pack slug %s: %w", dir, err)
	}

	h := hex.EncodeToString(sum.Sum(nil))
	slug := Slug{Digest: digestPrefix + h, Size: out.n, Path: filepath.Join(s.Dir, h+".tgz")}
	err = renameNoReplace(tmpName, slug.Path)
	switch {
	case err == nil:
		tmpName = ""
		syncDir(s.Dir)
	case errors.Is(err, fs.ErrExist):
		// Same digest, same bytes: the stored slug is as good as this
		// one, and is left untouched because dynos may be reading it.
	case errors.Is(err, unix.EXDEV):
		return Slug{}, report, fmt.Errorf("pack slug %s: %w (the temporary folder %s must be on the slug store's filesystem)", dir, err, tmpDir)
	default:
		return Slug{}, report, fmt.Errorf("pack slug %s: %w", dir, err)
	}
	return slug, report, nil
}

// megabytes formats n as Heroku's slug messages do.
func megabytes(n int64) string {
	return fmt.Sprintf("%d MB", (n+(1<<20)-1)>>20)
}

// syncDir makes a rename in dir durable. It is best effort: the slug is
// complete either way, and at worst a crash forgets it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

type packEntry struct {
	rel  string // slash-separated path relative to the build dir
	typ  byte   // tar.TypeDir, TypeReg or TypeSymlink
	perm fs.FileMode
	size int64
	link string
}

// walkTree lists the entries of dir in the order of the slug: filepath.WalkDir
// reads each directory sorted by name, so the order does not depend on the
// order of the directory on disk.
func walkTree(dir string) ([]packEntry, []string, error) {
	var entries []packEntry
	var skipped []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			if !d.IsDir() {
				return &fs.PathError{Op: "pack", Path: dir, Err: unix.ENOTDIR}
			}
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir(), t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			e := packEntry{rel: rel, typ: tar.TypeReg, perm: fi.Mode().Perm(), size: fi.Size()}
			if t.IsDir() {
				e.typ, e.size = tar.TypeDir, 0
			}
			entries = append(entries, e)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := checkLinkTarget(rel, target); err != nil {
				return fmt.Errorf("%s: %w; make it relative, within the build dir", rel, err)
			}
			entries = append(entries, packEntry{rel: rel, typ: tar.TypeSymlink, perm: 0o777, link: target})
		default:
			skipped = append(skipped, rel)
		}
		return nil
	})
	return entries, skipped, err
}

// writeSlug writes the gzip'd tar of entries, read from dir, to w, with
// the given compression level and block size.
func writeSlug(w io.Writer, dir string, entries []packEntry, level, blockSize int) error {
	zw, err := pgzip.NewWriterLevel(w, level)
	if err != nil {
		return err
	}
	// The gzip header has no name, OS "unknown" and MTIME 0, "no time":
	// pgzip would write the zero time.Time as a garbage date.
	zw.ModTime = time.Unix(0, 0)
	if err := zw.SetConcurrency(blockSize, 2*runtime.GOMAXPROCS(0)); err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	mtime := time.Unix(packEpoch, 0).UTC()
	buf := make([]byte, 256<<10)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: e.typ,
			Name:     e.rel,
			Linkname: e.link,
			Mode:     int64(e.perm),
			Size:     e.size,
			ModTime:  mtime,
			// Uid, Gid, Uname and Gname stay 0 and empty.
			Format: tar.FormatPAX, // ustar when it suffices, pax for long names: never GNU
		}
		if e.typ == tar.TypeDir {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", e.rel, err)
		}
		if e.typ == tar.TypeReg {
			if err := copyFile(tw, filepath.Join(dir, filepath.FromSlash(e.rel)), e.size, buf); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// copyFile copies the file at path, which must still be size bytes long,
// to w.
func copyFile(w io.Writer, path string, size int64, buf []byte) error {
	// O_NOFOLLOW: a file replaced by a symlink since the walk must not
	// pull the link's target into the slug. O_NONBLOCK: one replaced by
	// a fifo must not block the open until a writer comes (fifo(7));
	// it changes nothing for a regular file (open(2)).
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s changed while being packed: no longer a regular file", path)
	}
	// Hide the file's WriteTo, which would ignore buf and copy 32 KiB at a time.
	n, err := io.CopyBuffer(w, io.LimitReader(struct{ io.Reader }{f}, size), buf)
	if err != nil {
		return err
	}
	if n == size {
		if m, err := f.Read(buf[:1]); m == 0 && err == io.EOF {
			return nil
		}
	}
	return fmt.Errorf("%s changed while being packed", path)
}

// capWriter counts what it writes to w and fails once that exceeds max,
// which stops Pack as soon as the slug is known to be too large.
type capWriter struct {
	w   io.Writer
	n   int64
	max int64
}

type tooLargeError struct{ max int64 }

func (e *tooLargeError) Error() string { return fmt.Sprintf("slug exceeds %d bytes", e.max) }

func (c *capWriter) Write(p []byte) (int, error) {
	if c.n+int64(len(p)) > c.max {
		return 0, &tooLargeError{c.max}
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
