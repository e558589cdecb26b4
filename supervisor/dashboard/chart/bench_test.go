package chart

import (
	"io"
	"math"
	"strconv"
	"testing"
	"time"
)

// series returns n points from from, step apart, of a wave of its own.
func series(from time.Time, step time.Duration, n, k int) []Point {
	pts := make([]Point, n)
	for i := range pts {
		f := float64(i)
		pts[i] = Point{from.Add(time.Duration(i) * step), (200 + 40*float64(k) + 60*math.Sin(f/(7+float64(k)))) * mib}
	}
	return pts
}

func chartOf(span, step time.Duration, lines, markers int) *Chart {
	to := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	from := to.Add(-span)
	n := int(span / step)
	c := &Chart{
		ID: "memory", Title: "Memory", Unit: Bytes, From: from, To: to, Step: step,
		Limit: 512 * mib, LimitLabel: "quota",
	}
	for k := range lines {
		c.Lines = append(c.Lines, Series{Name: "web " + strconv.Itoa(k), Points: series(from, step, n, k)})
	}
	kinds := []string{"release", "restart", "crash", "scale", "r14"}
	for i := range markers {
		c.Markers = append(c.Markers, Marker{
			T:    from.Add(span * time.Duration(i) / time.Duration(markers)),
			Kind: kinds[i%len(kinds)],
			Text: "v" + strconv.Itoa(i) + " Deploy 3f2a9c1 by alice@example.com",
		})
	}
	return c
}

// week is a 7-day chart at 10-minute steps: 1008 points in each of 6
// series, and 200 markers.
func week() *Chart { return chartOf(7*24*time.Hour, 10*time.Minute, 6, 200) }

func bench(b *testing.B, c *Chart) {
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WriteSVG(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	out, _ := c.AppendSVG(nil)
	b.ReportMetric(float64(len(out)), "svg-bytes")
}

func BenchmarkWeek(b *testing.B) { bench(b, week()) }

// BenchmarkHour is an hour at one-minute steps: 60 points in each of 6
// series, and 5 markers.
func BenchmarkHour(b *testing.B) { bench(b, chartOf(time.Hour, time.Minute, 6, 5)) }

// BenchmarkWeekStacked is responses by status class over a week: 4
// stacked series of 1008 points, and 200 markers.
func BenchmarkWeekStacked(b *testing.B) {
	c := week()
	c.Unit, c.Limit = PerMinute, 0
	c.Stacked, c.Lines = c.Lines[:4], nil
	bench(b, c)
}
