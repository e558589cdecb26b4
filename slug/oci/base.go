package oci

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// A Base is the image's lower layers: the stack the slug runs on.
type Base struct {
	layers  []blob
	env     []string     // the base config's environment, PATH first of all
	history []v1.History // one entry per layer, or empty
	arch    string
	close   func() error
}

// Close releases what the base holds open.
func (b *Base) Close() error {
	if b.close != nil {
		return b.close()
	}
	return nil
}

// A hostEntry is one path of the host base, relative to the root.
type hostEntry struct {
	name string // slash-separated, no leading slash; a directory's without its trailing one
	info fs.FileInfo
	link string // a symlink's target
	hard string // for a regular file seen before under another name: that name
}

// basePath is the PATH of a base made from the host, as a dyno's.
const basePath = "PATH=/usr/local/bin:/usr/bin:/bin"

// HostBase is the stack dyno's own dynos run on: one layer of the host
// paths a dyno sees read-only (isolate.DefaultReadOnly: /usr, /bin, /etc,
// ...) under root, as a dyno's unprivileged user sees them: a file only
// if others may read it, a directory's contents only if others may list
// and enter it, so /etc/shadow, private keys and other secrets of the
// host never reach an image that may be pushed anywhere. Setuid and
// setgid bits are dropped (a dyno runs with no_new_privs, where they do
// nothing); owners are kept as numbers; times are the layer's fixed
// epoch; hard links stay links. A /tmp (1777) is added.
//
// The layer is kept in cacheDir under a fingerprint of everything it is
// made of (names, modes, owners, sizes, times, link targets), so a
// second export of an unchanged host writes nothing new and gives the
// same digest. progress, if not nil, hears once that a new layer is
// being made.
func HostBase(root string, paths []string, cacheDir string, progress func(string)) (*Base, error) {
	entries, err := hostEntries(root, paths)
	if err != nil {
		return nil, err
	}
	fp := sha256.New()
	for _, e := range entries {
		st, _ := e.info.Sys().(*syscall.Stat_t)
		var uid, gid uint32
		if st != nil {
			uid, gid = st.Uid, st.Gid
		}
		fmt.Fprintf(fp, "%q %o %d %d %d %d %q %q\n", e.name, e.info.Mode(), uid, gid, e.info.Size(), e.info.ModTime().UnixNano(), e.link, e.hard)
	}
	key := "host-" + hashOf(fp).Hex[:32]
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("make export cache %s: %w", cacheDir, err)
	}
	layerPath := filepath.Join(cacheDir, key+".tar.gz")
	metaPath := filepath.Join(cacheDir, key+".json")
	var meta struct {
		Layer  v1.Descriptor `json:"layer"`
		DiffID v1.Hash       `json:"diff_id"`
	}
	if b, err := os.ReadFile(metaPath); err == nil && json.Unmarshal(b, &meta) == nil {
		if fi, err := os.Stat(layerPath); err == nil && fi.Size() == meta.Layer.Size {
			return hostBase(fileBlob(layerPath, meta.Layer, meta.DiffID)), nil
		}
	}
	if progress != nil {
		progress(fmt.Sprintf("making the base layer of %d host paths (once; kept in %s)", len(entries), cacheDir))
	}
	tmp := fmt.Sprintf("%s.tmp-%d", layerPath, os.Getpid())
	os.Remove(tmp)
	l, err := writeLayer(tmp, func(tw *tar.Writer) error { return writeHostEntries(tw, root, entries) })
	if err != nil {
		return nil, err
	}
	meta.Layer, meta.DiffID = l.desc, l.diffID
	mb, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, layerPath); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("keep base layer: %w", err)
	}
	if err := fsutil.WriteFile(metaPath, mb, 0o600); err != nil {
		return nil, err
	}
	// Older host layers are of a host that has changed since: one is
	// kept, so the cache is bounded by one stack's size.
	if old, _ := filepath.Glob(filepath.Join(cacheDir, "host-*")); len(old) > 0 {
		for _, p := range old {
			if !strings.HasPrefix(filepath.Base(p), key) {
				os.Remove(p)
			}
		}
	}
	return hostBase(fileBlob(layerPath, meta.Layer, meta.DiffID)), nil
}

func hostBase(l blob) *Base {
	return &Base{
		layers:  []blob{l},
		env:     []string{basePath},
		history: []v1.History{{Created: v1.Time{Time: epoch}, CreatedBy: "dyno export oci: the host's stack, as a dyno sees it", Comment: "base"}},
		arch:    runtime.GOARCH,
	}
}

// hostEntries lists what HostBase puts in its layer, in the order of
// the tar: each path, then its contents depth first in lexical order.
func hostEntries(root string, paths []string) ([]hostEntry, error) {
	var entries []hostEntry
	seen := map[[2]uint64]string{}
	for _, p := range paths {
		rel := strings.Trim(filepath.ToSlash(filepath.Clean(p)), "/")
		start := filepath.Join(root, filepath.FromSlash(rel))
		if _, err := os.Lstat(start); errors.Is(err, fs.ErrNotExist) {
			continue // /lib32 and the like exist on some hosts only
		}
		err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrPermission) {
					return nil // as a dyno: what it may not read, it does not see
				}
				return err
			}
			info, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // gone while walking
				}
				return err
			}
			name, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			e := hostEntry{name: filepath.ToSlash(name), info: info}
			mode := info.Mode()
			switch {
			case mode&fs.ModeSymlink != 0:
				if e.link, err = os.Readlink(path); err != nil {
					return err
				}
			case mode.IsDir():
				if mode.Perm()&0o005 != 0o005 {
					entries = append(entries, e)
					return fs.SkipDir
				}
			case mode.IsRegular():
				if mode.Perm()&0o004 == 0 {
					return nil
				}
				if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
					id := [2]uint64{uint64(st.Dev), st.Ino}
					if first, ok := seen[id]; ok {
						e.hard = first
					} else {
						seen[id] = e.name
					}
				}
			default:
				return nil // sockets, fifos, devices: no dyno needs them from the image
			}
			entries = append(entries, e)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read host path %s: %w", start, err)
		}
	}
	return entries, nil
}

// writeHostEntries writes the host base's tar: /tmp, then the entries.
func writeHostEntries(tw *tar.Writer, root string, entries []hostEntry) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for _, e := range entries {
		mode := e.info.Mode()
		h := &tar.Header{Name: e.name, ModTime: epoch, Format: tar.FormatPAX, Mode: int64(mode.Perm())}
		if st, ok := e.info.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		}
		switch {
		case mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		case mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
			if mode&fs.ModeSticky != 0 {
				h.Mode |= 0o1000
			}
		case e.hard != "":
			h.Typeflag, h.Linkname = tar.TypeLink, e.hard
		default:
			h.Typeflag, h.Size = tar.TypeReg, e.info.Size()
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if err := copyHostFile(tw, filepath.Join(root, filepath.FromSlash(e.name)), h.Size, buf); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyHostFile copies size bytes of path: a file that shrank or grew
// since it was listed is an error, since its header is already written.
func copyHostFile(w io.Writer, path string, size int64, buf []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(f, size), buf)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if n != size {
		return fmt.Errorf("read %s: it changed while it was exported (%d bytes of %d); export again", path, n, size)
	}
	return nil
}
