package main

// dyno run -a --release vN and --dyno NAME, through the binary: what
// the units of dyno export systemd run for each dyno.

import (
	"regexp"
	"strings"
	"testing"
)

func TestRunReleaseAndDynoName(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, map[string]string{"Procfile": "web: true\n"})
	// v1 is the app's first release, without code; v2 sets FOO before
	// any; the build is v3, with FOO=old; v4 changes FOO.
	e.must(t, "apps:create", "pinned")
	e.must(t, "config:set", "FOO=old", "-a", "pinned")
	src := source(t, map[string]string{".fixture": "", "Procfile": "web: echo web of $FOO as $DYNO\n"})
	e.must(t, "build", src, "-a", "pinned", "-b", fixtureBuildpack(t))
	e.must(t, "config:set", "FOO=new", "-a", "pinned")
	if out := e.must(t, "releases", "-a", "pinned"); !regexp.MustCompile(`(?m)^v4 `).MatchString(out) || !regexp.MustCompile(`(?m)^v3 +Deploy `).MatchString(out) {
		t.Fatalf("releases are not as the test expects:\n%s", out)
	}

	// The release's config vars, not the current ones; a first word that
	// names a process type runs that release's command.
	if out, errOut, st := e.runApp(t, "run", "-a", "pinned", "--release", "v3", "--no-tty", "echo $FOO"); st != 0 || out != "old\n" {
		t.Errorf("--release v3: exit %d, %q, %q; want old", st, out, errOut)
	}
	if out, errOut, st := e.runApp(t, "run", "-a", "pinned", "--no-tty", "echo $FOO"); st != 0 || out != "new\n" {
		t.Errorf("the current release: exit %d, %q, %q; want new", st, out, errOut)
	}

	// --dyno names the dyno: DYNO, heroku run's line, the logs, and its
	// type is the name's.
	out, errOut, st := e.runApp(t, "run", "-a", "pinned", "--release", "3", "--dyno", "web.2", "--no-tty", "web")
	if st != 0 || out != "web of old as web.2\n" {
		t.Errorf("--dyno web.2 web: exit %d, %q, %q", st, out, errOut)
	}
	if want := "Running `web` on ⬢ pinned... up, web.2 (Standard-1X)\n"; errOut != want {
		t.Errorf("--dyno web.2: stderr %q; want %q", errOut, want)
	}
	wantInOrder(t, e.must(t, "logs", "-a", "pinned"),
		`heroku\[web\.2\]: Starting process with command `+"`web`",
		`heroku\[web\.2\]: State changed from starting to up$`,
		`heroku\[web\.2\]: Process exited with status 0$`)

	// Bad values: one line naming the value and the fix, nothing run.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-a", "pinned", "--release", "v9"}, "dyno: --release v9: pinned has no v9; dyno releases -a pinned lists its releases\n"},
		{[]string{"-a", "pinned", "--release", "v1"}, "dyno: --release v1: v1 has no code; pick one dyno releases -a pinned lists with a deploy\n"},
		{[]string{"-a", "pinned", "--release", "latest"}, `dyno: --release "latest" is not a release version; write it like v12` + "\n"},
		{[]string{"-a", "pinned", "--dyno", "web"}, `dyno: --dyno "web": a dyno's name is its process type and a number from 1, like web.2` + "\n"},
		{[]string{"-a", "pinned", "--dyno", "web.0"}, `dyno: --dyno "web.0": a dyno's name is its process type and a number from 1, like web.2` + "\n"},
		{[]string{"-a", "pinned", "--dyno", "web.2", "--type", "worker"}, "dyno: --dyno web.2 with --type worker: a dyno's type is its name's; drop --type\n"},
		{[]string{"-a", "pinned", "--dyno", "web.2", "--detached"}, "dyno: --release and --dyno with --detached: the daemon's one-offs run the current release as run.N; run attached\n"},
		{[]string{"--release", "v3"}, "dyno: --release and --dyno name an app's release and dyno: give the app with -a APP\n"},
	} {
		out, errOut, st := e.runApp(t, append(append([]string{"run"}, tc.args...), "echo ran")...)
		if st == 0 || out != "" || errOut != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, st, out, errOut, tc.want)
		}
	}
	if n := strings.Count(e.must(t, "logs", "-a", "pinned"), "`echo ran`"); n != 0 {
		t.Errorf("refused runs were logged %d times", n)
	}
}
