package main

// Builds of apps with their own slice of host ids (subordinate ids added
// for the unprivileged user): the buildpacks run as the app's ids, and
// what they make is the daemon user's again once the build is over,
// however it ended.

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

// hostOwner is the host uid that owns path.
func hostOwner(t *testing.T, path string) int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid)
}

// oneMatch is the one path matching pattern.
func oneMatch(t *testing.T, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) != 1 {
		t.Fatalf("%s matches %v (%v); want one path", pattern, m, err)
	}
	return m[0]
}

// findFiles are the files called name under dir.
func findFiles(dir, name string) []string {
	var found []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name && !d.IsDir() {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// ownedBuildpack's compile makes a file in the build, one in the cache
// and a private folder in its HOME, says what it is inside and what it
// read from ENV_DIR, then waits on the fifo go-on in the cache.
func ownedBuildpack(t *testing.T) string {
	return buildpackDir(t, map[string]string{
		"detect": "echo Owned\n",
		"compile": `echo made > "$1/made"
mkdir -p "$2/kept" && echo cached > "$2/kept/file" && chmod 700 "$2/kept"
mkdir "$HOME/private" && echo x > "$HOME/private/x" && chmod 700 "$HOME/private"
echo "-----> inside: uid $(id -u) owner $(stat -c %u "$1/made") secret $(cat "$3/SECRET")"
read line < "$2/go-on"
`,
	})
}

// cacheWithFifo makes app's cache holding the fifo go-on, owned by the
// unprivileged user, as a build would leave it.
func cacheWithFifo(t *testing.T, home, app string) (cache, fifo string) {
	t.Helper()
	cache = filepath.Join(home, "apps", app, "cache")
	if err := os.Mkdir(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	fifo = filepath.Join(cache, "go-on")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, cache)
	return cache, fifo
}

// goOn lets a compile waiting on fifo go on.
func goOn(t *testing.T, fifo string) {
	t.Helper()
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go on\n")
	f.Close()
}

// Each app's buildpacks run as its own host uid, not the daemon user's
// and not another app's, with the build's folders theirs to write and
// ENV_DIR theirs to read; once the build is over, the slug is packed
// from what they made, the cache is the user's again and the scratch is
// gone.
func TestBuildOwnIDs(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	const count = 3 * 65536
	base := testutil.SubIDs(t, count)
	bp := ownedBuildpack(t)
	src := source(t, map[string]string{"Procfile": "web: true\n"})
	uids := map[string]int{}
	for _, name := range []string{"alpha", "beta"} {
		e.must(t, "apps:create", name)
		e.must(t, "config:set", "SECRET="+name+"-secret", "-a", name)
		cache, fifo := cacheWithFifo(t, e.home, name)
		s := startSession(t, e.command("build", src, "-a", name, "-b", bp))
		s.waitFor("-----> inside: uid 12345 owner 12345 secret " + name + "-secret$")

		// From the host, during the build.
		made := oneMatch(t, filepath.Join(e.home, "builds", name+"-*", "app", "made"))
		uid := hostOwner(t, made)
		if uid < base || uid >= base+count {
			t.Errorf("%s: the build's file is host uid %d; want one of the app's ids, %d to %d", name, uid, base, base+count-1)
		}
		for _, p := range []string{filepath.Join(cache, "kept", "file"), fifo} {
			if got := hostOwner(t, p); got != uid {
				t.Errorf("%s: %s is host uid %d during the build; want the app's %d", name, p, got, uid)
			}
		}
		uids[name] = uid

		goOn(t, fifo)
		if st := s.wait(); st != 0 {
			t.Fatalf("%s: exit %d:\n%s", name, st, strings.Join(s.lines(), "\n"))
		}
		wantLines(t, strings.Join(s.lines(), "\n"), "Released v3")
		if l := testutil.Names(t, filepath.Join(e.home, "builds")); len(l) != 0 {
			t.Errorf("%s: left in builds: %v", name, l)
		}
		for _, p := range []string{cache, filepath.Join(cache, "kept"), filepath.Join(cache, "kept", "file"), fifo} {
			if got := hostOwner(t, p); got != testutil.Nobody {
				t.Errorf("%s: %s is host uid %d after the build; want the user's %d again", name, p, got, testutil.Nobody)
			}
		}
		// The slug holds what the buildpack made, as the user's.
		slugFiles := findFiles(filepath.Join(e.home, "slugs"), "made")
		if len(slugFiles) == 0 {
			t.Errorf("%s: no unpacked slug holds the build's file", name)
		}
		for _, f := range slugFiles {
			if b, err := os.ReadFile(f); err != nil || string(b) != "made\n" || hostOwner(t, f) != testutil.Nobody {
				t.Errorf("%s: the slug's file %s: %q %v, owner %d", name, f, b, err, hostOwner(t, f))
			}
		}
	}
	if uids["alpha"] == uids["beta"] {
		t.Errorf("both apps' builds ran as host uid %d", uids["alpha"])
	}
	if uids["alpha"] == testutil.Nobody || uids["beta"] == testutil.Nobody {
		t.Errorf("a build ran as the user's own uid: %v", uids)
	}
}

// A build killed with SIGKILL leaves folders its app's ids own, which
// the user cannot remove by itself; the next build, of another app,
// sweeps them, and hands the killed build's cache back, so the app can
// be destroyed.
func TestBuildOwnIDsKill9Swept(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	const count = 2 * 65536
	base := testutil.SubIDs(t, count)
	e.must(t, "apps:create", "doomed")
	e.must(t, "config:set", "SECRET=doomed-secret", "-a", "doomed")
	cache, _ := cacheWithFifo(t, e.home, "doomed")
	s := startSession(t, e.command("build", source(t, map[string]string{}), "-a", "doomed", "-b", ownedBuildpack(t)))
	s.waitFor("-----> inside: uid 12345 ")
	private := oneMatch(t, filepath.Join(e.home, "builds", "doomed-*", "dyno-build-*", "home", "private"))
	s.cmd.Process.Kill()
	s.wait()
	// The sandbox's init sees its manager gone and kills the compile,
	// whose command line names the build's folder.
	scratch := strings.TrimPrefix(private, filepath.Join(e.home, "builds")+"/")
	waitMarkerGone(t, scratch[:strings.IndexByte(scratch, '/')], 5*time.Second)

	dead := testutil.Names(t, filepath.Join(e.home, "builds"))
	if len(dead) != 1 {
		t.Fatalf("after kill -9, builds holds %v; want the killed build's folder", dead)
	}
	for _, p := range []string{private, filepath.Join(cache, "kept")} {
		if uid := hostOwner(t, p); uid < base || uid >= base+count {
			t.Fatalf("%s is host uid %d after kill -9; want the app's ids (%d up)", p, uid, base)
		}
	}

	// Another app's build sweeps it.
	e.deployFixture(t, "next", "web: true\n")
	if l := testutil.Names(t, filepath.Join(e.home, "builds")); len(l) != 0 {
		t.Errorf("after the next build, builds holds %v; want the killed build's folder swept", l)
	}
	if uid := hostOwner(t, filepath.Join(cache, "kept", "file")); uid != testutil.Nobody {
		t.Errorf("the killed build's cache is host uid %d after the sweep; want the user's %d", uid, testutil.Nobody)
	}
	e.must(t, "apps:destroy", "doomed", "--confirm", "doomed")
	if _, err := os.Stat(filepath.Join(e.home, "apps", "doomed")); !os.IsNotExist(err) {
		t.Errorf("the app's folder after apps:destroy: %v", err)
	}
	if l := testutil.Names(t, filepath.Join(e.home, "trash")); len(l) != 0 {
		t.Errorf("left in trash: %v", l)
	}
}

// A build with the app's ids that SIGTERM or SIGINT stops, or whose
// compile fails, hands back what its buildpacks made before it removes
// its scratch: nothing is left in builds, and the cache is the user's
// again.
func TestBuildOwnIDsStoppedOrFailed(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	testutil.SubIDs(t, 65536)
	e.must(t, "apps:create", "stopped")
	e.must(t, "config:set", "SECRET=s", "-a", "stopped")
	cache, _ := cacheWithFifo(t, e.home, "stopped")
	src := source(t, map[string]string{"Procfile": "web: true\n"})
	builds := filepath.Join(e.home, "builds")
	bp := ownedBuildpack(t)
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT} {
		s := startSession(t, e.command("build", src, "-a", "stopped", "-b", bp))
		s.waitFor("-----> inside: uid 12345 ")
		if uid := hostOwner(t, filepath.Join(cache, "kept", "file")); uid == testutil.Nobody {
			t.Fatalf("%v: the cache is the user's during the build", sig)
		}
		s.signal(sig)
		if died, st := s.diedOf(); died != syscall.Signal(sig) {
			t.Errorf("%v: died of %v, exit %d; want death by the signal:\n%s", sig, died, st, strings.Join(s.lines(), "\n"))
		}
		if l := testutil.Names(t, builds); len(l) != 0 {
			t.Errorf("%v: left in builds: %v", sig, l)
		}
		if uid := hostOwner(t, filepath.Join(cache, "kept", "file")); uid != testutil.Nobody {
			t.Errorf("%v: the cache's file is host uid %d after the build; want the user's %d", sig, uid, testutil.Nobody)
		}
	}

	failing := buildpackDir(t, map[string]string{
		"detect":  "echo Failing\n",
		"compile": "mkdir \"$2/failed\" && echo x > \"$2/failed/x\" && chmod 700 \"$2/failed\"\nmkdir \"$1/private\" && echo x > \"$1/private/x\" && chmod 700 \"$1/private\"\nexit 3\n",
	})
	out, st := e.dynoOut(t, "build", src, "-a", "stopped", "-b", failing)
	if st != 1 {
		t.Errorf("a failed compile: exit %d, want 1:\n%s", st, out)
	}
	wantLines(t, out, " !     Push rejected, failed to compile Failing app.")
	if l := testutil.Names(t, builds); len(l) != 0 {
		t.Errorf("after a failed compile, left in builds: %v", l)
	}
	if uid := hostOwner(t, filepath.Join(cache, "failed", "x")); uid != testutil.Nobody {
		t.Errorf("after a failed compile, the cache's file is host uid %d; want the user's %d", uid, testutil.Nobody)
	}
	if rels := e.must(t, "releases", "-a", "stopped"); !strings.Contains(rels, "Current: v2") || strings.Contains(rels, "v3") {
		t.Errorf("a build was released:\n%s", rels)
	}
}

// Two builds of one app with its own ids run side by side and share
// its cache, as without ids: the one that ends first leaves the cache to
// the app's ids, the other still using it, and the last one out hands it
// back. Detection tries buildpacks installed in $DYNO_HOME, where they
// lie, as the app's ids.
func TestBuildOwnIDsSideBySide(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	base := testutil.SubIDs(t, 65536)
	e.must(t, "apps:create", "twice")
	e.must(t, "config:set", "SECRET=q", "-a", "twice")
	cache, fifo := cacheWithFifo(t, e.home, "twice")
	src := source(t, map[string]string{".installed": "", "Procfile": "web: true\n"})
	first := startSession(t, e.command("build", src, "-a", "twice", "-b", ownedBuildpack(t)))
	first.waitFor("-----> inside: uid 12345 ")

	installed := filepath.Join(e.home, "buildpacks", "local")
	if err := os.MkdirAll(filepath.Dir(installed), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(buildpackDir(t, map[string]string{
		"detect":  "[ -f \"$1/.installed\" ] && echo Installed\n",
		"compile": "echo \"-----> second: $(stat -c %u \"$2/kept/file\")\"\n",
	}), installed); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, filepath.Dir(installed))
	out := e.must(t, "build", src, "-a", "twice")
	wantLines(t, out, "-----> Installed app detected", "-----> second: 12345\n", "Released v3")
	file := filepath.Join(cache, "kept", "file")
	if uid := hostOwner(t, file); uid < base || uid >= base+65536 {
		t.Errorf("the cache's file is host uid %d once the second build ended, the first still running; want the app's", uid)
	}

	goOn(t, fifo)
	if st := first.wait(); st != 0 {
		t.Fatalf("first build: exit %d:\n%s", st, strings.Join(first.lines(), "\n"))
	}
	wantLines(t, strings.Join(first.lines(), "\n"), "Released v4")
	if uid := hostOwner(t, file); uid != testutil.Nobody {
		t.Errorf("the cache's file is host uid %d after both builds; want the user's %d", uid, testutil.Nobody)
	}
	if l := testutil.Names(t, filepath.Join(e.home, "builds")); len(l) != 0 {
		t.Errorf("left in builds: %v", l)
	}
}
