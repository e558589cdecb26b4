package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// needAddonServers skips a test that needs the real PostgreSQL server,
// psql, redis-server and redis-cli: dyno's add-ons are those servers.
func needAddonServers(t *testing.T) {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		t.Skip("no PostgreSQL server in /usr/lib/postgresql/*/bin (apt-get install postgresql): the add-on server tests run the real one")
	}
	for _, bin := range []string{"psql", "redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install postgresql redis-server): the add-on server tests run the real servers", bin)
		}
	}
}

// ppid is the parent of pid, 0 when pid is gone (or a zombie, which
// has ended).
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 || f[0] == "Z" {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// pidIn is the pid on the first line of a pid file.
func pidIn(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// sinceLastStart is the part of a server's logs after its last start.
func sinceLastStart(logs string) string {
	i := strings.LastIndex(logs, "Starting process with command")
	if i < 0 {
		return ""
	}
	return logs[i:]
}

// The daemon runs the machine's PostgreSQL and Redis as services of its
// own, through the binary as uid 65534: add-ons created while it runs
// have it start them (no detached server); a postmaster killed is
// restarted with its data; a clean daemon restart shuts PostgreSQL down
// cleanly; a kill -9 of the daemon leaves no server behind and loses
// nothing; a server started detached with no daemon is taken over at
// the daemon's start; addons:logs shows the servers' lines.
func TestAddonServersUnderTheDaemon(t *testing.T) {
	needAddonServers(t)
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "demo")
	d := e.startDaemon(t)
	pgDir := filepath.Join(e.home, "addons", "postgresql")
	redisDir := filepath.Join(e.home, "addons", "redis")

	e.must(t, "addons:create", "heroku-postgresql", "-a", "demo")
	e.must(t, "addons:create", "heroku-redis", "-a", "demo")
	dbURL := strings.TrimSpace(e.must(t, "config:get", "DATABASE_URL", "-a", "demo"))
	redisURL := strings.TrimSpace(e.must(t, "config:get", "REDIS_URL", "-a", "demo"))
	name := strings.TrimPrefix(strings.SplitN(redisURL, ":", 3)[1], "//")
	sql := func(q string) (string, error) {
		cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", dbURL, "-c", q)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	redis := func(args ...string) string {
		out, _ := exec.Command("redis-cli", append([]string{"--no-auth-warning", "-u", redisURL}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	if out, err := sql("create table t(x int); insert into t values (42)"); err != nil {
		t.Fatalf("psql: %v: %s", err, out)
	}
	if got := redis("SET", name+":k", "kept"); got != "OK" {
		t.Fatalf("SET: %q", got)
	}
	// The daemon's children, not detached servers.
	postmaster := pidIn(t, filepath.Join(pgDir, "data", "postmaster.pid"))
	redisPid := pidIn(t, filepath.Join(redisDir, "redis.pid"))
	for _, pid := range []int{postmaster, redisPid} {
		if got := ppid(pid); got != d.cmd.Process.Pid {
			t.Errorf("server pid %d has parent %d, not the daemon (%d)", pid, got, d.cmd.Process.Pid)
		}
	}
	if _, err := os.Stat(filepath.Join(pgDir, "postgresql.log")); err == nil {
		t.Error("postgresql.log exists: a server was started detached while the daemon ran")
	}
	pgLogs := func() string {
		out, _ := e.dynoOut(t, "addons:logs", "postgresql", "-n", "1500")
		return out
	}
	wantData := func(when string) {
		t.Helper()
		e.eventually(t, "the row "+when, func() bool {
			got, err := sql("select x from t")
			return err == nil && got == "42"
		})
		if got := redis("GET", name+":k"); got != "kept" {
			t.Errorf("the key %s: %q", when, got)
		}
	}
	wantData("as written")
	logs := pgLogs()
	for _, want := range []string{"heroku[postgresql]: Starting process with command `/usr/lib/postgresql/", "heroku[postgresql]: State changed from starting to up", "app[postgresql]: "} {
		if !strings.Contains(logs, want) {
			t.Errorf("addons:logs postgresql lacks %q:\n%s", want, logs)
		}
	}
	if out := e.must(t, "addons:logs", name, "-n", "5"); !strings.Contains(out, "heroku[redis]: ") && !strings.Contains(out, "app[redis]: ") {
		t.Errorf("addons:logs %s:\n%s", name, out)
	}

	// kill -9 of the postmaster: restarted, with its data.
	syscall.Kill(postmaster, syscall.SIGKILL)
	e.eventually(t, "the postmaster's restart", func() bool {
		return strings.Count(pgLogs(), "State changed from starting to up") >= 2
	})
	logs = pgLogs()
	if !strings.Contains(logs, "heroku[postgresql]: Process exited with status 137") {
		t.Errorf("addons:logs after kill -9 of the postmaster:\n%s", logs)
	}
	wantData("after the postmaster's kill -9")

	// A clean daemon restart: PostgreSQL shuts down cleanly (no
	// recovery at its next start).
	d.stop(syscall.SIGTERM)
	if out := d.out.String(); !strings.Contains(out, "postgresql: the add-on server exited with status 137; restarting it in 0s") || !strings.Contains(out, "stopping the add-on servers") {
		t.Errorf("the daemon's log:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(pgDir, "data", "postmaster.pid")); err == nil {
		t.Error("postmaster.pid is left after the daemon's clean stop")
	}
	if logs := pgLogs(); !strings.Contains(sinceLastStart(logs), "database system is shut down") {
		t.Errorf("no clean shutdown in the logs:\n%s", sinceLastStart(logs))
	}
	d = e.startDaemon(t)
	wantData("after a clean daemon restart")
	e.eventually(t, "postgres up again", func() bool { return strings.Count(pgLogs(), "State changed from starting to up") >= 3 })
	if since := sinceLastStart(pgLogs()); !strings.Contains(since, "database system was shut down at") || strings.Contains(since, "interrupted") || strings.Contains(since, "recovery") {
		t.Errorf("postgres's start after a clean daemon restart:\n%s", since)
	}

	// kill -9 of the daemon: its servers stop, cleanly, and nothing
	// is lost.
	postmaster = pidIn(t, filepath.Join(pgDir, "data", "postmaster.pid"))
	redisPid = pidIn(t, filepath.Join(redisDir, "redis.pid"))
	d.stop(syscall.SIGKILL)
	e.eventually(t, "the servers to end with the daemon", func() bool {
		return ppid(postmaster) == 0 && ppid(redisPid) == 0
	})
	d = e.startDaemon(t)
	wantData("after a kill -9 of the daemon")
	e.eventually(t, "postgres up again", func() bool { return strings.Count(pgLogs(), "State changed from starting to up") >= 4 })
	if since := sinceLastStart(pgLogs()); !strings.Contains(since, "database system was shut down at") || strings.Contains(since, "interrupted") {
		t.Errorf("postgres's start after a kill -9 of the daemon (its fast shutdown should have ended cleanly):\n%s", since)
	}

	// With no daemon a command starts the server detached; the
	// daemon's start takes it over.
	d.stop(syscall.SIGTERM)
	wantLines(t, e.must(t, "addons:info", strings.TrimPrefix(strings.SplitN(dbURL, ":", 3)[1], "//")), "Version")
	wantLines(t, e.must(t, "addons:info", name), "Key prefix")
	detached := pidIn(t, filepath.Join(pgDir, "data", "postmaster.pid"))
	detachedRedis := pidIn(t, filepath.Join(redisDir, "redis.pid"))
	if ppid(detached) == 0 || ppid(detachedRedis) == 0 {
		t.Fatal("addons:info with no daemon started no server")
	}
	d = e.startDaemon(t)
	wantData("after the takeover")
	e.eventually(t, "the detached servers to end", func() bool { return ppid(detached) == 0 && ppid(detachedRedis) == 0 })
	e.eventually(t, "redis up under the daemon", func() bool {
		out, _ := e.dynoOut(t, "addons:logs", "redis", "-n", "1500")
		return strings.Count(out, "State changed from starting to up") >= 4
	})
	if got := ppid(pidIn(t, filepath.Join(pgDir, "data", "postmaster.pid"))); got != d.cmd.Process.Pid {
		t.Errorf("after the takeover the postmaster's parent is %d, not the daemon (%d)", got, d.cmd.Process.Pid)
	}
	if got := ppid(pidIn(t, filepath.Join(redisDir, "redis.pid"))); got != d.cmd.Process.Pid {
		t.Errorf("after the takeover redis-server's parent is %d, not the daemon (%d)", got, d.cmd.Process.Pid)
	}
	d.stop(syscall.SIGTERM)
	want := "postgresql: an add-on server the daemon did not start runs (pid " + strconv.Itoa(detached) + "); stopping it cleanly to run it under the daemon"
	if !strings.Contains(d.out.String(), want) {
		t.Errorf("the daemon's log lacks %q:\n%s", want, d.out.String())
	}
}
