package slug

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// A treeFile is one entry of a test tree: a directory when its name ends
// in "/", a symlink when link is set, else a regular file.
type treeFile struct {
	name string
	mode fs.FileMode
	data string
	link string
}

var testTree = []treeFile{
	{name: "Procfile", mode: 0o644, data: "web: bin/server\n"},
	{name: "bin/", mode: 0o755},
	{name: "bin/server", mode: 0o755, data: "#!/bin/sh\nexec sleep 1\n"},
	{name: "bin/run", link: "server"},
	{name: "config/", mode: 0o750},
	{name: "config/secret.yml", mode: 0o600, data: "key: value\n"},
	{name: "empty/", mode: 0o755},
	{name: "lib/", mode: 0o755},
	{name: "lib/a-b.rb", mode: 0o644, data: strings.Repeat("puts 1\n", 1000)},
	{name: "lib/a/", mode: 0o755},
	{name: "lib/a/b.rb", mode: 0o444, data: "puts 2\n"},
	{name: "lib/a/up", link: "../a-b.rb"},
	{name: "lib/a/dangling", link: "nowhere"},
	{name: "lib/dirlink", link: "a"},
	{name: "lib/" + strings.Repeat("n", 200) + ".rb", mode: 0o644, data: "# needs a pax header\n"},
	{name: "sticky/", mode: 0o755},
}

// makeTree writes files under dir in the given order.
func makeTree(t testing.TB, dir string, files []treeFile) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(f.name, "/")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case f.link != "":
			err = os.Symlink(f.link, p)
		case strings.HasSuffix(f.name, "/"):
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, f.mode)
			}
		default:
			if err = os.WriteFile(p, []byte(f.data), 0o600); err == nil {
				err = os.Chmod(p, f.mode)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes every entry under root: type, permission bits
// without those in clear, content or link target.
func snapshot(t testing.TB, root string, clear fs.FileMode) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "link " + target
		case fi.IsDir():
			m[rel] = fmt.Sprintf("dir %v", fi.Mode().Perm()&^clear)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("file %v %q", fi.Mode().Perm()&^clear, data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// packedTestTree packs testTree into a new store, and returns the store,
// the source folder and the slug.
func packedTestTree(t testing.TB) (*Store, string, Slug) {
	t.Helper()
	s := &Store{Dir: t.TempDir()}
	src := t.TempDir()
	makeTree(t, src, testTree)
	slug, _ := mustPack(t, s, src)
	return s, src, slug
}

func mustPack(t testing.TB, s *Store, dir string) (Slug, PackReport) {
	t.Helper()
	slug, report, err := s.Pack(dir, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return slug, report
}

func TestPackDeterministic(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}

	a := t.TempDir()
	makeTree(t, a, testTree)
	sa, _ := mustPack(t, s, a)

	// The same tree made in the opposite order, with other times, owners
	// where the test may change them, and setuid, setgid and sticky bits,
	// which a slug drops.
	b := t.TempDir()
	rev := slices.Clone(testTree)
	slices.Reverse(rev)
	makeTree(t, b, rev)
	when := time.Date(2020, 5, 6, 7, 8, 9, 123456789, time.UTC)
	err := filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			if err := os.Chtimes(p, when, when); err != nil {
				return err
			}
		}
		if os.Geteuid() == 0 {
			return os.Lchown(p, 1234, 5678)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustChmod(t, filepath.Join(b, "bin/server"), 0o755|fs.ModeSetuid|fs.ModeSetgid)
	mustChmod(t, filepath.Join(b, "sticky"), 0o755|fs.ModeSticky)
	sb, _ := mustPack(t, s, b)
	if sa.Digest != sb.Digest {
		t.Fatalf("same tree, different digests: %s and %s", sa.Digest, sb.Digest)
	}

	// Any change of mode or content is a different slug.
	mustChmod(t, filepath.Join(b, "Procfile"), 0o640)
	sc, _ := mustPack(t, s, b)
	if sc.Digest == sa.Digest {
		t.Errorf("mode change kept digest %s", sa.Digest)
	}
	mustChmod(t, filepath.Join(b, "Procfile"), 0o644)
	if err := os.WriteFile(filepath.Join(b, "Procfile"), []byte("web: bin/server -x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sd, _ := mustPack(t, s, b)
	if sd.Digest == sa.Digest || sd.Digest == sc.Digest {
		t.Errorf("content change kept digest %s", sd.Digest)
	}
}

func mustChmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestPackFormat reads a slug with the standard library and checks the
// promises that make it deterministic.
func TestPackFormat(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}
	dir := t.TempDir()
	makeTree(t, dir, testTree)
	if err := syscall.Mkfifo(filepath.Join(dir, "lib/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	slug, report := mustPack(t, s, dir)

	if want := []string{"lib/fifo"}; !slices.Equal(report.Skipped, want) {
		t.Errorf("Skipped = %q, want %q", report.Skipped, want)
	}
	if report.Files != len(testTree) {
		t.Errorf("Files = %d, want %d", report.Files, len(testTree))
	}
	data, err := os.ReadFile(slug.Path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != slug.Size {
		t.Errorf("Size = %d, file has %d bytes", slug.Size, len(data))
	}
	if fi, _ := os.Stat(slug.Path); fi.Mode().Perm() != 0o444 {
		t.Errorf(".tgz mode = %v, want read-only", fi.Mode())
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header has name %q and time %v", zr.Name, zr.ModTime)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q)", hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
		}
		if !hdr.ModTime.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: mtime %v", hdr.Name, hdr.ModTime)
		}
		if hdr.Mode&^0o777 != 0 {
			t.Errorf("%s: mode %#o has more than permission bits", hdr.Name, hdr.Mode)
		}
	}
	want := []string{
		"Procfile", "bin/", "bin/run", "bin/server", "config/", "config/secret.yml", "empty/",
		"lib/", "lib/a/", "lib/a/b.rb", "lib/a/dangling", "lib/a/up", "lib/a-b.rb", "lib/dirlink",
		"lib/" + strings.Repeat("n", 200) + ".rb", "sticky/",
	}
	if !slices.Equal(names, want) {
		t.Errorf("entries:\n got %q\nwant %q", names, want)
	}
}

func TestPackUnpackedRoundTrip(t *testing.T) {
	t.Parallel()
	s, src, slug := packedTestTree(t)

	dir, err := s.Unpacked(slug.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer fsutil.RemoveAll(dir)
	if want := filepath.Join(s.Dir, strings.TrimPrefix(slug.Digest, "sha256:")); dir != want {
		t.Errorf("Unpacked = %s, want %s", dir, want)
	}
	// The slug keeps the modes the build gave, write bits included (a
	// dyno writes /app); the store's folder is what nobody else reaches.
	want := snapshot(t, src, 0)
	got := snapshot(t, dir, 0)
	if !maps.Equal(got, want) {
		t.Errorf("unpacked tree differs:\n got %v\nwant %v", got, want)
	}
	if fi, err := os.Stat(s.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("store folder: %v, %v; want it private (0700)", fi.Mode(), err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if p != dir && !fi.ModTime().Equal(time.Unix(packEpoch, 0)) {
			t.Errorf("%s: mtime %v", p, fi.ModTime())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A second call finds the tree made by the first.
	again, err := s.Unpacked(slug.Digest)
	if err != nil || again != dir {
		t.Errorf("second Unpacked = %q, %v", again, err)
	}
}

func TestPackStoredOnce(t *testing.T) {
	t.Parallel()
	s, src, first := packedTestTree(t)
	fi1, err := os.Stat(first.Path)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := mustPack(t, s, src)
	fi2, err := os.Stat(second.Path)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("packs differ: %+v and %+v", first, second)
	}
	if !os.SameFile(fi1, fi2) {
		t.Error("the second Pack replaced the stored slug")
	}
	assertEntries(t, s.Dir, strings.TrimPrefix(first.Digest, "sha256:")+".tgz")
}

func TestPackSizeLimits(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}
	src := t.TempDir()
	makeTree(t, src, testTree)

	_, _, err := s.Pack(src, PackOptions{MaxSize: 100})
	if err == nil || !strings.Contains(err.Error(), "too large") || !strings.Contains(err.Error(), src) {
		t.Errorf("Pack with MaxSize 100: err = %v, want one saying the slug of %s is too large", err, src)
	}
	assertEntries(t, s.Dir) // no temporary file left

	slug, report, err := s.Pack(src, PackOptions{WarnSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report.Warning, "exceeds our soft limit") {
		t.Errorf("Warning = %q", report.Warning)
	}
	if !s.Has(slug.Digest) {
		t.Errorf("slug over WarnSize not stored")
	}
	if _, report, _ := s.Pack(src, PackOptions{}); report.Warning != "" {
		t.Errorf("Warning with default limits: %q", report.Warning)
	}
}

func TestPackRefusesEscapingSymlink(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"/etc", "../../outside", "a/../../.."} {
		s := &Store{Dir: t.TempDir()}
		src := t.TempDir()
		makeTree(t, src, []treeFile{{name: "a/", mode: 0o755}, {name: "a/l", link: target}})
		_, _, err := s.Pack(src, PackOptions{})
		if err == nil || !strings.Contains(err.Error(), "a/l") {
			t.Errorf("Pack with a/l -> %s: err = %v, want one naming a/l", target, err)
		}
		assertEntries(t, s.Dir)
	}
}

// TestPackIndependentOfCPUs packs a tree of several compression blocks
// with one and with four threads.
func TestPackIndependentOfCPUs(t *testing.T) {
	// Not parallel: it sets GOMAXPROCS.
	src := t.TempDir()
	noise := make([]byte, 3*packBlockSize)
	rand.NewChaCha8([32]byte{}).Read(noise)
	makeTree(t, src, append(bigTree(t, 1000), treeFile{name: "noise", mode: 0o644, data: string(noise)}))
	var digests []string
	for _, n := range []int{1, 4} {
		prev := runtime.GOMAXPROCS(n)
		slug, _ := mustPack(t, &Store{Dir: t.TempDir()}, src)
		runtime.GOMAXPROCS(prev)
		if slug.Size < 2*packBlockSize {
			t.Fatalf("slug of %d bytes is too small for the test", slug.Size)
		}
		digests = append(digests, slug.Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("GOMAXPROCS 1 and 4 give %s and %s", digests[0], digests[1])
	}
}

func TestPackDirArgument(t *testing.T) {
	t.Parallel()
	s, src, want := packedTestTree(t)
	link := filepath.Join(t.TempDir(), "build")
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustPack(t, s, link); got.Digest != want.Digest {
		t.Errorf("Pack through a symlink: %s, want %s", got.Digest, want.Digest)
	}

	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Pack(f, PackOptions{}); err == nil {
		t.Error("Pack of a file succeeded")
	}
	if _, _, err := s.Pack(filepath.Join(f, "missing"), PackOptions{}); err == nil {
		t.Error("Pack of a missing dir succeeded")
	}
}

// assertEntries checks that dir holds exactly the names given.
func assertEntries(t testing.TB, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// A file replaced by a fifo after the walk is refused, not opened to be
// read as a file: that open would wait for a writer (here the test's,
// which lets it through empty).
func TestPackCopyFileRefusesFifo(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "swapped")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
	}()
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			<-done
			f.Close()
		}
	})
	err := copyFile(io.Discard, fifo, 0, make([]byte, 512))
	if err == nil || !strings.Contains(err.Error(), "no longer a regular file") {
		t.Errorf("copyFile of a fifo: %v", err)
	}
}

// With TempDir, the .tgz is written there and renamed into the store:
// nothing is left in either, and a failed pack leaves nothing either.
func TestPackTempDir(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	s := &Store{Dir: filepath.Join(home, "slugs")}
	tmp := filepath.Join(home, "scratch")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	makeTree(t, src, testTree)
	if _, _, err := s.Pack(src, PackOptions{TempDir: tmp, MaxSize: 100}); err == nil {
		t.Fatal("Pack with MaxSize 100 succeeded")
	}
	assertEntries(t, tmp)
	slug, _, err := s.Pack(src, PackOptions{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	assertEntries(t, tmp)
	if !s.Has(slug.Digest) {
		t.Errorf("slug not stored")
	}
	for _, e := range listDir(t, s.Dir) {
		if strings.HasPrefix(e, ".pack-") {
			t.Errorf("temporary file in the store: %s", e)
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
