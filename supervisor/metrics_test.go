package supervisor

import (
	"math"
	"testing"

	"github.com/dyno-run/dyno/isolate/cgroup"
)

// The load average decays as the kernel's: one task always runnable
// brings the 1-minute average to 1 - e^-1 after a minute, and the
// longer ones more slowly.
func TestLoadAvg(t *testing.T) {
	t.Parallel()
	var a loadAvg
	for range 12 { // a minute of 5 s samples
		a.sample(1)
	}
	if want := 1 - math.Exp(-1); math.Abs(a.m1-want) > 1e-9 {
		t.Errorf("1m after a minute of one task: %f, want %f", a.m1, want)
	}
	if !(a.m5 < a.m1 && a.m15 < a.m5 && a.m15 > 0) {
		t.Errorf("averages %+v: want 0 < 15m < 5m < 1m", a)
	}
	for range 120 {
		a.sample(0)
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
