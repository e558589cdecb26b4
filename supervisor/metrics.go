package supervisor

import (
	"fmt"
	"math"
	"time"

	"github.com/dyno-run/dyno/isolate/cgroup"
)

// Heroku's log-runtime-metrics: every 20 s, a dyno with the feature on
// logs its load average and its memory, read from its cgroup, as
// heroku[NAME] lines.
const (
	// loadEvery is how often the load average takes a sample, as the
	// kernel's does (LOAD_FREQ, 5 s).
	loadEvery = 5 * time.Second
	// samplesPerLine: the lines go out every fourth sample, 20 s.
	samplesPerLine = 4
)

// loadAvg is one dyno's load average over 1, 5 and 15 minutes: the
// kernel's exponentially decaying mean of the tasks running, waiting to
// run or in uninterruptible sleep (calc_load in kernel/sched/loadavg.c),
// counted among the dyno's own.
type loadAvg struct {
	m1, m5, m15 float64
}

// sample folds in n tasks counted now, every after the last.
func (a *loadAvg) sample(n int, every time.Duration) {
	fold := func(avg *float64, period time.Duration) {
		e := math.Exp(-float64(every) / float64(period))
		*avg = *avg*e + float64(n)*(1-e)
	}
	fold(&a.m1, time.Minute)
	fold(&a.m5, 5*time.Minute)
	fold(&a.m15, 15*time.Minute)
}

// RuntimeMetrics are the figures of Heroku's log-runtime-metrics lines,
// which `dyno ps --json` carries too.
type RuntimeMetrics struct {
	MemoryTotal int64 `json:"memory_total"` // rss + cache + swap, bytes
	MemoryRSS   int64 `json:"memory_rss"`
	MemoryCache int64 `json:"memory_cache"`
	MemorySwap  int64 `json:"memory_swap"`
	// PagesIn and PagesOut are 4 KiB pages read from and written to
	// disk (cgroup.Runtime's ReadBytes and WriteBytes).
	PagesIn     int64   `json:"memory_pgpgin"`
	PagesOut    int64   `json:"memory_pgpgout"`
	MemoryQuota int64   `json:"memory_quota"`
	Load1m      float64 `json:"load_avg_1m"`
	Load5m      float64 `json:"load_avg_5m"`
	Load15m     float64 `json:"load_avg_15m"`
}

// runtimeMetrics makes the figures from a reading of the dyno's cgroup,
// its quota and its load average.
func runtimeMetrics(r cgroup.Runtime, quota int64, load loadAvg) RuntimeMetrics {
	const page = 4096
	return RuntimeMetrics{
		MemoryTotal: r.Anon + r.File + r.SwapCurrent,
		MemoryRSS:   r.Anon, MemoryCache: r.File, MemorySwap: r.SwapCurrent,
		PagesIn: r.ReadBytes / page, PagesOut: r.WriteBytes / page,
		MemoryQuota: quota,
		Load1m:      load.m1, Load5m: load.m5, Load15m: load.m15,
	}
}

// lines are Heroku's two lines for a dyno: its load average, then its
// memory, each after "source=NAME dyno=ID".
func (m RuntimeMetrics) lines(source, dynoID string) [2]string {
	mb := func(b int64) string { return fmt.Sprintf("%.2fMB", float64(b)/(1<<20)) }
	head := "source=" + source + " dyno=" + dynoID
	return [2]string{
		fmt.Sprintf("%s sample#load_avg_1m=%.2f sample#load_avg_5m=%.2f sample#load_avg_15m=%.2f",
			head, m.Load1m, m.Load5m, m.Load15m),
		fmt.Sprintf("%s sample#memory_total=%s sample#memory_rss=%s sample#memory_cache=%s sample#memory_swap=%s sample#memory_pgpgin=%dpages sample#memory_pgpgout=%dpages sample#memory_quota=%s",
			head, mb(m.MemoryTotal), mb(m.MemoryRSS), mb(m.MemoryCache), mb(m.MemorySwap), m.PagesIn, m.PagesOut, mb(m.MemoryQuota)),
	}
}
