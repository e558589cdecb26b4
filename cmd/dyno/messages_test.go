package main

// Messages that are true: a change says "restarting" or "now running"
// only when a daemon runs the app, and "the daemon is not running" names
// the command that starts it on this machine.

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/internal/testutil"
)

// wantNone fails the test for each of absent that out holds.
func wantNone(t *testing.T, out string, absent ...string) {
	t.Helper()
	for _, a := range absent {
		if strings.Contains(out, a) {
			t.Errorf("output holds %q:\n%s", a, out)
		}
	}
}

// hostStartCommand is what the CLI, run as the unprivileged user with
// HOME=/nonexistent, suggests on this host: "dyno daemon" unless the
// host has a system unit installed.
func hostStartCommand() string {
	if _, err := os.Stat("/etc/systemd/system/dyno.service"); err == nil {
		return "sudo systemctl start dyno"
	}
	return "dyno daemon"
}

// staleSocket leaves a socket file where the daemon listens with nothing
// listening on it, as a daemon killed by SIGKILL leaves it.
func staleSocket(t *testing.T, home string) {
	t.Helper()
	path := filepath.Join(home, "dyno.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	// Writable by the CLI's user, so that connect(2) is refused for want
	// of a listener (ECONNREFUSED), not for want of permission.
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
}

func TestMessagesWithoutDaemon(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "demo", "worker: exec sleep 1000\n")
	staleSocket(t, e.home)
	hint := "dyno: no daemon runs ⬢ demo; the change applies when it starts (" + hostStartCommand() + ")\n"

	out := e.must(t, "config:set", "FOO=bar", "-a", "demo")
	wantLines(t, out, "Setting FOO on ⬢ demo... done, v3\n", "FOO: bar\n", hint)
	wantNone(t, out, "restarting")

	out = e.must(t, "config:unset", "FOO", "-a", "demo")
	wantLines(t, out, "Unsetting FOO on ⬢ demo... done, v4\n", hint)
	wantNone(t, out, "restarting")

	out = e.must(t, "rollback", "-a", "demo")
	wantLines(t, out, "Rolling back ⬢ demo to v3... done, v5\n", hint)

	out = e.must(t, "ps:scale", "worker=2", "-a", "demo")
	wantLines(t, out, "Scaling dynos... done, will run web at 1:Standard-1X, worker at 2:Standard-1X.\n", hint)
	wantNone(t, out, "now running")
	// The change is in the ledger, waiting for the daemon.
	if out := e.must(t, "ps:scale", "-a", "demo"); out != "web=1:Standard-1X worker=2:Standard-1X\n" {
		t.Errorf("ps:scale after scaling without a daemon: %q", out)
	}
}

func TestMessagesWithDaemon(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	// No web type: nothing runs at the first deploy's formation.
	e.deployFixture(t, "demo", "worker: exec sleep 1000\n")
	e.startDaemon(t)

	out := e.must(t, "config:set", "FOO=bar", "-a", "demo")
	wantLines(t, out, "Setting FOO and restarting ⬢ demo... done, v3\n")
	wantNone(t, out, "dyno: ")

	out = e.must(t, "config:unset", "FOO", "-a", "demo")
	wantLines(t, out, "Unsetting FOO and restarting ⬢ demo... done, v4\n")
	wantNone(t, out, "dyno: ")

	out = e.must(t, "rollback", "-a", "demo")
	wantLines(t, out, "Rolling back ⬢ demo to v3... done, v5\n")
	wantNone(t, out, "dyno: ")

	out = e.must(t, "ps:scale", "worker=0", "-a", "demo")
	wantLines(t, out, "Scaling dynos... done, now running web at 1:Standard-1X, worker at 0:Standard-1X.\n")
	wantNone(t, out, "dyno: ")
}

func TestPsWithoutDaemonSuggestsStart(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "demo")

	want := "dyno: the dyno daemon is not running; start it with " + hostStartCommand() + "\n"
	if out, st := e.dynoOut(t, "ps", "-a", "demo"); st == 0 || out != want {
		t.Errorf("ps without a daemon or a unit: exit %d, %q; want %q", st, out, want)
	}

	// With the user unit that dyno daemon install --user writes.
	config := testutil.SharedDir(t)
	unit := filepath.Join(config, "systemd", "user", "dyno.service")
	if err := os.MkdirAll(filepath.Dir(unit), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unit, []byte("[Service]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ps", "-a", "demo"}, {"ps:restart", "-a", "demo"}, {"run", "--detached", "-a", "demo", "true"}} {
		cmd := e.command(args...)
		cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+config)
		b, _ := cmd.CombinedOutput()
		want := "dyno: the dyno daemon is not running; start it with systemctl --user start dyno\n"
		if st := cmd.ProcessState.ExitCode(); st == 0 || string(b) != want {
			t.Errorf("%s with a user unit: exit %d, %q; want %q", strings.Join(args, " "), st, b, want)
		}
	}
}

// The system unit lives in /etc, which a test does not write: the choice
// between the units is checked on paths of the test's own.
func TestStartCommandFor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	userUnit := filepath.Join(dir, "user.service")
	systemUnit := filepath.Join(dir, "system.service")
	check := func(root bool, want string) {
		t.Helper()
		if got := startCommandFor(userUnit, systemUnit, root); got != want {
			t.Errorf("startCommandFor(root=%v) = %q, want %q", root, got, want)
		}
	}
	check(false, "dyno daemon")
	if err := os.WriteFile(systemUnit, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check(false, "sudo systemctl start dyno")
	check(true, "systemctl start dyno")
	if err := os.WriteFile(userUnit, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check(false, "systemctl --user start dyno")
}
