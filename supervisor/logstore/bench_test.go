package logstore

import (
	"fmt"
	"strings"
	"testing"
)

// benchLines returns n Logplex lines of about 100 bytes.
func benchLines(n int) []byte {
	var b []byte
	for i := range n {
		b = append(b, line("app", fmt.Sprintf("web.%d", i%4+1), fmt.Sprintf("request %06d %s", i, strings.Repeat("x", 40)))...)
	}
	return b
}

func reportLines(b *testing.B, lines int) {
	b.ReportMetric(float64(b.N*lines)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkStoreWrite writes one line per Write, as a quiet dyno does, and
// 64 lines per Write, as the mux does for a busy one. Files rotate at the
// default 10 MB.
func BenchmarkStoreWrite(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			p := benchLines(n)
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := s.Write(p); err != nil {
					b.Fatal(err)
				}
			}
			reportLines(b, n)
		})
	}
}

// BenchmarkHubWrite writes 64 lines per Write to a Hub with no tail, with
// a tail that reads everything, with a tail whose filter rejects every
// line, and with a tail that never reads and so drops nearly every line.
func BenchmarkHubWrite(b *testing.B) {
	p := benchLines(64)
	for _, tc := range []struct {
		name   string
		tail   bool
		filter Filter
		read   bool
	}{
		{name: "tails=0"},
		{name: "reading", tail: true, read: true},
		{name: "filtered", tail: true, filter: Filter{Dyno: "worker"}},
		{name: "overflowing", tail: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := NewHub()
			defer h.Close()
			if tc.tail {
				t := h.Subscribe(tc.filter, 0)
				if tc.read {
					go func() {
						for range t.Lines() {
						}
					}()
				}
			}
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				h.Write(p)
			}
			reportLines(b, 64)
		})
	}
}

// BenchmarkRead reads the last 100 lines, and the last 100 web.1 lines, of
// a store holding 50 MB.
func BenchmarkRead(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	p := benchLines(1000)
	for written := 0; written < 50<<20; written += len(p) {
		if _, err := s.Write(p); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	for _, f := range []Filter{{}, {Dyno: "web.1"}} {
		b.Run(fmt.Sprintf("dyno=%q", f.Dyno), func(b *testing.B) {
			for b.Loop() {
				lines, err := Read(dir, f, 100)
				if err != nil || len(lines) != 100 {
					b.Fatal(len(lines), err)
				}
			}
		})
	}
}
