package supervisor

import (
	"math"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/isolate/cgroup"
)

// The load average decays as the kernel's: one task always runnable
// brings the 1-minute average to 1 - e^-1 after a minute, and the
// longer ones more slowly.
func TestLoadAvg(t *testing.T) {
	t.Parallel()
	var a loadAvg
	for range 12 { // a minute of 5 s samples
		a.sample(1, loadEvery)
	}
	if want := 1 - math.Exp(-1); math.Abs(a.m1-want) > 1e-9 {
		t.Errorf("1m after a minute of one task: %f, want %f", a.m1, want)
	}
	if !(a.m5 < a.m1 && a.m15 < a.m5 && a.m15 > 0) {
		t.Errorf("averages %+v: want 0 < 15m < 5m < 1m", a)
	}
	for range 120 {
		a.sample(0, loadEvery)
	}
	if a.m1 > 0.001 {
		t.Errorf("1m after ten idle minutes: %f", a.m1)
	}
}

// The lines are Heroku's, figure for figure.
func TestRuntimeMetricsLines(t *testing.T) {
	t.Parallel()
	r := cgroup.Runtime{Stats: cgroup.Stats{SwapCurrent: 0}, Anon: 22020096, File: 524288, ReadBytes: 4096 * 348836, WriteBytes: 4096 * 343403}
	m := runtimeMetrics(r, 512<<20, loadAvg{m1: 2.456, m5: 1.06, m15: 0.994})
	l := m.lines("web.1", "heroku.shop.d97d0ea7-cf3d-411b-b453-d2943a50b456")
	if want := "source=web.1 dyno=heroku.shop.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#load_avg_1m=2.46 sample#load_avg_5m=1.06 sample#load_avg_15m=0.99"; l[0] != want {
		t.Errorf("load line\n%s\nwant\n%s", l[0], want)
	}
	if want := "source=web.1 dyno=heroku.shop.d97d0ea7-cf3d-411b-b453-d2943a50b456 sample#memory_total=21.50MB sample#memory_rss=21.00MB sample#memory_cache=0.50MB sample#memory_swap=0.00MB sample#memory_pgpgin=348836pages sample#memory_pgpgout=343403pages sample#memory_quota=512.00MB"; l[1] != want {
		t.Errorf("memory line\n%s\nwant\n%s", l[1], want)
	}
}

// A metered dyno samples its cgroup: ps carries the figures whether or
// not the app asked for the lines; with RuntimeMetrics set, every fourth
// sample logs Heroku's two lines as heroku[NAME], with the process's
// own UUID; turned off by a reconcile, no more lines and no restart.
func TestRuntimeMetricsLogged(t *testing.T) {
	t.Parallel()
	cfg := DynoConfig{Name: "worker.1", Type: "worker", Command: "x", MemoryQuota: 512 << 20}
	m, r, logs := newTestManager(t, Options{LoadSample: 5 * time.Millisecond}, cfg)
	r.wrap = func(p *fakeProcess) Process { return &meteredProcess{fakeProcess: p, mem: 21 << 20} }
	runAsync(m)
	<-r.started
	var st DynoStatus
	for st.Metrics == nil {
		st = m.Status()[0]
		runtime.Gosched()
	}
	if st.Metrics.MemoryRSS != 21<<20 || st.Metrics.MemoryQuota != 512<<20 {
		t.Errorf("ps metrics %+v", *st.Metrics)
	}
	if strings.Contains(logs.String(), "sample#") {
		t.Errorf("lines without the feature:\n%s", logs)
	}

	cfg.RuntimeMetrics = "heroku.shop"
	m.Reconcile([]DynoConfig{cfg})
	logs.wait(t, "sample#memory_quota=512.00MB", 1)
	logs.wait(t, "sample#load_avg_15m=", 1)
	line := regexp.MustCompile(`heroku\[worker\.1\]: source=worker\.1 dyno=heroku\.shop\.[0-9a-f-]{36} sample#memory_total=21\.00MB sample#memory_rss=21\.00MB sample#memory_cache=0\.00MB sample#memory_swap=0\.00MB sample#memory_pgpgin=0pages sample#memory_pgpgout=0pages sample#memory_quota=512\.00MB\n`)
	if !line.MatchString(logs.String()) {
		t.Errorf("no memory line in Heroku's form:\n%s", logs)
	}
	if n := logs.count("Restarting"); n != 0 {
		t.Errorf("turning metrics on restarted the dyno:\n%s", logs)
	}
}
