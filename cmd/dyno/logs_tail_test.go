package main

// logs --tail follows the stored logs: API events the commands write
// show live, and the tail outlives the daemon, through the binary.

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestLogsTailShowsAPIEventsLive(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "events", "web: exec sleep 1000\n")
	e.startDaemon(t)
	s := startSession(t, e.command("logs", "--tail", "-a", "events", "-n", "1"))
	s.waitFor(`^\d{4}-\d\d-\d\dT`)
	e.must(t, "config:set", "LIVE=1", "-a", "events")
	s.waitFor(`app\[api\]: Set LIVE config vars by user `)
	s.waitFor(`app\[api\]: Release v3 created by user `)
	// -s heroku leaves the API's lines out, live too.
	h := startSession(t, e.command("logs", "--tail", "-a", "events", "-s", "heroku", "-n", "1"))
	h.waitFor(`^\d{4}-\d\d-\d\dT`)
	e.must(t, "config:set", "LATER=1", "-a", "events")
	s.waitFor(`app\[api\]: Set LATER config vars`)
	e.must(t, "run", "-a", "events", "true")
	h.waitFor(`heroku\[run\.\d{4}\]: State changed from up to complete`)
	for _, l := range h.lines() {
		if strings.Contains(l, "app[api]") {
			t.Errorf("-s heroku let through %q", l)
		}
	}
}

// Without a daemon the tail says so in one line, with the command that
// starts it, and still shows what the commands write.
func TestLogsTailWithoutDaemon(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "quiet")
	s := startSession(t, e.command("logs", "--tail", "-a", "quiet"))
	s.waitFor(`^dyno: the daemon is not running: the tail shows the dynos' lines once it runs \(start it with ` + regexp.QuoteMeta(hostStartCommand()) + `\)$`)
	e.must(t, "config:set", "QUIET=1", "-a", "quiet")
	s.waitFor(`app\[api\]: Release v2 created by user `)
	if n := len(s.lines()); n != 5 {
		t.Errorf("%d lines; want the first release's two, the line about the daemon and config:set's two:\n%s", n, strings.Join(s.lines(), "\n"))
	}
}

// The daemon is killed and started again under a tail: the tail says so
// once and goes on, every line once and none missed.
func TestLogsTailSurvivesDaemonRestart(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "steady", "web: exec sleep 1000\nworker: n=$RANDOM$RANDOM; i=0; while :; do i=$((i+1)); echo \"tick $n $i\"; sleep 0.05; done\n")
	e.must(t, "ps:scale", "worker=1", "-a", "steady")
	d := e.startDaemon(t)
	s := startSession(t, e.command("logs", "--tail", "-a", "steady", "-n", "1"))
	first := s.waitN(`app\[worker\.1\]: tick (\d+) (\d+)$`, 5)[0][1]
	// Killed outright: no goodbye on the socket, the dynos die with it.
	d.stop(syscall.SIGKILL)
	s.waitFor(`^dyno: the daemon stopped; the tail goes on and shows the dynos' lines again when it is back \(start it with `)
	// Events of the commands go on without a daemon.
	e.must(t, "config:set", "WHILE_DOWN=1", "-a", "steady")
	s.waitFor(`app\[api\]: Set WHILE_DOWN config vars by user `)
	e.startDaemon(t)
	s.waitFor(`^dyno: the daemon is running$`)
	// A new worker, with a new n, ticks into the same tail.
	rx := regexp.MustCompile(`app\[worker\.1\]: tick (\d+) (\d+)$`)
	e.eventually(t, "the new worker's ticks", func() bool {
		for _, l := range s.lines() {
			if m := rx.FindStringSubmatch(l); m != nil && m[1] != first && m[2] == "5" {
				return true
			}
		}
		return false
	})
	s.signal(syscall.SIGTERM)
	s.wait()

	seen := map[string]bool{}
	next := map[string]int{}
	stopped := 0
	for _, l := range s.lines() {
		if strings.HasPrefix(l, "dyno: the daemon stopped") {
			stopped++
		}
		if strings.HasPrefix(l, "dyno: ") {
			continue
		}
		if seen[l] {
			t.Errorf("printed twice: %q", l)
		}
		seen[l] = true
		if m := rx.FindStringSubmatch(l); m != nil {
			i, _ := strconv.Atoi(m[2])
			if want, ok := next[m[1]]; ok && i != want {
				t.Errorf("worker %s: tick %d after %d; a line was lost", m[1], i, want-1)
			}
			next[m[1]] = i + 1
		}
	}
	if stopped != 1 {
		t.Errorf("said the daemon stopped %d times; want once:\n%s", stopped, strings.Join(s.lines(), "\n"))
	}
	if len(next) != 2 {
		t.Errorf("ticks of %d workers; want the first and the one after the restart:\n%s", len(next), strings.Join(s.lines(), "\n"))
	}
}
