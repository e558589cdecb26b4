package appmetrics

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor/router"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "metrics")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// t0 is a period start of every archive.
var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func TestRecordAndReadTypes(t *testing.T) {
	s, dir := open(t)
	quota := int64(512 << 20)
	for i := range 4 {
		at := t0.Add(time.Duration(i) * Every)
		dynos := []Dyno{
			{Name: "web.1", Type: "web", Memory: 100 << 20, Quota: quota, CPU: time.Duration(i) * 5 * time.Second, Pid: 10, Measured: true},
			{Name: "web.2", Type: "web", Memory: 300 << 20, Quota: quota, CPU: time.Duration(i) * time.Second, Pid: 11, Measured: true},
			{Name: "worker.1", Type: "worker", Memory: 50 << 20, Quota: quota, Pid: 12, Measured: false},
		}
		if err := s.Record(at, dynos, router.Traffic{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Read(Every, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	web, ok := got.Types["web"]
	if !ok {
		t.Fatalf("no web series; types %v", got.TypeNames())
	}
	if _, ok := got.Types["worker"]; ok {
		t.Error("worker, never measured, has a series")
	}
	// The first sample only sets the CPU mark: 3 points, not 4.
	if len(web.Memory) != 3 {
		t.Fatalf("web memory has %d points, want 3 (the first sample sets the CPU mark)", len(web.Memory))
	}
	p := web.Memory[0]
	if !p.T.Equal(t0.Add(Every)) || p.V != 200<<20 {
		t.Errorf("first point %v %v, want %v and the mean 200 MB", p.T, p.V, t0.Add(Every))
	}
	if web.MemoryMax[0].V != 300<<20 || web.Quota != quota {
		t.Errorf("max %v quota %d", web.MemoryMax[0].V, web.Quota)
	}
	// web.1 used 5 s of CPU in 10 s (0.5), web.2 1 s (0.1).
	if c := web.CPU[0].V; math.Abs(c-0.3) > 1e-6 {
		t.Errorf("mean CPU %v, want 0.3", c)
	}
	if c := web.CPUMax[0].V; math.Abs(c-0.5) > 1e-6 {
		t.Errorf("max CPU %v, want 0.5", c)
	}
	for _, name := range []string{"app.rrd", "type-web.rrd", "dyno-web.1.rrd", "dyno-web.2.rrd", "events"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Coarser archives have the same figures folded.
	minute, err := s.Read(time.Minute, t0, t0.Add(time.Hour))
	if err != nil || len(minute.Types["web"].Memory) != 1 || minute.Types["web"].Memory[0].V != 200<<20 {
		t.Errorf("1 min archive: %+v, %v", minute.Types["web"], err)
	}
}

func TestNewProcessRestartsCPU(t *testing.T) {
	s, _ := open(t)
	rec := func(i int, cpu time.Duration, pid int) {
		d := Dyno{Name: "web.1", Type: "web", Memory: 1 << 20, CPU: cpu, Pid: pid, Measured: true}
		if err := s.Record(t0.Add(time.Duration(i)*Every), []Dyno{d}, router.Traffic{}); err != nil {
			t.Fatal(err)
		}
	}
	rec(0, 50*time.Second, 10)
	rec(1, 52*time.Second, 10)
	rec(2, time.Second, 99) // restarted: a new process, CPU from 0
	rec(3, 3*time.Second, 99)
	got, _ := s.Read(Every, t0, t0.Add(time.Hour))
	cpu := got.Types["web"].CPU
	if len(cpu) != 2 || math.Abs(cpu[0].V-0.2) > 1e-6 || math.Abs(cpu[1].V-0.2) > 1e-6 {
		t.Fatalf("CPU points %+v; want 0.2 at periods 1 and 3, none at 2 (new process)", cpu)
	}
}

func TestTrafficAndQuantiles(t *testing.T) {
	s, _ := open(t)
	var tr router.Traffic
	tr.Requests = 100
	tr.Classes[1], tr.Classes[4] = 90, 10
	tr.Codes[router.H12] = 4
	// 50 under 1 ms, 45 in (50, 75] ms, 5 in (1, 1.5] s.
	tr.Latency[0], tr.Latency[10], tr.Latency[18] = 50, 45, 5
	if err := s.Record(t0, nil, tr); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(Every, t0, t0.Add(Every))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Requests) != 1 || got.Requests[0].V != 600 {
		t.Errorf("requests %+v; want 600 a minute (100 in 10 s)", got.Requests)
	}
	if got.Classes[1][0].V != 540 || got.Classes[4][0].V != 60 {
		t.Errorf("classes 2xx %v 5xx %v", got.Classes[1], got.Classes[4])
	}
	if len(got.Codes[router.H12]) != 1 || got.Codes[router.H12][0].V != 24 || len(got.Codes[router.H10]) != 0 {
		t.Errorf("H12 %+v, H10 %+v", got.Codes[router.H12], got.Codes[router.H10])
	}
	if p := got.P50[0].V; p < 0 || p > 1 {
		t.Errorf("p50 %v ms, want within the first bucket (0..1 ms]", p)
	}
	if p := got.P95[0].V; p < 50 || p > 75 {
		t.Errorf("p95 %v ms, want in (50, 75]", p)
	}
	if p := got.P99[0].V; p < 1000 || p > 1500 {
		t.Errorf("p99 %v ms, want in (1000, 1500]", p)
	}
	if q := Quantile(make([]float64, router.LatencyBuckets), 0.5); !math.IsNaN(q) {
		t.Errorf("quantile of nothing = %v, want NaN", q)
	}
}

func TestR14MarkedWhenADynoGoesOver(t *testing.T) {
	s, _ := open(t)
	mem := []int64{100, 600, 700, 100, 600}
	for i, m := range mem {
		d := Dyno{Name: "web.1", Type: "web", Memory: m << 20, Quota: 512 << 20, CPU: time.Duration(i), Pid: 1, Measured: true}
		if err := s.Record(t0.Add(time.Duration(i)*Every), []Dyno{d}, router.Traffic{}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := s.Events(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 2 || ev[0].Kind != "r14" || !ev[0].Time.Equal(t0.Add(Every)) || !ev[1].Time.Equal(t0.Add(4*Every)) {
		t.Fatalf("events %+v; want R14 at the two crossings, not while it stays over", ev)
	}
	if !strings.Contains(ev[0].Text, "web.1") || !strings.Contains(ev[0].Text, "600 MB of 512 MB") {
		t.Errorf("text %q", ev[0].Text)
	}
}

func TestEventsRingKeepsTheLast(t *testing.T) {
	s, dir := open(t)
	for i := range eventSlots + 10 {
		if err := s.AddEvent(Event{Time: t0.Add(time.Duration(i) * time.Second), Kind: "crash", Text: strings.Repeat("é", 200)}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := s.Events(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != eventSlots || !ev[0].Time.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("%d events from %v; want %d from the 11th", len(ev), ev[0].Time, eventSlots)
	}
	if len(ev[0].Text) > maxText || !strings.HasPrefix(ev[0].Text, "é") || strings.ContainsRune(ev[0].Text, '\uFFFD') {
		t.Errorf("long text not cut at a rune: %d bytes", len(ev[0].Text))
	}
	later, _ := s.Events(t0.Add(time.Duration(eventSlots+5) * time.Second))
	if len(later) != 5 {
		t.Errorf("events since the 516th: %d, want 5", len(later))
	}
	fi, _ := os.Stat(filepath.Join(dir, "events"))
	if fi.Size() != eventsSize {
		t.Errorf("events file %d bytes, want %d", fi.Size(), eventsSize)
	}
}

func TestDamagedEventsFileIsNamed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events")
	os.WriteFile(path, []byte("not events"), 0o600)
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("Open with a damaged events file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not events" {
		t.Error("the damaged file was changed")
	}
}

func TestSweepRemovesUnusedSeries(t *testing.T) {
	s, dir := open(t)
	d := func(name string) Dyno {
		return Dyno{Name: name, Type: "web", Memory: 1, Pid: 1, Measured: true}
	}
	s.Record(t0, []Dyno{d("web.1"), d("web.2")}, router.Traffic{})
	s.Record(t0.Add(Every), []Dyno{d("web.1"), d("web.2")}, router.Traffic{})
	old := time.Now().Add(-9 * 24 * time.Hour)
	os.Chtimes(filepath.Join(dir, "dyno-web.2.rrd"), old, old)
	if err := s.Sweep(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dyno-web.2.rrd")); !os.IsNotExist(err) {
		t.Errorf("web.2's file, unused 9 days, is still there: %v", err)
	}
	for _, keep := range []string{"dyno-web.1.rrd", "app.rrd", "type-web.rrd"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("%s: %v", keep, err)
		}
	}
}

func TestSizeForIsWhatTheFilesTake(t *testing.T) {
	s, dir := open(t)
	var dynos []Dyno
	for i := range 3 {
		dynos = append(dynos, Dyno{Name: "web." + string(rune('1'+i)), Type: "web", Memory: 1, Pid: i, Measured: true})
	}
	s.Record(t0, dynos, router.Traffic{})
	s.Record(t0.Add(Every), dynos, router.Traffic{})
	var total int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := e.Info()
		total += fi.Size()
	}
	if want := SizeFor(1, 3); total != want {
		t.Fatalf("files take %d bytes, SizeFor(1, 3) = %d", total, want)
	}
}

func TestTreeCountsChildren(t *testing.T) {
	// A shell whose child burns CPU and holds memory; the tree's
	// figures include the child's.
	cmd := exec.Command("sh", "-c", `sh -c 'x=0; while [ $x -lt 400000 ]; do x=$((x+1)); done; echo done; sleep 60' & wait`)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf[:4]) != "done" {
		t.Fatalf("child: %q %v", buf, err)
	}
	rss, cpu, err := Tree(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	selfRSS, selfCPU, _ := one(cmd.Process.Pid, int64(os.Getpagesize()))
	if rss <= selfRSS || cpu <= selfCPU {
		t.Errorf("tree rss %d cpu %v; the shell alone %d, %v: the child is not counted", rss, cpu, selfRSS, selfCPU)
	}
	if cpu < 100*time.Millisecond {
		t.Errorf("tree cpu %v; the child's loop used more", cpu)
	}
	if _, _, err := Tree(1 << 30); err == nil {
		t.Error("Tree of no process: no error")
	}
}

func TestDynoMemoryReadsTheNamedDynos(t *testing.T) {
	s, _ := open(t)
	var dynos []Dyno
	for i := 1; i <= 3; i++ {
		dynos = append(dynos, Dyno{Name: "web." + string(rune('0'+i)), Type: "web", Memory: int64(i) << 20, Pid: i, Measured: true})
	}
	s.Record(t0, dynos, router.Traffic{})
	s.Record(t0.Add(Every), dynos, router.Traffic{})
	got, err := s.DynoMemory([]string{"web.2", "web.3", "web.9"}, Every, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got["web.2"]) != 1 || got["web.2"][0].V != 2<<20 || got["web.1"] != nil {
		t.Fatalf("per dyno: %v; want web.2 at 2 MB and web.3, web.9 (no series) left out", got)
	}
}

// Memory counts swap already: R14 compares it alone to the quota.
func TestR14CountsSwapOnce(t *testing.T) {
	s, _ := open(t)
	for i := range 2 {
		d := Dyno{Name: "web.1", Type: "web", Memory: 450 << 20, Swap: 100 << 20, Quota: 512 << 20, CPU: time.Duration(i), Pid: 1, Measured: true}
		s.Record(t0.Add(time.Duration(i)*Every), []Dyno{d}, router.Traffic{})
	}
	if ev, _ := s.Events(time.Time{}); len(ev) != 0 {
		t.Fatalf("R14 for 450 MB (swap included) of 512: %+v", ev)
	}
}
