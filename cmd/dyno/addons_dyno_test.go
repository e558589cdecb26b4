package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// stopPostgresOf and stopRedisOf stop the servers of the dyno home
// home that a CLI started, if they run: Postgres with a fast shutdown
// (SIGINT, what pg_ctl -m fast sends; the test runs as root, which
// pg_ctl refuses), Redis with SIGTERM (it flushes its file and exits).
func stopPostgresOf(t *testing.T, home string) {
	stopByPidFile(t, filepath.Join(home, "addons", "postgresql", "data", "postmaster.pid"), syscall.SIGINT)
}

func stopRedisOf(t *testing.T, home string) {
	stopByPidFile(t, filepath.Join(home, "addons", "redis", "redis.pid"), syscall.SIGTERM)
}

// stopByPidFile signals the process whose pid is the first line of
// path and waits until it has exited.
func stopByPidFile(t *testing.T, path string, sig syscall.Signal) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		t.Logf("stop %s: %v", path, err)
		return
	}
	// A pidfd polls readable once its process has exited.
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			return
		}
	}
}

// An add-on is used from a dyno as an app uses it: dyno run gets the
// release's DATABASE_URL and REDIS_URL, and psql and redis-cli inside
// the dyno reach the servers with them. One app's credentials cannot
// open another app's database; after addons:destroy and a rollback
// past it, the app has no URL of a dead add-on.
func TestAddonsFromADyno(t *testing.T) {
	t.Parallel()
	needAddonServers(t)
	e := newIsolatedEnv(t, nil)
	t.Cleanup(func() {
		stopPostgresOf(t, e.home)
		stopRedisOf(t, e.home)
	})
	e.deployFixture(t, "shop", "web: exec sleep 1000\n")
	e.deployFixture(t, "blog", "web: exec sleep 1000\n")
	created := regexp.MustCompile(`Created ((postgresql|redis)-[a-z]+-[0-9]{5}) as (DATABASE|REDIS)_URL`)
	out := e.must(t, "addons:create", "heroku-postgresql", "-a", "shop")
	wantLines(t, out, "Creating heroku-postgresql on ⬢ shop... done")
	m := created.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("addons:create heroku-postgresql:\n%s", out)
	}
	shopDB := m[1]
	if m = created.FindStringSubmatch(e.must(t, "addons:create", "heroku-redis", "-a", "shop")); m == nil {
		t.Fatal("addons:create heroku-redis printed no add-on")
	}
	e.must(t, "addons:create", "postgresql", "-a", "blog")

	run := func(app, script string) (string, int) {
		t.Helper()
		stdout, stderr, st := e.runApp(t, "run", "-a", app, "--no-tty", script)
		return stdout + stderr, st
	}
	if out, st := run("shop", `psql "$DATABASE_URL" -X -A -t -c "select 1"`); st != 0 || !regexp.MustCompile(`(?m)^1$`).MatchString(out) {
		t.Errorf("psql $DATABASE_URL -c 'select 1' in a dyno: exit %d:\n%s", st, out)
	}
	if out, st := run("shop", `redis-cli --no-auth-warning -u "$REDIS_URL" ping`); st != 0 || !strings.Contains(out, "PONG") {
		t.Errorf("redis-cli -u $REDIS_URL ping in a dyno: exit %d:\n%s", st, out)
	}
	// A table made in one dyno is there in the next: the dyno's files
	// are thrown away, the database is not.
	if out, st := run("shop", `psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -c "create table orders (id int); insert into orders values (42)"`); st != 0 {
		t.Fatalf("create table in a dyno: exit %d:\n%s", st, out)
	}
	if out, st := run("shop", `psql "$DATABASE_URL" -X -A -t -c "select id from orders"`); st != 0 || !regexp.MustCompile(`(?m)^42$`).MatchString(out) {
		t.Errorf("the row from the last dyno: exit %d:\n%s", st, out)
	}
	// blog's role, on shop's database: refused by the server.
	out, st := run("blog", `psql "${DATABASE_URL%/*}/`+shopDB+`" -X -A -t -c "select id from orders"`)
	if st == 0 || !strings.Contains(out, "permission denied for database") {
		t.Errorf("blog's credentials on shop's database: exit %d, want permission denied:\n%s", st, out)
	}

	// Destroyed, then rolled back past the destroy: no DATABASE_URL.
	wantLines(t, e.must(t, "addons:destroy", shopDB, "-a", "shop", "--confirm", "shop"), "Destroying "+shopDB+" on ⬢ shop... done")
	e.must(t, "rollback", "v2", "-a", "shop")
	if out := e.must(t, "config", "-a", "shop"); strings.Contains(out, "DATABASE_URL") || !strings.Contains(out, "REDIS_URL") {
		t.Errorf("config after rolling back past the destroy: want REDIS_URL and no DATABASE_URL:\n%s", out)
	}
}
