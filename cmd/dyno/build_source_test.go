package main

// What dyno build takes from its source folder, through the binary run
// as the unprivileged user: a git work tree's HEAD, said with what it
// leaves out; another uid's tree refused in git's words; a plain
// folder's SOURCE_VERSION.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/internal/testutil"
)

// versionBuildpack prints SOURCE_VERSION in its compile.
func versionBuildpack(t *testing.T) string {
	return buildpackDir(t, map[string]string{
		"detect":  "echo Version\n",
		"compile": "echo \"       SOURCE_VERSION=[$SOURCE_VERSION]\"\n",
	})
}

// sourceVersion is what versionBuildpack printed.
func sourceVersion(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`SOURCE_VERSION=\[([0-9a-f]*)\]`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no SOURCE_VERSION in the build output:\n%s", out)
	}
	return m[1]
}

// gitRepo makes a git repository of files, one commit, in a folder the
// unprivileged user can reach, and returns it with HEAD's sha.
func gitRepo(t *testing.T, files map[string]string) (dir, head string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir = filepath.Join(testutil.SharedDir(t), "app")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q")
	run("add", "-A")
	run("commit", "-q", "-m", "first")
	return dir, run("rev-parse", "HEAD")
}

// A build of a git work tree with edits takes HEAD, and says how many
// changes it leaves out and how to put them in.
func TestBuildGitUncommitted(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "edited")
	repo, head := gitRepo(t, map[string]string{"Procfile": "worker: sleep 1000\n", "main.go": "package main\n"})
	os.WriteFile(filepath.Join(repo, "main.go"), []byte("package main // edited\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "new.go"), []byte("package main\n"), 0o644)
	testutil.GiveToNobody(t, repo)

	out := e.must(t, "build", repo, "-a", "edited", "-b", versionBuildpack(t))
	wantLines(t, out, " !     1 uncommitted change and 1 untracked file are not in this build of HEAD "+head[:8]+
		`; commit them (git add -A && git commit -m "...") to include them`)
	if v := sourceVersion(t, out); v != head {
		t.Errorf("SOURCE_VERSION = %q, want HEAD %s", v, head)
	}
	wantLines(t, e.must(t, "releases", "-a", "edited"), "v2  Deploy "+head[:8])
}

// dyno, run as a user who does not own the work tree, fails with git's
// whole message (its fix among it) instead of building the folder.
func TestBuildGitOtherOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make a work tree the unprivileged user does not own")
	}
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "theirs")
	repo, _ := gitRepo(t, map[string]string{"Procfile": "worker: sleep 1000\n"})
	out, st := e.dynoOut(t, "build", repo, "-a", "theirs", "-b", versionBuildpack(t))
	if st == 0 {
		t.Fatalf("a build of root's work tree as uid %d exited 0:\n%s", testutil.Nobody, out)
	}
	wantLines(t, out, "dubious ownership in repository at '"+repo+"'",
		"git config --global --add safe.directory "+repo)
	e.wantNoRelease(t, "theirs")
}

// A plain folder's SOURCE_VERSION is the same for two builds of the
// same files, and another once a file changes.
func TestBuildFolderSourceVersion(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "plain")
	src := source(t, map[string]string{"Procfile": "worker: sleep 1000\n", "index.js": "1\n"})
	bp := versionBuildpack(t)
	first := sourceVersion(t, e.must(t, "build", src, "-a", "plain", "-b", bp))
	if len(first) != 64 {
		t.Fatalf("SOURCE_VERSION = %q, want a SHA-256 digest", first)
	}
	if again := sourceVersion(t, e.must(t, "build", src, "-a", "plain", "-b", bp)); again != first {
		t.Errorf("a rebuild of the same files: SOURCE_VERSION %s, then %s", first, again)
	}
	if err := os.WriteFile(filepath.Join(src, "index.js"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed := sourceVersion(t, e.must(t, "build", src, "-a", "plain", "-b", bp)); changed == first {
		t.Errorf("a changed file kept SOURCE_VERSION %s", first)
	}
	wantLines(t, e.must(t, "releases", "-a", "plain"), "v2  Deploy "+first[:8])
}
