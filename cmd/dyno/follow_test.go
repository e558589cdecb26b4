package main

// A new release restarts the app's dynos, whoever runs them: the daemon,
// or dyno start -a in a terminal.

import (
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/dyno-run/dyno/ledger/app"
)

// boots are the tokens web.1 printed at each start, from the app's logs.
func boots(t *testing.T, e *isolatedEnv, appName string) []string {
	t.Helper()
	out, _ := e.dynoOut(t, "logs", "-a", appName, "-n", "1500")
	var ids []string
	for _, m := range regexp.MustCompile(`app\[web\.1\]: boot (\S+)`).FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// Building the same source again makes a release with the same slug;
// the daemon restarts web.1 on it all the same, as Heroku restarts an
// app on every release: a new process prints a new boot token. (A pid
// would not tell: each dyno has its own pid namespace, and the same
// command in a new dyno may get the same pid.)
func TestDaemonRebuildOfTheSameSourceRestarts(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "same")
	src := source(t, map[string]string{".fixture": "", "Procfile": "web: echo \"boot $(cat /proc/sys/kernel/random/uuid)\"; exec python3 -m http.server $PORT\n"})
	e.must(t, "build", src, "-a", "same", "-b", fixtureBuildpack(t))
	e.startDaemon(t)
	e.waitPs(t, "same", `(?m)^web\.1: up `)
	e.eventually(t, "web.1's boot line", func() bool { return len(boots(t, e, "same")) == 1 })

	e.must(t, "build", src, "-a", "same", "-b", fixtureBuildpack(t))
	a, err := app.Home{Dir: e.home}.Open("same")
	if err != nil {
		t.Fatal(err)
	}
	rels, err := a.Ledger.Releases(2)
	if err != nil || len(rels) != 2 || rels[0].Slug != rels[1].Slug || rels[0].Version == rels[1].Version {
		t.Fatalf("the rebuild made no new release on the same slug: %+v, %v", rels, err)
	}
	var ids []string
	e.eventually(t, "web.1 to start again", func() bool { ids = boots(t, e, "same"); return len(ids) == 2 })
	if ids[0] == ids[1] {
		t.Fatalf("the same boot token twice: %v", ids)
	}
	e.waitPs(t, "same", `(?m)^web\.1: up `)
}

// dyno start -a follows the app's ledger as the daemon does: config:set,
// rollback and a build from another terminal each restart web.1 on the
// new release, and config:set says it restarts only while start -a runs.
func TestStartAppFollowsTheLedger(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "follow")
	src := source(t, map[string]string{".fixture": "", "Procfile": "web: echo \"web FOO=$FOO\"; exec python3 -m http.server $PORT\n"})
	e.must(t, "build", src, "-a", "follow", "-b", fixtureBuildpack(t))

	s := e.start(t, "-a", "follow", "-p", "15731")
	s.waitFor(`app\[web\.1\]: web FOO=$`)
	up := `heroku\[web\.1\]: State changed from starting to up`
	s.waitFor(up)

	out := e.must(t, "config:set", "FOO=bar", "-a", "follow")
	wantLines(t, out, "Setting FOO and restarting ⬢ follow... done, v3")
	s.waitFor(`app\[api\]: Set FOO config vars by user `)
	s.waitFor(`app\[api\]: Release v3 created by user `)
	s.waitFor(`heroku\[web\.1\]: Restarting`)
	s.waitFor(`app\[web\.1\]: web FOO=bar$`)
	s.waitN(up, 2)

	e.must(t, "rollback", "-a", "follow")
	s.waitN(`app\[web\.1\]: web FOO=$`, 2)
	s.waitN(up, 3)

	e.must(t, "build", src, "-a", "follow", "-b", fixtureBuildpack(t))
	s.waitFor(`app\[api\]: Release v5 created by user `)
	s.waitN(`heroku\[web\.1\]: Restarting`, 3)
	s.waitN(up, 4)

	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 0 {
		t.Errorf("start -a: exit %d:\n%s", st, strings.Join(s.lines(), "\n"))
	}
	out = e.must(t, "config:set", "FOO=baz", "-a", "follow")
	if strings.Contains(out, "restarting") {
		t.Errorf("config:set with nothing running says it restarts:\n%s", out)
	}
}
