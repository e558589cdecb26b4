package main

// Builds and dynos run as an ordinary user, u12345, as on Heroku, with
// and without the app's own ids: the fixture buildpacks in
// buildpacks/testdata reproduce what failed when they ran as root in a
// namespace that maps one uid.

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"
	"github.com/dyno-run/dyno/internal/testutil"
)

// idModes runs fn once for an app without ids of its own (one uid
// mapped) and once with them (subordinate ids for the unprivileged user:
// a whole range mapped).
func idModes(t *testing.T, fn func(t *testing.T, e *isolatedEnv, own bool)) {
	for _, mode := range []string{"one uid", "own ids"} {
		t.Run(mode, func(t *testing.T) {
			e := newIsolatedEnv(t, nil)
			own := mode == "own ids"
			if own {
				testutil.SubIDs(t, 65536)
			}
			fn(t, e, own)
		})
	}
}

// The three fixtures build together: a compile that extracts a tarball
// of uid 1000's files, one that refuses to run as root or unnamed, and
// one whose start script writes /app/config. Their dynos run as u12345,
// HOME /app, writing /app; what one dyno writes is gone in the next.
func TestNonRootBuildAndDynos(t *testing.T) {
	idModes(t, func(t *testing.T, e *isolatedEnv, own bool) {
		src := source(t, map[string]string{"README": "no Procfile: the buildpack's default web\n"})
		e.must(t, "apps:create", "plain")
		out := e.must(t, "build", src, "-a", "plain",
			"-b", testdataBuildpack(t, "foreign-owners"),
			"-b", testdataBuildpack(t, "not-root"),
			"-b", testdataBuildpack(t, "writes-config"))
		wantLines(t, out,
			"       tarball owner: 1000/1000",
			"-----> extracted vendor/ as u12345, owner u12345",
			"-----> compiling as u12345 (uid 12345)",
			"-----> installed bin/start-config")

		// A chown to nobody: refused as it is to any ordinary user
		// (EPERM) where the dyno has a whole range; with one uid, nobody
		// is not even a uid there (EINVAL).
		chown := "Invalid argument"
		mapped := "1"
		if own {
			chown, mapped = "Operation not permitted", "65536"
		}
		out = e.must(t, "run", "-a", "plain", `bin/check-user; bin/start-config true; vendor/bin/vendored
touch /app/config/x && echo touched $(stat -c %U /app/config/x)
chown 65534 /app/config/x 2>&1 | sed 's/.*: //'
echo mapped $(awk '{ print $3 }' /proc/self/uid_map)`)
		wantLines(t, out,
			"user=u12345 uid=12345 group=dyno home=/app tty=none",
			"vendored, run by u12345",
			"touched u12345",
			chown,
			"mapped "+mapped)
		if !regexp.MustCompile(`(?m)^wrote config/app\.conf: listen \d+;$`).MatchString(out) {
			t.Errorf("the start script did not write config/app.conf:\n%s", out)
		}
		// The next dyno starts from the slug again.
		out = e.must(t, "run", "-a", "plain", "ls /app/config")
		if strings.TrimSpace(out) != "app.conf.template" {
			t.Errorf("the next dyno's /app/config holds %q; want only the slug's app.conf.template", out)
		}

		// The app's own start writes its config too.
		s := startSession(t, e.command("start", "-a", "plain", "--log-format", "logplex"))
		s.waitFor(`app\[web\.1\]: wrote config/app\.conf: listen \d+;$`)
		s.signal(syscall.SIGTERM)
		if st := s.wait(); st != 0 {
			t.Errorf("start exited %d:\n%s", st, strings.Join(s.lines(), "\n"))
		}
	})
}

// An interactive one-off's terminal is the dyno user's, with and
// without the app's own ids, so programs that open /dev/tty (less, ssh,
// sudo) can.
func TestRunPTYDynoUser(t *testing.T) {
	idModes(t, func(t *testing.T, e *isolatedEnv, own bool) {
		e.deployFixture(t, "alpha", "web: exec sleep 1000\n")
		master, slave, err := pty.Open()
		if err != nil {
			t.Skipf("no pty: %v", err)
		}
		defer master.Close()
		st, text := runOnTTY(t, e.command("run", "-a", "alpha", "echo $(id -u) $(whoami) $(stat -c %U $(tty)); echo to-tty > /dev/tty && echo wrote; exit 4"), master, slave)
		if st != 4 || !strings.Contains(text, "12345 u12345 u12345\nto-tty\nwrote\n") {
			t.Errorf("exit %d, %q; want uid 12345, named u12345, owning its terminal, a write to /dev/tty, status 4", st, text)
		}
	})
}

// An app's own copy of a slug made when dynos ran as the first of its
// ids (uid 0 inside) is handed to the dyno user at the next start, and
// the dyno reads and writes it as its own.
func TestOwnCopyOfOldScheme(t *testing.T) {
	e := newIsolatedEnv(t, nil)
	base := testutil.SubIDs(t, 65536)
	e.deployPrivate(t, "alpha", "web: exec sleep 1000\n")
	e.must(t, "run", "-a", "alpha", "true")
	owned := ownLowers(t, e.home, "alpha")
	if len(owned) != 1 {
		t.Fatalf("alpha's own copies of its slug: %v; want one", owned)
	}
	if st := statT(t, owned[0]); int(st.Uid) != base+12345 {
		t.Fatalf("%s is uid %d's; want the dyno user's, %d", owned[0], st.Uid, base+12345)
	}
	// As the earlier scheme left it.
	err := filepath.WalkDir(owned[0], func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, base, base)
	})
	if err != nil {
		t.Fatal(err)
	}
	out := e.must(t, "run", "-a", "alpha", "cat private.txt; echo more >> private.txt && stat -c '%U %a' private.txt")
	wantLines(t, out, "alpha-private\nu12345 600\n")
	if st := statT(t, filepath.Join(owned[0], "private.txt")); int(st.Uid) != base+12345 || int(st.Gid) != base+12345 {
		t.Errorf("private.txt is %d:%d's; want the dyno user's, %d", st.Uid, st.Gid, base+12345)
	}
}
