package main

// A new release restarts the app's dynos, whoever runs them: the daemon,
// or dyno start -a in a terminal.

import (
	"encoding/json"
	"net/http"
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
