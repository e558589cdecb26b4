// Package appmetrics is an app's metrics on disk, for the dashboard: a
// sample every 10 s of each dyno (memory, CPU), of each process type
// (its dynos together) and of the app's HTTP traffic as the router saw
// it, each series in a round-robin file of fixed size (supervisor/rrd),
// plus a ring of events (crashes, restarts, R14 and R15) to mark on the
// charts. So a week of any number of samples costs the same disk:
// SizeFor says how much.
//
// Files, in the app's metrics folder:
//
//	app.rrd            the router's counts (schema "app")
//	type-TYPE.rrd      a process type's dynos together ("type")
//	dyno-NAME.rrd      one dyno, web.1 ("dyno")
//	events             the events ring (events.go)
//
// One goroutine (the daemon's sampler) records; any number read.
package appmetrics

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dyno-run/dyno/supervisor/router"
	"github.com/dyno-run/dyno/supervisor/rrd"
)

// Every is how often a sample is taken.
const Every = 10 * time.Second

// Fields of the dyno schema.
const (
	dynoMemory    = iota // bytes, mean
	dynoMemoryMax        // bytes, max
	dynoRSS              // bytes, mean
	dynoSwap             // bytes, mean
	dynoQuota            // bytes, last
	dynoCPU              // share of a CPU, mean
	dynoCPUMax           // share of a CPU, max
	dynoFields
)

// Fields of the type schema.
const (
	typeMemory    = iota // mean over the type's dynos, mean over time
	typeMemoryMax        // the largest dyno's, max
	typeQuota            // last
	typeCPU              // mean share over the dynos, mean
	typeCPUMax           // the busiest dyno's share, max
	typeDynos            // how many dynos were measured, last
	typeFields
)

// Fields of the app schema: requests, then by class, by code (OK left
// out) and the latency histogram, every one a count.
const (
	appRequests = 0
	appClasses  = 1
	appCodes    = appClasses + 5
	appLatency  = appCodes + router.NumCodes - 1
	appFields   = appLatency + router.LatencyBuckets
)

func schema(name string, folds ...rrd.Fold) rrd.Schema { return rrd.Schema{Name: name, Fields: folds} }

func dynoSchema() rrd.Schema {
	return schema("dyno", rrd.Mean, rrd.Max, rrd.Mean, rrd.Mean, rrd.Last, rrd.Mean, rrd.Max)
}

func typeSchema() rrd.Schema {
	return schema("type", rrd.Mean, rrd.Max, rrd.Last, rrd.Mean, rrd.Max, rrd.Last)
}

func appSchema() rrd.Schema {
	f := make([]rrd.Fold, appFields)
	for i := range f {
		f[i] = rrd.Sum
	}
	return schema("app", f...)
}

// SizeFor is the disk a week of an app with types process types and
// dynos dynos costs: fixed, whatever the traffic.
func SizeFor(types, dynos int) int64 {
	return rrd.Size(appSchema()) + int64(types)*rrd.Size(typeSchema()) + int64(dynos)*rrd.Size(dynoSchema()) + eventsSize
}

// Dyno is one dyno's reading.
type Dyno struct {
	Name, Type string
	// Memory is what counts against the quota: resident, cache and
	// swap, as the R14 line counts it; RSS and Swap are parts of it.
	Memory, RSS int64 // bytes
	Swap, Quota int64
	CPU         time.Duration // used since its process started
	// Pid is its process's: a new process counts its CPU from 0.
	Pid int
	// Measured is false when nothing could read the dyno's figures
	// (its process had just gone): it is left out of the sample.
	Measured bool
}

// Store is one app's metrics folder.
type Store struct {
	dir string

	mu    sync.Mutex
	files map[string]*rrd.File
	// last is each dyno's previous CPU reading, for the share since.
	last map[string]cpuReading
	// above is the dynos over their quota at the last sample: R14 is
	// marked when a dyno goes over, not every 10 s while it stays.
	above map[string]bool
	// now is each dyno's last reading: its memory and share of a CPU.
	now    map[string]reading
	events *events
	closed bool
}

type reading struct {
	memory int64
	cpu    float64
}

// Now is dyno name's memory and share of a CPU at the last sample.
func (s *Store) Now(name string) (memory int64, cpu float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.now[name]
	return r.memory, r.cpu, ok
}

type cpuReading struct {
	at  time.Time
	cpu time.Duration
	pid int
}

// Open opens (making) the metrics folder dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("metrics %s: %w", dir, err)
	}
	ev, err := openEvents(filepath.Join(dir, "events"))
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, files: map[string]*rrd.File{}, last: map[string]cpuReading{}, above: map[string]bool{},
		now: map[string]reading{}, events: ev}, nil
}

// Close closes the files.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	s.files = map[string]*rrd.File{}
	errs = append(errs, s.events.close())
	return errors.Join(errs...)
}

// file opens the series name of schema sc, once. Under s.mu.
func (s *Store) file(name string, sc rrd.Schema) (*rrd.File, error) {
	if f, ok := s.files[name]; ok {
		return f, nil
	}
	f, err := rrd.Open(filepath.Join(s.dir, name+".rrd"), sc)
	if err != nil {
		return nil, err
	}
	s.files[name] = f
	return f, nil
}

// Record stores the sample taken at t: every formation dyno's reading
// and the router's counts since the last sample. It marks R14 when a
// dyno goes over its quota.
func (s *Store) Record(t time.Time, dynos []Dyno, traffic router.Traffic) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil // the app was destroyed while its sample was taken
	}
	var errs []error
	type agg struct {
		n                  int
		mem, memMax, quota float64
		cpu, cpuMax        float64
	}
	types := map[string]*agg{}
	seen := map[string]bool{}
	for _, d := range dynos {
		seen[d.Name] = true
		if !d.Measured {
			continue
		}
		// A share of a CPU needs two readings of the same process: a
		// dyno's first sample after a start only sets the mark.
		prev, ok := s.last[d.Name]
		s.last[d.Name] = cpuReading{at: t, cpu: d.CPU, pid: d.Pid}
		if !ok || prev.pid != d.Pid || d.CPU < prev.cpu || !t.After(prev.at) {
			continue
		}
		cpu := float64(d.CPU-prev.cpu) / float64(t.Sub(prev.at))
		s.now[d.Name] = reading{d.Memory, cpu}
		a := types[d.Type]
		if a == nil {
			a = &agg{}
			types[d.Type] = a
		}
		a.quota = float64(d.Quota)
		a.n++
		a.mem += float64(d.Memory)
		a.memMax = max(a.memMax, float64(d.Memory))
		a.cpu += cpu
		a.cpuMax = max(a.cpuMax, cpu)
		// Memory counts swap already, as the R14 line's figure does.
		if d.Quota > 0 && d.Memory > d.Quota {
			if !s.above[d.Name] {
				errs = append(errs, s.events.add(Event{Time: t, Kind: "r14",
					Text: fmt.Sprintf("%s: R14 memory quota exceeded, %s of %s", d.Name, mb(d.Memory), mb(d.Quota))}))
			}
			s.above[d.Name] = true
		} else {
			delete(s.above, d.Name)
		}
		f, err := s.file("dyno-"+d.Name, dynoSchema())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		v := [dynoFields]float64{dynoMemory: float64(d.Memory), dynoMemoryMax: float64(d.Memory), dynoRSS: float64(d.RSS),
			dynoSwap: float64(d.Swap), dynoQuota: float64(d.Quota), dynoCPU: cpu, dynoCPUMax: cpu}
		errs = append(errs, f.Add(t, v[:]))
	}
	for name := range s.last {
		if !seen[name] {
			delete(s.last, name)
			delete(s.above, name)
			delete(s.now, name)
		}
	}
	for typ, a := range types {
		f, err := s.file("type-"+typ, typeSchema())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		v := [typeFields]float64{typeMemory: a.mem / float64(a.n), typeMemoryMax: a.memMax, typeQuota: a.quota,
			typeCPU: a.cpu / float64(a.n), typeCPUMax: a.cpuMax, typeDynos: float64(a.n)}
		errs = append(errs, f.Add(t, v[:]))
	}
	f, err := s.file("app", appSchema())
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var v [appFields]float64
	v[appRequests] = float64(traffic.Requests)
	for i, c := range traffic.Classes {
		v[appClasses+i] = float64(c)
	}
	for i := 1; i < router.NumCodes; i++ {
		v[appCodes+i-1] = float64(traffic.Codes[i])
	}
	for i, c := range traffic.Latency {
		v[appLatency+i] = float64(c)
	}
	errs = append(errs, f.Add(t, v[:]))
	return errors.Join(errs...)
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

// Event marks something that happened to the app at a time.
type Event struct {
	Time time.Time
	Kind string // "crash", "restart", "r14", "r15"
	Text string
}

// AddEvent records e in the events ring.
func (s *Store) AddEvent(e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.events.add(e)
}

// Events are the events from from on, oldest first.
func (s *Store) Events(from time.Time) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil
	}
	return s.events.since(from)
}

// Sweep removes the files of dynos and types that have not been
// sampled for a week: scaled away, their charts are empty anyway.
func (s *Store) Sweep(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("sweep metrics %s: %w", s.dir, err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".rrd")
		if !ok || name == "app" {
			continue
		}
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < keepUnused {
			continue
		}
		if f, ok := s.files[name]; ok {
			f.Close()
			delete(s.files, name)
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sweep metrics %s: %w", s.dir, err)
		}
	}
	return nil
}

// keepUnused is how long a series file is kept without a sample: the
// longest range the charts show.
const keepUnused = 8 * 24 * time.Hour

// Series are the figures a range reads, one point a period.
type Series struct {
	Requests      []Point // requests a minute
	P50, P95, P99 []Point // milliseconds
	Classes       [5][]Point
	Codes         [router.NumCodes][]Point // a minute, by code; [0] unused
	Types         map[string]TypeSeries
}

// TypeSeries are a process type's figures.
type TypeSeries struct {
	Memory, MemoryMax []Point
	CPU, CPUMax       []Point
	Quota             int64
}

// Point is a period's value.
type Point struct {
	T time.Time
	V float64
}

// Read reads every series over [from, to) from the archive of step.
func (s *Store) Read(step time.Duration, from, to time.Time) (*Series, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &Series{Types: map[string]TypeSeries{}}
	if s.closed {
		return out, nil
	}
	f, err := s.file("app", appSchema())
	if err != nil {
		return nil, err
	}
	pts, err := f.Read(step, from, to)
	if err != nil {
		return nil, err
	}
	perMinute := float64(time.Minute) / float64(step)
	for _, p := range pts {
		out.Requests = append(out.Requests, Point{p.T, p.V[appRequests] * perMinute})
		for i := range out.Classes {
			out.Classes[i] = append(out.Classes[i], Point{p.T, p.V[appClasses+i] * perMinute})
		}
		for i := 1; i < router.NumCodes; i++ {
			if c := p.V[appCodes+i-1]; c > 0 || len(out.Codes[i]) > 0 {
				out.Codes[i] = append(out.Codes[i], Point{p.T, c * perMinute})
			}
		}
		hist := p.V[appLatency : appLatency+router.LatencyBuckets]
		out.P50 = append(out.P50, Point{p.T, Quantile(hist, 0.50)})
		out.P95 = append(out.P95, Point{p.T, Quantile(hist, 0.95)})
		out.P99 = append(out.P99, Point{p.T, Quantile(hist, 0.99)})
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read metrics %s: %w", s.dir, err)
	}
	for _, e := range ents {
		typ, ok := strings.CutPrefix(strings.TrimSuffix(e.Name(), ".rrd"), "type-")
		if !ok || !strings.HasSuffix(e.Name(), ".rrd") {
			continue
		}
		f, err := s.file("type-"+typ, typeSchema())
		if err != nil {
			return nil, err
		}
		pts, err := f.Read(step, from, to)
		if err != nil {
			return nil, err
		}
		var ts TypeSeries
		for _, p := range pts {
			ts.Memory = append(ts.Memory, Point{p.T, p.V[typeMemory]})
			ts.MemoryMax = append(ts.MemoryMax, Point{p.T, p.V[typeMemoryMax]})
			ts.CPU = append(ts.CPU, Point{p.T, p.V[typeCPU]})
			ts.CPUMax = append(ts.CPUMax, Point{p.T, p.V[typeCPUMax]})
			ts.Quota = int64(p.V[typeQuota])
		}
		if len(pts) > 0 {
			out.Types[typ] = ts
		}
	}
	return out, nil
}

// DynoMemory reads the memory of each of the dynos names over
// [from, to), by name; a dyno without a series is left out.
func (s *Store) DynoMemory(names []string, step time.Duration, from, to time.Time) (map[string][]Point, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]Point{}
	if s.closed {
		return out, nil
	}
	for _, name := range names {
		path := filepath.Join(s.dir, "dyno-"+name+".rrd")
		if _, err := os.Stat(path); err != nil {
			continue // no sample yet
		}
		f, err := s.file("dyno-"+name, dynoSchema())
		if err != nil {
			return nil, err
		}
		pts, err := f.Read(step, from, to)
		if err != nil {
			return nil, err
		}
		for _, p := range pts {
			out[name] = append(out[name], Point{p.T, p.V[dynoMemory]})
		}
	}
	return out, nil
}

// Quantile is the q-quantile, in milliseconds, of a latency histogram
// of router.LatencyBuckets counts: linear within the bucket it falls
// in; NaN for an empty one.
func Quantile(hist []float64, q float64) float64 {
	var total float64
	for _, c := range hist {
		total += c
	}
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	var below float64
	for i, c := range hist {
		if c <= 0 {
			continue
		}
		if below+c >= rank {
			lo := 0.0
			if i > 0 {
				lo = ms(router.LatencyBound(i - 1))
			}
			hi := ms(router.LatencyBound(i))
			if hi < 0 {
				return lo // the open bucket: at least its lower bound
			}
			return lo + (hi-lo)*(rank-below)/c
		}
		below += c
	}
	return ms(router.LatencyBound(len(hist) - 2))
}

func ms(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return float64(d) / float64(time.Millisecond)
}

// Types lists the process types with a series, sorted.
func (s *Series) TypeNames() []string {
	names := make([]string, 0, len(s.Types))
	for t := range s.Types {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}
