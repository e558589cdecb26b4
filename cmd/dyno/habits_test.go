package main

// What Heroku users type (issue 9): aliases, suggestions, made-up app
// names, apps:info APP, ps:scale without arguments, the destroy prompt,
// -p/-d/-s, colour and the root help, through the built binary.

import (
	"bufio"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// colorCommand is e.command without NO_COLOR, and with a terminal type.
func (e *isolatedEnv) colorCommand(args ...string) *exec.Cmd {
	cmd := e.command(args...)
	cmd.Env = slices.DeleteFunc(cmd.Env, func(v string) bool { return strings.HasPrefix(v, "NO_COLOR=") })
	cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	return cmd
}

// onPTY runs cmd with its stdin, stdout and stderr on a new terminal
// and returns what it wrote there and its exit status. If prompt is not
// "", answer is typed once the output shows prompt, not before.
func onPTY(t *testing.T, cmd *exec.Cmd, prompt, answer string) (string, int) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty = true, true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	// A prompt that never shows would leave dyno waiting for input and
	// this read with it: end dyno after the test's time.
	watchdog := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	var out strings.Builder
	r := bufio.NewReader(master)
	answered := prompt == ""
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		// The terminal writes \n as \r\n.
		if !answered && strings.Contains(strings.ReplaceAll(out.String(), "\r", ""), prompt) {
			io.WriteString(master, answer+"\n")
			answered = true
		}
		if err != nil { // EIO once the last holder of the slave exits
			break
		}
	}
	cmd.Wait()
	return strings.ReplaceAll(out.String(), "\r", ""), cmd.ProcessState.ExitCode()
}

func TestHerokuAliases(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	wantLines(t, e.must(t, "create", "aliased"), "Creating ⬢ aliased... done")
	wantLines(t, e.must(t, "info", "-a", "aliased"), "=== aliased", "Current Release:", "v1 Initial release")
	wantLines(t, e.must(t, "scale", "-a", "aliased"), "No process types on ⬢ aliased")
	for alias, target := range map[string]string{"restart": "ps:restart", "stop": "ps:stop", "kill": "ps:kill", "scale": "ps:scale",
		"create": "apps:create", "info": "apps:info", "destroy": "apps:destroy"} {
		out := e.must(t, alias, "--help")
		if !strings.Contains(out, "dyno "+target+" ") || !regexp.MustCompile(`(?m)^Aliases:\n\s+`+regexp.QuoteMeta(target)+`, `+alias+`$`).MatchString(out) {
			t.Errorf("dyno %s --help is not %s's:\n%s", alias, target, out)
		}
	}
	// "topic verb" keeps working beside the aliases.
	wantLines(t, e.must(t, "apps", "info", "-a", "aliased"), "=== aliased")
	wantLines(t, e.must(t, "destroy", "aliased", "--confirm", "aliased"), "Destroying ⬢ aliased... done")
	// No open until a router gives an app a URL.
	if out, st := e.dynoOut(t, "open"); st == 0 {
		t.Errorf("dyno open exists: %s", out)
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	for typed, want := range map[string]string{
		"scael":        `dyno: "scael" is not a dyno command; did you mean scale?`,
		"confg":        `dyno: "confg" is not a dyno command; did you mean config?`,
		"apps:creat":   `dyno: "apps:creat" is not a dyno command; did you mean apps:create?`,
		"zzzzzz":       `dyno: "zzzzzz" is not a dyno command; dyno --help lists them`,
		"apps craete":  `dyno: "craete" is not a dyno apps command; did you mean create?`,
		"config sett":  `dyno: "sett" is not a dyno config command; did you mean set or get?`,
		"releases zzz": `dyno: "zzz" is not a dyno releases command; dyno releases --help lists them`,
	} {
		args := strings.Fields(typed)
		if len(args) == 1 {
			// Flags after a command's typo are not what the message is about.
			args = append(args, "-a", "x")
		}
		out, st := e.dynoOut(t, args...)
		if st == 0 || strings.TrimSpace(out) != want {
			t.Errorf("dyno %s: exit %d, %q; want one line %q", typed, st, out, want)
		}
	}
}

func TestAppsCreateMakesUpAName(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	made := regexp.MustCompile(`^Creating app\.\.\. done, ⬢ ([a-z]+-[a-z]+-\d{5})\nhttp://([a-z]+-[a-z]+-\d{5})\.localhost:8080/ \| \S+\n$`)
	var names []string
	for range 2 {
		out := e.must(t, "apps:create")
		m := made.FindStringSubmatch(out)
		if m == nil || m[2] != m[1] {
			t.Fatalf("apps:create without a name: %q", out)
		}
		names = append(names, m[1])
	}
	if names[0] == names[1] {
		t.Errorf("two made-up names are the same: %s", names[0])
	}
	list := e.must(t, "apps")
	for _, n := range names {
		wantLines(t, list, "\n"+n+"\n")
		wantLines(t, e.must(t, "releases", "-a", n), "v1  Initial release")
	}
}

func TestAppsInfoTakesTheName(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "named")
	e.must(t, "apps:create", "other")
	byFlag := e.must(t, "apps:info", "-a", "named")
	if byArg := e.must(t, "apps:info", "named"); byArg != byFlag {
		t.Errorf("apps:info named:\n%s\napps:info -a named:\n%s", byArg, byFlag)
	}
	if out, st := e.dynoOut(t, "apps:info", "named", "-a", "other"); st == 0 || !strings.Contains(out, "two apps given") {
		t.Errorf("two apps: exit %d, %q", st, out)
	}
}

func TestPsScaleShowsTheFormation(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "formed")
	if out := e.must(t, "ps:scale", "-a", "formed"); out != "No process types on ⬢ formed\n" {
		t.Errorf("ps:scale before a build: %q", out)
	}
	src := source(t, map[string]string{".fixture": "", "Procfile": "web: sleep 1000\nworker: sleep 1000\nrelease: true\n"})
	e.must(t, "build", src, "-a", "formed", "-b", fixtureBuildpack(t))
	// Heroku's first deploy: web at 1, the rest at 0; no release type.
	if out := e.must(t, "ps:scale", "-a", "formed"); out != "web=1:Standard-1X worker=0:Standard-1X\n" {
		t.Errorf("ps:scale after the first deploy: %q", out)
	}
	e.must(t, "ps:scale", "worker=2:standard-2x", "web=0", "-a", "formed")
	if out := e.must(t, "scale", "-a", "formed"); out != "web=0:Standard-1X worker=2:Standard-2X\n" {
		t.Errorf("ps:scale after scaling: %q", out)
	}
}

func TestAppsDestroyAsksOnATerminal(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "doomed")
	prompt := "To proceed, type doomed or re-run this command with --confirm doomed\n\n> "

	out, st := onPTY(t, e.command("apps:destroy", "doomed"), prompt, "doome")
	if st == 0 || !strings.Contains(out, "WARNING: This will delete ⬢ doomed") || !strings.Contains(out, "dyno: confirmation did not match doomed. Aborted.") {
		t.Errorf("a wrong name: exit %d:\n%s", st, out)
	}
	wantLines(t, e.must(t, "apps"), "\ndoomed\n")

	out, st = onPTY(t, e.command("apps:destroy", "-a", "doomed"), prompt, "doomed")
	if st != 0 || !strings.Contains(out, "Destroying ⬢ doomed... done") {
		t.Errorf("the right name: exit %d:\n%s", st, out)
	}
	if out := e.must(t, "apps"); strings.Contains(out, "doomed") {
		t.Errorf("confirmed app still listed:\n%s", out)
	}

	// No question about an app that is not there.
	out, st = onPTY(t, e.command("apps:destroy", "doomed"), "", "")
	if st == 0 || strings.Contains(out, "WARNING") || !strings.Contains(out, "app not found: doomed") {
		t.Errorf("destroying a missing app: exit %d:\n%s", st, out)
	}

	// Off a terminal: no prompt, the re-run message (TestAppBadInput).
	e.must(t, "apps:create", "kept")
	cmd := e.command("apps:destroy", "kept")
	cmd.Stdin = strings.NewReader("kept\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "re-run with --confirm kept") {
		t.Errorf("destroy with a piped stdin: %v %s", err, out)
	}
}

// -p/--process-type and -d/--dyno-name, checked before the daemon is
// asked; logs takes them (and Heroku's older --ps, --dyno) and -s.
func TestDynoTargetFlags(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "flags")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ps:restart", "-p", "web.1", "-a", "flags"}, "-p web.1: -p takes a process type (web); for one dyno use -d web.1"},
		{[]string{"ps:stop", "--dyno-name", "web", "-a", "flags"}, "-d web: -d takes a dyno name (web.1); for all web dynos use -p web"},
		{[]string{"kill", "web.1", "--process-type", "worker", "-a", "flags"}, "web.1, worker: give one type or dyno, not 2"},
		{[]string{"stop", "-a", "flags"}, "give the dyno or type: dyno ps:stop web.1, -d web.1 or -p web"},
		{[]string{"logs", "-p", "web", "-d", "web.1", "-a", "flags"}, "give -p TYPE or -d DYNO, not both"},
	} {
		out, st := e.dynoOut(t, tc.args...)
		if st == 0 || strings.TrimSpace(out) != "dyno: "+tc.want {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, st, out, tc.want)
		}
	}
	// The app's API lines are app[api]: they pass -p api and -s app,
	// not -d web.1 or -s heroku.
	for _, args := range [][]string{{"--process-type", "api"}, {"--ps", "api"}, {"-s", "app"}, {"--source", "app"}} {
		wantLines(t, e.must(t, append([]string{"logs", "-a", "flags"}, args...)...), "app[api]: Initial release by user ")
	}
	for _, args := range [][]string{{"--dyno-name", "web.1"}, {"--dyno", "web.1"}, {"-s", "heroku"}} {
		if out := e.must(t, append([]string{"logs", "-a", "flags"}, args...)...); out != "" {
			t.Errorf("logs %v: %q", args, out)
		}
	}
}

// The same flags against a daemon, through the aliases.
func TestDaemonDynoTargetFlags(t *testing.T) {
	// Not parallel: its web binds a daemon port, and every daemon hands them out from 20000.
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "targets", "web: exec python3 -m http.server $PORT\nworker: exec sleep 1000\n")
	d := e.startDaemon(t)
	defer func() {
		if t.Failed() {
			out, _ := e.dynoOut(t, "ps", "-a", "targets")
			logs, _ := e.dynoOut(t, "logs", "-a", "targets")
			t.Logf("ps:\n%s\nlogs:\n%s\ndaemon:\n%s", out, logs, d.out)
		}
	}()
	e.must(t, "scale", "worker=1", "-a", "targets")
	e.waitPs(t, "targets", `(?m)^web\.1: up `, `(?m)^worker\.1: up `)
	wantLines(t, e.must(t, "restart", "-p", "worker", "-a", "targets"), "Restarting worker dynos on ⬢ targets... done")
	e.waitLog(t, "targets", `heroku\[worker\.1\]: Restarting`)
	wantLines(t, e.must(t, "restart", "--dyno-name", "web.1", "-a", "targets"), "Restarting web.1 on ⬢ targets... done")
	e.waitLog(t, "targets", `heroku\[web\.1\]: Restarting`)
	wantLines(t, e.must(t, "ps:restart", "-d", "worker.1", "-a", "targets"), "Restarting worker.1 on ⬢ targets... done")
	wantLines(t, e.must(t, "ps:stop", "--process-type", "web", "-a", "targets"), "Stopping web on ⬢ targets... done")
	e.waitLog(t, "targets", `heroku\[web\.1\]: Stopping all processes with SIGTERM`)
	wantLines(t, e.must(t, "stop", "-d", "worker.1", "-a", "targets"), "Stopping worker.1 on ⬢ targets... done")
	e.waitLog(t, "targets", `heroku\[worker\.1\]: Stopping all processes with SIGTERM`)
	logs := e.must(t, "logs", "-a", "targets", "-d", "worker.1", "-n", "500")
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !strings.Contains(l, "[worker.1]: ") {
			t.Errorf("logs -d worker.1 let through %q", l)
		}
	}
}

const sgr = "\x1b["

func TestColorOnATerminalOnly(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "tinted")

	// A terminal: ⬢ names, === headers and logs' dyno prefixes coloured.
	out, st := onPTY(t, e.colorCommand("apps"), "", "")
	if st != 0 || !strings.Contains(out, "\x1b[2m=== \x1b[0m\x1b[1mApps\x1b[0m") {
		t.Errorf("apps on a terminal: exit %d, %q", st, out)
	}
	out, _ = onPTY(t, e.colorCommand("apps:create", "tinted2"), "", "")
	if !strings.Contains(out, "\x1b[35m⬢ tinted2\x1b[0m") {
		t.Errorf("apps:create on a terminal: %q", out)
	}
	for args, header := range map[string]string{"releases": "tinted Releases - Current: v1", "config": "tinted Config Vars",
		"releases:info": "Release v1", "apps:info": "tinted"} {
		out, _ := onPTY(t, e.colorCommand(args, "-a", "tinted"), "", "")
		if !strings.Contains(out, "\x1b[2m=== \x1b[0m\x1b[1m"+header+"\x1b[0m\n") {
			t.Errorf("%s on a terminal: %q", args, out)
		}
	}
	out, _ = onPTY(t, e.colorCommand("logs", "-a", "tinted"), "", "")
	if !regexp.MustCompile(`(?m)^\x1b\[[0-9;]+m\S+ app\[api\]:\x1b\[0m Initial release by user `).MatchString(out) {
		t.Errorf("logs on a terminal: %q", out)
	}

	// A pipe, NO_COLOR (any value) or --no-color: none.
	for _, args := range [][]string{{"apps"}, {"logs", "-a", "tinted"}, {"apps:info", "tinted"}, {"releases", "-a", "tinted"}} {
		piped := e.colorCommand(args...)
		b, err := piped.Output()
		if err != nil || strings.Contains(string(b), sgr) || len(b) == 0 {
			t.Errorf("%v piped: %v %q", args, err, b)
		}
		noColor := e.colorCommand(args...)
		noColor.Env = append(noColor.Env, "NO_COLOR=0")
		if out, _ := onPTY(t, noColor, "", ""); strings.Contains(out, sgr) || out == "" {
			t.Errorf("%v with NO_COLOR=0: %q", args, out)
		}
		if out, _ := onPTY(t, e.colorCommand(append(args, "--no-color")...), "", ""); strings.Contains(out, sgr) {
			t.Errorf("%v --no-color: %q", args, out)
		}
	}
}

func TestRootHelpDescribesAllThreeFaces(t *testing.T) {
	t.Parallel()
	out, st := runDyno(t, t.TempDir(), "--help")
	if st != 0 {
		t.Fatalf("dyno --help: exit %d\n%s", st, out)
	}
	wantLines(t, out, "Procfile runner", "dyno start", "dyno run CMD", "dyno check",
		"Apps, builds and releases", "dyno apps:create", "dyno build DIR -a APP", "releases, rollback",
		"dyno daemon", "ps:scale", "logs", "--no-color")
}
