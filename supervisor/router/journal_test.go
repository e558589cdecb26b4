package router

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowSink blocks every line until released, recording what it got.
type slowSink struct {
	release chan struct{}
	mu      sync.Mutex
	lines   []string
	dropped map[string]int
}

func (s *slowSink) RouterLines(app string, lines []byte) {
	<-s.release
	s.mu.Lock()
	for _, l := range strings.SplitAfter(string(lines), "\n") {
		if l != "" {
			s.lines = append(s.lines, app+" "+l)
		}
	}
	s.mu.Unlock()
}

func (s *slowSink) Dropped(app string, n int, since time.Time) {
	s.mu.Lock()
	s.dropped[app] += n
	s.mu.Unlock()
}

func TestJournalDropsWithACountWhenTheSinkLags(t *testing.T) {
	s := &slowSink{release: make(chan struct{}), dropped: map[string]int{}}
	j := NewJournal(s, 100)
	line := []byte("at=info method=GET status=200") // 29 bytes
	// The sink holds the first line it gets, so the buffer fills
	// behind it: whatever Add does, it must return at once.
	for range 20 {
		j.Add("app", line)
	}
	close(s.release)
	j.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	got := len(s.lines) + s.dropped["app"]
	if got != 20 {
		t.Fatalf("%d lines delivered + %d dropped = %d, want 20", len(s.lines), s.dropped["app"], got)
	}
	if s.dropped["app"] == 0 {
		t.Fatal("a sink that lagged lost nothing: the buffer is unbounded")
	}
	for _, l := range s.lines {
		if l != "app "+string(line)+"\n" {
			t.Fatalf("line %q delivered torn", l)
		}
	}
}

func TestJournalKeepsOrderAndAppsApart(t *testing.T) {
	s := &slowSink{release: make(chan struct{}), dropped: map[string]int{}}
	close(s.release)
	j := NewJournal(s, 0)
	for i := range 100 {
		j.Add(fmt.Sprint("app", i%2), []byte(fmt.Sprint(i)))
	}
	j.Close()
	j.Add("late", []byte("x")) // after Close: dropped, no panic
	if len(s.lines) != 100 {
		t.Fatalf("%d lines delivered, want 100", len(s.lines))
	}
	for i, l := range s.lines {
		if want := fmt.Sprint("app", i%2, " ", i, "\n"); l != want {
			t.Fatalf("line %d = %q, want %q", i, l, want)
		}
	}
}

func BenchmarkJournalAdd(b *testing.B) {
	j := NewJournal(discard{}, 0)
	defer j.Close()
	line := []byte(`at=info method=GET path="/" host=app.localhost request_id=0123456789abcdef fwd="127.0.0.1" dyno=web.1 connect=0ms service=1ms status=200 bytes=3 protocol=http`)
	b.ReportAllocs()
	for b.Loop() {
		j.Add("app", line)
	}
}

type discard struct{}

func (discard) RouterLines(string, []byte)     {}
func (discard) Dropped(string, int, time.Time) {}
