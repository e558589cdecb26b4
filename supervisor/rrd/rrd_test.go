package rrd

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 starts a period of every archive, and is not slot 0 of the 10 s
// ring, so that the tests wrap it in the middle.
var t0 = time.Unix(1_700_000_400, 0)

var all = Schema{Name: "all", Fields: []Fold{Sum, Mean, Max, Last}}

func open(t testing.TB, path string, s Schema) *File {
	t.Helper()
	f, err := Open(path, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func add(t testing.TB, f *File, at time.Time, values ...float64) {
	t.Helper()
	if err := f.Add(at, values); err != nil {
		t.Fatal(err)
	}
}

func read(t testing.TB, f *File, step time.Duration, from, to time.Time) []Point {
	t.Helper()
	points, err := f.Read(step, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return points
}

// same fails unless points are at want's times with want's counts and
// values.
func same(t *testing.T, what string, points, want []Point) {
	t.Helper()
	ok := len(points) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = points[i].T.Equal(want[i].T) && points[i].N == want[i].N && fmt.Sprint(points[i].V) == fmt.Sprint(want[i].V)
	}
	if !ok {
		t.Errorf("%s:\n got  %v\n want %v", what, points, want)
	}
}

func TestSizeOnDiskAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.1")
	f := open(t, path, all)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != Size(all) {
		t.Errorf("file is %d bytes, Size says %d", fi.Size(), Size(all))
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v, want 0600", perm)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %v, want the file alone", entries)
	}
	add(t, f, t0, 1, 2, 3, 4)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	f = open(t, path, all)
	want := []Point{{t0, 1, []float64{1, 2, 3, 4}}}
	same(t, "after reopening", read(t, f, 10*time.Second, t0, t0.Add(time.Hour)), want)
	if fi, _ := os.Stat(path); fi.Size() != Size(all) {
		t.Errorf("reopened file is %d bytes, want %d", fi.Size(), Size(all))
	}
}

func TestFoldsInOneSlot(t *testing.T) {
	for _, c := range []struct {
		samples []float64
		want    []float64 // sum, mean, max, last
	}{
		{[]float64{2, 3, 1}, []float64{6, 2, 3, 1}},
		// Below zero, where a fold that starts from a zeroed slot's 0
		// goes wrong.
		{[]float64{-2, -1, -3}, []float64{-6, -2, -1, -3}},
	} {
		f := open(t, filepath.Join(t.TempDir(), "f"), all)
		// Samples in one 10 s period.
		for i, v := range c.samples {
			add(t, f, t0.Add(time.Duration(3*i)*time.Second), v, v, v, v)
		}
		want := []Point{{t0, len(c.samples), c.want}}
		for _, a := range Archives() {
			same(t, fmt.Sprint(c.samples, " ", a.Step), read(t, f, a.Step, t0, t0.Add(time.Hour)), want)
		}
	}
}

func TestFoldsAcrossArchives(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	// An hour of samples at 10 s, the values of each minute a shuffle of
	// 1 to 6 and each minute's values 10 more than the last's.
	shuffle := []float64{4, 6, 1, 5, 2, 3}
	var fine []Point
	for i := range 360 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		v := shuffle[i%6] + float64(10*(i/6))
		add(t, f, at, v, v, v, v)
		fine = append(fine, Point{at, 1, []float64{v, v, v, v}})
	}
	same(t, "10s", read(t, f, 10*time.Second, t0, t0.Add(time.Hour)), fine)

	var minutes []Point
	for m := range 60 {
		b := float64(10 * m)
		minutes = append(minutes, Point{t0.Add(time.Duration(m) * time.Minute), 6, []float64{21 + 6*b, 3.5 + b, 6 + b, 3 + b}})
	}
	same(t, "1m", read(t, f, time.Minute, t0, t0.Add(time.Hour)), minutes)

	var tens []Point
	for p := range 6 {
		// Minutes 10p to 10p+9: 60 samples of 1 to 6 plus 10 × minute.
		b := float64(100 * p)
		tens = append(tens, Point{t0.Add(time.Duration(p) * 10 * time.Minute), 60, []float64{210 + 60*b + 450*6, 3.5 + b + 45, 6 + b + 90, 3 + b + 90}})
	}
	same(t, "10m", read(t, f, 10*time.Minute, t0, t0.Add(time.Hour)), tens)
}

func TestRingWrap(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	const n = 720 // two hours at 10 s
	for i := range n {
		v := float64(i)
		add(t, f, t0.Add(time.Duration(i)*10*time.Second), v, v, v, v)
	}
	end := t0.Add(3 * time.Hour)
	var want []Point
	for i := n - 360; i < n; i++ {
		v := float64(i)
		want = append(want, Point{t0.Add(time.Duration(i) * 10 * time.Second), 1, []float64{v, v, v, v}})
	}
	same(t, "10s after two hours", read(t, f, 10*time.Second, t0, end), want)

	minutes := read(t, f, time.Minute, t0, end)
	if len(minutes) != 120 {
		t.Fatalf("1m after two hours: %d points, want 120", len(minutes))
	}
	if p := minutes[0]; !p.T.Equal(t0) || p.N != 6 || p.V[3] != 5 {
		t.Errorf("1m after two hours: first point %v, want one at %v of 6 samples, the last 5", p, t0)
	}
	for i := 1; i < len(minutes); i++ {
		if !minutes[i].T.Equal(minutes[i-1].T.Add(time.Minute)) {
			t.Fatalf("1m point %d at %v after %v", i, minutes[i].T, minutes[i-1].T)
		}
	}
}

func TestWindow(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	for i := range 6 {
		add(t, f, t0.Add(time.Duration(i)*10*time.Second), 1, 1, 1, 1)
	}
	for _, c := range []struct {
		from, to time.Duration
		want     int
	}{
		{10 * time.Second, 30 * time.Second, 2},          // [10, 30): 10, 20
		{10*time.Second + 1, 30*time.Second + 1, 2},      // (10, 30]: 20, 30
		{-time.Hour, time.Hour, 6},                       // all
		{30 * time.Second, 30 * time.Second, 0},          // empty
		{40 * time.Second, 10 * time.Second, 0},          // backwards
		{time.Minute, time.Hour, 0},                      // after the last
		{-time.Hour, 0, 0},                               // before the first
		{9*time.Second + time.Millisecond, time.Hour, 5}, // a period starting before from is out
	} {
		points := read(t, f, 10*time.Second, t0.Add(c.from), t0.Add(c.to))
		if len(points) != c.want {
			t.Errorf("[t0%+v, t0%+v): %d points, want %d", c.from, c.to, len(points), c.want)
		}
	}
}

func TestGaps(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	for _, s := range []int{0, 10, 50} {
		add(t, f, t0.Add(time.Duration(s)*time.Second), 1, 1, 1, 1)
	}
	points := read(t, f, 10*time.Second, t0, t0.Add(time.Hour))
	var got []int64
	for _, p := range points {
		got = append(got, p.T.Unix()-t0.Unix())
	}
	if fmt.Sprint(got) != "[0 10 50]" {
		t.Errorf("points at t0+%v s, want [0 10 50]", got)
	}
}

func TestStaleSlotReset(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	add(t, f, t0, 9, 9, 9, 9)
	// An hour on: the same slot of the 10 s ring, the next lap.
	later := t0.Add(time.Hour)
	add(t, f, later, 7, 7, 7, 7)
	same(t, "10s", read(t, f, 10*time.Second, t0, later.Add(time.Hour)), []Point{{later, 1, []float64{7, 7, 7, 7}}})
	// The coarser rings hold both periods apart.
	same(t, "1m", read(t, f, time.Minute, t0, later.Add(time.Hour)),
		[]Point{{t0, 1, []float64{9, 9, 9, 9}}, {later, 1, []float64{7, 7, 7, 7}}})
}

// A window longer than the ring finds slots from earlier laps, out of
// order in the ring; the points still come oldest first.
func TestReadAcrossLaps(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	// Slots i, i+7 and i+5 of the 10 s ring, in three laps: from the
	// newest, i+5, round the ring, i+7 comes before i.
	times := []time.Time{t0.Add(-time.Hour), t0.Add(70 * time.Second), t0.Add(time.Hour + 50*time.Second)}
	var want []Point
	for i, at := range times {
		v := float64(i)
		add(t, f, at, v, v, v, v)
		want = append(want, Point{at, 1, []float64{v, v, v, v}})
	}
	same(t, "10s", read(t, f, 10*time.Second, t0.Add(-2*time.Hour), t0.Add(2*time.Hour)), want)
}

func TestClockBack(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	later := t0.Add(time.Hour)
	add(t, f, later, 7, 7, 7, 7)
	// An hour back: the 10 s slot holds a newer period and keeps it.
	add(t, f, t0, 100, 100, 100, 100)
	same(t, "10s", read(t, f, 10*time.Second, t0, later.Add(time.Hour)), []Point{{later, 1, []float64{7, 7, 7, 7}}})
	// The 1 min ring has a slot of t0's own, which takes the sample.
	same(t, "1m", read(t, f, time.Minute, t0, later.Add(time.Hour)),
		[]Point{{t0, 1, []float64{100, 100, 100, 100}}, {later, 1, []float64{7, 7, 7, 7}}})

	// A step back of seconds folds the sample into its own period.
	add(t, f, later.Add(15*time.Second), 1, 1, 1, 1)
	add(t, f, later.Add(5*time.Second), 2, 2, 2, 2)
	same(t, "10s after a small step back", read(t, f, 10*time.Second, later, later.Add(time.Hour)),
		[]Point{{later, 2, []float64{9, 4.5, 7, 2}}, {later.Add(10 * time.Second), 1, []float64{1, 1, 1, 1}}})
}

func TestBadFiles(t *testing.T) {
	good := func(t *testing.T, path string, s Schema) {
		f, err := Open(path, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Add(t0, make([]float64, len(s.Fields))); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, c := range []struct {
		name    string
		make    func(t *testing.T, path string)
		problem string
	}{
		{"empty", func(t *testing.T, path string) { os.WriteFile(path, nil, 0o600) }, "not a metrics file"},
		{"other magic", func(t *testing.T, path string) {
			good(t, path, all)
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte("DYNORRD2"), 0)
			f.Close()
		}, "not a metrics file"},
		{"text", func(t *testing.T, path string) {
			os.WriteFile(path, bytes.Repeat([]byte("some log line\n"), 10000), 0o600)
		}, "not a metrics file"},
		{"header cut short", func(t *testing.T, path string) {
			good(t, path, all)
			os.Truncate(path, 40)
		}, "cut short"},
		{"slots cut short", func(t *testing.T, path string) {
			good(t, path, all)
			os.Truncate(path, Size(all)-100)
		}, fmt.Sprintf("%d bytes, where its schema makes %d", Size(all)-100, Size(all))},
		{"grown", func(t *testing.T, path string) {
			good(t, path, all)
			os.Truncate(path, Size(all)+1)
		}, "bytes, where its schema makes"},
		{"other schema", func(t *testing.T, path string) {
			good(t, path, Schema{Name: "app", Fields: all.Fields})
		}, `holds "app" series, not "all"`},
		{"other folds", func(t *testing.T, path string) {
			good(t, path, Schema{Name: "all", Fields: []Fold{Sum, Mean, Max, Max}})
		}, "fields [sum mean max max], not [sum mean max last]"},
		{"fewer fields", func(t *testing.T, path string) {
			good(t, path, Schema{Name: "all", Fields: []Fold{Sum, Mean, Max}})
		}, "fields [sum mean max], not"},
		{"other version", func(t *testing.T, path string) {
			good(t, path, all)
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte{2}, 8)
			f.Close()
		}, "format version 2"},
		{"other archives", func(t *testing.T, path string) {
			good(t, path, all)
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte{5}, 32) // a 5 s step
			f.Close()
		}, "archives other than"},
		{"slot size", func(t *testing.T, path string) {
			good(t, path, all)
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte{30}, 14)
			f.Close()
		}, "header differs"},
		{"reserved byte", func(t *testing.T, path string) {
			good(t, path, all)
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt([]byte{1}, 60)
			f.Close()
		}, "archives other than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "web.1")
			c.make(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(path, all)
			if err == nil {
				f.Close()
				t.Fatal("opened")
			}
			var fe *FormatError
			if msg := err.Error(); !errors.As(err, &fe) || !strings.Contains(msg, path) ||
				!strings.Contains(msg, c.problem) || !strings.Contains(msg, "remove it") {
				t.Errorf("error %q (%T), want a *FormatError naming %s, saying %q and the fix", msg, err, path, c.problem)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("the file was changed")
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
				t.Errorf("folder holds %v", entries)
			}
		})
	}

	t.Run("folder", func(t *testing.T) {
		path := t.TempDir()
		if _, err := Open(path, all); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("error %v, want one naming %s", err, path)
		}
	})
	t.Run("no folder", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "none", "web.1")
		if _, err := Open(path, all); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("error %v, want one naming %s", err, path)
		}
	})
}

func TestBadSchemas(t *testing.T) {
	for _, s := range []Schema{
		{Name: "", Fields: []Fold{Sum}},
		{Name: "seventeen bytes!!", Fields: []Fold{Sum}},
		{Name: "a\x00b", Fields: []Fold{Sum}},
		{Name: "none"},
		{Name: "many", Fields: make([]Fold, 65)},
		{Name: "fold", Fields: []Fold{Last + 1}},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "f")
		if f, err := Open(path, s); err == nil {
			f.Close()
			t.Errorf("%+v: opened", s)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%+v: error %q does not name %s", s, err, path)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%+v: folder holds %v", s, entries)
		}
	}
	// The most fields there is room for.
	open(t, filepath.Join(t.TempDir(), "f"), Schema{Name: "sixteen bytes!!!", Fields: make([]Fold, 64)})
}

func TestBadSamples(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	for _, c := range []struct {
		at     time.Time
		values []float64
	}{
		{t0, []float64{1, 2, 3}},
		{t0, []float64{1, 2, 3, 4, 5}},
		{t0, []float64{1, math.NaN(), 3, 4}},
		{t0, []float64{1, 2, math.Inf(1), 4}},
		{t0, []float64{1, 2, 3, 1e39}},
		{time.Unix(599, 0), []float64{1, 2, 3, 4}},
		{time.Unix(-1, 0), []float64{1, 2, 3, 4}},
	} {
		if err := f.Add(c.at, c.values); err == nil || !strings.Contains(err.Error(), f.path) {
			t.Errorf("Add(%v, %v): error %v, want one naming the file", c.at, c.values, err)
		}
	}
	if points := read(t, f, time.Minute, time.Unix(0, 0), t0.Add(time.Hour)); len(points) != 0 {
		t.Errorf("refused samples read back: %v", points)
	}
	if _, err := f.Read(5*time.Second, t0, t0.Add(time.Hour)); err == nil {
		t.Error("read an archive of step 5s")
	}
	f.Close()
	if err := f.Add(t0, []float64{1, 2, 3, 4}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	if _, err := f.Read(10*time.Second, t0, t0.Add(time.Hour)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

// Two Opens of a new path at once make one file between them: the
// second to finish opens the first's rather than replacing it.
func TestOpenRace(t *testing.T) {
	dir := t.TempDir()
	for i := range 50 {
		path := filepath.Join(dir, strconv.Itoa(i))
		var files [2]*File
		var wg sync.WaitGroup
		var errs [2]error
		for j := range files {
			wg.Go(func() { files[j], errs[j] = Open(path, all) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatal(errs)
		}
		defer files[0].Close()
		defer files[1].Close()
		add(t, files[0], t0, 1, 1, 1, 1)
		if points := read(t, files[1], 10*time.Second, t0, t0.Add(time.Hour)); len(points) != 1 {
			t.Fatalf("%s: a sample added through one File is not read through the other", path)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 50 {
		t.Errorf("folder holds %d entries, want 50", len(entries))
	}
}

// Readers running beside the writer under -race see whole samples: each
// sample has every field the same, so a point whose fields of one fold
// differ was read half written. The file is closed under the readers.
func TestConcurrentReadAdd(t *testing.T) {
	s := Schema{Name: "c", Fields: []Fold{Sum, Sum, Sum, Sum, Last, Last, Last, Last}}
	path := filepath.Join(t.TempDir(), "f")
	f := open(t, path, s)
	const n = 3000
	var reads sync.WaitGroup
	for range 4 {
		reads.Go(func() {
			for {
				for _, a := range Archives() {
					points, err := f.Read(a.Step, t0, t0.Add(n*5*time.Second))
					if errors.Is(err, os.ErrClosed) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					for _, p := range points {
						if p.V[0] != p.V[1] || p.V[0] != p.V[2] || p.V[0] != p.V[3] ||
							p.V[4] != p.V[5] || p.V[4] != p.V[6] || p.V[4] != p.V[7] {
							t.Errorf("%v: torn point %v", a.Step, p)
							return
						}
					}
				}
			}
		})
	}
	values := make([]float64, len(s.Fields))
	for i := range n {
		for j := range values {
			values[j] = float64(i)
		}
		if err := f.Add(t0.Add(time.Duration(i)*5*time.Second), values); err != nil {
			t.Error(err)
			break
		}
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	reads.Wait()

	f = open(t, path, s)
	points := read(t, f, 10*time.Minute, t0, t0.Add(n*5*time.Second))
	if want := (n*5-1)/600 + 1; len(points) != want {
		t.Errorf("%d 10 min points, want %d", len(points), want)
	}
}

func TestAddAllocates(t *testing.T) {
	f := open(t, filepath.Join(t.TempDir(), "f"), all)
	values := []float64{1, 2, 3, 4}
	at := t0
	allocs := testing.AllocsPerRun(1000, func() {
		at = at.Add(10 * time.Second)
		if err := f.Add(at, values); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Add allocates %v times", allocs)
	}
}

// The sizes doc.go states are Size's.
func TestStatedSizes(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	stated := map[int]int64{}
	for _, m := range regexp.MustCompile(`(?m)^//\s+(\d+) fields: (\d+) bytes$`).FindAllSubmatch(doc, -1) {
		k, _ := strconv.Atoi(string(m[1]))
		size, _ := strconv.ParseInt(string(m[2]), 10, 64)
		stated[k] = size
	}
	for _, k := range []int{5, 8, 40, 60} {
		if _, ok := stated[k]; !ok {
			t.Errorf("doc.go states no size for %d fields", k)
		}
	}
	for k, size := range stated {
		if got := Size(Schema{Name: "x", Fields: make([]Fold, k)}); got != size {
			t.Errorf("doc.go says %d fields take %d bytes; Size says %d", k, size, got)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	s := Schema{Name: "dyno", Fields: []Fold{Mean, Max, Mean, Max, Sum, Sum, Last, Last}}
	f := open(b, filepath.Join(b.TempDir(), "f"), s)
	values := []float64{512 << 20, 600 << 20, 1 << 20, 2 << 20, 0.5, 0.25, 1, 1}
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(10 * time.Second)
		if err := f.Add(at, values); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadWeek(b *testing.B) {
	s := Schema{Name: "dyno", Fields: []Fold{Mean, Max, Mean, Max, Sum, Sum, Last, Last}}
	f := open(b, filepath.Join(b.TempDir(), "f"), s)
	values := []float64{512 << 20, 600 << 20, 1 << 20, 2 << 20, 0.5, 0.25, 1, 1}
	const week = 1008 * 10 * time.Minute
	for at := t0; at.Before(t0.Add(week)); at = at.Add(10 * time.Minute) {
		add(b, f, at, values...)
	}
	if n := len(read(b, f, 10*time.Minute, t0, t0.Add(week))); n != 1008 {
		b.Fatalf("%d points, want 1008", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Read(10*time.Minute, t0, t0.Add(week)); err != nil {
			b.Fatal(err)
		}
	}
}
