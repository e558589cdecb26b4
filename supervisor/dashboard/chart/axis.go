package chart

import (
	"math"
	"time"
)

// maxSteps is the most intervals the y axis is cut into. Each nice step
// is at most 2.5 times the one before it, so the axis always gets 3 to 5
// intervals: 3 to 5 grid lines above the baseline.
const maxSteps = 5

// yAxis returns the top of the y axis for values up to v and the step
// between its grid lines. The step is 1, 2, 2.5 or 5 × 10^n of the unit,
// the smallest such that v fits in at most maxSteps of them, and the top
// is the first multiple of the step at or above v: 370 MB of data under a
// 512 MB quota gives steps of 200 MB and a top of 600 MB.
//
// Bytes step in MB while the top stays within 1 GB, and past that in GB,
// where 0.25 and 0.5 GB (256 and 512 MB) are nice too: 500 MB steps
// would label the lines 1.46 GB, 1.95 GB.
func yAxis(u Unit, v float64) (top, step float64) {
	if !(v > 0) {
		v = 1
		if u == Percent {
			v = 100 // an empty percentage chart reads best on its usual scale
		}
	}
	if u != Bytes {
		step = niceStep(v)
		return steps(v, step) * step, step
	}
	if v <= mib {
		return mib, mib / 4
	}
	step = niceStep(v / mib)
	if top = steps(v/mib, step) * step; top <= 1024 {
		return top * mib, step * mib
	}
	switch g := v / gib; {
	case g <= 0.25*maxSteps:
		step = 0.25
	case g <= 0.5*maxSteps:
		step = 0.5
	default:
		step = niceStep(g)
	}
	return steps(v/gib, step) * step * gib, step * gib
}

// niceStep returns the smallest 1, 2, 2.5 or 5 × 10^n that cuts v > 0 in
// at most maxSteps.
func niceStep(v float64) float64 {
	t := v / maxSteps
	p := math.Pow10(int(math.Floor(math.Log10(t))))
	for _, m := range [...]float64{1, 2, 2.5, 5} {
		if m*p >= t*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// steps returns how many steps reach v, forgiving the rounding of v/step
// (0.3/0.1 is 2.9999999999999996).
func steps(v, step float64) float64 {
	return math.Max(1, math.Ceil(v/step-1e-9))
}

// xTicks returns the times of the x ticks between from and to, at round
// wall-clock times in loc, at most about maxTicks of them, and the layout
// of their labels: every 10 minutes over an hour, every 3 hours over a
// day and every midnight over a week on a 720-wide chart.
func xTicks(from, to time.Time, loc *time.Location, maxTicks int) ([]time.Time, string) {
	span := to.Sub(from)
	maxTicks = max(maxTicks, 1)
	// Each spacing under a day divides a day, so that ticks fall on the
	// same wall-clock times every day.
	for _, m := range [...]int{1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720} {
		if span/(time.Duration(m)*time.Minute) <= time.Duration(maxTicks) {
			return minuteTicks(from, to, loc, m), "15:04"
		}
	}
	days := int(span / (24 * time.Hour))
	n := 0
	for _, d := range [...]int{1, 2, 7, 14, 28} {
		if n = d; days/d <= maxTicks {
			break
		}
	}
	if days/n > maxTicks {
		n = (days/maxTicks + 6) / 7 * 7 // whole weeks, however long the span
	}
	layout := "Mon 2"
	if n >= 7 {
		layout = "Jan 2"
	}
	return dayTicks(from, to, loc, n), layout
}

// minuteTicks returns the wall-clock times in loc that are a multiple of
// step minutes past midnight, from from to to. They are made with
// time.Date from the clock, not by adding durations, so that they stay
// on round times across a change of daylight saving time; a time that
// the change skips comes out as a later one, and is dropped if it equals
// or precedes the tick before.
func minuteTicks(from, to time.Time, loc *time.Location, step int) []time.Time {
	lf := from.In(loc)
	y, mo, d := lf.Date()
	m := (lf.Hour()*60 + lf.Minute()) / step * step
	var ticks []time.Time
	for {
		t := time.Date(y, mo, d, 0, m, 0, 0, loc)
		if t.After(to) {
			return ticks
		}
		if !t.Before(from) && (len(ticks) == 0 || t.After(ticks[len(ticks)-1])) {
			ticks = append(ticks, t)
		}
		if m += step; m >= 24*60 {
			m = 0
			d++
		}
	}
}

// dayTicks returns the midnights in loc from from to to whose day is a
// multiple of n days from a Monday.
func dayTicks(from, to time.Time, loc *time.Location, n int) []time.Time {
	y, mo, d := from.In(loc).Date()
	// The day number of the date, counted from Monday 5 January 1970.
	day := int(time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Unix()/(24*60*60)) - 4
	if r := (day%n + n) % n; r != 0 {
		d += n - r
	}
	var ticks []time.Time
	for ; ; d += n {
		t := time.Date(y, mo, d, 0, 0, 0, 0, loc)
		if t.After(to) {
			return ticks
		}
		if !t.Before(from) {
			ticks = append(ticks, t)
		}
	}
}
