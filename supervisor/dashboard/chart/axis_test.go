package chart

import (
	"math"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin, whatever the machine has
)

func TestYAxis(t *testing.T) {
	for _, tc := range []struct {
		unit         Unit
		v, top, step float64
		what         string
	}{
		{Bytes, 512 * mib, 600 * mib, 200 * mib, "370 MB under a 512 MB quota"},
		{Bytes, 900 * mib, 1000 * mib, 200 * mib, "within 1 GB: MB steps"},
		{Bytes, 1024 * mib, gib, 256 * mib, "1 GB: GB quarters"},
		{Bytes, 1100 * mib, 1.25 * gib, 256 * mib, "past 1 GB"},
		{Bytes, 2100 * mib, 2.5 * gib, 512 * mib, "half GB steps"},
		{Bytes, 14 * gib, 15 * gib, 5 * gib, "many GB"},
		{Bytes, 300 * kib, mib, 256 * kib, "under 1 MB"},
		{Bytes, 0, mib, 256 * kib, "no data"},
		{Count, 100, 100, 20, "exactly 5 steps"},
		{Count, 101, 125, 25, "just over"},
		{Count, 0.3, 0.3, 0.1, "0.3/0.1 rounds above 3"},
		{Count, 7, 8, 2, "small"},
		{Count, 0, 1, 0.2, "no data"},
		{Percent, 0, 100, 20, "no data: the usual scale"},
		{Percent, 40, 40, 10, "40%"},
		{Percent, 180, 200, 50, "more than one core"},
		{Millis, 370, 400, 100, "370 ms"},
		{Millis, 2600, 3000, 1000, "2.6 s"},
		{PerMinute, 1234, 1250, 250, "1.2k rpm"},
	} {
		top, step := yAxis(tc.unit, tc.v)
		if !near(top, tc.top) || !near(step, tc.step) {
			t.Errorf("%s: yAxis(%v) = %v by %v, want %v by %v", tc.what, tc.v, top, step, tc.top, tc.step)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }

// Whatever the data, the axis reaches it in 3 to 5 nice steps.
func TestYAxisSteps(t *testing.T) {
	nice := func(step float64) bool {
		m := step / math.Pow10(int(math.Floor(math.Log10(step)+1e-9)))
		for _, n := range []float64{1, 2, 2.5, 5} {
			if near(m, n) {
				return true
			}
		}
		return false
	}
	for _, u := range []Unit{Count, Bytes, Percent, Millis, PerMinute} {
		for v := 0.001; v < 1e13; v *= 1.07 {
			top, step := yAxis(u, v)
			n := top / step
			if top < v || n < 3-1e-9 || n > 5+1e-9 || !near(n, math.Round(n)) {
				t.Fatalf("unit %d: yAxis(%v) = %v by %v", u, v, top, step)
			}
			switch {
			case u != Bytes:
				if !nice(step) {
					t.Fatalf("yAxis(%v) steps by %v", v, step)
				}
			case v > mib && top <= 1024*mib:
				if !nice(step / mib) {
					t.Fatalf("yAxis(%v bytes) steps by %v MB", v, step/mib)
				}
			case v > mib:
				if g := step / gib; !nice(g) && g != 0.25 && g != 0.5 {
					t.Fatalf("yAxis(%v bytes) steps by %v GB", v, g)
				}
			}
		}
	}
}

func TestXTicks(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ist := time.FixedZone("IST", 5*3600+30*60)
	at := func(loc *time.Location, s string) time.Time {
		t.Helper()
		tt, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	for _, tc := range []struct {
		what   string
		loc    *time.Location
		from   time.Time
		span   time.Duration
		layout string
		want   string // the ticks in loc, as "2006-01-02 15:04"
	}{
		{"an hour", time.UTC, at(time.UTC, "2026-03-02 14:43"), time.Hour, "15:04",
			"14:50 15:00 15:10 15:20 15:30 15:40"},
		{"an hour from a tick", time.UTC, at(time.UTC, "2026-03-02 14:40"), time.Hour, "15:04",
			"14:40 14:50 15:00 15:10 15:20 15:30 15:40"},
		{"an hour past midnight", ist, at(ist, "2026-03-02 23:31"), time.Hour, "15:04",
			"23:40 23:50 00:00 00:10 00:20 00:30"},
		{"a day", time.UTC, at(time.UTC, "2026-03-02 14:43"), 24 * time.Hour, "15:04",
			"15:00 18:00 21:00 00:00 03:00 06:00 09:00 12:00"},
		// 24 hours end at 15:43 by the clock put forward: a tick at 15:00
		// again, and none at the 02:00 the change skips.
		{"a day over the clocks going forward", berlin, at(berlin, "2026-03-28 14:43"), 24 * time.Hour, "15:04",
			"15:00 18:00 21:00 00:00 03:00 06:00 09:00 12:00 15:00"},
		{"hours over the clocks going forward", berlin, at(berlin, "2026-03-29 00:30"), 6 * time.Hour, "15:04",
			"01:00 03:00 04:00 05:00 06:00 07:00"},
		{"a day over the clocks going back", berlin, at(berlin, "2026-10-24 14:43"), 24 * time.Hour, "15:04",
			"15:00 18:00 21:00 00:00 03:00 06:00 09:00 12:00"},
		{"a week", berlin, at(berlin, "2026-03-25 14:43"), 7 * 24 * time.Hour, "Mon 2",
			"03-26 03-27 03-28 03-29 03-30 03-31 04-01"},
		{"a month", time.UTC, at(time.UTC, "2026-03-04 14:43"), 30 * 24 * time.Hour, "Jan 2",
			"03-09 03-16 03-23 03-30"},
	} {
		ticks, layout := xTicks(tc.from, tc.from.Add(tc.span), tc.loc, 8)
		var got []string
		for _, tick := range ticks {
			l := tick.In(tc.loc)
			if layout == "15:04" {
				got = append(got, l.Format("15:04"))
			} else {
				got = append(got, l.Format("01-02"))
				if l.Hour() != 0 || l.Minute() != 0 {
					t.Errorf("%s: tick %v is not at midnight", tc.what, l)
				}
			}
		}
		if layout != tc.layout || strings.Join(got, " ") != tc.want {
			t.Errorf("%s: ticks %s (%q), want %s (%q)", tc.what, strings.Join(got, " "), layout, tc.want, tc.layout)
		}
	}
}
