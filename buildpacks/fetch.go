package buildpacks

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// fetchTimeout bounds one download or clone. Fetch takes no context,
// and a stalled server must not hang a build for ever; Heroku gives a
// whole build 15 minutes.
const fetchTimeout = 10 * time.Minute

// A Buildpack is a private, writable copy of a buildpack.
type Buildpack struct {
	Ref string // as it was given
	Dir string // the copy, an absolute path
}

// Fetch makes a private, writable copy of a buildpack in a new directory
// under workDir. Each build needs its own, since a buildpack writes its
// export file into its own directory. ref is one of:
//
//   - a local folder, absolute or relative to baseDir, copied as it is
//     (uncommitted changes included, which is what one wants while
//     writing a buildpack; .git left out);
//   - a git repository: a URL, or a local path with a "#ref" suffix (a
//     branch, tag or commit) — a URL may have one too; cloned shallow
//     where git allows;
//   - a tarball (.tgz, .tar.gz or .tar): a local file or an http(s) URL.
//     One that holds a single top directory with the buildpack inside,
//     as GitHub's archives do, is unwrapped.
func Fetch(ref, baseDir, workDir string) (*Buildpack, error) {
	return fetch(context.Background(), ref, baseDir, workDir)
}

func fetch(ctx context.Context, ref, baseDir, workDir string) (*Buildpack, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	if strings.TrimSpace(ref) == "" {
		return nil, errors.New("fetch buildpack: empty reference")
	}
	workDir, err := filepath.Abs(workDir)
	if err != nil {
		return nil, fmt.Errorf("fetch buildpack %s: %w", ref, err)
	}
	if err := os.MkdirAll(workDir, 0o700); err != nil {
		return nil, fmt.Errorf("fetch buildpack %s: %w", ref, err)
	}
	dir, err := os.MkdirTemp(workDir, refName(ref)+"-")
	if err != nil {
		return nil, fmt.Errorf("fetch buildpack %s: %w", ref, err)
	}
	if err := fetchInto(ctx, ref, baseDir, dir); err != nil {
		fsutil.RemoveAll(dir)
		return nil, fmt.Errorf("fetch buildpack %s: %w", ref, err)
	}
	if info, err := os.Stat(filepath.Join(dir, "bin", "compile")); err != nil || !info.Mode().IsRegular() {
		fsutil.RemoveAll(dir)
		return nil, fmt.Errorf("fetch buildpack %s: not a buildpack: it has no bin/compile", ref)
	}
	return &Buildpack{Ref: ref, Dir: dir}, nil
}

func fetchInto(ctx context.Context, ref, baseDir, dir string) error {
	if isRemote(ref) {
		loc, frag := splitFragment(ref)
		if isHTTP(loc) && isTarball(loc) {
			if frag != "" {
				return fmt.Errorf("%q: a tarball takes no #ref", "#"+frag)
			}
			return download(ctx, loc, dir)
		}
		return gitClone(ctx, loc, frag, dir)
	}

	// The whole ref is tried as a path first, so that a folder whose
	// name holds "#" still works.
	loc, frag := localPath(ref, baseDir), ""
	if _, err := os.Stat(loc); err != nil {
		if l, f := splitFragment(ref); f != "" {
			loc, frag = localPath(l, baseDir), f
		}
	}
	info, err := os.Stat(loc)
	if errors.Is(err, fs.ErrNotExist) && looksLikeRegistryName(ref) {
		return fmt.Errorf("no such file or directory %s (buildpack registry names like %q are not supported: give a git URL, a .tgz URL or a path)", loc, ref)
	}
	if err != nil {
		return err
	}
	switch {
	case info.Mode().IsRegular():
		if frag != "" {
			return fmt.Errorf("%q: a tarball takes no #ref", "#"+frag)
		}
		return unpackFile(loc, dir)
	case !info.IsDir():
		return fmt.Errorf("%s: not a folder, git repository or tarball", loc)
	case frag != "":
		return gitClone(ctx, loc, frag, dir)
	}
	if _, err := os.Stat(filepath.Join(loc, "bin")); err == nil {
		return fsutil.CopyTree(loc, dir, skipGit)
	}
	// A bare repository has no files to copy, only history to clone.
	if err := gitCommand(ctx, "-C", loc, "rev-parse", "--git-dir").Run(); err == nil {
		return gitClone(ctx, loc, "", dir)
	}
	return fmt.Errorf("%s: not a buildpack: it has no bin/compile", loc)
}

// isRemote reports whether ref names something git or HTTP fetches: a
// URL, or scp-like "user@host:path".
func isRemote(ref string) bool {
	if strings.Contains(ref, "://") {
		return true
	}
	at, colon, slash := strings.IndexByte(ref, '@'), strings.IndexByte(ref, ':'), strings.IndexByte(ref, '/')
	return at > 0 && colon > at && (slash < 0 || colon < slash)
}

func isHTTP(url string) bool {
	return strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")
}

// isTarball reports whether name, a path or a URL, ends like a tarball.
func isTarball(name string) bool {
	if i := strings.IndexAny(name, "?#"); i >= 0 {
		name = name[:i]
	}
	for _, ext := range []string{".tgz", ".tar.gz", ".tar"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

func splitFragment(ref string) (loc, frag string) {
	if i := strings.LastIndexByte(ref, '#'); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

func localPath(p, baseDir string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(baseDir, p)
}

// looksLikeRegistryName reports whether ref has the shape of a Heroku
// buildpack registry name, "heroku/go", which needs Heroku's registry.
func looksLikeRegistryName(ref string) bool {
	return !filepath.IsAbs(ref) && !strings.HasPrefix(ref, ".") && strings.Count(ref, "/") == 1
}

// refName is a short name for ref's copy, to make a build's work
// directory readable: the last path element without its suffixes.
func refName(ref string) string {
	loc, _ := splitFragment(ref)
	if i := strings.IndexByte(loc, '?'); i >= 0 {
		loc = loc[:i]
	}
	name := path.Base(strings.TrimRight(filepath.ToSlash(loc), "/"))
	for _, ext := range []string{".git", ".tgz", ".tar.gz", ".tar"} {
		name = strings.TrimSuffix(name, ext)
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
	if strings.Trim(name, "._") == "" {
		return "buildpack"
	}
	return name
}

// gitClone clones url's ref (the default branch when ref is "") into
// dir, which must be empty, and drops the history: the copy is a build's
// working copy, not a repository.
func gitClone(ctx context.Context, url, ref, dir string) error {
	args := []string{"clone", "--quiet", "--depth=1"}
	if ref != "" {
		args = append(args, "--branch", ref)
	}
	err := runGit(ctx, append(args, "--", url, dir)...)
	if err != nil && ref != "" && ctx.Err() == nil {
		// --branch takes branch and tag names only; a commit needs a
		// clone with history to check out from.
		if err := emptyDir(dir); err != nil {
			return err
		}
		if err := runGit(ctx, "clone", "--quiet", "--no-checkout", "--", url, dir); err != nil {
			return err
		}
		if err := runGit(ctx, "-C", dir, "checkout", "--quiet", "--detach", ref); err != nil {
			return fmt.Errorf("no branch, tag or commit %q in %s: %w", ref, url, err)
		}
	} else if err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(dir, ".git"))
}

// emptyDir leaves dir existing and empty, as a failed clone may have
// left it either with some files or without the directory itself.
func emptyDir(dir string) error {
	if err := fsutil.RemoveAll(dir); err != nil {
		return err
	}
	return os.Mkdir(dir, 0o700)
}

func download(ctx context.Context, url, dir string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return unpack(resp.Body, dir)
}

func unpackFile(name, dir string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unpack(f, dir); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// unpack extracts a tar stream, gzip'd or not (told by its first bytes,
// not by a name, since URLs often hide theirs), into dir.
func unpack(r io.Reader, dir string) error {
	br := bufio.NewReader(r)
	var tr io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		tr = zr
	}
	if err := extractTar(tr, dir); err != nil {
		return err
	}
	return unwrapSingleDir(dir)
}

// unwrapSingleDir moves the content of dir's only directory up into dir
// when that directory, and not dir, holds bin/: archives made of a
// folder, as GitHub's are, put everything under one top directory.
func unwrapSingleDir(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, "bin")); err == nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		return err
	}
	inner := filepath.Join(dir, entries[0].Name())
	if _, err := os.Lstat(filepath.Join(inner, "bin")); err != nil {
		return nil
	}
	// Moved aside first: an entry inside may have the folder's own name.
	aside := dir + ".unwrap"
	if err := os.Rename(inner, aside); err != nil {
		return err
	}
	inside, err := os.ReadDir(aside)
	if err != nil {
		return err
	}
	for _, e := range inside {
		if err := os.Rename(filepath.Join(aside, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(aside)
}

// Installed lists the buildpacks under each of dirs — each subdirectory
// that has bin/detect — as absolute paths, each dir's in name order and
// the dirs in the order given: detection tries them in this order, so
// names can set it (Heroku tries its official buildpacks in a fixed
// order). A dir that does not exist holds none.
func Installed(dirs ...string) ([]string, error) {
	var found []string
	for _, d := range dirs {
		d, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("list buildpacks: %w", err)
		}
		entries, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list buildpacks in %s: %w", d, err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			p := filepath.Join(d, e.Name())
			if info, err := os.Stat(filepath.Join(p, "bin", "detect")); err == nil && info.Mode().IsRegular() {
				found = append(found, p)
			}
		}
	}
	return found, nil
}

// maxBuildpacksFileSize bounds .buildpacks, a list of a few refs.
const maxBuildpacksFileSize = 64 << 10

// ReadBuildpacksFile reads the buildpack refs listed in dir/.buildpacks,
// the legacy heroku-buildpack-multi file: refs separated by white space,
// each may end in "#ref". Lines starting with "#" are comments, as
// herokuish allows. A missing file lists none.
//
// The file is the app's, so it is read as ReadRegular reads what code
// dyno did not write: inside dir, a regular file, at most
// maxBuildpacksFileSize.
func ReadBuildpacksFile(dir string) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("read buildpacks file: %w", err)
	}
	defer root.Close()
	data, err := fsutil.ReadRegular(root, ".buildpacks", maxBuildpacksFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err // names .buildpacks
	}
	var refs []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		refs = append(refs, strings.Fields(line)...)
	}
	return refs, nil
}
