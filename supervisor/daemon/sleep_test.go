package daemon

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/dyno-run/dyno/supervisor/router"
)

// deployEco deploys demo with one eco web dyno and a worker.
func deployEco(t *testing.T, h app.Home) *app.App {
	a := deploy(t, h, "demo", map[string]string{"web": "serve", "worker": "work"})
	if _, err := a.ApplyScale([]app.Scale{{Type: "web", Op: '=', N: 1, Size: "eco"}, {Type: "worker", Op: '=', N: 1, Size: "eco"}}, []string{"eco", app.DefaultSize}, "test"); err != nil {
		t.Fatal(err)
	}
	return a
}

func dynoStates(t *testing.T, td *testDaemon) map[string]string {
	t.Helper()
	var dynos []Dyno
	if err := td.client.Do(context.Background(), http.MethodGet, "/apps/demo/dynos", nil, &dynos); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range dynos {
		out[d.Name] = d.State
	}
	return out
}

// An eco app with no request for SleepAfter (2 s: long enough for the
// test to see it running first) sleeps, its web and worker
// dynos idle with Heroku's lines, and says so on disk; the next request
// wakes it and gets its answer.
func TestEcoAppSleepsAndWakes(t *testing.T) {
	t.Parallel()
	td, addrs := startRoutedConfig(t, &webRunner{}, func(h app.Home) { deployEco(t, h) },
		Config{Router: RouterSettings{Listen: "127.0.0.1:0"}, SleepAfter: 2 * time.Second})
	addr := addrs["http"]
	td.awaitState("demo", router.Running)
	demo, _ := td.d.app("demo")
	web := demo.hub.Subscribe(logstore.Filter{Source: "heroku", Dyno: "web.1"}, 64)
	defer web.Close()

	td.awaitState("demo", router.Sleeping)
	for _, want := range []string{"Idling", "State changed from up to down", "Stopping all processes with SIGTERM", "Process exited with status"} {
		awaitLine(t, web, want)
	}
	td.eventually("both dynos idle", func() bool {
		st := dynoStates(t, td)
		return st["web.1"] == "idle" && st["worker.1"] == "idle"
	})
	if _, err := os.Stat(filepath.Join(td.home.Dir, "apps", "demo", "sleeping")); err != nil {
		t.Errorf("no sleeping marker: %v", err)
	}

	status, body := get(t, addr, "demo.localhost")
	if status != 200 || !strings.HasPrefix(body, "web.1 on ") {
		t.Fatalf("waking request: %d %q", status, body)
	}
	for _, want := range []string{"Unidling", "State changed from down to starting", "Starting process with command", "State changed from starting to up"} {
		awaitLine(t, web, want)
	}
	if _, err := os.Stat(filepath.Join(td.home.Dir, "apps", "demo", "sleeping")); err == nil {
		t.Errorf("the sleeping marker outlived the wake")
	}
	td.eventually("the worker up again", func() bool { return dynoStates(t, td)["worker.1"] == "up" })
}

// An app asleep when the daemon stopped stays asleep when it starts:
// no dyno runs until a request comes.
func TestSleepingAppStaysAsleepAcrossRestart(t *testing.T) {
	t.Parallel()
	w := &webRunner{}
	td, addrs := startRoutedConfig(t, w, func(h app.Home) {
		deployEco(t, h)
		if err := os.WriteFile(filepath.Join(h.Dir, "apps", "demo", "sleeping"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}, Config{Router: RouterSettings{Listen: "127.0.0.1:0"}, SleepAfter: time.Hour})
	td.awaitState("demo", router.Sleeping)
	if st := dynoStates(t, td); st["web.1"] != "idle" || st["worker.1"] != "idle" {
		t.Errorf("dynos %v, want both idle", st)
	}
	if _, n := w.fakeRunner.counts(); n != 0 {
		t.Errorf("%d dynos started for a sleeping app", n)
	}
	if status, _ := get(t, addrs["http"], "demo.localhost"); status != 200 {
		t.Errorf("waking request: %d", status)
	}
}
