package main

// Builds interrupted (signals, kill -9, a reader gone) and builds that
// read a buildpack's bin/release, through the binary as an
// unprivileged user, in the build sandbox.

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

// buildpackDir writes a buildpack of the given bin/ scripts, owned by
// the unprivileged user.
func buildpackDir(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := testutil.SharedDir(t)
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, script := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "bin", name), []byte("#!/usr/bin/env bash\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testutil.GiveToNobody(t, dir)
	return dir
}

// waitingBuildpack is a buildpack whose compile prints a line with
// marker and then sleeps (its command line holds marker, so the test can
// see whether it outlives the build).
func waitingBuildpack(t *testing.T, marker string) string {
	return buildpackDir(t, map[string]string{
		"detect":  "echo Waiting\n",
		"compile": "echo \"-----> compiling, waiting " + marker + "\"\nexec sleep " + marker + "\n",
	})
}

// wantNoRelease fails if app has a release past v1.
func (e *isolatedEnv) wantNoRelease(t *testing.T, app string) {
	t.Helper()
	if rels := e.must(t, "releases", "-a", app); !strings.Contains(rels, "Current: v1") || strings.Contains(rels, "v2") {
		t.Errorf("a release was recorded:\n%s", rels)
	}
}

// diedOf waits for dyno to end and returns the signal it died of (0: it
// exited, with the status given).
func (s *session) diedOf() (syscall.Signal, int) {
	s.t.Helper()
	st := s.wait()
	if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal(), -1
	}
	return 0, st
}

// SIGTERM, SIGINT and SIGHUP end a build cleanly, in the sandbox or not:
// the compile killed, the scratch (the sandbox's folders included)
// removed, no release, one line; then dyno dies of the signal, as a
// shell's loop needs to stop (it went on after an exit of 130).
func TestBuildStoppedBySignal(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "sig")
	src := source(t, map[string]string{"Procfile": "web: true\n"})
	tmp := testutil.SharedDir(t)
	testutil.GiveToNobody(t, tmp)
	for _, sandbox := range []string{"", "--no-sandbox"} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
			marker := uniqueSleep()
			args := []string{"build", src, "-a", "sig", "-b", waitingBuildpack(t, marker)}
			if sandbox != "" {
				args = append(args, sandbox)
			}
			cmd := e.command(args...)
			// Nothing of a build goes to TMPDIR (it went to /tmp before).
			cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
			s := startSession(t, cmd)
			s.waitFor("compiling, waiting " + marker)
			s.signal(sig)
			if died, st := s.diedOf(); died != sig {
				t.Errorf("%s %v: exit %d, died of %v; want death by %v", sandbox, sig, st, died, sig)
			}
			lines := s.lines()
			want := "dyno: build of sig stopped by " + unix.SignalName(sig) + "; nothing was released"
			if last := lines[len(lines)-1]; last != want {
				t.Errorf("%s %v: last line %q, want %q", sandbox, sig, last, want)
			}
			waitMarkerGone(t, marker, 5*time.Second)
			if l := testutil.Names(t, filepath.Join(e.home, "builds")); len(l) != 0 {
				t.Errorf("%s %v: left in builds: %v", sandbox, sig, l)
			}
			if l := testutil.Names(t, tmp); len(l) != 0 {
				t.Errorf("%s %v: left in TMPDIR: %v", sandbox, sig, l)
			}
			e.wantNoRelease(t, "sig")
		}
	}
}

// What kill -9 leaves, the next build sweeps; a build still running
// keeps its folder through another build's sweep.
func TestBuildKill9Swept(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "kill9")
	src := source(t, map[string]string{".fixture": "", "Procfile": "web: true\n"})
	builds := filepath.Join(e.home, "builds")

	killed := uniqueSleep()
	s := startSession(t, e.command("build", src, "-a", "kill9", "-b", waitingBuildpack(t, killed)))
	s.waitFor("compiling, waiting " + killed)
	s.cmd.Process.Kill()
	s.wait()
	// The sandbox's init sees its manager gone and kills the compile.
	waitMarkerGone(t, killed, 5*time.Second)
	dead := testutil.Names(t, builds)
	if len(dead) != 1 {
		t.Fatalf("after kill -9, builds holds %v; want the killed build's folder", dead)
	}
	e.wantNoRelease(t, "kill9")

	// A second build sweeps the dead one's folder.
	running := uniqueSleep()
	r := startSession(t, e.command("build", src, "-a", "kill9", "-b", waitingBuildpack(t, running)))
	r.waitFor("compiling, waiting " + running)
	now := testutil.Names(t, builds)
	if len(now) != 1 || now[0] == dead[0] {
		t.Fatalf("builds holds %v; want only the running build's folder, not %s", now, dead[0])
	}

	// A third, while the second runs, succeeds and leaves its folder.
	wantLines(t, e.must(t, "build", src, "-a", "kill9", "-b", fixtureBuildpack(t)), "Released v2")
	if l := testutil.Names(t, builds); len(l) != 1 || l[0] != now[0] {
		t.Errorf("after a build beside a running one, builds holds %v; want %s", l, now[0])
	}
	r.signal(syscall.SIGTERM)
	if died, st := r.diedOf(); died != syscall.SIGTERM {
		t.Errorf("exit %d, died of %v; want death by SIGTERM", st, died)
	}
	if l := testutil.Names(t, builds); len(l) != 0 {
		t.Errorf("left in builds: %v", l)
	}
}

// dyno build | head -1: the reader goes after the first line, and the
// build goes on to its release, as a Heroku build does when git push is
// interrupted.
func TestBuildOutputClosed(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "pipe")
	src := source(t, map[string]string{"Procfile": "web: true\n"})
	// The compile waits on a fifo in the cache, which the test opens
	// once it has closed the output.
	_, fifo := cacheWithFifo(t, e.home, "pipe")
	bp := buildpackDir(t, map[string]string{
		"detect":  "echo Piped\n",
		"compile": "echo '-----> waiting'\nread line < \"$2/go-on\"\nfor i in $(seq 1000); do echo \"       line $i\"; done\n",
	})

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := e.command("build", src, "-a", "pipe", "-b", bp)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	first, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("no first line: %v", err)
	}
	r.Close()

	opened := make(chan *os.File, 1)
	go func() {
		// Blocks until the compile opens the fifo to read it.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			opened <- f
		}
	}()
	select {
	case f := <-opened:
		f.WriteString("go on\n")
		f.Close()
	case err := <-exited:
		t.Fatalf("dyno ended (%v) after its reader went, before its compile; first line %q, stderr:\n%s", err, first, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the compile never opened the fifo")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("dyno build: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dyno build did not end")
	}
	if rels := e.must(t, "releases", "-a", "pipe"); !strings.Contains(rels, "Current: v2") {
		t.Errorf("no release recorded:\n%s", rels)
	}
	if l := testutil.Names(t, filepath.Join(e.home, "builds")); len(l) != 0 {
		t.Errorf("left in builds: %v", l)
	}
}

// A bin/release that prints without end fails the build with one line
// naming the buildpack and the limit; no release is made.
func TestBuildHugeRelease(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "huge")
	src := source(t, map[string]string{})
	bp := buildpackDir(t, map[string]string{
		"detect":  "echo Huge\n",
		"compile": "true\n",
		"release": "echo default_process_types:\nseq 1 100000000 | sed 's/.*/  t&: echo &/'\n",
	})
	out, st := e.dynoOut(t, "build", src, "-a", "huge", "-b", bp)
	if st != 1 {
		t.Errorf("exit %d, want 1:\n%s", st, out)
	}
	wantLines(t, out, " !     bin/release of "+bp+": printed more than 1 MiB, the most dyno reads of a release\n", " !     Push failed\n")
	e.wantNoRelease(t, "huge")
	if l := testutil.Names(t, filepath.Join(e.home, "builds")); len(l) != 0 {
		t.Errorf("left in builds: %v", l)
	}
}

// In the build sandbox, what bin/release writes to stderr is shown, not
// parsed with its YAML.
func TestBuildReleaseStderrApart(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "stderr")
	bp := buildpackDir(t, map[string]string{
		"detect":  "echo Talky\n",
		"compile": "true\n",
		"release": "echo 'a note on stderr: not YAML' >&2\necho 'default_process_types: {web: echo hi}'\n",
	})
	out := e.must(t, "build", source(t, map[string]string{}), "-a", "stderr", "-b", bp)
	wantLines(t, out, "a note on stderr: not YAML", "Default types for buildpack -> web", "Released v2")
}

// A bin/detect that prints without end (exec yes) is stopped at 64 KiB
// in the build sandbox, and the build fails with one line naming it.
func TestBuildHugeDetect(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "yes")
	bp := buildpackDir(t, map[string]string{
		"detect":  "exec yes AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"compile": "true\n",
	})
	out, st := e.dynoOut(t, "build", source(t, map[string]string{}), "-a", "yes", "-b", bp)
	if st != 1 {
		t.Errorf("exit %d, want 1:\n%.2000s", st, out)
	}
	wantLines(t, out, " !     bin/detect of "+bp+": printed more than 64 KiB, the most dyno reads of bin/detect's output\n", " !     Push failed\n")
	e.wantNoRelease(t, "yes")
}

// A Procfile the buildpack made a fifo, or a sparse file of 100 GB,
// fails the build with one line naming it. The fifo hung the build at
// "Discovering process types", past SIGINT; the sparse file was
// allocated whole.
func TestBuildProcfileNotAFile(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "odd")
	src := source(t, map[string]string{"Procfile": "web: true\n"})
	for _, tc := range []struct{ compile, want string }{
		{`rm -f "$1/Procfile"; mkfifo "$1/Procfile"`, " !     read Procfile: is a named pipe (fifo), not a regular file\n"},
		{`truncate -s 100G "$1/Procfile"`, " !     read Procfile: larger than 1 MiB, the most dyno reads of it\n"},
	} {
		bp := buildpackDir(t, map[string]string{"detect": "echo Odd\n", "compile": tc.compile + "\n"})
		s := startSession(t, e.command("build", src, "-a", "odd", "-b", bp))
		if st := s.wait(); st != 1 {
			t.Errorf("%s: exit %d, want 1", tc.compile, st)
		}
		wantLines(t, strings.Join(s.lines(), "\n")+"\n", "-----> Discovering process types\n", tc.want, " !     Push failed\n")
		e.wantNoRelease(t, "odd")
		if l := testutil.Names(t, filepath.Join(e.home, "builds")); len(l) != 0 {
			t.Errorf("left in builds: %v", l)
		}
	}
}

// killMarked kills, by pid, the processes whose command line holds
// marker (ones the test's buildpack started and dyno could not reach).
func killMarked(marker string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), marker) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// A second Ctrl-C while the build cleans up ends dyno at once, by
// SIGINT; it was swallowed, and dyno went on to its last line and exit
// 130. The cleanup is held up by a process that left the compile's group
// (setsid) with its output open: dyno waits a while for that output.
func TestBuildSecondSignalKills(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "twice")
	src := source(t, map[string]string{"Procfile": "web: true\n"})
	marker, escaped := uniqueSleep(), uniqueSleep()+"1"
	t.Cleanup(func() { killMarked(escaped) })
	bp := buildpackDir(t, map[string]string{
		"detect": "echo Twice\n",
		// The escaped line is printed once out of the group.
		"compile": "setsid bash -c 'echo escaped; exec sleep " + escaped + "' &\necho \"-----> compiling, waiting " + marker + "\"\nexec sleep " + marker + "\n",
	})
	s := startSession(t, e.command("build", src, "-a", "twice", "-b", bp, "--no-sandbox"))
	s.waitFor("^escaped$")
	s.waitFor("compiling, waiting " + marker)
	s.signal(syscall.SIGINT)
	// The compile is killed once the first signal is handled; dyno then
	// waits for the escaped process's output.
	waitMarkerGone(t, marker, 5*time.Second)
	s.signal(syscall.SIGINT)
	if died, st := s.diedOf(); died != syscall.SIGINT {
		t.Errorf("exit %d, died of %v; want death by SIGINT", st, died)
	}
	for _, l := range s.lines() {
		if strings.Contains(l, "stopped by") {
			t.Errorf("dyno finished its cleanup after a second SIGINT: %q", l)
		}
	}
}

// A signal dyno inherited ignored stays ignored: `dyno build &` in a
// script runs with SIGINT ignored, and the script's Ctrl-C must not stop
// it. It did: dyno's handler replaced the ignore.
func TestBuildInheritedIgnoreKept(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "ignored")
	src := source(t, map[string]string{"Procfile": "web: true\n"})
	_, fifo := cacheWithFifo(t, e.home, "ignored")
	bp := buildpackDir(t, map[string]string{
		"detect":  "echo Ignoring\n",
		"compile": "echo '-----> waiting'\nread line < \"$2/go-on\"\n",
	})
	cmd := e.command("build", src, "-a", "ignored", "-b", bp)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	// trap '' sets SIG_IGN, which exec keeps.
	cmd.Path, cmd.Args = bash, append([]string{"bash", "-c", `trap '' INT; exec "$0" "$@"`}, cmd.Args...)
	s := startSession(t, cmd)
	s.waitFor("-----> waiting")
	s.signal(syscall.SIGINT)
	// kill(2) has returned: the signal is discarded or pending by now.
	goOn(t, fifo)
	if died, st := s.diedOf(); died != 0 || st != 0 {
		t.Errorf("exit %d, died of %v; want exit 0:\n%s", st, died, strings.Join(s.lines(), "\n"))
	}
	if rels := e.must(t, "releases", "-a", "ignored"); !strings.Contains(rels, "Current: v2") {
		t.Errorf("no release recorded:\n%s", rels)
	}
}

// kill -9 of a --no-sandbox build takes its compile with it, and what
// the compile started in its group, so nothing goes on writing into the
// scratch folder that the next build sweeps. They ran on as orphans.
func TestBuildKill9NoSandbox(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "plain")
	src := source(t, map[string]string{"Procfile": "web: true\n"})
	marker, child := uniqueSleep(), uniqueSleep()+"2"
	t.Cleanup(func() { killMarked(marker); killMarked(child) })
	bp := buildpackDir(t, map[string]string{
		"detect":  "echo Plain\n",
		"compile": "sleep " + child + " &\necho \"-----> compiling, waiting " + marker + "\"\nexec sleep " + marker + "\n",
	})
	s := startSession(t, e.command("build", src, "-a", "plain", "-b", bp, "--no-sandbox"))
	s.waitFor("compiling, waiting " + marker)
	s.cmd.Process.Kill()
	s.wait()
	waitMarkerGone(t, marker, 5*time.Second)
	waitMarkerGone(t, child, 5*time.Second)
	e.wantNoRelease(t, "plain")
}

// packTemps lists the .pack-* files under dir, at any depth.
func packTemps(dir string) []string {
	var found []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".pack-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// kill -9 while the slug is packed leaves its temporary .tgz in the
// build's scratch folder, which the next build sweeps; it was left in
// the slug store, up to the maximum slug size, and nothing removed it.
func TestBuildKill9WhilePacking(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "pack")
	src := source(t, map[string]string{".fixture": "", "Procfile": "web: true\n"})
	// Incompressible, so that packing takes long enough to be caught.
	bp := buildpackDir(t, map[string]string{
		"detect":  "echo Packed\n",
		"compile": "head -c 67108864 /dev/urandom > \"$1/blob\"\n",
	})
	s := startSession(t, e.command("build", src, "-a", "pack", "-b", bp))
	s.waitFor("^-----> Compressing")
	deadline := time.Now().Add(20 * time.Second)
	for len(packTemps(e.home)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no .pack-* file appeared under %s:\n%s", e.home, strings.Join(s.lines(), "\n"))
		}
		time.Sleep(time.Millisecond)
	}
	s.cmd.Process.Kill()
	s.wait()
	if l := packTemps(filepath.Join(e.home, "slugs")); len(l) != 0 {
		t.Errorf("kill -9 while packing left in the slug store: %v", l)
	}
	wantLines(t, e.must(t, "build", src, "-a", "pack", "-b", fixtureBuildpack(t)), "Released v2")
	if l := packTemps(e.home); len(l) != 0 {
		t.Errorf("after the next build, left: %v", l)
	}
	if l := testutil.Names(t, filepath.Join(e.home, "builds")); len(l) != 0 {
		t.Errorf("left in builds: %v", l)
	}
}

// A build folder the sweep cannot open, or cannot remove, is reported
// with its fix, one warning each, and the build goes on. The first was
// skipped without a word.
func TestBuildSweepReportsWhatStays(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("needs root to make folders the unprivileged user cannot remove")
	}
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "stays")
	builds := filepath.Join(e.home, "builds")
	locked := filepath.Join(builds, "stays-locked")
	dead := filepath.Join(builds, "stays-dead")
	for _, d := range []string{locked, filepath.Join(dead, "given")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dead, "given", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(locked, 0o700)
	// The user's own, but for given/, root's: what a buildpack run as
	// another uid leaves.
	os.Chown(builds, testutil.Nobody, testutil.Nobody)
	os.Chown(dead, testutil.Nobody, testutil.Nobody)

	out := e.must(t, "build", source(t, map[string]string{".fixture": ""}), "-a", "stays", "-b", fixtureBuildpack(t))
	wantLines(t, out,
		"dyno: warning: sweep builds: cannot open "+locked+" to see whether its build runs (open "+locked+": permission denied); when none runs, remove it as its owner or as root: rm -rf "+locked+"\n",
		"dyno: warning: sweep builds: cannot remove "+dead+", a dead build's folder (",
		"permission denied); remove it as its owner or as root: rm -rf "+dead+"\n",
		"Released v2")
	if l := testutil.Names(t, builds); len(l) != 2 {
		t.Errorf("builds holds %v; want the two folders the user cannot remove", l)
	}
}
