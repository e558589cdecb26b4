package daemon

// The daemon's dyno manager against fake dynos: what each change to an
// app's ledger starts, restarts and stops.

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
)

// scale records a formation as ps:scale does.
func scale(t *testing.T, h app.Home, name string, changes ...app.Scale) {
	t.Helper()
	a, err := h.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplyScale(changes, []string{app.DefaultSize, "performance-m"}, "test"); err != nil {
		t.Fatal(err)
	}
}

func hasEnv(spec supervisor.DynoSpec, kv string) bool { return slices.Contains(spec.Env, kv) }

// waitRunning turns the loop until exactly names run.
func (td *testDaemon) waitRunning(names ...string) {
	td.t.Helper()
	td.eventually("running "+strings.Join(names, ", "), func() bool { return slices.Equal(td.runner.names(), names) })
}

// A first deploy runs web at 1 and no other type, as on Heroku.
func TestDaemonFirstDeployRunsOneWeb(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"web": "serve", "worker": "w", "release": "migrate"})
	}})
	td.waitRunning("web.1")
	s := td.runner.started()[0]
	if s.Command != "serve" || s.Dir != "/app" || !hasEnv(s, "DYNO=web.1") || !hasEnv(s, "HOME=/app") || s.Lower == "" {
		t.Errorf("web.1 started as %+v", s)
	}
}

// Scaling up starts only the new dynos, scaling down stops only the
// extra ones: the dynos that stay are not restarted.
func TestDaemonScaleUpAndDown(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"worker": "w"})
	}})
	scale(t, td.home, "demo", app.Scale{Type: "worker", Op: '=', N: 3})
	td.waitRunning("worker.1", "worker.2", "worker.3")
	scale(t, td.home, "demo", app.Scale{Type: "worker", Op: '-', N: 2})
	td.waitRunning("worker.1")
	if _, starts := td.runner.counts(); starts != 3 {
		t.Errorf("%d starts, want 3: a dyno that stayed was restarted", starts)
	}
	// A new size is a new dyno: worker.1 restarts at it.
	scale(t, td.home, "demo", app.Scale{Type: "worker", Op: '=', N: 1, Size: "performance-m"})
	td.eventually("worker.1 at performance-m", func() bool {
		s := td.runner.started()
		return len(s) == 4 && s[3].Name == "worker.1" && s[3].Size == "performance-m"
	})
	td.waitRunning("worker.1")
}

// Every new release restarts every dyno on it: a config change, and a
// deploy of the very same slug (a rebuild of the same commit); a ledger
// change that makes no release restarts none.
func TestDaemonNewReleaseRestartsEveryDyno(t *testing.T) {
	t.Parallel()
	var a *app.App
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		a = deploy(t, h, "demo", map[string]string{"worker": "w", "clock": "c"})
		scale(t, h, "demo", app.Scale{Type: "worker", Op: '=', N: 2}, app.Scale{Type: "clock", Op: '=', N: 1})
	}})
	td.waitRunning("clock.1", "worker.1", "worker.2")
	if _, err := a.SetConfig(map[string]string{"FOO": "bar"}, "test"); err != nil {
		t.Fatal(err)
	}
	td.eventually("three restarts with FOO", func() bool {
		s := td.runner.started()
		return len(s) == 6 && !slices.ContainsFunc(s[3:], func(s supervisor.DynoSpec) bool { return !hasEnv(s, "FOO=bar") })
	})
	td.waitRunning("clock.1", "worker.1", "worker.2")

	st, err := a.Ledger.State()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deploy(st.Current.Slug, "", st.Current.ProcessTypes, nil, nil, "test"); err != nil {
		t.Fatal(err)
	}
	td.eventually("three restarts on the same slug", func() bool { _, starts := td.runner.counts(); return starts == 9 })
	td.waitRunning("clock.1", "worker.1", "worker.2")

	if _, err := a.EditBuildpacks("test", func([]string) ([]string, error) { return []string{"go"}, nil }); err != nil {
		t.Fatal(err)
	}
	td.turn()
	td.turn()
	if _, starts := td.runner.counts(); starts != 9 {
		t.Errorf("%d starts after a buildpacks change, want 9", starts)
	}
}

// A release with a release phase: the dynos stay on the current release
// while the phase runs, restart on the new one when it succeeds, and
// stay when it fails.
func TestDaemonReleasePhasePaths(t *testing.T) {
	t.Parallel()
	gate := make(chan int)
	td := startTestDaemon(t, daemonOptions{
		setup: func(h app.Home) {
			deploy(t, h, "demo", map[string]string{"worker": "w", "release": "migrate"})
			scale(t, h, "demo", app.Scale{Type: "worker", Op: '=', N: 1})
		},
		phase: func(rel ledger.Release) int { return <-gate },
	})
	// Before the daemon's shutdown (cleanups run last first), which
	// waits for a phase still blocked here.
	t.Cleanup(func() { close(gate) })
	td.waitRunning("worker.1")
	change := func(v string) int {
		t.Helper()
		if err := td.client.Do(context.Background(), http.MethodPatch, "/apps/demo/config-vars", map[string]string{"FOO": v}, nil); err != nil {
			t.Fatal(err)
		}
		a, _ := td.home.Open("demo")
		st, _ := a.Ledger.State()
		return st.LastVersion
	}

	v := change("1")
	td.eventually("the phase to start", func() bool { return td.phases.Load() == 1 })
	td.turn()
	if got := releaseStatus(t, td.home, "demo", v); got != ledger.StatusPending {
		t.Fatalf("v%d %s while its phase runs", v, got)
	}
	if _, starts := td.runner.counts(); starts != 1 {
		t.Fatalf("%d starts while the phase runs: a pending release ran", starts)
	}
	gate <- 0
	td.eventually("worker.1 on the new release", func() bool {
		s := td.runner.started()
		return len(s) == 2 && hasEnv(s[1], "FOO=1")
	})
	if got := releaseStatus(t, td.home, "demo", v); got != ledger.StatusSucceeded {
		t.Errorf("v%d %s", v, got)
	}

	bad := change("2")
	td.eventually("the second phase to start", func() bool { return td.phases.Load() == 2 })
	gate <- 1
	td.eventually("the release to fail", func() bool { return releaseStatus(t, td.home, "demo", bad) == ledger.StatusFailed })
	td.turn()
	td.turn()
	if _, starts := td.runner.counts(); starts != 2 {
		t.Errorf("%d starts after a failed phase, want 2", starts)
	}
	td.waitRunning("worker.1")
}

// dyno run --detached through the API: run.N with four digits, the
// process type's command, the size asked for, and refusals that say
// what to do.
func TestDaemonRunDetached(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		a := deploy(t, h, "demo", map[string]string{"worker": "w"})
		if _, err := a.SetConfig(map[string]string{"FOO": "bar"}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Create("empty", "test"); err != nil {
			t.Fatal(err)
		}
	}})
	post := func(appName, command, size string) (map[string]any, error) {
		var got map[string]any
		err := td.client.Do(context.Background(), http.MethodPost, "/apps/"+appName+"/dynos", map[string]any{"command": command, "size": size}, &got)
		return got, err
	}
	got, err := post("demo", "worker --fast", "Performance-M")
	if err != nil {
		t.Fatal(err)
	}
	name, _ := got["name"].(string)
	if !regexp.MustCompile(`^run\.[1-9]\d{3}$`).MatchString(name) {
		t.Fatalf("one-off named %q", name)
	}
	td.eventually(name+" to start", func() bool { return slices.Contains(td.runner.names(), name) })
	s := td.runner.started()[0]
	if s.Name != name || s.Command != "w --fast" || s.Size != "performance-m" || !hasEnv(s, "DYNO="+name) || !hasEnv(s, "FOO=bar") || s.Lower == "" {
		t.Errorf("started %+v", s)
	}

	if _, err := post("demo", "bash", "huge"); err == nil || !strings.Contains(err.Error(), `unknown dyno size "huge"; use one of `) {
		t.Errorf("size huge: %v", err)
	}
	if _, err := post("empty", "bash", ""); err == nil || !strings.Contains(err.Error(), "empty has no release with code yet; build one with dyno build -a empty") {
		t.Errorf("no release: %v", err)
	}
	if n := len(td.runner.started()); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
}

// A destroyed app's dynos stop, and the daemon says so.
func TestDaemonAppRemoved(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"worker": "w"})
		scale(t, h, "demo", app.Scale{Type: "worker", Op: '=', N: 2})
	}})
	td.waitRunning("worker.1", "worker.2")
	if err := td.home.Destroy("demo"); err != nil {
		t.Fatal(err)
	}
	td.waitRunning()
	if !strings.Contains(td.log.String(), "demo: destroyed; stopping its dynos") {
		t.Errorf("daemon log:\n%s", td.log)
	}
	if _, ok := td.d.app("demo"); ok {
		t.Error("the daemon still runs demo")
	}
}
