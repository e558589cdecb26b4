package main

// A new release restarts the app's dynos, whoever runs them: the daemon,
// or dyno start -a in a terminal.

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/dyno-run/dyno/ledger/app"
)

// webPid is web.1's pid once the daemon says it is up; 0 before.
func webPid(t *testing.T, e *isolatedEnv, appName string) int {
	t.Helper()
	st, body := rawAPI(t, e, http.MethodGet, "/apps/"+appName+"/dynos", "")
	if st != http.StatusOK {
		t.Fatalf("GET dynos: %d %s", st, body)
	}
	var dynos []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Pid   int    `json:"pid"`
	}
	if err := json.Unmarshal([]byte(body), &dynos); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, d := range dynos {
		if d.Name == "web.1" && d.State == "up" {
			return d.Pid
		}
	}
	return 0
}

// Building the same source again makes a release with the same slug;
// the daemon restarts web.1 on it all the same, as Heroku restarts an
// app on every release.
func TestDaemonRebuildOfTheSameSourceRestarts(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "same")
	src := source(t, map[string]string{".fixture": "", "Procfile": "web: exec python3 -m http.server $PORT\n"})
	e.must(t, "build", src, "-a", "same", "-b", "fixture")
	e.startDaemon(t)
	var before int
	e.eventually(t, "web.1 up", func() bool { before = webPid(t, e, "same"); return before != 0 })

	e.must(t, "build", src, "-a", "same", "-b", "fixture")
	a, err := app.Home{Dir: e.home}.Open("same")
	if err != nil {
		t.Fatal(err)
	}
	rels, err := a.Ledger.Releases(2)
	if err != nil || len(rels) != 2 || rels[0].Slug != rels[1].Slug {
		t.Fatalf("the rebuild's release is not on the same slug: %+v, %v", rels, err)
	}
	var after int
	e.eventually(t, "web.1 to restart", func() bool { after = webPid(t, e, "same"); return after != 0 && after != before })
}

// dyno start -a follows the app's ledger as the daemon does: config:set,
// rollback and a build from another terminal each restart web.1 on the
// new release, and config:set says it restarts only while start -a runs.
func TestStartAppFollowsTheLedger(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "follow")
	src := source(t, map[string]string{".fixture": "", "Procfile": "web: echo \"web FOO=$FOO\"; exec python3 -m http.server $PORT\n"})
	e.must(t, "build", src, "-a", "follow", "-b", "fixture")

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

	e.must(t, "build", src, "-a", "follow", "-b", "fixture")
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
