package main

// Integration tests: the real dyno binary on real Procfiles, with real
// processes, pipes, signals and PTYs. They synchronise on log lines, not
// on sleeps.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

var dynoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dyno-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Isolation tests run dyno as an unprivileged user, who must reach it.
	os.Chmod(dir, 0o755)
	dynoBin = filepath.Join(dir, "dyno")
	build := exec.Command("go", "build", "-o", dynoBin, ".")
	if prebuilt := os.Getenv("DYNO_TEST_BINARY"); prebuilt != "" {
		// make test-heroku-cli builds dyno before entering a network
		// namespace without a route to the module proxy; a copy, since
		// the unprivileged user must reach it.
		build = exec.Command("cp", prebuilt, dynoBin)
	}
	build.Stderr = os.Stderr
	// Static, as make build makes it: every dyno's init is this binary,
	// and a dynamic one loads libc at each start.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build dyno:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// project writes files (name -> content) into a new folder.
func newProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// session is a running `dyno start` whose output lines the test reads.
type session struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string
	more chan struct{}
	done chan struct{}
	err  error
	// within bounds each wait for a line; 0 means 20 s.
	within time.Duration
}

func startDyno(t *testing.T, dir string, args ...string) *session {
	t.Helper()
	cmd := exec.Command(dynoBin, append([]string{"start", "--log-format", "logplex"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	return startSession(t, cmd)
}

// startSession starts cmd and collects its output lines.
func startSession(t *testing.T, cmd *exec.Cmd) *session {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	s := &session{t: t, cmd: cmd, more: make(chan struct{}, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			s.mu.Lock()
			s.out = append(s.out, sc.Text())
			s.mu.Unlock()
			select {
			case s.more <- struct{}{}:
			default:
			}
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func (s *session) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.out...)
}

// waitFor returns the first line matching re, waiting for it.
func (s *session) waitFor(re string) []string {
	s.t.Helper()
	return s.waitN(re, 1)[0]
}

// waitN waits until n lines match re and returns their submatches.
func (s *session) waitN(re string, n int) [][]string {
	s.t.Helper()
	rx := regexp.MustCompile(re)
	within := s.within
	if within == 0 {
		within = 20 * time.Second
	}
	deadline := time.After(within)
	for {
		var found [][]string
		for _, l := range s.lines() {
			if m := rx.FindStringSubmatch(l); m != nil {
				found = append(found, m)
			}
		}
		if len(found) >= n {
			return found
		}
		select {
		case <-s.more:
		case <-s.done:
			// One last look at lines read before the end.
			select {
			case <-s.more:
				continue
			default:
			}
			s.t.Fatalf("dyno exited (%v) before %d lines matched %q:\n%s", s.err, n, re, strings.Join(s.lines(), "\n"))
		case <-deadline:
			s.t.Fatalf("timed out waiting for %d lines matching %q:\n%s", n, re, strings.Join(s.lines(), "\n"))
		}
	}
}

// wait waits for dyno to exit and returns its exit status.
func (s *session) wait() int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("dyno did not exit:\n%s", strings.Join(s.lines(), "\n"))
	}
	return s.cmd.ProcessState.ExitCode()
}

func (s *session) signal(sig syscall.Signal) { s.cmd.Process.Signal(sig) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const logTime = `(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d)`

func TestPortsAndEnv(t *testing.T) {
	// Not parallel: t.Setenv changes the environment every dyno inherits.
	dir := newProject(t, map[string]string{
		"Procfile": "a: echo \"A port=$PORT dyno=$DYNO ps=$PS greet=$GREET inherited=$INHERITED\"\nb: echo \"B port=$PORT dyno=$DYNO\"\n",
		".env":     "GREET=hello\nPORT=6000\n",
	})
	t.Setenv("INHERITED", "yes")
	s := startDyno(t, dir, "--no-restart", "-m", "a=2,b=1")
	if st := s.wait(); st != 0 {
		t.Fatalf("exit %d:\n%s", st, strings.Join(s.lines(), "\n"))
	}
	out := strings.Join(s.lines(), "\n")
	for _, want := range []string{
		"app[a.1]: A port=6000 dyno=a.1 ps=a.1 greet=hello inherited=yes",
		"app[a.2]: A port=6001 dyno=a.2 ps=a.2 greet=hello",
		"app[b.1]: B port=6100 dyno=b.1",
		"heroku[a.1]: Starting process with command `echo \"A port=6000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^` + logTime + ` heroku\[b\.1\]: Process exited with status 0$`).MatchString(out) {
		t.Errorf("no logplex-format exit line:\n%s", out)
	}
}

func TestPortFlagAndEnvFiles(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{
		"Procfile": "web: exec sleep 1000\nother: echo \"port=$PORT x=$X y=$Y\"\n",
		"one.env":  "X=1\nY=1\n",
		"two.env":  "Y=2\n",
	})
	s := startDyno(t, dir, "--no-restart", "-p", "7300", "-e", "one.env,two.env", "other")
	if st := s.wait(); st != 0 {
		t.Fatalf("exit %d", st)
	}
	if out := strings.Join(s.lines(), "\n"); !strings.Contains(out, "app[other.1]: port=7400 x=1 y=2") {
		t.Errorf("want port 7400 (second type), later env file winning:\n%s", out)
	}
}

func TestCrashRestartBackoff(t *testing.T) {
	// Not parallel: it measures restart gaps, which other tests' load stretches.
	dir := newProject(t, map[string]string{"Procfile": "crash: echo boom; exit 1\n"})
	s := startDyno(t, dir)
	starts := s.waitN(logTime+` heroku\[crash\.1\]: Starting process`, 4)
	exits := s.waitN(logTime+` heroku\[crash\.1\]: Process exited with status 1`, 3)
	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", st)
	}
	ts := func(m []string) time.Time {
		v, err := time.Parse("2006-01-02T15:04:05.000000-07:00", m[1])
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// First restart immediate, then 1 s, then 2 s.
	gaps := []time.Duration{ts(starts[1]).Sub(ts(exits[0])), ts(starts[2]).Sub(ts(exits[1])), ts(starts[3]).Sub(ts(exits[2]))}
	if gaps[0] > 500*time.Millisecond {
		t.Errorf("first restart after %v, want immediate", gaps[0])
	}
	if gaps[1] < time.Second || gaps[2] < 2*time.Second || gaps[2] < gaps[1] {
		t.Errorf("restart gaps %v, want >= 1s then >= 2s", gaps)
	}
	out := strings.Join(s.lines(), "\n")
	for _, w := range []string{"Restarting in 1s", "Restarting in 2s", "State changed from up to crashed", "app[crash.1]: boom"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

func TestExitOnCrash(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "sleeper: echo $$; exec sleep 1000\nfail: sleep 0.2; exit 7\n"})
	s := startDyno(t, dir, "--exit-on-crash")
	pid := atoi(t, s.waitFor(`app\[sleeper\.1\]: (\d+)`)[1])
	if st := s.wait(); st != 7 {
		t.Fatalf("exit %d, want 7:\n%s", st, strings.Join(s.lines(), "\n"))
	}
	testutil.WaitGone(t, pid)
}

func TestStopTimeoutKillsIgnoringProcess(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "stubborn: trap '' TERM; echo ready $$; while :; do sleep 0.05; done\n"})
	s := startDyno(t, dir, "-t", "0.3")
	pid := atoi(t, s.waitFor(`app\[stubborn\.1\]: ready (\d+)`)[1])
	s.signal(syscall.SIGINT)
	s.waitFor(`heroku\[stubborn\.1\]: Error R12 \(Exit timeout\) -> Process failed to exit within 300ms of SIGTERM`)
	s.waitFor(`heroku\[stubborn\.1\]: Stopping process with SIGKILL`)
	s.waitFor(`heroku\[stubborn\.1\]: Process exited with status 137`)
	if st := s.wait(); st != 0 {
		t.Errorf("exit %d after a stop, want 0", st)
	}
	testutil.WaitGone(t, pid)
}

// A daemon that double-forks into its own session, and a background job,
// are stopped with the dyno.
func TestDaemonizedProcessStopped(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "d: setsid sh -c 'sleep 1000 & echo daemon $!'; sleep 1000 & echo bg $!; exec sleep 1000\n"})
	s := startDyno(t, dir)
	daemon := atoi(t, s.waitFor(`app\[d\.1\]: daemon (\d+)`)[1])
	bg := atoi(t, s.waitFor(`app\[d\.1\]: bg (\d+)`)[1])
	s.waitFor(`State changed from starting to up`)
	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 0 {
		t.Errorf("exit %d, want 0", st)
	}
	testutil.WaitGone(t, daemon, bg)
}

func TestKill9LeavesNothing(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "d: setsid sh -c 'sleep 1000 & echo daemon $!'; sleep 1000 & echo bg $!; exec sleep 1000\ne: echo main $$; exec sleep 1000\n"})
	s := startDyno(t, dir)
	pids := []int{
		atoi(t, s.waitFor(`app\[d\.1\]: daemon (\d+)`)[1]),
		atoi(t, s.waitFor(`app\[d\.1\]: bg (\d+)`)[1]),
		atoi(t, s.waitFor(`app\[e\.1\]: main (\d+)`)[1]),
	}
	s.signal(syscall.SIGKILL)
	s.wait()
	testutil.WaitGone(t, pids...)
}

// Many processes writing at once: every line arrives whole, once, in
// order per process, including the last lines before each exits.
func TestNoTornLines(t *testing.T) {
	// Not parallel: six writers of 20,000 lines each load both cores.
	const procs, lines = 6, 20000
	// Each line is written whole (fflush): a writer whose block buffer
	// ends mid-line and who is then kept off the CPU for over 100 ms
	// has its partial line shown, by design (a prompt shows without its
	// newline), which under load is not the tearing this test looks for.
	gen := `awk -v d=$DYNO 'BEGIN { for (i = 0; i < ` + strconv.Itoa(lines) + `; i++) { pad = substr("` + strings.Repeat("x", 400) + `", 1, (i * 37) % 400); printf "%s %d %s end\n", d, i, pad; fflush() } }'`
	dir := newProject(t, map[string]string{"Procfile": "gen: " + gen + "\n"})
	s := startDyno(t, dir, "--no-restart", "-m", "gen="+strconv.Itoa(procs))
	if st := s.wait(); st != 0 {
		t.Fatalf("exit %d", st)
	}
	next := map[string]int{}
	rx := regexp.MustCompile(`^` + logTime + ` app\[(gen\.\d+)\]: (gen\.\d+) (\d+) (x*) end$`)
	for _, l := range s.lines() {
		if !strings.Contains(l, " app[") {
			continue
		}
		m := rx.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("torn or mangled line: %q", l)
		}
		i := atoi(t, m[4])
		if m[2] != m[3] || i != next[m[2]] || len(m[5]) != (i*37)%400 {
			t.Fatalf("line out of place: %q (want %s line %d)", l, m[2], next[m[2]])
		}
		next[m[2]]++
	}
	for p := 1; p <= procs; p++ {
		if n := next["gen."+strconv.Itoa(p)]; n != lines {
			t.Errorf("gen.%d: %d lines, want %d", p, n, lines)
		}
	}
}

func TestPartialAndLongLines(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "p: printf 'prompt> '; head -c 25000 /dev/zero | tr '\\0' x > /tmp/.dyno-long-$$; printf '\\n'; exec sleep 1000\nq: head -c 25000 /dev/zero | tr '\\0' y; echo; exec sleep 1000\n"})
	s := startDyno(t, dir)
	// The prompt shows although no newline followed and the process lives on.
	s.waitFor(`app\[p\.1\]: prompt> $`)
	long := s.waitN(`app\[q\.1\]: (y+)$`, 3)
	if len(long[0][1]) != 10000 || len(long[1][1]) != 10000 || len(long[2][1]) != 5000 {
		t.Errorf("long line split into %d, %d, %d bytes; want 10000, 10000, 5000", len(long[0][1]), len(long[1][1]), len(long[2][1]))
	}
	s.signal(syscall.SIGTERM)
	s.wait()
}

func TestTerminalFormat(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "longername: echo hi\n"})
	cmd := exec.Command(dynoBin, "start", "--no-restart", "--no-timestamp")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "longername.1 | hi\n") {
		t.Errorf("output:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^system       \| longername\.1: Process exited with status 0$`).Match(out) {
		t.Errorf("system line not padded to the widest name:\n%s", out)
	}
	if strings.Contains(string(out), "\x1b[") {
		t.Errorf("colour codes with NO_COLOR:\n%q", out)
	}
}

func runDyno(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(dynoBin, args...)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		procfile, want string
		status         int
	}{
		{"web: a\nworker: b\n", "valid procfile detected (web, worker)\n", 0},
		{"web: a\n\n# c\nweb: b\n", `Procfile:4: duplicate process type "web" (first on line 1)`, 1},
		{"", "Procfile: no process types", 1},
	} {
		out, st := runDyno(t, newProject(t, map[string]string{"Procfile": tc.procfile}), "check")
		if st != tc.status || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("check %q: exit %d, %q; want exit %d and one line with %q", tc.procfile, st, out, tc.status, tc.want)
		}
	}
}

// The malformed lines of issue 8: each kind in a .env and a Procfile.
var malformedProject = map[string]string{
	"Procfile": "web: echo \"a=$A c=$C\"\noops\nwe b: x\n",
	// A name with a space, one not UTF-8, none, a lone word followed by
	// a newline (which used to stop start) and one at the very end
	// without (which used to vanish).
	".env": "A=1\nA B=1\n\xff\xfe=bin\n=novalue\nB\nC=3\nD",
}

var malformedWarnings = []string{
	`Procfile:2: skipped "oops": not NAME: COMMAND`,
	`Procfile:3: skipped "we b: x": not NAME: COMMAND; a NAME is letters, digits, "_" and "-", at most 128`,
	`.env:2: skipped "A B=1": not NAME=value`,
	`.env:3: skipped "\xff\xfe=bin": not NAME=value`,
	`.env:4: skipped "=novalue": not NAME=value`,
	`.env:5: skipped "B": not NAME=value`,
	`.env:7: skipped "D": not NAME=value`,
}

// wantWarnings checks that out has each warning once, as its own line.
func wantWarnings(t *testing.T, out string, prefix string, warnings []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for _, w := range warnings {
		if n := slices.Index(lines, prefix+w); n < 0 || slices.Contains(lines[n+1:], prefix+w) {
			t.Errorf("want the line %q once in:\n%s", prefix+w, out)
		}
	}
}

// dyno start skips malformed lines of the Procfile and .env as Foreman
// does, runs the rest, and says so once for each line on stderr.
func TestStartSkipsMalformedLines(t *testing.T) {
	t.Parallel()
	s := startDyno(t, newProject(t, malformedProject), "--no-restart")
	s.waitFor(`app\[web\.1\]: a=1 c=3$`)
	if st := s.wait(); st != 0 {
		t.Fatalf("exit %d:\n%s", st, strings.Join(s.lines(), "\n"))
	}
	wantWarnings(t, strings.Join(s.lines(), "\n"), "dyno: ", malformedWarnings)
	if n := len(slices.DeleteFunc(s.lines(), func(l string) bool { return !strings.HasPrefix(l, "dyno: ") })); n != len(malformedWarnings) {
		t.Errorf("%d warnings, want %d:\n%s", n, len(malformedWarnings), strings.Join(s.lines(), "\n"))
	}
}

// dyno run does the same, with the warnings on stderr only.
func TestRunSkipsMalformedLines(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(dynoBin, "run", "echo a=$A c=$C")
	cmd.Dir = newProject(t, malformedProject)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || string(out) != "a=1 c=3\n" {
		t.Errorf("run: %v, %q; want a=1 c=3", err, out)
	}
	wantWarnings(t, stderr.String(), "dyno: ", malformedWarnings)
	if n := strings.Count(stderr.String(), "\n"); n != len(malformedWarnings) {
		t.Errorf("%d lines on stderr, want %d:\n%s", n, len(malformedWarnings), stderr.String())
	}
}

// dyno check lists every malformed line of the Procfile and the env
// files, each file named as given, then a summary, and fails; with the
// lines fixed it passes.
func TestCheckListsMalformedLines(t *testing.T) {
	t.Parallel()
	dir := newProject(t, malformedProject)
	out, st := runDyno(t, dir, "check")
	want := strings.Join(malformedWarnings, "\n") +
		"\ndyno: 7 malformed lines (2 in Procfile, 5 in .env): dyno start and run skip them; fix or remove them\n"
	if st != 1 || out != want {
		t.Errorf("check: exit %d,\n%s\nwant exit 1,\n%s", st, out, want)
	}

	if err := os.WriteFile(filepath.Join(dir, "other.env"), []byte("X=1\r\nY\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, st = runDyno(t, dir, "check", "-e", "other.env")
	want = strings.Join(malformedWarnings[:2], "\n") + "\n" + `other.env:2: skipped "Y": not NAME=value` +
		"\ndyno: 3 malformed lines (2 in Procfile, 1 in other.env): dyno start and run skip them; fix or remove them\n"
	if st != 1 || out != want {
		t.Errorf("check -e other.env: exit %d,\n%s\nwant exit 1,\n%s", st, out, want)
	}

	for name, content := range map[string]string{"Procfile": "web: a\n", ".env": "A=1\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, st := runDyno(t, dir, "check"); st != 0 || out != "valid procfile detected (web)\n" {
		t.Errorf("fixed: exit %d, %q", st, out)
	}
}

// A duplicate process type still stops start, naming the file and both
// lines, after the warnings about lines skipped.
func TestStartDuplicateType(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "web: a\noops\nweb: b\n"})
	out, st := runDyno(t, dir, "start")
	want := "dyno: Procfile:2: skipped \"oops\": not NAME: COMMAND\n" +
		"dyno: Procfile:3: duplicate process type \"web\" (first on line 1)\n"
	if st != 1 || out != want {
		t.Errorf("exit %d, %q; want 1, %q", st, out, want)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "web: a\nworker: b\n"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"start", "-m", "wrker=1"}, `unknown process type "wrker"`},
		{[]string{"start", "-e", "missing.env"}, "missing.env"},
		{[]string{"start", "--log-format", "xml"}, `"xml"`},
		{[]string{"start", "-f", "Nope"}, "Nope"},
	} {
		out, st := runDyno(t, dir, tc.args...)
		if st == 0 || !strings.Contains(out, tc.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want one line with %q", tc.args, st, out, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, st := runDyno(t, t.TempDir(), args...)
		if st != 0 || !regexp.MustCompile(`^dyno \S+ \(commit \S+, go1\.\S+ linux/\w+\)\n$`).MatchString(out) {
			t.Errorf("%v: %q", args, out)
		}
	}
}

func TestRunPlain(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{".env": "GREET=hi\n", "Procfile": "web: echo web-cmd\n"})
	out, st := runDyno(t, dir, "run", "echo $GREET $DYNO $PORT; exit 3")
	if st != 3 || out != "hi run.1 5000\n" {
		t.Errorf("exit %d, %q; want 3, \"hi run.1 5000\"", st, out)
	}
	out, st = runDyno(t, dir, "run", "sh", "-c", "echo \"$0\"", "a b")
	if st != 0 || out != "a b\n" {
		t.Errorf("words: exit %d, %q", st, out)
	}
	out, _ = runDyno(t, dir, "run", "web", "extra")
	if out != "web-cmd extra\n" {
		t.Errorf("process type: %q", out)
	}
}

func TestRunStdin(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(dynoBin, "run", "tr a-z A-Z")
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader("hello\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "HELLO\n" {
		t.Errorf("%v, %q", err, out)
	}
}

func TestRunPTY(t *testing.T) {
	t.Parallel()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	if err := pty.Setsize(slave, &pty.Winsize{Rows: 33, Cols: 111}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dynoBin, "run", "tty; stty size; exit 4")
	cmd.Dir = t.TempDir()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out, _ := io.ReadAll(master) // EIO once dyno and the dyno are gone
	cmd.Wait()
	if st := cmd.ProcessState.ExitCode(); st != 4 {
		t.Errorf("exit %d, want 4", st)
	}
	text := strings.ReplaceAll(string(out), "\r", "")
	if !regexp.MustCompile(`(?m)^/dev/pts/\d+$`).MatchString(text) {
		t.Errorf("tty did not print a /dev/pts path: %q", text)
	}
	if !strings.Contains(text, "33 111\n") {
		t.Errorf("stty size did not follow the terminal's 33x111: %q", text)
	}
}

// ptyRun runs `dyno run command` on a new PTY standing for the user's
// terminal and collects what it prints.
type ptyRun struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder
	more   chan struct{}
	eof    chan struct{}
}

func startPTYRun(t *testing.T, command string) *ptyRun {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := pty.Setsize(slave, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	r := &ptyRun{t: t, master: master, more: make(chan struct{}, 1), eof: make(chan struct{})}
	r.cmd = exec.Command(dynoBin, "run", command)
	r.cmd.Dir = t.TempDir()
	r.cmd.Stdin, r.cmd.Stdout, r.cmd.Stderr = slave, slave, slave
	// dyno run leads the terminal's session, as under a login shell.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			r.mu.Lock()
			r.out.Write(buf[:n])
			r.mu.Unlock()
			select {
			case r.more <- struct{}{}:
			default:
			}
			if err != nil {
				close(r.eof)
				return
			}
		}
	}()
	t.Cleanup(func() { r.cmd.Process.Kill(); r.cmd.Wait(); master.Close() })
	return r
}

func (r *ptyRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.ReplaceAll(r.out.String(), "\r", "")
}

func (r *ptyRun) waitFor(s string) {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(r.output(), s) {
		select {
		case <-r.more:
		case <-r.eof:
			if !strings.Contains(r.output(), s) {
				r.t.Fatalf("output ended without %q: %q", s, r.output())
			}
		case <-deadline:
			r.t.Fatalf("no %q in %q", s, r.output())
		}
	}
}

func (r *ptyRun) exitCode() int {
	r.t.Helper()
	<-r.eof
	r.cmd.Wait()
	return r.cmd.ProcessState.ExitCode()
}

// Ctrl-C on the terminal reaches the command (through its PTY), not dyno.
func TestRunPTYCtrlC(t *testing.T) {
	t.Parallel()
	r := startPTYRun(t, `trap 'echo got INT; exit 5' INT; echo ready; while :; do sleep 0.05; done`)
	r.waitFor("ready\n")
	if _, err := r.master.Write([]byte{0x03}); err != nil {
		t.Fatal(err)
	}
	r.waitFor("got INT")
	if st := r.exitCode(); st != 5 {
		t.Errorf("exit %d, want 5 (the command's own status)", st)
	}
}

// A resize of the user's terminal reaches the command's PTY.
func TestRunPTYResize(t *testing.T) {
	t.Parallel()
	r := startPTYRun(t, `trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done`)
	r.waitFor("ready\n")
	// TIOCSWINSZ on the user's terminal: the kernel sends SIGWINCH to its
	// foreground process group, which is dyno run.
	if err := pty.Setsize(r.master, &pty.Winsize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	r.waitFor("50 132\n")
	if st := r.exitCode(); st != 0 {
		t.Errorf("exit %d", st)
	}
}

// Raw mode is restored when the command ends.
func TestRunPTYRestoresTerminal(t *testing.T) {
	t.Parallel()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dynoBin, "run", "exit 0")
	cmd.Dir = t.TempDir()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	go io.Copy(io.Discard, master)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag != after.Lflag || before.Iflag != after.Iflag || before.Oflag != after.Oflag {
		t.Errorf("terminal modes changed: lflag %#x -> %#x, iflag %#x -> %#x", before.Lflag, after.Lflag, before.Iflag, after.Iflag)
	}
	slave.Close()
}

// A formation names what runs, as it does for Foreman: -m web=2,clock=1
// runs those three and no worker, on Foreman's ports; -m web=0 alone runs
// nothing and says why; all=1 brings back the types not named.
func TestStartFormationNamesWhatRuns(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{
		"Procfile": "web: echo \"up $DYNO $PORT\"\nworker: echo \"up $DYNO $PORT\"\nclock: echo \"up $DYNO $PORT\"\n",
	})
	ran := func(s *session) []string {
		t.Helper()
		if st := s.wait(); st != 0 {
			t.Fatalf("exit %d:\n%s", st, strings.Join(s.lines(), "\n"))
		}
		var got []string
		for _, l := range s.lines() {
			if m := regexp.MustCompile(`app\[[a-z.0-9]+\]: up (.*)$`).FindStringSubmatch(l); m != nil {
				got = append(got, m[1])
			}
		}
		slices.Sort(got)
		return got
	}

	got := ran(startDyno(t, dir, "--no-restart", "-m", "web=2,clock=1"))
	if want := []string{"clock.1 5200", "web.1 5000", "web.2 5001"}; !slices.Equal(got, want) {
		t.Errorf("-m web=2,clock=1 ran %q, want %q", got, want)
	}
	got = ran(startDyno(t, dir, "--no-restart", "-m", "web=1"))
	if want := []string{"web.1 5000"}; !slices.Equal(got, want) {
		t.Errorf("-m web=1 ran %q, want %q", got, want)
	}
	got = ran(startDyno(t, dir, "--no-restart", "-m", "web=0,all=1"))
	if want := []string{"clock.1 5200", "worker.1 5100"}; !slices.Equal(got, want) {
		t.Errorf("-m web=0,all=1 ran %q, want %q", got, want)
	}

	out, st := runDyno(t, dir, "start", "--no-restart", "-m", "web=0")
	if st == 0 || !strings.Contains(out, "formation runs no processes: web=0,worker=0,clock=0;") ||
		!strings.Contains(out, "types -m does not name run none unless all=N") {
		t.Errorf("-m web=0: exit %d, %q; want a refusal saying why", st, out)
	}
}

// .env values reach the process as written: "$" expands nothing, in bare,
// double-quoted and single-quoted values alike, as Foreman reads them.
func TestRunEnvLiteral(t *testing.T) {
	// Not parallel: t.Setenv changes the environment every dyno inherits.
	dir := newProject(t, map[string]string{
		".env": "X=a$B\nDB_PASS=\"Xy$Z9abc\"\nH='$HOME'\nE=\"\\$B\"\n",
	})
	t.Setenv("B", "expanded")
	t.Setenv("Z9abc", "expanded")
	out, st := runDyno(t, dir, "run", "echo $X")
	if st != 0 || out != "a$B\n" {
		t.Errorf("echo $X: exit %d, %q; want \"a$B\"", st, out)
	}
	out, st = runDyno(t, dir, "run", `echo "$DB_PASS|$H|$E"`)
	if want := "Xy$Z9abc|$HOME|$B\n"; st != 0 || out != want {
		t.Errorf("exit %d, %q; want %q", st, out, want)
	}
}

// dyno start -a reads -m as dyno start reads it for a folder: -m b=2 runs
// b.1 and b.2 and nothing else; -m a=0 runs nothing and says why.
func TestStartAppFormationNamesWhatRuns(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "named", "a: echo \"up $DYNO $PORT\"; exec sleep 1000\nb: echo \"up $DYNO $PORT\"; exec sleep 1000\n")

	// A session, not dynoOut: a dyno that ran b would never exit.
	refused := e.start(t, "-a", "named", "-m", "a=0")
	st := refused.wait()
	out := strings.Join(refused.lines(), "\n")
	if st == 0 || !strings.Contains(out, "the formation runs no dynos of named") ||
		!strings.Contains(out, "types -m does not name run none unless all=N") {
		t.Errorf("-m a=0: exit %d, %q; want a refusal saying why", st, out)
	}

	s := e.start(t, "-a", "named", "-m", "b=2")
	s.waitFor(`app\[b\.1\]: up b\.1 \d+$`)
	s.waitFor(`app\[b\.2\]: up b\.2 \d+$`)
	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 0 {
		t.Errorf("start -a -m b=2: exit %d", st)
	}
	started := regexp.MustCompile(`heroku\[([^\]]+)\]: Starting process`)
	for _, l := range s.lines() {
		if m := started.FindStringSubmatch(l); m != nil && m[1] != "b.1" && m[1] != "b.2" {
			t.Errorf("a type -m does not name ran: %s", l)
		}
	}
}
