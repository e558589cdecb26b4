package buildpacks

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestPrepareSourceGit(t *testing.T) {
	t.Parallel()
	repo := newRepo(t, map[string]string{
		"Procfile":    "web: ./server\n",
		"app/main.sh": "echo committed\n",
		".slugignore": "*.log\n",
		"debug.log":   "committed but ignored\n",
	})
	head := git(t, repo, "rev-parse", "HEAD")
	// Uncommitted work: a new file and a change to a committed one.
	writeFiles(t, repo, map[string]string{
		"uncommitted.txt": "not built\n",
		"app/main.sh":     "echo changed\n",
	})

	dst := filepath.Join(t.TempDir(), "build")
	version, err := PrepareSource(context.Background(), repo, dst)
	if err != nil {
		t.Fatal(err)
	}
	if version != head {
		t.Errorf("sourceVersion = %q, want HEAD %q", version, head)
	}
	if got, want := listFiles(t, dst), []string{".slugignore", "Procfile", "app/main.sh"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "app", "main.sh")); string(data) != "echo committed\n" {
		t.Errorf("app/main.sh = %q, want the committed content", data)
	}
}

func TestPrepareSourceGitSubdir(t *testing.T) {
	t.Parallel()
	repo := newRepo(t, map[string]string{
		"README":           "the repo\n",
		"apps/web/index":   "hello\n",
		"apps/web/lib/x":   "x\n",
		"apps/other/index": "other\n",
	})
	dst := filepath.Join(t.TempDir(), "build")
	version, err := PrepareSource(context.Background(), filepath.Join(repo, "apps", "web"), dst)
	if err != nil {
		t.Fatal(err)
	}
	if version != git(t, repo, "rev-parse", "HEAD") {
		t.Errorf("sourceVersion = %q, want HEAD", version)
	}
	if got, want := listFiles(t, dst), []string{"index", "lib/x"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
}

func TestPrepareSourceGitUncommittedFolder(t *testing.T) {
	t.Parallel()
	repo := newRepo(t, map[string]string{"README": "x\n"})
	writeFiles(t, repo, map[string]string{"new/app": "x\n"})
	dst := filepath.Join(t.TempDir(), "build")
	_, err := PrepareSource(context.Background(), filepath.Join(repo, "new"), dst)
	if err == nil || !strings.Contains(err.Error(), "not committed") {
		t.Fatalf("err = %v, want one saying the folder is not committed", err)
	}
	if _, err := os.Lstat(dst); !os.IsNotExist(err) {
		t.Errorf("dst left behind after a failure: %v", err)
	}
}

func TestPrepareSourceGitNoCommits(t *testing.T) {
	t.Parallel()
	needGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFiles(t, repo, map[string]string{"a": "x\n"})
	_, err := PrepareSource(context.Background(), repo, filepath.Join(t.TempDir(), "build"))
	if err == nil || !strings.Contains(err.Error(), "no commits") {
		t.Fatalf("err = %v, want one saying there are no commits", err)
	}
}

func TestPrepareSourceFolder(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"index.html":    "hi\n",
		"lib/util.sh":   "true\n",
		".git/HEAD":     "not a real repository\n", // not one git recognizes, so a plain folder
		"vendor/.git/x": "nested\n",
	})
	if err := os.Chmod(filepath.Join(src, "lib", "util.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("index.html", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "build")
	version, err := PrepareSource(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(version) {
		t.Errorf("sourceVersion = %q, want a SHA-256 digest of the folder", version)
	}
	if got, want := listFiles(t, dst), []string{"index.html", "lib/util.sh", "link"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	if info, err := os.Stat(filepath.Join(dst, "lib", "util.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("lib/util.sh: mode not kept: %v %v", info.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "link")); err != nil || target != "index.html" {
		t.Errorf("link = %q, %v; want a symlink to index.html", target, err)
	}
}

func TestPrepareSourceDstExists(t *testing.T) {
	t.Parallel()
	dst := t.TempDir()
	if _, err := PrepareSource(context.Background(), t.TempDir(), dst); err == nil {
		t.Fatal("PrepareSource into an existing dst succeeded")
	}
}

func TestSlugignore(t *testing.T) {
	t.Parallel()
	files := []string{
		"Procfile",
		"README.md",
		"debug.log",
		"docs/guide.md",
		"docs/img/a.png",
		"logs/today.log",
		"src/app.go",
		"src/app_test.go",
		"src/logs/keep.txt",
		"src/testdata/in.txt",
		"test/unit/a_test.go",
		"tmp",
		"vendor/lib/tmp/cache",
	}
	tests := []struct {
		name     string
		patterns string
		removed  []string
	}{
		{"none", "# just a comment\n\n", nil},
		{"extension anywhere", "*.log", []string{"debug.log", "logs/today.log"}},
		{"name anywhere", "tmp", []string{"tmp", "vendor/lib/tmp/cache"}},
		{"anchored", "/tmp", []string{"tmp"}},
		{"dirs only", "tmp/", []string{"vendor/lib/tmp/cache"}},
		{"anchored dir", "/docs/", []string{"docs/guide.md", "docs/img/a.png"}},
		{"path with slash is anchored", "src/logs", []string{"src/logs/keep.txt"}},
		{"leading double star", "**/testdata", []string{"src/testdata/in.txt"}},
		{"double star in the middle", "test/**/*_test.go", []string{"test/unit/a_test.go"}},
		{"trailing double star", "docs/**", []string{"docs/guide.md", "docs/img/a.png"}},
		{"star stays in one segment", "/src/*.go", []string{"src/app.go", "src/app_test.go"}},
		{"glob with class", "*_test.go", []string{"src/app_test.go", "test/unit/a_test.go"}},
		{"several lines, CRLF", "# docs\r\n*.md\r\n\r\n/logs\r\n", []string{"README.md", "docs/guide.md", "logs/today.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			all := map[string]string{".slugignore": tt.patterns}
			for _, f := range files {
				all[f] = f
			}
			writeFiles(t, src, all)
			dst := filepath.Join(t.TempDir(), "build")
			if _, err := PrepareSource(context.Background(), src, dst); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, f := range append([]string{".slugignore"}, files...) {
				if !slices.Contains(tt.removed, f) {
					want = append(want, f)
				}
			}
			if got := listFiles(t, dst); !slices.Equal(got, want) {
				t.Errorf("patterns %q:\n got %q\nwant %q", tt.patterns, got, want)
			}
		})
	}
}

func TestSlugignoreErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		patterns string
		want     string
	}{
		{"*.log\n# keep this one\n!important.log\n", ".slugignore:3: \"!important.log\": negated patterns (\"!\") are not supported"},
		{"ok\n[unclosed\n", ".slugignore:2: \"[unclosed\": syntax error in pattern"},
		{"/\n", ".slugignore:1: \"/\": the pattern names no file"},
	}
	for _, tt := range tests {
		src := t.TempDir()
		writeFiles(t, src, map[string]string{".slugignore": tt.patterns, "important.log": "x"})
		dst := filepath.Join(t.TempDir(), "build")
		_, err := PrepareSource(context.Background(), src, dst)
		if err == nil {
			t.Errorf("patterns %q: no error", tt.patterns)
			continue
		}
		want := filepath.Join(src, tt.want)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("patterns %q: err = %q, want it to contain %q", tt.patterns, err, want)
		}
		if _, err := os.Lstat(dst); !os.IsNotExist(err) {
			t.Errorf("dst left behind after a failure: %v", err)
		}
	}
}

// .slugignore is read only as a regular file of at most 1 MiB, inside
// the source: a symlink to a file outside it is refused, not followed.
func TestPrepareSourceSlugignoreBounded(t *testing.T) {
	t.Parallel()
	big := "*.log\n" + strings.Repeat("# padding\n", (1<<20)/10+1)
	src := t.TempDir()
	writeFiles(t, src, map[string]string{".slugignore": big, "debug.log": "x"})
	_, err := PrepareSource(context.Background(), src, filepath.Join(t.TempDir(), "build"))
	if err == nil || !strings.Contains(err.Error(), "read .slugignore: larger than 1 MiB, the most dyno reads of it") {
		t.Errorf("a .slugignore over 1 MiB: %v", err)
	}

	outside := filepath.Join(t.TempDir(), "patterns")
	writeFiles(t, filepath.Dir(outside), map[string]string{"patterns": "*.log\n"})
	src = t.TempDir()
	writeFiles(t, src, map[string]string{"debug.log": "x"})
	if err := os.Symlink(outside, filepath.Join(src, ".slugignore")); err != nil {
		t.Fatal(err)
	}
	_, err = PrepareSource(context.Background(), src, filepath.Join(t.TempDir(), "build"))
	if err == nil || !strings.Contains(err.Error(), ".slugignore: path escapes from parent") {
		t.Errorf("a .slugignore linking out of the source: %v", err)
	}
}

// A folder that holds dyno's own state (DYNO_HOME under ~, the folder
// built) and the build's scratch: neither is copied, and the copy ends.
func TestPrepareSourceLeavesOutPrivate(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	home := filepath.Join(src, ".local", "share", "dyno")
	os.MkdirAll(filepath.Join(home, "apps", "alpha"), 0o700)
	os.WriteFile(filepath.Join(home, "apps", "alpha", "ledger.jsonl"), []byte("SECRET\n"), 0o600)
	os.WriteFile(filepath.Join(src, "app.txt"), []byte("code\n"), 0o644)
	dst := filepath.Join(home, "builds", "alpha-1", "app")
	if _, err := PrepareSource(context.Background(), src, dst, home); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "app.txt")); err != nil || string(b) != "code\n" {
		t.Errorf("app.txt: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dst, ".local", "share", "dyno")); err == nil {
		t.Error("DYNO_HOME was copied into the source")
	}
	if got := Within(src, []string{home, "/etc", src}); len(got) != 1 || got[0] != filepath.Join(".local", "share", "dyno") {
		t.Errorf("Within = %q", got)
	}
}

// A plain folder's SOURCE_VERSION is a digest of what the build gets:
// the same files give the same one in another copy, with other times;
// a changed file, a new one or an executable bit changes it; what
// .slugignore drops does not count.
func TestPrepareSourceFolderVersion(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"index.js":    "console.log(1)\n",
		"lib/a.js":    "a\n",
		"empty/":      "",
		"notes.log":   "dropped\n",
		".slugignore": "*.log\n",
	}
	build := func(src string) string {
		t.Helper()
		v, err := PrepareSource(context.Background(), src, filepath.Join(t.TempDir(), "build"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	src := t.TempDir()
	writeFiles(t, src, files)
	first := build(src)
	if again := build(src); again != first {
		t.Fatalf("two builds of one folder: %s, then %s", first, again)
	}

	other := t.TempDir()
	writeFiles(t, other, files)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(other, "index.js"), old, old); err != nil {
		t.Fatal(err)
	}
	if v := build(other); v != first {
		t.Errorf("the same files elsewhere, other times: %s, want %s", v, first)
	}

	writeFiles(t, other, map[string]string{"notes.log": "changed, but dropped by .slugignore\n"})
	if v := build(other); v != first {
		t.Errorf("a change to a file .slugignore drops changed the version")
	}
	changes := []struct {
		what string
		do   func(dir string)
	}{
		{"a file's content", func(dir string) { writeFiles(t, dir, map[string]string{"lib/a.js": "b\n"}) }},
		{"a new file", func(dir string) { writeFiles(t, dir, map[string]string{"lib/b.js": ""}) }},
		{"an executable bit", func(dir string) { os.Chmod(filepath.Join(dir, "index.js"), 0o755) }},
		{"a renamed file", func(dir string) { os.Rename(filepath.Join(dir, "lib"), filepath.Join(dir, "lib2")) }},
	}
	for _, c := range changes {
		dir := t.TempDir()
		writeFiles(t, dir, files)
		c.do(dir)
		if v := build(dir); v == first {
			t.Errorf("%s changed, the version did not: %s", c.what, v)
		}
	}
}

// InspectSource counts what a build of HEAD leaves out, in the part of
// the work tree that is built, and Warnings says it with the fix.
func TestInspectSourceUncommitted(t *testing.T) {
	t.Parallel()
	repo := newRepo(t, map[string]string{
		".gitignore":     "*.tmp\n",
		"app/main.go":    "package main\n",
		"app/util.go":    "package main // util\n",
		"app/old.go":     "package main // old\n",
		"app/moved.go":   "package main // moved\n",
		"other/file.txt": "x\n",
	})
	head := git(t, repo, "rev-parse", "HEAD")
	s, err := InspectSource(context.Background(), filepath.Join(repo, "app"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Head != head || s.Changed != 0 || s.Untracked != 0 || s.Warnings() != nil {
		t.Fatalf("a clean tree: %+v, warnings %q", s, s.Warnings())
	}

	writeFiles(t, repo, map[string]string{
		"app/main.go":    "package main // edited\n",
		"app/staged.go":  "package main // staged\n",
		"app/new/a.go":   "package main // a\n",
		"app/new/b.go":   "package main // b\n",
		"app/cache.tmp":  "ignored\n",
		"other/file.txt": "edited outside the app\n",
	})
	git(t, repo, "add", "app/staged.go")
	git(t, repo, "rm", "-q", "app/old.go")
	git(t, repo, "mv", "app/moved.go", "app/renamed.go")
	s, err = InspectSource(context.Background(), filepath.Join(repo, "app"))
	if err != nil {
		t.Fatal(err)
	}
	// main.go edited, staged.go added, old.go deleted, moved.go renamed;
	// new/a.go and new/b.go untracked; cache.tmp ignored; other/ is not
	// the app's.
	if s.Changed != 4 || s.Untracked != 2 {
		t.Errorf("Changed, Untracked = %d, %d; want 4, 2", s.Changed, s.Untracked)
	}
	want := `4 uncommitted changes and 2 untracked files are not in this build of HEAD ` + head[:8] +
		`; commit them (git add -A && git commit -m "...") to include them`
	if w := s.Warnings(); len(w) != 1 || w[0] != want {
		t.Errorf("Warnings = %q, want %q", w, want)
	}

	for _, tt := range []struct {
		changed, untracked int
		want               string
	}{
		{1, 0, `1 uncommitted change is not in this build of HEAD 01234567; commit them (git commit -am "...") to include them`},
		{3, 0, `3 uncommitted changes are not in this build of HEAD 01234567; commit them (git commit -am "...") to include them`},
		{0, 1, `1 untracked file is not in this build of HEAD 01234567; add and commit them (git add -A && git commit -m "...") to include them`},
	} {
		s := Source{Head: "0123456789abcdef", Changed: tt.changed, Untracked: tt.untracked}
		if w := s.Warnings(); len(w) != 1 || w[0] != tt.want {
			t.Errorf("Warnings = %q, want %q", w, tt.want)
		}
	}
	if w := (Source{Dir: "/x", Changed: 0}).Warnings(); w != nil {
		t.Errorf("a plain folder warns: %q", w)
	}
}

// A git work tree owned by another uid, built by root: git refuses it
// as it is ("dubious ownership"), and dyno reads it as its owner, so
// it is built as git (HEAD, SOURCE_VERSION, no untracked files), not
// as a plain folder.
func TestPrepareSourceForeignOwner(t *testing.T) {
	t.Parallel()
	needGit(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root, to build a work tree another uid owns")
	}
	repo := committedRepo(t, map[string]string{"Procfile": "web: ./server\n", "main.sh": "echo committed\n"})
	head := git(t, repo, "rev-parse", "HEAD")
	writeFiles(t, repo, map[string]string{"untracked.txt": "not built\n", "main.sh": "echo edited\n"})
	testutil.GiveToNobody(t, repo)

	// The case itself: git, as root, refuses the tree.
	plain := exec.Command("git", "-C", repo, "rev-parse", "HEAD")
	plain.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := plain.CombinedOutput(); err == nil || !strings.Contains(string(out), "dubious ownership") {
		t.Fatalf("git as root did not refuse uid %d's tree: %v\n%s", testutil.Nobody, err, out)
	}

	s, err := InspectSource(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	if s.Head != head || s.Changed != 1 || s.Untracked != 1 {
		t.Errorf("InspectSource = %+v, want HEAD %s, 1 change, 1 untracked file", s, head)
	}
	dst := filepath.Join(t.TempDir(), "build")
	version, err := PrepareSource(context.Background(), repo, dst)
	if err != nil {
		t.Fatal(err)
	}
	if version != head {
		t.Errorf("sourceVersion = %q, want HEAD %q", version, head)
	}
	if got, want := listFiles(t, dst), []string{"Procfile", "main.sh"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "main.sh")); string(data) != "echo committed\n" {
		t.Errorf("main.sh = %q, want the committed content", data)
	}
	// Nothing in the owner's tree was written as root.
	filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if info, err := os.Lstat(p); err == nil && hostUID(info) != testutil.Nobody {
			t.Errorf("%s is now owned by uid %d", p, hostUID(info))
		}
		return nil
	})
}

func hostUID(info os.FileInfo) int { return int(info.Sys().(*syscall.Stat_t).Uid) }

// A work tree git cannot read is an error with git's whole message,
// every line of it, never a plain folder built instead.
func TestPrepareSourceGitErrorsWhole(t *testing.T) {
	t.Parallel()
	repo := newRepo(t, map[string]string{"a": "x\n"})
	writeFiles(t, repo, map[string]string{".git/config": "[core\nbroken\n", "untracked": "x\n"})
	dst := filepath.Join(t.TempDir(), "build")
	_, err := PrepareSource(context.Background(), repo, dst)
	if err == nil || !strings.Contains(err.Error(), "bad config line 1") {
		t.Errorf("a broken .git/config: err = %v, want git's message", err)
	}
	if _, err := os.Lstat(dst); !os.IsNotExist(err) {
		t.Errorf("dst left behind after a failure: %v", err)
	}

	if os.Geteuid() != 0 {
		return
	}
	// Root reads another uid's tree as that uid only when that uid
	// owns its .git too: else no user's git is run, and the error
	// says whose is whose.
	repo = committedRepo(t, map[string]string{"a": "x\n"})
	if err := os.Chown(repo, testutil.Nobody, testutil.Nobody); err != nil {
		t.Fatal(err)
	}
	_, err = PrepareSource(context.Background(), repo, dst)
	if err == nil {
		t.Fatal("a tree whose .git is another uid's was built")
	}
	for _, want := range []string{"belongs to uid 65534 but " + filepath.Join(repo, ".git") + " to uid 0", "build it as its owner"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err lacks %q:\n%v", want, err)
		}
	}

	// A tree of nobody's whose config names root's folder as its work
	// tree (core.worktree) does not make dyno run git as root there.
	victim := testutil.SharedDir(t)
	repo = committedRepo(t, map[string]string{"a": "x\n"})
	git(t, repo, "config", "core.worktree", victim)
	if err := os.Chown(victim, 0, 0); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, repo)
	_, err = PrepareSource(context.Background(), repo, dst)
	if err == nil || !strings.Contains(err.Error(), "to uid 0") {
		t.Errorf("a tree whose core.worktree is root's folder: err = %v, want the owners named", err)
	}
}

// A git work tree on a machine without git is refused, not built as a
// plain folder with its untracked files.
func TestPrepareSourceGitMissing(t *testing.T) {
	needGit(t)
	repo := committedRepo(t, map[string]string{"a": "x\n"})
	sub := filepath.Join(repo, "app")
	writeFiles(t, repo, map[string]string{"app/Procfile": "web: true\n"})
	t.Setenv("PATH", t.TempDir()) // no git there
	for _, dir := range []string{repo, sub} {
		_, err := PrepareSource(context.Background(), dir, filepath.Join(t.TempDir(), "build"))
		if err == nil || !strings.Contains(err.Error(), repo+" is a git repository but git is not installed") {
			t.Errorf("%s without git: err = %v", dir, err)
		}
	}
	plain := t.TempDir()
	writeFiles(t, plain, map[string]string{"Procfile": "web: true\n"})
	if _, err := PrepareSource(context.Background(), plain, filepath.Join(t.TempDir(), "build")); err != nil {
		t.Errorf("a plain folder without git: %v", err)
	}
}

// committedRepo is a git repository in a folder the unprivileged user
// can be given, its files committed once, still owned by this process.
func committedRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	repo := filepath.Join(testutil.SharedDir(t), "repo")
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "init", "-q")
	writeFiles(t, repo, files)
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "first")
	return repo
}

// A command the owner's config names (a smudge filter that git archive
// runs) runs as the owner, in a session of its own, and sees nothing of
// root's environment.
func TestPrepareSourceOwnerCommandsKeptApart(t *testing.T) {
	needGit(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root, to build a work tree another uid owns")
	}
	t.Setenv("DYNO_TEST_SECRET", "root's")
	spy := filepath.Join(testutil.SharedDir(t), "spy")
	repo := committedRepo(t, map[string]string{".gitattributes": "a filter=spy\n", "a": "x\n"})
	git(t, repo, "config", "filter.spy.smudge", "sh -c 'echo \"uid=$(id -u) sid=$(cut -d\" \" -f6 /proc/self/stat) secret=$DYNO_TEST_SECRET\" >> "+spy+"; cat'")
	testutil.GiveToNobody(t, repo, filepath.Dir(spy))

	if _, err := PrepareSource(context.Background(), repo, filepath.Join(t.TempDir(), "build")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(spy)
	if err != nil {
		t.Fatalf("the filter did not run: %v", err)
	}
	ours, _ := unix.Getsid(0)
	line := strings.TrimSpace(string(got))
	if !strings.HasPrefix(line, fmt.Sprintf("uid=%d ", testutil.Nobody)) || strings.Contains(line, fmt.Sprintf("sid=%d ", ours)) || !strings.HasSuffix(line, "secret=") {
		t.Errorf("the filter ran as %q; want uid %d, a session other than %d, no secret", line, testutil.Nobody, ours)
	}
}
