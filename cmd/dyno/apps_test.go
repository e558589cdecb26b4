package main

// Apps, builds, releases and config vars through the binary, as an
// unprivileged user, with the fixture buildpack (examples/buildpacks/
// fixture) given by its path: it is a test aid, not shipped in the binary.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/ledger"
)

// dynoOut runs dyno in e's home and returns its combined output and exit
// status.
func (e *isolatedEnv) dynoOut(t testing.TB, args ...string) (string, int) {
	t.Helper()
	cmd := e.command(args...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// must runs dyno and fails the test unless it exits 0.
func (e *isolatedEnv) must(t testing.TB, args ...string) string {
	t.Helper()
	out, st := e.dynoOut(t, args...)
	if st != 0 {
		t.Fatalf("dyno %s: exit %d:\n%s", strings.Join(args, " "), st, out)
	}
	return out
}

// runningLine is heroku run's line, which dyno run -a writes to stderr
// before the command's output.
var runningLine = regexp.MustCompile("(?m)^Running `(?s:.*?)` on ⬢ [a-z0-9-]+\\.\\.\\. up, run\\.\\d{4} \\([A-Za-z0-9-]+\\)\n")

// oneOff runs dyno run with args, fails the test unless it exits 0, and
// returns its output without heroku run's line.
func (e *isolatedEnv) oneOff(t testing.TB, args ...string) string {
	t.Helper()
	out := e.must(t, append([]string{"run"}, args...)...)
	if !runningLine.MatchString(out) {
		t.Errorf("dyno run %s: no heroku run line in %q", strings.Join(args, " "), out)
	}
	return runningLine.ReplaceAllString(out, "")
}

// source writes an app's source folder, owned by the unprivileged user.
func source(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := testutil.SharedDir(t)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutil.GiveToNobody(t, dir)
	return dir
}

// fixtureBuildpack is a copy of the fixture buildpack (examples/
// buildpacks/fixture) that the unprivileged user can read wherever the
// repository lies, for -b.
func fixtureBuildpack(t testing.TB) string {
	t.Helper()
	return buildpackCopy(t, filepath.Join("..", "..", "examples", "buildpacks", "fixture", "bin"))
}

// testdataBuildpack is such a copy of buildpacks/testdata/name.
func testdataBuildpack(t testing.TB, name string) string {
	t.Helper()
	return buildpackCopy(t, filepath.Join("..", "..", "buildpacks", "testdata", name, "bin"))
}

// buildpackCopy copies the scripts in bin into a folder the unprivileged
// user owns, and returns that folder.
func buildpackCopy(t testing.TB, bin string) string {
	t.Helper()
	dir := testutil.SharedDir(t)
	entries, err := os.ReadDir(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(bin, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bin", e.Name()), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testutil.GiveToNobody(t, dir)
	return dir
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestAppLifecycle(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	wantLines(t, e.must(t, "apps:create", "demo"), "Creating ⬢ demo... done")
	wantLines(t, e.must(t, "apps"), "=== Apps\ndemo\n")
	wantLines(t, e.must(t, "config:set", "FIXTURE_GREETING=hi", "FOO=bar baz", "-a", "demo"),
		"Setting FIXTURE_GREETING, FOO on ⬢ demo... done, v2", "FOO:              bar baz")
	if out := e.must(t, "config:get", "FOO", "-a", "demo"); out != "bar baz\n" {
		t.Errorf("config:get: %q", out)
	}
	wantLines(t, e.must(t, "config", "--shell", "-a", "demo"), "FIXTURE_GREETING=hi\nFOO='bar baz'\n")

	src := source(t, map[string]string{
		".fixture": "",
		"Procfile": "worker: echo \"worker $FOO|$FIXTURE_PROFILE|$(cat greeting.txt)|$HOME\"; exec sleep 1000\nrelease: echo \"migrating $FOO on $DYNO\"\n",
	})
	bp := fixtureBuildpack(t)
	out := e.must(t, "build", src, "-a", "demo", "-b", bp)
	wantLines(t, out,
		"-----> Fixture app detected", "cache hits: 1",
		"-----> Discovering process types", "Procfile declares types     -> release, worker",
		"-----> Compressing...", "       Done: ", "-----> Launching...",
		"Release command declared", "release.3 | migrating bar baz on release.3",
		"release.3: State changed from up to complete", "       Released v3")
	rels := e.must(t, "releases", "-a", "demo")
	if !regexp.MustCompile(`(?m)^=== demo Releases - Current: v3\nv3  Deploy [0-9a-f]{8} `).MatchString(rels) {
		t.Errorf("releases:\n%s", rels)
	}

	// The build cache is kept between builds.
	wantLines(t, e.must(t, "build", src, "-a", "demo"), "cache hits: 2", "Released v4")

	// A one-off of the current release: config vars, .profile.d, the
	// build's files, run.N.
	out = e.oneOff(t, "-a", "demo", "echo $FOO/$FIXTURE_PROFILE/$DYNO; cat greeting.txt")
	if !regexp.MustCompile(`^bar baz/loaded/run\.\d{4}\nhi\n?$`).MatchString(out) {
		t.Errorf("run -a: %q", out)
	}

	// The formation of the current release in isolated dynos.
	s := e.start(t, "-a", "demo")
	s.waitFor(`app\[worker\.1\]: worker bar baz\|loaded\|hi\|/app$`)
	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 0 {
		t.Errorf("start -a: exit %d", st)
	}
	for _, l := range s.lines() {
		if strings.Contains(l, "release.") {
			t.Errorf("start ran the release process type: %s", l)
		}
	}

	wantLines(t, e.must(t, "rollback", "-a", "demo"),
		"Rolling back ⬢ demo to v3... done, v5", "To undo, run: dyno rollback v4")
	wantLines(t, e.must(t, "releases:info", "v5", "-a", "demo"), "=== Release v5", "Change:", "Rollback to v3", "FOO:")
	wantLines(t, e.must(t, "releases:rollback", "v4", "-a", "demo"), "to v4... done, v6")
	wantLines(t, e.must(t, "releases", "-a", "demo"), "Current: v6", "v6  Rollback to v4")
	// v2 changed only config vars: it has no code to roll back to.
	if out, st := e.dynoOut(t, "rollback", "v2", "-a", "demo"); st == 0 || !strings.Contains(out, "v2 has no code") {
		t.Errorf("rollback to a release without code: exit %d, %q", st, out)
	}
	wantLines(t, e.must(t, "releases:verify", "-a", "demo"), "demo: ", "hash chain intact")
	wantLines(t, e.must(t, "buildpacks", "-a", "demo"), bp)
	wantLines(t, e.must(t, "apps:info", "-a", "demo"), "=== demo", "Current Release:", "v6 Rollback to v4")
}

// A failing release command records a failed release; the current one
// stays.
func TestReleasePhaseFailure(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "relfail")
	src := source(t, map[string]string{".fixture": "", "Procfile": "worker: sleep 1000\nrelease: echo nope; exit 3\n"})
	out, st := e.dynoOut(t, "build", src, "-a", "relfail", "-b", fixtureBuildpack(t))
	if st == 0 {
		t.Fatalf("build with a failing release command exited 0:\n%s", out)
	}
	wantLines(t, out, "release.2 | nope", "Process exited with status 3", "release command failed", "v2")
	rels := e.must(t, "releases", "-a", "relfail")
	wantLines(t, rels, "Current: v1", "v2  Deploy ")
	wantLines(t, rels, "release command failed")
	if out, st := e.dynoOut(t, "run", "-a", "relfail", "true"); st == 0 {
		t.Errorf("run on an app whose only code release failed: %s", out)
	}
}

// A failed compile creates no release and no slug.
func TestFailedBuild(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "broken")
	src := source(t, map[string]string{".fixture": "", ".fail-compile": "", "Procfile": "worker: sleep 1000\n"})
	out, st := e.dynoOut(t, "build", src, "-a", "broken", "-b", fixtureBuildpack(t))
	if st == 0 {
		t.Fatalf("failed compile exited 0:\n%s", out)
	}
	wantLines(t, out, "Push rejected, failed to compile Fixture app")
	if rels := e.must(t, "releases", "-a", "broken"); strings.Contains(rels, "v2") {
		t.Errorf("a release was made:\n%s", rels)
	}
	if tgz, _ := filepath.Glob(filepath.Join(e.home, "slugs", "*.tgz")); len(tgz) != 0 {
		t.Errorf("a slug was stored: %v", tgz)
	}
	// Detection that finds nothing is an error too.
	out, st = e.dynoOut(t, "build", source(t, map[string]string{"x": ""}), "-a", "broken")
	if st == 0 || !strings.Contains(out, "No default language could be detected") {
		t.Errorf("exit %d:\n%s", st, out)
	}
}

// Bad input: one line naming the value and the fix, non-zero, nothing
// changed.
func TestAppBadInput(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "good")
	// The ledger's bytes, not `dyno releases`, whose "~ 1s ago" moves.
	ledgerPath := filepath.Join(e.home, "apps", "good", "ledger.jsonl")
	before, err := os.ReadFile(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apps:create", "Bad_Name"}, `invalid app name "Bad_Name"`},
		{[]string{"apps:create", "good"}, "already exists"},
		{[]string{"config:set", "1X=y", "-a", "good"}, `invalid config var name "1X"`},
		{[]string{"config:set", "NOEQUALS", "-a", "good"}, `"NOEQUALS" is not KEY=value`},
		{[]string{"config:set", "BIG=" + strings.Repeat("x", 33*1024), "-a", "good"}, "over the limit"},
		{[]string{"config:unset", "NOPE", "-a", "good"}, "NOPE: no such config var"},
		{[]string{"rollback", "v99", "-a", "good"}, "v99: no such release"},
		{[]string{"releases", "-a", "nope"}, "app not found: nope"},
		{[]string{"releases"}, "no app given"},
		{[]string{"config", "-a", "../../decoy"}, `invalid app name "../../decoy"`},
		{[]string{"config:set", "X=1", "-a", "../../decoy"}, `invalid app name "../../decoy"`},
		{[]string{"ps:scale", "web=1", "-a", "../good"}, `invalid app name "../good"`},
		{[]string{"apps:destroy", "../good", "--confirm", "../good"}, `invalid app name "../good"`},
		{[]string{"apps:destroy", "good"}, "--confirm good"},
		{[]string{"buildpacks:remove", "-a", "good", "--index", "3"}, "--index 3 is out of range"},
	} {
		out, st := e.dynoOut(t, tc.args...)
		if st == 0 || !strings.Contains(out, tc.want) || strings.Count(strings.TrimSpace(out), "\n") > 0 && !strings.HasPrefix(tc.args[0], "config:set") {
			t.Errorf("%v: exit %d, %q; want one line with %q", tc.args, st, out, tc.want)
		}
	}
	if after, _ := os.ReadFile(ledgerPath); string(after) != string(before) {
		t.Errorf("bad input changed the ledger:\n%s\nthen\n%s", before, after)
	}
	// DYNO_APP is a way in too; and nothing was made outside apps/.
	cmd := e.command("config:set", "X=1")
	cmd.Env = append(cmd.Env, "DYNO_APP=../../decoy")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), `invalid app name "../../decoy"`) {
		t.Errorf("DYNO_APP=../../decoy: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(e.home, "..", "decoy")); err == nil {
		t.Error("a traversing app name made a folder outside $DYNO_HOME/apps")
	}
	wantLines(t, e.must(t, "apps:destroy", "good", "--confirm", "good"), "Destroying ⬢ good... done")
	if out, _ := e.dynoOut(t, "apps"); strings.Contains(out, "good") {
		t.Errorf("destroyed app listed: %s", out)
	}
}

// dyno start -a reads the formation as the daemon does: a ledger that
// holds more than the limit (an older dyno wrote it, or a hand) runs the
// limit, with one line saying so; -m over the limit is refused.
func TestStartAppClampsFormation(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "many", "worker: echo \"up $DYNO\"; exec sleep 1000\n")
	if err := os.WriteFile(filepath.Join(e.home, "dyno.toml"), []byte("[formation]\nmax_quantity = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := ledger.Open(filepath.Join(e.home, "apps", "many", "ledger.jsonl"))
	_, err := l.Append(func(*ledger.State) ([]ledger.Record, error) {
		return []ledger.Record{{Type: ledger.TypeFormation, Formation: ledger.Formation{"worker": {Quantity: 99999999, Size: "standard-1x"}}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, e.home) // the ledger's new head is root's

	out, st := e.dynoOut(t, "start", "-a", "many", "-m", "worker=3")
	if st == 0 || !strings.Contains(out, "-m worker=3: 3 dynos of worker, over the limit of 2 of a type") {
		t.Errorf("start -m over the limit: exit %d, %q", st, out)
	}

	s := e.start(t, "-a", "many")
	s.waitFor(`the formation has worker at 99999999, over the limit of 2 of a type; running 2`)
	s.waitN(`app\[worker\.\d\]: up worker\.\d`, 2)
	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 0 {
		t.Errorf("start -a: exit %d", st)
	}
	for _, l := range s.lines() {
		if strings.Contains(l, "worker.3") {
			t.Errorf("a dyno past the limit ran: %s", l)
		}
	}
}
