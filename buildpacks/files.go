package buildpacks

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
)

// extractTar unpacks the tar stream r into dir, which must exist.
// Every write goes through an os.Root, so neither an entry's name nor a
// symlink unpacked earlier can place a file outside dir; names that are
// absolute or hold ".." are refused outright rather than cleaned, since
// an archive that has them is broken or hostile.
func extractTar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			// git archive stores the commit id in one; it names no file.
			continue
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		if err := extractEntry(root, tr, hdr, name); err != nil {
			return fmt.Errorf("unpacking %s: %w", hdr.Name, err)
		}
	}
}

func extractEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string) error {
	perm := fs.FileMode(hdr.Mode) & fs.ModePerm
	if dir := filepath.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(name, 0o755); err != nil {
			return err
		}
		// The owner must be able to write into it to unpack the rest
		// (and to remove it later); the umask must not decide modes.
		return root.Chmod(name, perm|0o700)
	case tar.TypeReg:
		// Replace, never write through, whatever is there: an earlier
		// entry may have been a symlink.
		if err := removeEntry(root, name); err != nil {
			return err
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := root.Chmod(name, perm); err != nil {
			return err
		}
		return root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	case tar.TypeSymlink:
		if err := removeEntry(root, name); err != nil {
			return err
		}
		// The target is left as it is: the root confines what dyno
		// writes through it, and what the buildpack itself reads is
		// its own business.
		return root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		target, err := entryName(hdr.Linkname)
		if err != nil {
			return err
		}
		if err := removeEntry(root, name); err != nil {
			return err
		}
		return root.Link(target, name)
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
}

func removeEntry(root *os.Root, name string) error {
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// entryName turns an archive entry's name into a relative path in the
// local form, or says why it is unsafe.
func entryName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("archive entry %q: absolute path", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("archive entry %q: path leads outside the archive", name)
		}
	}
	return filepath.FromSlash(path.Clean(name)), nil
}

// skipGit leaves .git out of a copied tree at any depth, as a checkout
// would.
func skipGit(_ string, d fs.DirEntry) bool { return d.Name() == ".git" }
