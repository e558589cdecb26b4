package main

// dyno run -a as heroku run: its line, its flags, a one-off that ps and
// logs see, through the binary.

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runApp runs dyno with stdout and stderr apart.
func (e *isolatedEnv) runApp(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := e.command(args...)
	var o, x bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &x
	cmd.Run()
	return o.String(), x.String(), cmd.ProcessState.ExitCode()
}

// wantInOrder fails unless each of res matches a line of out after the
// line the one before matched.
func wantInOrder(t *testing.T, out string, res ...string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	i := 0
	for _, re := range res {
		rx := regexp.MustCompile(re)
		for i < len(lines) && !rx.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			t.Errorf("no line matching %q in order in:\n%s", re, out)
			return
		}
		i++
	}
}

func TestRunAppLikeHerokuRun(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "oneoff", "web: exec sleep 1000\n")

	// -e with an app is heroku run's variables, commas and spaces kept;
	// the status is the dyno's.
	out, errOut, st := e.runApp(t, "run", "-a", "oneoff", "-e", "A=1,2;B=x y", "-e", "FOO=over", `echo "A=$A B=$B FOO=$FOO"; exit 3`)
	if st != 3 || out != "A=1,2 B=x y FOO=over\n" {
		t.Errorf("run -e: exit %d, %q", st, out)
	}
	m := regexp.MustCompile("^Running `echo \"A=\\$A B=\\$B FOO=\\$FOO\"; exit 3` on ⬢ oneoff\\.\\.\\. up, (run\\.\\d{4}) \\(Standard-1X\\)\n$").FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("stderr %q; want heroku run's line alone", errOut)
	}
	name := regexp.QuoteMeta(m[1])
	logs := e.must(t, "logs", "-a", "oneoff")
	wantInOrder(t, logs,
		`app\[api\]: Starting process with command `+"`echo \"A=\\$A B=\\$B FOO=\\$FOO\"; exit 3`"+` by user `,
		`heroku\[`+name+`\]: Starting process with command `+"`echo",
		`heroku\[`+name+`\]: State changed from starting to up$`,
		`heroku\[`+name+`\]: Process exited with status 3$`,
		`heroku\[`+name+`\]: State changed from up to complete$`)
	if strings.Contains(logs, "A=1,2") {
		t.Errorf("an attached run's output reached the logs:\n%s", logs)
	}

	// -x, -s in Heroku's spelling, --no-tty.
	_, errOut, st = e.runApp(t, "run", "-a", "oneoff", "-x", "-s", "Standard-2X", "--no-tty", "exit 4")
	if st != 4 || !regexp.MustCompile(`\.\.\. up, run\.\d{4} \(Standard-2X\)\n$`).MatchString(errOut) {
		t.Errorf("-x -s Standard-2X: exit %d, %q", st, errOut)
	}

	// DYNO_APP, with no Procfile in the folder, is -a: -e is variables.
	cmd := e.command("run", "-e", "VIA=env", "echo $VIA/$DYNO")
	cmd.Env = append(cmd.Env, "DYNO_APP=oneoff")
	var o, x bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &x
	if err := cmd.Run(); err != nil || !regexp.MustCompile(`^env/run\.\d{4}\n$`).MatchString(o.String()) || !strings.Contains(x.String(), " on ⬢ oneoff... up, run.") {
		t.Errorf("DYNO_APP: %v, %q, %q", err, o.String(), x.String())
	}

	// Bad input: one line, non-zero, nothing started.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-s", "huge"}, `dyno: unknown dyno size "huge"; use one of basic, eco, performance-l, performance-m, standard-1x, standard-2x, or add it to `},
		{[]string{"-e", "A=1;not a var"}, `dyno: -e "A=1;not a var": with -a, -e takes variables: -e 'A=1;B=2'`},
		{[]string{"--type", "no/slash"}, `dyno: --type "no/slash": a process type is letters, digits, _ and -, like run or worker`},
		{[]string{"--detached", "-e", "A=1"}, `dyno: -e with --detached: `},
	} {
		out, errOut, st := e.runApp(t, append(append([]string{"run", "-a", "oneoff"}, tc.args...), "echo ran")...)
		if st == 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want one line %q...", tc.args, st, out, errOut, tc.want)
		}
	}
	if n := strings.Count(e.must(t, "logs", "-a", "oneoff"), "Starting process with command `echo ran`"); n != 0 {
		t.Errorf("refused runs were logged %d times", n)
	}
}

// Without an app, -e keeps heroku local:run's meaning: env files,
// comma-separated.
func TestRunEnvFilesWithoutApp(t *testing.T) {
	t.Parallel()
	dir := newProject(t, map[string]string{"Procfile": "web: true\n", "a.env": "X=1\n", "b.env": "Y=2,3\n"})
	out, st := runDyno(t, dir, "run", "-e", "a.env,b.env", "echo $X/$Y")
	if st != 0 || out != "1/2,3\n" {
		t.Errorf("run -e a.env,b.env: exit %d, %q", st, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "A=1")); err == nil {
		t.Error("made a file")
	}
}

// An attached one-off is listed by ps while it runs, as heroku ps lists
// run.N, and no longer once it ends, or once its dyno run is killed.
func TestRunAppInPs(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "listed", "web: exec sleep 1000\n")
	d := e.startDaemon(t)
	defer func() {
		if t.Failed() {
			t.Logf("daemon:\n%s", d.out)
		}
	}()
	marker := uniqueSleep()
	s := startSession(t, e.command("run", "-a", "listed", "echo started; exec sleep "+marker))
	name := s.waitFor(`^Running .* up, (run\.\d{4}) \(Standard-1X\)$`)[1]
	s.waitFor(`^started$`)
	out := e.waitPs(t, "listed", `(?m)^=== run: one-off processes \(1\)$`,
		`(?m)^`+regexp.QuoteMeta(name)+` \(Standard-1X\): up \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \+0000 \(~ \d+s ago\): echo started; exec sleep `+marker+`$`)
	if !strings.Contains(out, "web.1: ") {
		t.Errorf("ps lost the formation:\n%s", out)
	}
	// ps:stop ends an attached run for good, as it ends a one-off on
	// Heroku: its dyno run passes SIGTERM on and logs the end.
	wantLines(t, e.must(t, "ps:stop", name, "-a", "listed"), "Stopping "+name+" on ⬢ listed... done")
	if st := s.wait(); st != 143 {
		t.Errorf("run ended with %d; want 143 (SIGTERM)", st)
	}
	if out, st := e.dynoOut(t, "ps:stop", name, "-a", "listed"); st == 0 || out != "dyno: "+name+": no such dyno or process type runs on ⬢ listed; dyno ps -a listed lists them\n" {
		t.Errorf("ps:stop of an ended run: exit %d, %q", st, out)
	}
	e.waitLog(t, "listed", `heroku\[`+regexp.QuoteMeta(name)+`\]: Process exited with status 143`)
	if out := e.must(t, "ps", "-a", "listed"); strings.Contains(out, "run.") {
		t.Errorf("ps lists an ended run:\n%s", out)
	}

	// A dyno run killed outright leaves an entry no one holds: ps leaves
	// it out (and sweeps it). --type names the type ps shows.
	marker = uniqueSleep()
	s = startSession(t, e.command("run", "-a", "listed", "--type", "console", "echo started; exec sleep "+marker))
	name = s.waitFor(`^Running .* up, (run\.\d{4}) \(Standard-1X\)$`)[1]
	s.waitFor(`^started$`)
	e.waitPs(t, "listed", `(?m)^=== console \(Standard-1X\): echo started; exec sleep `+marker+` \(1\)$`, `(?m)^`+regexp.QuoteMeta(name)+`: up `)
	s.signal(syscall.SIGKILL)
	s.wait()
	if out := e.must(t, "ps", "-a", "listed"); strings.Contains(out, name) {
		t.Errorf("ps lists a killed run:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(e.home, "apps", "listed", "attached", "*")); len(left) != 0 {
		t.Errorf("the killed run's entry was not swept: %v", left)
	}
	waitMarkerGone(t, marker, 20*time.Second)
}
