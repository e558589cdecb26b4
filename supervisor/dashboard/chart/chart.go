// Package chart draws the dashboard's metrics charts (memory against its
// quota, CPU, router throughput, response times, responses by status
// class, with the app's releases, restarts, crashes and scale changes as
// markers on the same time axis) as SVG to be placed inline in a page.
//
// The charts are drawn on the server, so that the page shows them at once
// and without a script. They carry no style of their own: the page's
// Content-Security-Policy forbids style attributes and elements, so every
// colour, stroke and font comes from classes, which CSS describes.
package chart

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// A Point is one reading of a series.
type Point struct {
	T time.Time
	V float64 // NaN: no reading, a gap in the line
}

// A Series is one line, or one stacked area, of a chart.
type Series struct {
	Name   string  // legend text, such as "web mean" or "p95"; "" leaves it out of the legend
	Class  string  // the CSS class of its colour, which sets the property --c: s0 to s7 in CSS; "" picks s<i> by its place in the chart, lines first
	Points []Point // oldest first
}

// A Marker is an event drawn as a vertical line across the plot.
type Marker struct {
	T    time.Time
	Kind string // "release", "restart", "crash", "scale", "r14", "r15", "maintenance": the CSS class "m-"+Kind
	Text string // the marker's tooltip, such as "v12 Set FOO config vars by alice"
}

// A Chart is one time chart. Charts of the same size are laid out alike,
// whatever their labels, so that charts stacked on a page share their time
// axis: a marker at 14:02 is at the same x in each.
type Chart struct {
	ID       string // the svg element's id, by which the page's script replaces the chart in place; "" for none
	Title    string
	Unit     Unit
	From, To time.Time     // the x axis
	Step     time.Duration // the data's spacing: points more than 1.5 steps apart are not joined; 0 joins all

	Lines   []Series // drawn as lines, over the stacked areas
	Stacked []Series // drawn as areas, each on the ones before it: bottom first

	Limit      float64 // > 0: a dashed line at this value (a memory quota), which the y axis always reaches
	LimitLabel string  // the limit's legend text; "" is the limit's value

	Markers []Marker // those outside From to To are left out

	Width, Height int            // the viewBox; 0 is 720 by 200
	Location      *time.Location // of the x labels; nil is UTC
}

// The layout, in viewBox units. The margins are fixed rather than fitted
// to the labels, so that charts of the same width line up on a page.
const (
	defaultWidth  = 720
	defaultHeight = 200

	padLeft   = 64 // the y labels, right-aligned: "1000 MB", "1.25k rpm"
	padRight  = 16 // half an x label past a tick at the right edge
	padTop    = 30 // the title, and the markers' heads above the plot
	padBottom = 40 // the x labels and the legend

	tickSpacing = 80 // the least room for an x label: "Mon 12" and a gap
	headSize    = 7  // of a marker's head: a triangle pointing down at the plot
)

// WriteSVG writes the chart as one <svg> element, to be placed inline in
// HTML. It fails only if the chart has no time span or no room to plot,
// or if w does.
func (c *Chart) WriteSVG(w io.Writer) error {
	b, err := c.AppendSVG(make([]byte, 0, c.sizeHint()))
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// AppendSVG appends the chart's <svg> element to b, for a caller that
// keeps a buffer from one chart to the next.
func (c *Chart) AppendSVG(b []byte) ([]byte, error) {
	if !c.To.After(c.From) {
		return b, errors.New("chart: To is not after From")
	}
	w, h := cmp.Or(c.Width, defaultWidth), cmp.Or(c.Height, defaultHeight)
	if w <= padLeft+padRight || h <= padTop+padBottom {
		return b, fmt.Errorf("chart: a %dx%d chart has no room to plot", w, h)
	}
	d := &drawing{
		c:      c,
		b:      b,
		width:  w,
		height: h,
		left:   padLeft,
		right:  float64(w - padRight),
		top:    padTop,
		bottom: float64(h - padBottom),
		// Times are compared and placed as nanoseconds since 1970,
		// which is several times faster than time.Time's methods and
		// ignores monotonic clock readings, as the points' times do.
		from:   c.From.UnixNano(),
		to:     c.To.UnixNano(),
		maxGap: int64(c.Step * 3 / 2),
		loc:    cmp.Or(c.Location, time.UTC),
	}
	d.xScale = (d.right - d.left) / float64(d.to-d.from)

	layers := d.stack()
	hi, some := d.extent(layers)
	if c.Limit > 0 && !math.IsInf(c.Limit, 1) {
		d.limit = c.Limit
	}
	yTop, yStep := yAxis(c.Unit, max(hi, d.limit))
	d.yScale = (d.bottom - d.top) / yTop

	d.open()
	d.yAxis(yTop, yStep)
	d.xAxis()
	d.areas(layers)
	d.lines()
	d.limitLine()
	d.markers()
	d.legend()
	if !some {
		d.b = append(d.b, `<text class="nodata" x="`...)
		d.b = appendNum(d.b, (d.left+d.right)/2)
		d.b = append(d.b, `" y="`...)
		d.b = appendNum(d.b, (d.top+d.bottom)/2+4)
		d.b = append(d.b, `" text-anchor="middle">No data</text>`...)
	}
	d.b = append(d.b, "</svg>"...)
	return d.b, nil
}

// sizeHint guesses the length of the chart's SVG, so that WriteSVG
// allocates its buffer once.
func (c *Chart) sizeHint() int {
	n := 2048 + 16*len(c.Title)
	for _, s := range c.Lines {
		n += 14 * len(s.Points)
	}
	for _, s := range c.Stacked {
		n += 28 * len(s.Points)
	}
	for _, m := range c.Markers {
		n += 96 + len(m.Kind) + len(m.Text)
	}
	return n
}

// A drawing is a chart being drawn: its geometry, and the SVG so far.
type drawing struct {
	c                        *Chart
	b                        []byte
	width, height            int
	left, right, top, bottom float64 // the plot
	from, to                 int64   // in nanoseconds since 1970
	xScale                   float64 // viewBox units a nanosecond
	yScale                   float64 // viewBox units a unit of value
	maxGap                   int64   // in nanoseconds; 0 for none
	limit                    float64 // Chart.Limit, or 0 for none: an infinite one is none
	loc                      *time.Location
}

func (d *drawing) x(t time.Time) float64 { return d.left + float64(t.UnixNano()-d.from)*d.xScale }

// y is the height of v, kept inside the plot: the axis starts at 0, and a
// negative reading sits on it rather than under the x labels.
func (d *drawing) y(v float64) float64 {
	return min(max(d.bottom-v*d.yScale, d.top), d.bottom)
}

func (d *drawing) inRange(t time.Time) bool {
	ns := t.UnixNano()
	return d.from <= ns && ns <= d.to
}

func (d *drawing) drawable(p Point) bool {
	return !math.IsNaN(p.V) && !math.IsInf(p.V, 0) && d.inRange(p.T)
}

// runs calls f with the bounds of each run of points drawn joined: each in
// range, with a value, and within 1.5 steps of the one before.
func (d *drawing) runs(pts []Point, f func(i, j int)) {
	for i := 0; i < len(pts); {
		if !d.drawable(pts[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(pts) && d.drawable(pts[j]) && (d.maxGap <= 0 || pts[j].T.UnixNano()-pts[j-1].T.UnixNano() <= d.maxGap) {
			j++
		}
		f(i, j)
		i = j
	}
}

// A layer is a stacked series set on the ones below it.
type layer struct {
	top  []Point   // the series' points in range, raised by the layers below; V NaN where the series has none
	base []float64 // the top of the layers below at each point's time
}

// stack sets each stacked series on the ones before it. Points are matched
// by time: where a series has no point at a time, it adds nothing there.
func (d *drawing) stack() []layer {
	if len(d.c.Stacked) == 0 {
		return nil
	}
	n, most := 0, 0
	for _, s := range d.c.Stacked {
		n += len(s.Points)
		most = max(most, len(s.Points))
	}
	layers := make([]layer, len(d.c.Stacked))
	tops, bases := make([]Point, n), make([]float64, n)
	// The stack so far, its top at each time any layer has a value,
	// oldest first; and the next, made from it and the next layer. When
	// the layers share their times, as they usually do, neither grows.
	sum, next := make([]Point, 0, most), make([]Point, 0, most)
	n = 0
	for k, s := range d.c.Stacked {
		l := &layers[k]
		l.top = tops[n : n : n+len(s.Points)]
		l.base = bases[n : n : n+len(s.Points)]
		n += len(s.Points)
		next = next[:0]
		i := 0
		for _, p := range s.Points {
			if !d.inRange(p.T) {
				continue
			}
			t := p.T.UnixNano()
			for i < len(sum) && sum[i].T.UnixNano() < t {
				next = append(next, sum[i])
				i++
			}
			base, under := 0.0, i < len(sum) && sum[i].T.UnixNano() == t
			if under {
				base = sum[i].V
				i++
			}
			top := base + p.V
			switch {
			case !math.IsNaN(top) && !math.IsInf(top, 0):
				next = append(next, Point{p.T, top})
			case under:
				top = math.NaN()
				next = append(next, Point{p.T, base})
			default:
				top = math.NaN()
			}
			l.top = append(l.top, Point{p.T, top})
			l.base = append(l.base, base)
		}
		sum, next = append(next, sum[i:]...), sum
	}
	return layers
}

// extent returns the highest value drawn, and whether anything is.
func (d *drawing) extent(layers []layer) (hi float64, some bool) {
	for _, s := range d.c.Lines {
		for _, p := range s.Points {
			if d.drawable(p) {
				hi, some = max(hi, p.V), true
			}
		}
	}
	for _, l := range layers {
		for _, p := range l.top {
			if d.drawable(p) {
				hi, some = max(hi, p.V), true
			}
		}
	}
	return hi, some
}

func (d *drawing) open() {
	c := d.c
	d.b = append(d.b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 `...)
	d.b = strconv.AppendInt(d.b, int64(d.width), 10)
	d.b = append(d.b, ' ')
	d.b = strconv.AppendInt(d.b, int64(d.height), 10)
	d.b = append(d.b, `" role="img"`...)
	if c.ID != "" {
		// The title needs an id of its own to be pointed at, and only
		// the chart's is known to be unique in the page.
		d.b = append(d.b, ` id="`...)
		d.b = appendEscaped(d.b, c.ID)
		d.b = append(d.b, `" aria-labelledby="`...)
		d.b = appendEscaped(d.b, c.ID)
		d.b = append(d.b, `-title"><title id="`...)
		d.b = appendEscaped(d.b, c.ID)
		d.b = append(d.b, `-title">`...)
	} else {
		d.b = append(d.b, ` aria-label="`...)
		d.b = appendEscaped(d.b, c.Title)
		d.b = append(d.b, `"><title>`...)
	}
	d.b = appendEscaped(d.b, c.Title)
	d.b = append(d.b, `</title>`...)
	if c.Title != "" {
		d.b = append(d.b, `<text class="title" x="`...)
		d.b = appendNum(d.b, d.left)
		d.b = append(d.b, `" y="14">`...)
		d.b = appendEscaped(d.b, c.Title)
		d.b = append(d.b, `</text>`...)
	}
}

// yAxis draws the horizontal grid lines from top down to step and labels
// them, and the baseline.
func (d *drawing) yAxis(top, step float64) {
	n := int(math.Round(top / step))
	d.b = append(d.b, `<path class="grid" d="`...)
	for i := n; i > 0; i-- {
		d.b = append(d.b, 'M')
		d.b = appendNum(d.b, d.left)
		d.b = append(d.b, ' ')
		d.b = appendNum(d.b, d.y(float64(i)*step))
		d.b = append(d.b, 'H')
		d.b = appendNum(d.b, d.right)
	}
	d.b = append(d.b, `"/>`...)
	for i := n; i >= 0; i-- {
		d.b = append(d.b, `<text class="tick" x="`...)
		d.b = appendNum(d.b, d.left-6)
		d.b = append(d.b, `" y="`...)
		d.b = appendNum(d.b, d.y(float64(i)*step)+4)
		d.b = append(d.b, `" text-anchor="end">`...)
		if i == 0 {
			d.b = append(d.b, '0') // bare: "0 B" or "0 rpm" says nothing more
		} else {
			d.b = d.c.Unit.append(d.b, float64(i)*step)
		}
		d.b = append(d.b, `</text>`...)
	}
}

// xAxis draws the baseline with a tick at each round time, and labels the
// ticks.
func (d *drawing) xAxis() {
	ticks, layout := xTicks(d.c.From, d.c.To, d.loc, int((d.right-d.left)/tickSpacing))
	d.b = append(d.b, `<path class="axis" d="M`...)
	d.b = appendNum(d.b, d.left)
	d.b = append(d.b, ' ')
	d.b = appendNum(d.b, d.bottom)
	d.b = append(d.b, 'H')
	d.b = appendNum(d.b, d.right)
	for _, t := range ticks {
		d.b = append(d.b, 'M')
		d.b = appendNum(d.b, d.x(t))
		d.b = append(d.b, ' ')
		d.b = appendNum(d.b, d.bottom)
		d.b = append(d.b, "v4"...)
	}
	d.b = append(d.b, `"/>`...)
	for _, t := range ticks {
		d.b = append(d.b, `<text class="tick" x="`...)
		d.b = appendNum(d.b, d.x(t))
		d.b = append(d.b, `" y="`...)
		d.b = appendNum(d.b, d.bottom+15)
		d.b = append(d.b, `" text-anchor="middle">`...)
		d.b = t.In(d.loc).AppendFormat(d.b, layout)
		d.b = append(d.b, `</text>`...)
	}
}

// class appends a series' colour class: its own, or s<i> for the i-th
// series of the chart, lines first.
func (d *drawing) class(s *Series, i int) {
	if s.Class != "" {
		d.b = appendEscaped(d.b, s.Class)
		return
	}
	d.b = append(d.b, 's', byte('0'+i%8))
}

func (d *drawing) point(p Point) {
	d.b = appendNum(d.b, d.x(p.T))
	d.b = append(d.b, ' ')
	d.b = appendNum(d.b, d.y(p.V))
}

// lines draws each line as one path for each run of joined points, and a
// lone point, which a path would not show, as a dot.
func (d *drawing) lines() {
	for k := range d.c.Lines {
		s := &d.c.Lines[k]
		d.runs(s.Points, func(i, j int) {
			if j-i == 1 {
				d.b = append(d.b, `<circle class="dot `...)
				d.class(s, k)
				d.b = append(d.b, `" cx="`...)
				d.b = appendNum(d.b, d.x(s.Points[i].T))
				d.b = append(d.b, `" cy="`...)
				d.b = appendNum(d.b, d.y(s.Points[i].V))
				d.b = append(d.b, `" r="2"/>`...)
				return
			}
			d.b = append(d.b, `<path class="line `...)
			d.class(s, k)
			d.b = append(d.b, `" d="M`...)
			d.point(s.Points[i])
			for _, p := range s.Points[i+1 : j] {
				d.b = append(d.b, 'L')
				d.point(p)
			}
			d.b = append(d.b, `"/>`...)
		})
	}
}

// areas draws each stacked series as one closed path for each run of
// joined points: along its top left to right, then back along the top of
// the layers below. A lone point is a sliver two units wide.
func (d *drawing) areas(layers []layer) {
	for k := range layers {
		l, s := &layers[k], &d.c.Stacked[k]
		d.runs(l.top, func(i, j int) {
			d.b = append(d.b, `<path class="area `...)
			d.class(s, len(d.c.Lines)+k)
			d.b = append(d.b, `" d="M`...)
			if j-i == 1 {
				x := d.x(l.top[i].T)
				d.b = appendNum(d.b, x-1)
				d.b = append(d.b, ' ')
				d.b = appendNum(d.b, d.y(l.top[i].V))
				d.b = append(d.b, 'H')
				d.b = appendNum(d.b, x+1)
				d.b = append(d.b, 'V')
				d.b = appendNum(d.b, d.y(l.base[i]))
				d.b = append(d.b, 'H')
				d.b = appendNum(d.b, x-1)
				d.b = append(d.b, `Z"/>`...)
				return
			}
			d.point(l.top[i])
			for _, p := range l.top[i+1 : j] {
				d.b = append(d.b, 'L')
				d.point(p)
			}
			for n := j - 1; n >= i; n-- {
				d.b = append(d.b, 'L')
				d.point(Point{l.top[n].T, l.base[n]})
			}
			d.b = append(d.b, `Z"/>`...)
		})
	}
}

func (d *drawing) limitLine() {
	if d.limit == 0 {
		return
	}
	d.b = append(d.b, `<path class="limit" d="M`...)
	d.b = appendNum(d.b, d.left)
	d.b = append(d.b, ' ')
	d.b = appendNum(d.b, d.y(d.limit))
	d.b = append(d.b, 'H')
	d.b = appendNum(d.b, d.right)
	d.b = append(d.b, `"/>`...)
}

// markers draws each marker in range as a single path, the line across
// the plot and a head above it, with its text as the path's tooltip: one
// element a marker keeps hundreds of them cheap to draw and to show.
func (d *drawing) markers() {
	for _, m := range d.c.Markers {
		if !d.inRange(m.T) {
			continue
		}
		x := d.x(m.T)
		d.b = append(d.b, `<path class="marker m-`...)
		d.b = appendEscaped(d.b, m.Kind)
		d.b = append(d.b, `" d="M`...)
		d.b = appendNum(d.b, x)
		d.b = append(d.b, ' ')
		d.b = appendNum(d.b, d.top)
		d.b = append(d.b, 'V')
		d.b = appendNum(d.b, d.bottom)
		d.b = append(d.b, 'M')
		d.b = appendNum(d.b, x-headSize/2.0)
		d.b = append(d.b, ' ')
		d.b = appendNum(d.b, d.top-headSize)
		d.b = append(d.b, "h7l-3.5 7z"...)
		if m.Text == "" {
			d.b = append(d.b, `"/>`...)
			continue
		}
		d.b = append(d.b, `"><title>`...)
		d.b = appendEscaped(d.b, m.Text)
		d.b = append(d.b, `</title></path>`...)
	}
}

// legend writes one line of text, a swatch in the series' colour before
// each name, and lets the text flow rather than guess its width.
func (d *drawing) legend() {
	c := d.c
	start := len(d.b)
	d.b = append(d.b, `<text class="legend" x="`...)
	d.b = appendNum(d.b, d.left)
	d.b = append(d.b, `" y="`...)
	d.b = strconv.AppendInt(d.b, int64(d.height-6), 10)
	d.b = append(d.b, `">`...)
	n := 0
	series := func(s *Series, i int) {
		if s.Name == "" {
			return
		}
		d.b = append(d.b, `<tspan class="sw `...)
		d.class(s, i)
		n = d.swatch(n, "■")
		d.b = appendEscaped(d.b, s.Name)
	}
	for k := range c.Lines {
		series(&c.Lines[k], k)
	}
	for k := range c.Stacked {
		series(&c.Stacked[k], len(c.Lines)+k)
	}
	if d.limit > 0 {
		d.b = append(d.b, `<tspan class="sw limit`...)
		n = d.swatch(n, "– –")
		if c.LimitLabel != "" {
			d.b = appendEscaped(d.b, c.LimitLabel)
		} else {
			d.b = c.Unit.append(d.b, d.limit)
		}
	}
	if n == 0 {
		d.b = d.b[:start]
		return
	}
	d.b = append(d.b, `</text>`...)
}

// swatch ends the opening tag of the n-th legend entry's swatch, whose
// class is written, and the swatch, and returns n+1. Entries after the
// first are set apart from the one before.
func (d *drawing) swatch(n int, mark string) int {
	if n > 0 {
		d.b = append(d.b, `" dx="14`...)
	}
	d.b = append(d.b, `">`...)
	d.b = append(d.b, mark...)
	d.b = append(d.b, `</tspan> `...)
	return n + 1
}

// appendNum appends v rounded to a tenth of a unit, as "12", "12.5" or
// "-3.2": a finer place would not show, and would lengthen the paths.
func appendNum(b []byte, v float64) []byte {
	n := int64(math.Round(v * 10))
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	b = strconv.AppendInt(b, n/10, 10)
	if r := n % 10; r != 0 {
		b = append(b, '.', byte('0'+r))
	}
	return b
}

// appendEscaped appends s as XML text or attribute value: the characters
// that delimit markup as references, and anything that is not an XML
// character (a control character, broken UTF-8) as U+FFFD, so that no
// text can end an element or an attribute, or leave the SVG unparsable.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '"':
				b = append(b, "&#34;"...)
			case c == '\'':
				b = append(b, "&#39;"...)
			case c < ' ' && c != '\t' && c != '\n' && c != '\r', c == 0x7f:
				b = append(b, "\uFFFD"...)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}
