package logstore

import (
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor/logmux"
)

// receive reads lines from tl until one contains until, and returns
// their texts.
func receive(t *testing.T, tl *Tail, until string) []string {
	t.Helper()
	var got []string
	for b := range tl.Lines() {
		if b[len(b)-1] != '\n' {
			t.Fatalf("line without newline: %q", b)
		}
		l, ok := ParseLine(b)
		if !ok {
			got = append(got, "unparsed "+strings.TrimSuffix(string(b), "\n"))
		} else {
			got = append(got, l.Source+"["+l.Dyno+"] "+l.Text)
		}
		if strings.Contains(string(b), until) {
			return got
		}
	}
	t.Fatalf("Lines closed before %q; got %q", until, got)
	return nil
}

func TestHubFilters(t *testing.T) {
	h := NewHub()
	web := h.Subscribe(Filter{Dyno: "web"}, 0)
	defer web.Close()
	sys := h.Subscribe(Filter{Source: "heroku"}, 0)
	defer sys.Close()
	all := h.Subscribe(Filter{}, 0)
	defer all.Close()

	var batch []byte
	batch = append(batch, line("heroku", "web.1", "Starting process")...)
	batch = append(batch, line("app", "web.1", "listening")...)
	batch = append(batch, line("app", "web2.1", "other type")...)
	batch = append(batch, "not logplex\n"...)
	write(t, h, batch)
	write(t, h, line("app", "api", "Release v3 created by user a@b.c"))
	write(t, h, line("heroku", "router", "at=info"))
	l := line("app", "web.2", "no newline")
	write(t, h, l[:len(l)-1])
	write(t, h, line("heroku", "web.1", "END"))

	equal(t, "--ps web", receive(t, web, "END"), []string{
		"heroku[web.1] Starting process", "app[web.1] listening", "app[web.2] no newline", "heroku[web.1] END",
	})
	equal(t, "--source heroku", receive(t, sys, "END"), []string{
		"heroku[web.1] Starting process", "heroku[router] at=info", "heroku[web.1] END",
	})
	equal(t, "all", receive(t, all, "END"), []string{
		"heroku[web.1] Starting process", "app[web.1] listening", "app[web2.1] other type", "unparsed not logplex",
		"app[api] Release v3 created by user a@b.c", "heroku[router] at=info", "app[web.2] no newline", "heroku[web.1] END",
	})
}

var l11 = regexp.MustCompile(`^(\S+) heroku\[logplex\]: Error L11 \(Tail buffer overflow\) -> This tail session dropped (\d+) messages since (\S+)\.\n$`)

// overflow checks that b is an L11 line and returns its count.
func overflow(t *testing.T, b []byte, start time.Time) int {
	t.Helper()
	m := l11.FindSubmatch(b)
	if m == nil {
		t.Fatalf("want an L11 line, got %q", b)
	}
	for _, ts := range [][]byte{m[1], m[3]} {
		st, err := time.Parse(stampLayout, string(ts))
		if err != nil || st.Before(start.Truncate(time.Microsecond)) {
			t.Errorf("L11 timestamp %s: %v, before the test's start %v", ts, err, start)
		}
	}
	if _, ok := ParseLine(b); !ok {
		t.Errorf("L11 line does not parse: %q", b)
	}
	n, _ := strconv.Atoi(string(m[2]))
	return n
}

// readOverflow reads the L11 lines at the head of tl and returns their
// total count and the line after them. Usually there is one; the count
// can be split over two when the reader takes the first just as a writer
// drops another line.
func readOverflow(t *testing.T, tl *Tail, start time.Time) (int, []byte) {
	t.Helper()
	dropped := 0
	for b := range tl.Lines() {
		if !l11.Match(b) {
			if dropped == 0 {
				t.Fatalf("want an L11 line first, got %q", b)
			}
			return dropped, b
		}
		dropped += overflow(t, b, start)
	}
	t.Fatal("Lines closed")
	return 0, nil
}

func numberOf(t *testing.T, b []byte) int {
	t.Helper()
	l, ok := ParseLine(b)
	n, err := strconv.Atoi(strings.TrimPrefix(l.Text, "n "))
	if !ok || err != nil {
		t.Fatalf("want a numbered line, got %q", b)
	}
	return n
}

func TestHubSlowTail(t *testing.T) {
	const (
		total  = 100_000
		buffer = 1024
	)
	h := NewHub()
	slow := h.Subscribe(Filter{}, buffer)
	defer slow.Close()
	lines := make([][]byte, total)
	for i := range lines {
		lines[i] = numbered(i, i+1)
	}

	start := time.Now()
	for _, l := range lines {
		write(t, h, l)
	}
	elapsed := time.Since(start)
	t.Logf("%d lines to a tail that does not read: %v", total, elapsed)
	// Far more than it takes, far less than a writer stalled on the tail.
	if elapsed > 20*time.Second {
		t.Errorf("writing took %v", elapsed)
	}

	dropped, b := readOverflow(t, slow, start)
	if dropped != total-buffer {
		t.Errorf("dropped %d, want %d", dropped, total-buffer)
	}
	// Then the newest lines it kept, in order.
	for i := total - buffer; i < total; i++ {
		if i > total-buffer {
			b = <-slow.Lines()
		}
		if n := numberOf(t, b); n != i {
			t.Fatalf("line %d after the L11 line: got %d", i-(total-buffer), n)
		}
	}
	// Caught up: a new line comes on its own.
	write(t, h, numbered(total, total+1))
	if n := numberOf(t, <-slow.Lines()); n != total {
		t.Errorf("next line: %d, want %d", n, total)
	}
}

func TestHubTailCatchesUp(t *testing.T) {
	start := time.Now()
	h := NewHub()
	tl := h.Subscribe(Filter{Dyno: "web"}, 4)
	defer tl.Close()
	write(t, h, numbered(0, 10))
	// Lines the filter rejects neither fill the buffer nor count as dropped.
	write(t, h, line("app", "worker.1", "ignored"))
	dropped, b := readOverflow(t, tl, start)
	if dropped != 6 {
		t.Errorf("dropped %d, want 6", dropped)
	}
	got := []int{numberOf(t, b)}
	for range 3 {
		got = append(got, numberOf(t, <-tl.Lines()))
	}
	if want := []int{6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	write(t, h, numbered(10, 13))
	got = got[:0]
	for range 3 {
		got = append(got, numberOf(t, <-tl.Lines()))
	}
	if want := []int{10, 11, 12}; !slices.Equal(got, want) {
		t.Errorf("after catching up: %v, want %v", got, want)
	}
	// A second overflow gets a second L11 line, with its own count.
	write(t, h, numbered(13, 20))
	if dropped, b = readOverflow(t, tl, start); dropped != 3 || numberOf(t, b) != 16 {
		t.Errorf("second overflow: dropped %d, then line %q", dropped, b)
	}
}

func TestTailClose(t *testing.T) {
	h := NewHub()
	tl := h.Subscribe(Filter{}, 0)
	other := h.Subscribe(Filter{}, 0)
	defer other.Close()
	write(t, h, numbered(0, 1))
	if n := numberOf(t, <-tl.Lines()); n != 0 {
		t.Fatalf("got line %d", n)
	}
	write(t, h, numbered(1, 3)) // waiting in the tail when it closes
	tl.Close()
	tl.Close()
	if b, ok := <-tl.Lines(); ok {
		t.Errorf("line %q after Close", b)
	}
	write(t, h, numbered(3, 4))
	// The other tail goes on.
	for i := range 4 {
		if n := numberOf(t, <-other.Lines()); n != i {
			t.Fatalf("other tail: line %d, want %d", n, i)
		}
	}
}

func TestHubClose(t *testing.T) {
	h := NewHub()
	tl := h.Subscribe(Filter{}, 0)
	write(t, h, numbered(0, 5))
	h.Close()
	// Nobody was reading: the lines waiting are gone with the tail.
	if b, ok := <-tl.Lines(); ok {
		t.Errorf("line %q after Hub.Close", b)
	}
	tl.Close()
	late := h.Subscribe(Filter{}, 0)
	if _, ok := <-late.Lines(); ok {
		t.Error("Subscribe after Hub.Close: Lines open")
	}
	late.Close()
	write(t, h, numbered(5, 6))
}

func TestHubNoTails(t *testing.T) {
	h := NewHub()
	p := numbered(0, 10)
	if n := testing.AllocsPerRun(100, func() { h.Write(p) }); n != 0 {
		t.Errorf("Write with no tails allocates %v times", n)
	}
	write(t, h, nil)
}

// TestMux is the daemon's setup: a logmux.Mux writing Logplex lines to a
// Store and a Hub at once.
func TestMux(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	h := NewHub()
	defer h.Close()
	tl := h.Subscribe(Filter{Dyno: "web"}, 0)
	defer tl.Close()
	m := logmux.New(io.MultiWriter(s, h), logmux.Options{Format: logmux.FormatLogplex})
	m.System("web.1", "State changed from starting to up")
	m.Line("web.1", []byte("hello\nworld"))
	m.Line("worker.1", []byte("working"))
	m.System("web.1", "END")
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"heroku[web.1] State changed from starting to up", "app[web.1] hello", "app[web.1] world", "heroku[web.1] END"}
	equal(t, "tail", receive(t, tl, "END"), want)
	equal(t, "store", read(t, dir, Filter{Dyno: "web"}, 0), want)
	equal(t, "store, app", read(t, dir, Filter{Source: "app"}, 0), []string{want[1], want[2], "app[worker.1] working"})
}
