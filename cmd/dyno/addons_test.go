package main

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/ledger/app"
)

// The add-on commands through the binary, as uid 65534 without a
// daemon, with the real redis-server (which the CLI starts, as that
// user): create sets REDIS_URL in a release, the URL works with
// redis-cli, another app's add-on cannot read it, attach shares it,
// destroy detaches in a release and removes the user.
func TestAddonsCommands(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install redis-server): the add-on tests run the real server", bin)
		}
	}
	e := newIsolatedEnv(t, nil)
	t.Cleanup(func() {
		m := &addons.Manager{Home: app.Home{Dir: e.home}}
		if err := m.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	e.must(t, "apps:create", "demo")
	e.must(t, "apps:create", "other")
	if out := e.must(t, "addons", "-a", "demo"); out != "No add-ons for app ⬢ demo.\n" {
		t.Errorf("addons: %q", out)
	}
	out := e.must(t, "addons:create", "heroku-redis", "-a", "demo")
	wantLines(t, out, "Creating heroku-redis on ⬢ demo... done\n")
	m := regexp.MustCompile(`Created (redis-[a-z]+-[0-9]{5}) as REDIS_URL\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("addons:create:\n%s", out)
	}
	name := m[1]
	wantLines(t, e.must(t, "releases", "-a", "demo"), "Attach REDIS (@ref:"+name+")")
	url := strings.TrimSpace(e.must(t, "config:get", "REDIS_URL", "-a", "demo"))
	cli := func(url string, args ...string) string {
		out, err := exec.Command("redis-cli", append([]string{"--no-auth-warning", "-u", url}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := cli(url, "SET", name+":k", "v"); got != "OK" {
		t.Errorf("SET: %q", got)
	}
	if got := cli(url, "GET", name+":k"); got != "v" {
		t.Errorf("GET: %q", got)
	}
	wantLines(t, e.must(t, "addons", "-a", "demo"), name, "heroku-redis:mini", "REDIS_URL")
	wantLines(t, e.must(t, "addons:info", name), "=== "+name, "Owning app", "⬢ demo", "Key prefix")

	out = e.must(t, "addons:create", "redis", "--as", "CACHE", "-a", "other")
	wantLines(t, out, "as CACHE_URL")
	otherURL := strings.TrimSpace(e.must(t, "config:get", "CACHE_URL", "-a", "other"))
	if got := cli(otherURL, "GET", name+":k"); !strings.Contains(got, "NOPERM") {
		t.Errorf("another add-on's user read %s's key: %q, want NOPERM", name, got)
	}

	// Shared: attached to other too, detached again.
	wantLines(t, e.must(t, "addons:attach", name, "-a", "other"), "Attaching "+name+" as REDIS to ⬢ other... done")
	if got := strings.TrimSpace(e.must(t, "config:get", "REDIS_URL", "-a", "other")); got != url {
		t.Errorf("other's REDIS_URL %q; want %q", got, url)
	}
	e.failLine(t, "belongs to ⬢ demo", "addons:detach", name, "-a", "demo")
	wantLines(t, e.must(t, "addons:detach", "REDIS", "-a", "other"), "Detaching REDIS to "+name+" from ⬢ other... done")
	wantLines(t, e.must(t, "releases", "-a", "other"), "Detach REDIS (@ref:"+name+")")

	e.failLine(t, "--confirm demo", "addons:destroy", name, "-a", "demo")
	e.failLine(t, "belongs to ⬢ demo", "addons:destroy", name, "-a", "other", "--confirm", "other")
	e.failLine(t, "Couldn't find either the add-on service or the add-on plan", "addons:create", "heroku-nope", "-a", "demo")
	wantLines(t, e.must(t, "addons:destroy", name, "-a", "demo", "--confirm", "demo"), "Destroying "+name+" on ⬢ demo... done")
	wantLines(t, e.must(t, "releases", "-a", "demo"), "Detach REDIS (@ref:"+name+")")
	if got := cli(url, "PING"); !strings.Contains(got, "WRONGPASS") {
		t.Errorf("the destroyed add-on's user still logs in: %q", got)
	}
	if out := e.must(t, "addons", "-a", "demo"); out != "No add-ons for app ⬢ demo.\n" {
		t.Errorf("addons after destroy: %q", out)
	}
	e.failLine(t, "no such add-on", "addons:info", name)
}
