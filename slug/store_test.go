package slug

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// TestMain lets the test binary play a second process calling Unpacked:
// with SLUG_TEST_UNPACKED set to "dir digest startfile", it waits for
// startfile to exist, calls Unpacked, prints the result and exits.
func TestMain(m *testing.M) {
	if args := os.Getenv("SLUG_TEST_UNPACKED"); args != "" {
		os.Exit(unpackedHelper(strings.Fields(args)))
	}
	os.Exit(m.Run())
}

func unpackedHelper(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "SLUG_TEST_UNPACKED: want dir digest startfile")
		return 2
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(args[2]); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "no start signal")
			return 2
		}
	}
	s := &Store{Dir: args[0]}
	dir, err := s.Unpacked(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Print(dir)
	return 0
}

// bigTree makes a tree large enough for concurrent unpackers to overlap.
func bigTree(t testing.TB, files int) []treeFile {
	var tree []treeFile
	for i := range files {
		tree = append(tree, treeFile{
			name: fmt.Sprintf("d%02d/f%04d", i%37, i),
			mode: 0o644 | fs.FileMode(i%2)*0o111,
			data: strings.Repeat(fmt.Sprintf("line %d of file %d\n", i, i), 200),
		})
	}
	return append(tree, treeFile{name: "d00/l", link: "../d01"})
}

func TestUnpackedConcurrent(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}
	src := t.TempDir()
	makeTree(t, src, bigTree(t, 2000))
	slug, _ := mustPack(t, s, src)
	h := strings.TrimPrefix(slug.Digest, "sha256:")
	start := filepath.Join(t.TempDir(), "go")

	var procs []*exec.Cmd
	var outs []*strings.Builder
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SLUG_TEST_UNPACKED="+s.Dir+" "+slug.Digest+" "+start)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		outs = append(outs, out)
	}

	const goroutines = 8
	begin := make(chan struct{})
	dirs := make([]string, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			<-begin
			dirs[i], errs[i] = s.Unpacked(slug.Digest)
		})
	}
	// Let the processes reach their polling loop, then start everyone.
	time.Sleep(100 * time.Millisecond)
	if err := os.WriteFile(start, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	close(begin)
	wg.Wait()

	want := filepath.Join(s.Dir, h)
	defer fsutil.RemoveAll(want)
	for i := range goroutines {
		if errs[i] != nil || dirs[i] != want {
			t.Errorf("goroutine %d: Unpacked = %q, %v; want %q", i, dirs[i], errs[i], want)
		}
	}
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil || outs[i].String() != want {
			t.Errorf("process %d: %v, output %q; want %q", i, err, outs[i], want)
		}
	}
	if got, want := snapshot(t, want, 0), snapshot(t, src, 0); !maps.Equal(got, want) {
		t.Errorf("unpacked tree differs from the source (%d and %d entries)", len(got), len(want))
	}
	assertEntries(t, s.Dir, h, h+".lock", h+".tgz")
}

func TestUnpackedChecksum(t *testing.T) {
	t.Parallel()
	s, src, slug := packedTestTree(t)
	h := strings.TrimPrefix(slug.Digest, "sha256:")

	// Another slug's bytes under this digest's name.
	makeTree(t, src, []treeFile{{name: "extra", mode: 0o644, data: "x"}})
	other, _ := mustPack(t, s, src)
	if err := os.Rename(other.Path, slug.Path); err != nil {
		t.Fatal(err)
	}
	_, err := s.Unpacked(slug.Digest)
	if err == nil || !strings.Contains(err.Error(), slug.Digest) || !strings.Contains(err.Error(), "R17") {
		t.Fatalf("Unpacked of a substituted slug: err = %v, want an R17 naming %s", err, slug.Digest)
	}
	assertEntries(t, s.Dir, h+".lock", h+".tgz")
}

func TestUnpackedMissing(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}
	digest := "sha256:" + strings.Repeat("ab", 32)
	if _, err := s.Unpacked(digest); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), digest) {
		t.Errorf("Unpacked of a missing slug: err = %v", err)
	}
	if _, err := s.Acquire(digest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Acquire of a missing slug: err = %v", err)
	}
	assertEntries(t, s.Dir) // no lock file left behind
}

func TestDigestValidation(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}
	good := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	if p, err := s.Path(good); err != nil || p != filepath.Join(s.Dir, strings.Repeat("0123456789abcdef", 4)+".tgz") {
		t.Errorf("Path(%q) = %q, %v", good, p, err)
	}
	for _, bad := range []string{
		"",
		strings.Repeat("0123456789abcdef", 4),
		"sha256:" + strings.Repeat("0123456789ABCDEF", 4),
		"SHA256:" + strings.Repeat("0123456789abcdef", 4),
		"sha256:" + strings.Repeat("0123456789abcdef", 4)[1:],
		"sha256:" + strings.Repeat("0123456789abcdeg", 4),
		"sha256:../../../../etc/passwd" + strings.Repeat("0", 36),
		"sha512:" + strings.Repeat("0123456789abcdef", 4),
	} {
		if _, err := s.Path(bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("Path(%q): err = %v, want one naming the digest", bad, err)
		}
		if s.Has(bad) {
			t.Errorf("Has(%q) = true", bad)
		}
		if _, err := s.Unpacked(bad); err == nil {
			t.Errorf("Unpacked(%q) succeeded", bad)
		}
		if _, err := s.Acquire(bad); err == nil {
			t.Errorf("Acquire(%q) succeeded", bad)
		}
	}
	if s.Has(good) {
		t.Errorf("Has(%q) = true in an empty store", good)
	}
}

func TestGC(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}
	var slugs []Slug
	for i := range 3 {
		src := t.TempDir()
		makeTree(t, src, append(slices.Clone(testTree), treeFile{name: "n", mode: 0o644, data: fmt.Sprint(i)}))
		slug, _ := mustPack(t, s, src)
		if _, err := s.Unpacked(slug.Digest); err != nil {
			t.Fatal(err)
		}
		slugs = append(slugs, slug)
	}
	a, b, c := slugs[0].Digest, slugs[1].Digest, slugs[2].Digest
	hex := func(d string) string { return strings.TrimPrefix(d, "sha256:") }
	// The remains of an unpacker that died, read-only like a real tree.
	stale := filepath.Join(s.Dir, "."+hex(c)+".tmp-123")
	makeTree(t, stale, testTree)
	mustChmod(t, filepath.Join(stale, "lib"), 0o555)
	// Files that are not slugs.
	if err := os.WriteFile(filepath.Join(s.Dir, ".pack-1.tgz"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	held, err := s.Acquire(b)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := s.GC(map[string]bool{a: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{c}) {
		t.Errorf("GC removed %q, want %q", removed, []string{c})
	}
	assertEntries(t, s.Dir, ".pack-1.tgz",
		hex(a), hex(a)+".lock", hex(a)+".tgz",
		hex(b), hex(b)+".lock", hex(b)+".tgz")

	// While held, the slug stays usable.
	if dir, err := s.Unpacked(b); err != nil || !isDir(dir) {
		t.Errorf("Unpacked of a held slug = %q, %v", dir, err)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	removed, err = s.GC(map[string]bool{a: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{b}) {
		t.Errorf("GC removed %q, want %q", removed, []string{b})
	}
	assertEntries(t, s.Dir, ".pack-1.tgz", hex(a), hex(a)+".lock", hex(a)+".tgz")

	removed, err = s.GC(nil)
	if err != nil || !slices.Equal(removed, []string{a}) {
		t.Errorf("GC(nil) = %q, %v; want %q", removed, err, []string{a})
	}
	assertEntries(t, s.Dir, ".pack-1.tgz")
	if removed, err := (&Store{Dir: filepath.Join(s.Dir, "missing")}).GC(nil); err != nil || removed != nil {
		t.Errorf("GC of a missing store = %q, %v", removed, err)
	}
}

// TestGCWhileAcquiring races GC against Acquire: every Acquire either
// fails because the slug is gone or holds a slug that is still there.
func TestGCWhileAcquiring(t *testing.T) {
	t.Parallel()
	s, _, slug := packedTestTree(t)
	data, err := os.ReadFile(slug.Path)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if !s.Has(slug.Digest) {
			if err := os.WriteFile(slug.Path, data, 0o444); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		wg.Go(func() { s.GC(nil) })
		wg.Go(func() {
			held, err := s.Acquire(slug.Digest)
			if err != nil {
				return
			}
			defer held.Close()
			if !s.Has(slug.Digest) {
				t.Error("slug removed while held")
			}
		})
		wg.Wait()
	}
}

// recordingOwner is an Owner that records what it is handed and
// removes as this user.
type recordingOwner struct {
	mu      sync.Mutex
	given   []string
	removed []string
	seen    []bool // whether the final name existed when Give ran
	final   string
	fail    error
}

func (o *recordingOwner) Give(path string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, err := os.Lstat(o.final)
	o.given = append(o.given, path)
	o.seen = append(o.seen, err == nil)
	return o.fail
}

func (o *recordingOwner) Remove(path string) error {
	o.mu.Lock()
	o.removed = append(o.removed, path)
	o.mu.Unlock()
	return fsutil.RemoveAll(path)
}

// Concurrent callers unpack an app's copy once, keeping the build's
// modes (writable ones included), and the tree is handed to its owner
// before it appears at its name.
func TestUnpackedFor(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}
	src := t.TempDir()
	makeTree(t, src, bigTree(t, 300))
	makeTree(t, src, []treeFile{{name: "private", mode: 0o600, data: "secret"}})
	slug, _ := mustPack(t, s, src)
	h := strings.TrimPrefix(slug.Digest, "sha256:")
	dir := filepath.Join(t.TempDir(), "apps", "alpha", "slugs")
	want := filepath.Join(dir, h)
	o := &recordingOwner{final: want}

	const goroutines = 8
	begin := make(chan struct{})
	dirs := make([]string, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			<-begin
			dirs[i], errs[i] = s.UnpackedFor(slug.Digest, dir, o)
		})
	}
	close(begin)
	wg.Wait()
	for i := range goroutines {
		if errs[i] != nil || dirs[i] != want {
			t.Errorf("goroutine %d: UnpackedFor = %q, %v; want %q", i, dirs[i], errs[i], want)
		}
	}
	if len(o.given) != 1 || filepath.Dir(o.given[0]) != dir || o.given[0] == want || o.seen[0] {
		t.Errorf("given %q (final name there: %v); want one temporary tree in %s, before %s appears", o.given, o.seen, dir, want)
	}
	if got, want := snapshot(t, want, 0), snapshot(t, src, 0); !maps.Equal(got, want) {
		t.Errorf("the app's copy differs from the source, modes included (%d and %d entries)", len(got), len(want))
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want mode 0700", dir, fi, err)
	}
	assertEntries(t, dir, h)
	// The store's own tree is not made: the app's copy came from the .tgz.
	assertEntries(t, s.Dir, h+".lock", h+".tgz")
}

// A tree its owner refused is removed, through the owner, and nothing
// appears.
func TestUnpackedForGiveFails(t *testing.T) {
	t.Parallel()
	s, _, slug := packedTestTree(t)
	dir := t.TempDir()
	o := &recordingOwner{fail: errors.New("newuidmap: refused")}
	if _, err := s.UnpackedFor(slug.Digest, dir, o); err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), slug.Digest) {
		t.Errorf("UnpackedFor with a refusing owner: %v", err)
	}
	assertEntries(t, dir)
}

// GCFor removes an app's copies no release keeps, through the owner,
// and leaves held ones and kept ones.
func TestGCFor(t *testing.T) {
	t.Parallel()
	s := &Store{Dir: t.TempDir()}
	dir := t.TempDir()
	o := &recordingOwner{}
	var digests []string
	for i := range 3 {
		src := t.TempDir()
		makeTree(t, src, []treeFile{{name: "n", mode: 0o644, data: strconv.Itoa(i)}})
		slug, _ := mustPack(t, s, src)
		if _, err := s.UnpackedFor(slug.Digest, dir, o); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, slug.Digest)
	}
	held, err := s.Acquire(digests[1])
	if err != nil {
		t.Fatal(err)
	}
	removed, err := s.GCFor(dir, map[string]bool{digests[2]: true}, o)
	if err != nil || !slices.Equal(removed, digests[:1]) {
		t.Errorf("GCFor = %v, %v; want %v", removed, err, digests[:1])
	}
	hex := func(d string) string { return strings.TrimPrefix(d, "sha256:") }
	assertEntries(t, dir, hex(digests[1]), hex(digests[2]))
	if len(o.removed) != 1 || !strings.HasPrefix(filepath.Base(o.removed[0]), "."+hex(digests[0])+".tmp-") {
		t.Errorf("removed through the owner: %q; want the first copy, moved aside", o.removed)
	}
	held.Close()
	// Once the slug is gone from the store too, its copy goes, and no
	// lock file is left behind in the store.
	if _, err := s.GC(map[string]bool{digests[2]: true}); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.GCFor(dir, map[string]bool{digests[2]: true}, o); err != nil || !slices.Equal(removed, digests[1:2]) {
		t.Errorf("GCFor after GC = %v, %v; want %v", removed, err, digests[1:2])
	}
	assertEntries(t, dir, hex(digests[2]))
	assertEntries(t, s.Dir, hex(digests[2])+".lock", hex(digests[2])+".tgz")
}

// A tree an earlier dyno unpacked with every write bit taken away is
// unpacked again, with the build's modes, when nobody holds the slug;
// while a dyno holds it, its owner gets write permission in place.
func TestUnpackedReplacesReadOnlyTree(t *testing.T) {
	t.Parallel()
	s, src, slug := packedTestTree(t)
	dir, err := s.Unpacked(slug.Digest)
	if err != nil {
		t.Fatal(err)
	}
	// As the earlier store left it: no write bit anywhere. The marker
	// tells this tree from one unpacked again.
	if err := os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()&^0o222)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fsutil.RemoveAll(dir)
	held, err := s.Acquire(slug.Digest)
	if err != nil {
		t.Fatal(err)
	}
	marked := func() bool {
		_, err := os.Lstat(filepath.Join(dir, "marker"))
		return err == nil
	}
	if got, err := s.Unpacked(slug.Digest); err != nil || got != dir || readOnlyTree(dir) || !marked() {
		t.Errorf("while held: Unpacked = %q, %v, read-only %v, same tree %v; want the old tree, made writable", got, err, readOnlyTree(dir), marked())
	}
	if got, want := snapshot(t, dir, 0)["Procfile"], "file -rw-r--r-- \"web: bin/server\\n\""; got != want {
		t.Errorf("Procfile: %s; want %s", got, want)
	}
	held.Close()
	// Read-only again, as an older dyno left it, and nobody holds it.
	mustChmod(t, dir, 0o555)
	if got, err := s.Unpacked(slug.Digest); err != nil || got != dir || marked() {
		t.Fatalf("Unpacked = %q, %v; want %q", got, err, dir)
	}
	if got, want := snapshot(t, dir, 0), snapshot(t, src, 0); !maps.Equal(got, want) {
		t.Errorf("unpacked again, the tree differs from the source:\n got %v\nwant %v", got, want)
	}
	assertEntries(t, s.Dir, strings.TrimPrefix(slug.Digest, "sha256:"), strings.TrimPrefix(slug.Digest, "sha256:")+".lock", strings.TrimPrefix(slug.Digest, "sha256:")+".tgz")
}
