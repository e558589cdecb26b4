package main

// maintenance and features through the binary as an unprivileged user:
// recorded in the ledger, an API line per change, no release made.

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMaintenanceAndFeaturesCommands(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "demo")
	if out := e.must(t, "maintenance", "-a", "demo"); out != "off\n" {
		t.Errorf("maintenance: %q", out)
	}
	wantLines(t, e.must(t, "maintenance:on", "-a", "demo"), "Enabling maintenance mode for ⬢ demo... done\n",
		"dyno: no daemon runs ⬢ demo; the change applies when it starts")
	if out := e.must(t, "maintenance", "-a", "demo"); out != "on\n" {
		t.Errorf("maintenance after :on: %q", out)
	}
	// Again: done, and nothing new recorded or logged.
	if out := e.must(t, "maintenance", "on", "-a", "demo"); out != "Enabling maintenance mode for ⬢ demo... done\n" {
		t.Errorf("maintenance:on again: %q", out)
	}
	wantLines(t, e.must(t, "apps:info", "-a", "demo"), "\nMaintenance:     on\n")
	var info map[string]any
	if err := json.Unmarshal([]byte(e.must(t, "apps:info", "--json", "-a", "demo")), &info); err != nil || info["maintenance"] != true {
		t.Errorf("apps:info --json: %v, %v", info, err)
	}
	e.must(t, "maintenance:off", "-a", "demo")
	if out := e.must(t, "maintenance", "-a", "demo"); out != "off\n" {
		t.Errorf("maintenance after :off: %q", out)
	}

	want := "=== App Features ⬢ demo\n\n[ ] preboot              Provide seamless web dyno deploys\n[ ] log-runtime-metrics  Emit dyno resource usage information into app logs\n"
	if out := e.must(t, "features", "-a", "demo"); out != want {
		t.Errorf("features:\n%q\nwant\n%q", out, want)
	}
	wantLines(t, e.must(t, "features:enable", "preboot", "-a", "demo"), "Enabling preboot for ⬢ demo... done\n")
	if out := e.must(t, "features", "-a", "demo"); !strings.Contains(out, "[+] preboot") {
		t.Errorf("features after enable:\n%s", out)
	}
	want = "=== preboot\n\nDescription: Provide seamless web dyno deploys\nDocs:        https://devcenter.heroku.com/articles/preboot\nEnabled:     true\n"
	if out := e.must(t, "features:info", "preboot", "-a", "demo"); out != want {
		t.Errorf("features:info:\n%q\nwant\n%q", out, want)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.must(t, "features", "--json", "-a", "demo")), &list); err != nil || len(list) != 2 || list[0]["enabled"] != true || list[1]["enabled"] != false {
		t.Errorf("features --json: %v, %v", list, err)
	}
	e.failLine(t, `"http-session-affinity" is not a feature dyno has; use one of [preboot log-runtime-metrics]`, "features:enable", "http-session-affinity", "-a", "demo")
	e.failLine(t, "give the feature: dyno features:disable preboot -a APP", "features:disable", "-a", "demo")
	wantLines(t, e.must(t, "features", "disable", "preboot", "-a", "demo"), "Disabling preboot for ⬢ demo... done\n")

	// One API line per change, none for the no-op; no release made.
	logs := e.must(t, "logs", "-a", "demo")
	for _, line := range []string{"Enable Maintenance mode by user", "Disable Maintenance mode by user", "Enable preboot by user", "Disable preboot by user"} {
		if n := strings.Count(logs, line); n != 1 {
			t.Errorf("%d lines of %q in the logs, want 1:\n%s", n, line, logs)
		}
	}
	if out := e.must(t, "releases", "-a", "demo"); strings.Contains(out, "v2") {
		t.Errorf("a setting made a release:\n%s", out)
	}
}
