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
	t.Parallel()
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

		// A chown to nobody: done where the dyno has a whole range
		// (CAP_CHOWN of its own namespace), nobody then owning the
		// file; with one uid, nobody is not even a uid there (EINVAL).
		chown, owner := "Invalid argument", "owner 12345"
		mapped := "1"
		if own {
			chown, owner, mapped = "chowned", "owner 65534", "65536"
		}
		out = e.oneOff(t, "-a", "plain", `bin/check-user; bin/start-config true; vendor/bin/vendored
touch /app/config/x && echo touched $(stat -c %U /app/config/x)
{ chown 65534 /app/config/x && echo chowned; } 2>&1 | sed 's/.*: //'
echo owner $(ls -ln /app/config/x | cut -d' ' -f3)
echo mapped $(awk '{ print $3 }' /proc/self/uid_map)`)
		wantLines(t, out,
			"user=u12345 uid=12345 group=dyno home=/app tty=none",
			"vendored, run by u12345",
			"touched u12345",
			chown+"\n"+owner+"\n",
			"mapped "+mapped)
		if !regexp.MustCompile(`(?m)^wrote config/app\.conf: listen \d+;$`).MatchString(out) {
			t.Errorf("the start script did not write config/app.conf:\n%s", out)
		}
		// The next dyno starts from the slug again.
		out = e.oneOff(t, "-a", "plain", "ls /app/config")
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

// With the app's own ids a dyno's user holds exactly CAP_CHOWN (0),
// CAP_FOWNER (3), CAP_KILL (5), CAP_SETGID (6) and CAP_SETUID (7) of its
// own namespace, 0xe9, bounding set included, so a server can drop its
// workers to nobody and signal them, as nginx's master does; without
// them it holds none and there is no other uid to drop to. Either way
// the host's files stay out of reach.
//
// The kernel clears capabilities on a uid change only when it leaves
// uid 0 (capabilities(7)): a worker that only switches uids keeps the
// five and may switch back. One that clears its inheritable and ambient
// sets too has none after its next execve, and no way back to u12345.
func TestDynoUserPrivileges(t *testing.T) {
	t.Parallel()
	idModes(t, func(t *testing.T, e *isolatedEnv, own bool) {
		e.deployFixture(t, "alpha", "web: exec sleep 1000\n")
		drop := "setpriv --reuid 65534 --regid 65534 --clear-groups"
		final := drop + " --inh-caps=-all --ambient-caps=-all"
		back := "setpriv --reuid 12345 --regid 12345 --clear-groups id -u"
		// errno keeps of an error line only its reason.
		out := e.oneOff(t, "-a", "alpha", `errno='s/^[a-z]*: .*: //'
awk '/^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):/ { printf "%s %s ", $1, $2 } END { print "" }' /proc/self/status
echo setgroups $(cat /proc/self/setgroups)
`+drop+` sh -c 'echo dropped $(id -u) $(id -G) $(grep CapEff /proc/self/status); `+back+`' 2>&1 | sed "$errno"
`+final+` sh -c 'echo final $(id -u) $(grep -E "^Cap(Prm|Eff)" /proc/self/status); `+back+`' 2>&1 | sed "$errno"
echo devnull $(stat -c %u /dev/null)
chmod 666 /dev/null 2>&1 | sed "$errno"
`+drop+` chmod 666 /dev/null 2>&1 | sed "$errno"
coproc `+final+` sh -c 'echo $$; exec sleep 1000' 2>/dev/null
if read -r worker <&"${COPROC[0]}"; then
	setpriv --inh-caps=-all --ambient-caps=-all kill $worker 2>&1 | sed "$errno"
	kill $worker && wait $COPROC_PID
	echo worker ended $?
fi`)
		caps := "CapInh: 0000000000000000 CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1 \n"
		// The host's /dev/null, bound in writable, is host root's, an id
		// no dyno maps: stat shows the overflow id, 65534, yet neither
		// u12345 nor the app's own nobody may change it, CAP_FOWNER or
		// not (chmod to its own mode, so a failure here harms nothing).
		devNull := "devnull 65534\nOperation not permitted\n"
		want := caps + "setgroups deny\nInvalid argument\nInvalid argument\n" + devNull + "Invalid argument\n"
		if own {
			caps = strings.ReplaceAll(caps, "0000000000000000", "00000000000000e9")
			want = caps + "setgroups allow\n" +
				// A plain drop: nobody, no groups, the five kept, and
				// back to u12345.
				"dropped 65534 65534 CapEff: 00000000000000e9\n12345\n" +
				// A final one: none left, refused the way back.
				"final 65534 CapPrm: 0000000000000000 CapEff: 0000000000000000\nOperation not permitted\n" +
				devNull + "Operation not permitted\n" +
				// Its master without CAP_KILL may not signal it; with
				// it, it does.
				"Operation not permitted\nworker ended 143\n"
		}
		if out != want {
			t.Errorf("the dyno said\n%s\nwant\n%s", out, want)
		}
	})
}

// An interactive one-off's terminal is the dyno user's, with and
// without the app's own ids, so programs that open /dev/tty (less, ssh,
// sudo) can.
func TestRunPTYDynoUser(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	base := testutil.SubIDs(t, 65536)
	e.deployPrivate(t, "alpha", "web: exec sleep 1000\n")
	e.oneOff(t, "-a", "alpha", "true")
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
	out := e.oneOff(t, "-a", "alpha", "cat private.txt; echo more >> private.txt && stat -c '%U %a' private.txt")
	wantLines(t, out, "alpha-private\nu12345 600\n")
	if st := statT(t, filepath.Join(owned[0], "private.txt")); int(st.Uid) != base+12345 || int(st.Gid) != base+12345 {
		t.Errorf("private.txt is %d:%d's; want the dyno user's, %d", st.Uid, st.Gid, base+12345)
	}
}
