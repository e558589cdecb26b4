package main

// The limits the kernel enforces, through the binary. Each test starts
// dyno alone in a cgroup delegated to the user it runs as
// (testutil.DelegatedCgroup), as systemd's Delegate=yes does, so they need
// cgroup v2 with the memory and pids controllers: make test-kernel runs
// them in a user-mode Linux kernel that has them, and elsewhere they skip
// saying why. The guest has one slow CPU: sizes are a few MB, and waits
// are for lines and states, bounded generously.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/supervisor/appmetrics"
)

// kernelWait bounds each wait for a line in these tests: R14 comes at the
// first memory check, 20 s after the start (Heroku's rhythm), and the
// guest is slow.
const kernelWait = 2 * time.Minute

// writeSizes writes dyno.toml into the env's DYNO_HOME.
func (e *isolatedEnv) writeSizes(t *testing.T, toml string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.home, "dyno.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, e.home)
}

// startIn starts `dyno start --isolate` with args in the cgroup cg.
func (e *isolatedEnv) startIn(t *testing.T, cg string, args ...string) *session {
	t.Helper()
	cmd := e.command(append([]string{"start", "--isolate", "--log-format", "logplex"}, args...)...)
	testutil.StartInCgroup(t, cmd, cg)
	s := startSession(t, cmd)
	s.within = kernelWait
	return s
}

// leafOf returns the cgroup leaf of the running dyno name (name-<hex>,
// supervisor.leafSuffix) in the tree dyno set up in cg.
func leafOf(t *testing.T, cg, name string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(cg, "dynos", name+"-*"))
	if len(m) != 1 {
		t.Fatalf("leaves of %s under %s: %v; want one", name, cg, m)
	}
	return m[0]
}

// A formation of one size from dyno.toml, run by uid 65534 in its
// delegated cgroup: each leaf gets the size's limits; a hog is OOM-killed
// at memory.max and reported as R15; a dyno above its quota but below
// memory.max is reported as R14 and keeps running; a fork bomb meets
// pids.max, and its shell says so.
func TestKernelStartLimits(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, map[string]string{
		"Procfile": "" +
			// dd's buffer is bs bytes, all touched: 64 MB against a
			// memory.max of 24 MB.
			"hog: echo start; dd if=/dev/zero of=/dev/null bs=64M count=1; echo survived; exec sleep 1000\n" +
			// tail -c keeps the last 12 MiB of a pipe in memory until
			// the pipe ends, which the sleep holding it open never
			// lets happen: 12 MiB resident, above the 8 MB quota.
			"leak: { head -c 12M /dev/zero; exec sleep 1000; } | tail -c 12M\n" +
			// dash reports a fork refused with EAGAIN as "Cannot fork".
			"bomb: i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done; echo forked all; wait\n",
	})
	cg := testutil.DelegatedCgroup(t)
	e.writeSizes(t, "[sizes.tiny]\nmemory = \"8MB\"\nkill_ratio = 3\npids = 32\ncpu_weight = 150\n")
	s := e.startIn(t, cg, "--size", "tiny", "--require-limits")

	s.waitFor(`heroku\[hog\.1\]: Error R15 \(Memory quota vastly exceeded\)$`)
	s.waitFor(`heroku\[hog\.1\]: Process exited with status 137$`)
	s.waitFor(`app\[bomb\.1\]: .*Cannot fork`)
	s.waitFor(`heroku\[leak\.1\]: Process running mem=\d+M\(\d+\.\d%\)$`)
	s.waitFor(`heroku\[leak\.1\]: Error R14 \(Memory quota exceeded\)$`)

	leaf := leafOf(t, cg, "leak.1")
	want := map[string]string{"memory.max": "25165824", "memory.swap.max": "0", "pids.max": "32"}
	if strings.Contains(testutil.CgroupFile(t, cg, "cgroup.controllers"), "cpu") {
		want["cpu.weight"] = "150"
	}
	for file, v := range want {
		if got := testutil.CgroupFile(t, leaf, file); got != v {
			t.Errorf("%s/%s = %s; want %s, the size in dyno.toml", leaf, file, got, v)
		}
	}
	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 0 {
		t.Errorf("dyno start exited %d", st)
	}
	for _, l := range s.lines() {
		if strings.HasSuffix(l, "]: survived") || strings.HasSuffix(l, "]: forked all") {
			t.Errorf("a limit did not hold: %q", l)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(cg, "dynos", "*.*-*")); len(left) != 0 {
		t.Errorf("leaves left after the stop: %v", left)
	}
}

// A dyno whose processes all ignore SIGTERM is killed after the grace
// period through cgroup.kill, background processes included, and its
// leaf is empty and gone.
func TestKernelStopKillsLeaf(t *testing.T) {
	t.Parallel()
	marker := uniqueSleep()
	e := newIsolatedEnv(t, map[string]string{
		// An ignored signal stays ignored across fork and exec
		// (signal(7)), so both sleeps ignore SIGTERM too.
		"Procfile": "stubborn: trap '' TERM; sleep " + marker + " & sleep " + marker + " & echo ready; wait\n",
	})
	cg := testutil.DelegatedCgroup(t)
	s := e.startIn(t, cg, "-t", "0.5", "--require-limits")
	s.waitFor(`app\[stubborn\.1\]: ready$`)
	leaf := leafOf(t, cg, "stubborn.1")
	if n := strings.Count(testutil.CgroupFile(t, leaf, "cgroup.procs"), "\n") + 1; n < 4 {
		t.Fatalf("%s holds %d processes; want init, sh and both sleeps", leaf, n)
	}
	s.signal(syscall.SIGINT)
	s.waitFor(`heroku\[stubborn\.1\]: Error R12 \(Exit timeout\)`)
	s.waitFor(`heroku\[stubborn\.1\]: Process exited with status 137$`)
	if st := s.wait(); st != 0 {
		t.Errorf("dyno start exited %d", st)
	}
	if markerAlive(marker) {
		t.Errorf("a sleep %s outlived its dyno", marker)
	}
	if _, err := os.Stat(leaf); !os.IsNotExist(err) {
		t.Errorf("%s is left after the stop (%v)", leaf, err)
	}
}

// --require-limits requires memory.max and pids.max: without the cpu
// controller (a weight, not a limit) dyno runs; without memory it refuses
// in one line.
func TestKernelRequireLimits(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	for _, c := range []struct {
		enable string
		ok     bool
	}{
		{"+memory +pids", true},
		{"+pids", false},
	} {
		// The delegate hands its child only some controllers.
		parent := testutil.DelegatedCgroup(t)
		for _, ctl := range strings.Fields(c.enable) {
			if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(ctl), 0); err != nil {
				t.Fatal(err)
			}
		}
		cg := filepath.Join(parent, "dyno")
		if err := os.Mkdir(cg, 0o755); err != nil {
			t.Fatal(err)
		}
		testutil.GiveToNobody(t, parent)
		cmd := e.command("run", "--isolate", "--require-limits", "echo ran")
		testutil.StartInCgroup(t, cmd, cg)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, _ := cmd.Output()
		st := cmd.ProcessState.ExitCode()
		switch {
		case c.ok && (st != 0 || string(out) != "ran\n"):
			t.Errorf("with %s: exit %d, %q, %q; want it to run", c.enable, st, out, stderr.String())
		case !c.ok && (st == 0 || len(out) != 0 || !strings.Contains(stderr.String(), "--require-limits") ||
			!strings.Contains(stderr.String(), "memory") || strings.Count(stderr.String(), "\n") != 1):
			t.Errorf("with %s: exit %d, %q, %q; want one line of error naming memory", c.enable, st, out, stderr.String())
		}
	}
}

// The daemon's dynos run in leaves of the size's limits, and dyno ps
// --json reports each dyno's memory and CPU from its leaf.
func TestKernelDaemonStats(t *testing.T) {
	// Not parallel: the daemon hands out ports from 20000.
	cg := testutil.DelegatedCgroup(t)
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "stats", "worker: { head -c 12M /dev/zero; exec sleep 1000; } | tail -c 12M\n")
	cmd := e.command("daemon")
	testutil.StartInCgroup(t, cmd, cg)
	d := e.startDaemonCmd(t, cmd)
	defer func() {
		if t.Failed() {
			t.Logf("daemon:\n%s", d.out.String())
		}
	}()
	e.must(t, "features:enable", "log-runtime-metrics", "-a", "stats")
	e.must(t, "ps:scale", "worker=1", "-a", "stats")

	type dynoJSON struct {
		Name           string  `json:"name"`
		MemoryBytes    int64   `json:"memory_bytes"`
		CPUSeconds     float64 `json:"cpu_seconds"`
		RuntimeMetrics *struct {
			RSS   int64 `json:"memory_rss"`
			Quota int64 `json:"memory_quota"`
		} `json:"runtime_metrics"`
	}
	var dynos []dynoJSON
	deadline := time.Now().Add(kernelWait)
	for {
		out := e.must(t, "ps", "--json", "-a", "stats")
		if err := json.Unmarshal([]byte(out), &dynos); err != nil {
			t.Fatalf("ps --json: %v: %s", err, out)
		}
		// The fixture's release has a web process too, at 1.
		dynos = slices.DeleteFunc(dynos, func(d dynoJSON) bool { return d.Name != "worker.1" })
		if len(dynos) == 1 && dynos[0].MemoryBytes >= 12<<20 && dynos[0].CPUSeconds > 0 &&
			dynos[0].RuntimeMetrics != nil && dynos[0].RuntimeMetrics.RSS >= 12<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ps --json never showed worker.1 holding 12 MiB with CPU time: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	leaf := leafOf(t, cg, "worker.1")
	// standard-1x: a 512 MB quota, memory.max at twice that, 256 pids.
	for file, want := range map[string]string{"memory.max": "1073741824", "pids.max": "256"} {
		if got := testutil.CgroupFile(t, leaf, file); got != want {
			t.Errorf("%s/%s = %s; want %s", leaf, file, got, want)
		}
	}
	if m := dynos[0].MemoryBytes; m > 1<<30 {
		t.Errorf("memory_bytes %d is above memory.max", m)
	}
	if q := dynos[0].RuntimeMetrics.Quota; q != 512<<20 {
		t.Errorf("runtime_metrics memory_quota %d; want standard-1x's 512 MB", q)
	}
	// log-runtime-metrics: Heroku's two lines every 20 s, the tail's
	// 12 MiB in memory_rss (12.xx MB), memory_quota the size's.
	kernelLog(t, e, "stats", `heroku\[worker\.1\]: source=worker\.1 dyno=heroku\.stats\.[0-9a-f-]{36} sample#load_avg_1m=\d+\.\d\d sample#load_avg_5m=`)
	kernelLog(t, e, "stats", `(?m)heroku\[worker\.1\]: source=worker\.1 dyno=heroku\.stats\.[0-9a-f-]{36} sample#memory_total=\d+\.\d\dMB sample#memory_rss=1[2-9]\.\d\dMB .* sample#memory_quota=512\.00MB$`)

	// The dashboard's samples, every 10 s: worker's memory from its
	// cgroup (the tail's 12 MiB), against standard-1x's quota.
	store, err := appmetrics.Open(filepath.Join(e.home, "apps", "stats", "metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	deadline = time.Now().Add(kernelWait)
	for {
		ser, err := store.Read(appmetrics.Every, time.Now().Add(-time.Hour), time.Now().Add(appmetrics.Every))
		if err != nil {
			t.Fatal(err)
		}
		w := ser.Types["worker"]
		if n := len(w.Memory); n > 0 && w.Memory[n-1].V >= 12<<20 && w.Quota == 512<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the metrics store never held worker's 12 MiB against a 512 MB quota: %+v", w)
		}
		time.Sleep(500 * time.Millisecond)
	}
	d.stop(syscall.SIGTERM)
}

// kernelLog waits, up to kernelWait (the guest is slow, and runtime
// metrics come every 20 s), for a line of the app's logs matching re.
func kernelLog(t *testing.T, e *isolatedEnv, appName, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(kernelWait)
	for {
		out, _ := e.dynoOut(t, "logs", "-a", appName, "-n", "1500")
		if rx.MatchString(out) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %s within %s:\n%s", re, kernelWait, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
