package chart

import (
	"bytes"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A node is an element of a parsed chart.
type node struct {
	XMLName  xml.Name
	Attr     []xml.Attr `xml:",any,attr"`
	Children []node     `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n *node) attr(name string) string {
	for _, a := range n.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *node) walk(f func(*node)) {
	f(n)
	for i := range n.Children {
		n.Children[i].walk(f)
	}
}

// find returns the elements named name whose class attribute is class.
func (n *node) find(name, class string) []*node {
	var found []*node
	n.walk(func(e *node) {
		if e.XMLName.Local == name && e.attr("class") == class {
			found = append(found, e)
		}
	})
	return found
}

// render draws c and parses it, checking what any chart must be: well
// formed, with nothing in it that could run or be styled in place.
func render(t *testing.T, c *Chart) *node {
	t.Helper()
	var buf bytes.Buffer
	if err := c.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	var root node
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("the SVG does not parse: %v\n%s", err, buf.Bytes())
	}
	if _, err := dec.Token(); err == nil {
		t.Fatalf("more follows the svg element:\n%s", buf.Bytes())
	}
	root.walk(func(e *node) {
		switch strings.ToLower(e.XMLName.Local) {
		case "script", "style", "foreignobject":
			t.Errorf("a <%s> element", e.XMLName.Local)
		}
		for _, a := range e.Attr {
			if n := strings.ToLower(a.Name.Local); strings.HasPrefix(n, "on") || n == "style" || n == "href" {
				t.Errorf("<%s> has the attribute %s=%q", e.XMLName.Local, a.Name.Local, a.Value)
			}
		}
	})
	return &root
}

var (
	t0   = time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
	hour = &Chart{Title: "t", From: t0, To: t0.Add(time.Hour), Step: time.Minute}
)

// at returns the chart of an hour from t0 at one-minute steps with the
// given lines.
func at(lines ...Series) *Chart {
	c := *hour
	c.Lines = lines
	return &c
}

// minutes makes points from t0, one a minute, skipping NaN-free gaps
// where a value is missing: v[i] is at minute i.
func minutes(v ...float64) []Point {
	pts := make([]Point, len(v))
	for i, v := range v {
		pts[i] = Point{t0.Add(time.Duration(i) * time.Minute), v}
	}
	return pts
}

func TestSVGElement(t *testing.T) {
	c := at(Series{Name: "web", Points: minutes(1, 2)})
	c.ID, c.Title = "mem", "Memory & swap"
	root := render(t, c)
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root is %v, not an SVG svg", root.XMLName)
	}
	for name, want := range map[string]string{"viewBox": "0 0 720 200", "role": "img", "id": "mem", "aria-labelledby": "mem-title"} {
		if got := root.attr(name); got != want {
			t.Errorf("%s=%q, want %q", name, got, want)
		}
	}
	if len(root.Children) == 0 || root.Children[0].XMLName.Local != "title" {
		t.Fatal("the svg's first child is not its title")
	}
	if title := root.Children[0]; title.attr("id") != "mem-title" || title.Text != "Memory & swap" {
		t.Errorf("title id=%q text %q", title.attr("id"), title.Text)
	}

	c.ID, c.Width, c.Height = "", 360, 120
	root = render(t, c)
	if got := root.attr("viewBox"); got != "0 0 360 120" {
		t.Errorf("viewBox=%q for 360x120", got)
	}
	if got := root.attr("aria-label"); got != "Memory & swap" {
		t.Errorf("without an id, aria-label=%q", got)
	}
}

func TestErrors(t *testing.T) {
	for name, c := range map[string]*Chart{
		"To before From": {From: t0, To: t0.Add(-time.Hour)},
		"no span":        {From: t0, To: t0},
		"too narrow":     {From: t0, To: t0.Add(time.Hour), Width: padLeft + padRight},
		"too low":        {From: t0, To: t0.Add(time.Hour), Height: padTop + padBottom},
	} {
		if err := c.WriteSVG(new(bytes.Buffer)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The plot of a 720x200 chart runs from x 64 to 704 and y 160 up to 30.
func TestCoordinates(t *testing.T) {
	c := at(Series{Points: []Point{
		{t0, 0},
		{t0.Add(30 * time.Minute), 50},
		{t0.Add(time.Hour), 100}, // the top of the axis: 5 steps of 20
	}})
	c.Step = time.Hour
	paths := render(t, c).find("path", "line s0")
	if len(paths) != 1 {
		t.Fatalf("%d paths, want 1", len(paths))
	}
	if got, want := paths[0].attr("d"), "M64 160L384 95L704 30"; got != want {
		t.Errorf("d=%q, want %q", got, want)
	}
}

// Coordinates are written to a tenth at most.
func TestAppendNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 12: "12", 12.04: "12", 12.05: "12.1", 12.96: "13", -3.24: "-3.2", -0.01: "0", 704: "704"} {
		if got := string(appendNum(nil, v)); got != want {
			t.Errorf("appendNum(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestGaps(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name         string
		step         time.Duration
		points       []Point
		paths, lones int
	}{
		{"joined", time.Minute, minutes(1, 2, 3, 4), 1, 0},
		{"NaN", time.Minute, minutes(1, 2, nan, 4, 5), 2, 0},
		{"missing minutes", time.Minute, append(minutes(1, 2, 3), minutes(0, 0, 0, 0, 5, 6)[4:]...), 2, 0},
		{"lone point", time.Minute, minutes(1, 2, nan, 4, nan, 6, 7), 2, 1},
		{"lone points", time.Minute, minutes(1, nan, 3), 0, 2},
		{"1.5 steps apart", time.Minute, []Point{{t0, 1}, {t0.Add(90 * time.Second), 2}}, 1, 0},
		{"more than 1.5 steps apart", time.Minute, []Point{{t0, 1}, {t0.Add(91 * time.Second), 2}}, 0, 2},
		{"no step", 0, []Point{{t0, 1}, {t0.Add(30 * time.Minute), 2}}, 1, 0},
		{"infinity", time.Minute, minutes(1, math.Inf(1), 3, 4), 1, 1},
		{"out of range", time.Minute, []Point{{t0.Add(-time.Minute), 1}, {t0, 2}, {t0.Add(time.Hour), 3}, {t0.Add(61 * time.Minute), 4}}, 0, 2},
	} {
		c := at(Series{Points: tc.points})
		c.Step = tc.step
		root := render(t, c)
		paths, dots := root.find("path", "line s0"), root.find("circle", "dot s0")
		if len(paths) != tc.paths || len(dots) != tc.lones {
			t.Errorf("%s: %d paths and %d dots, want %d and %d", tc.name, len(paths), len(dots), tc.paths, tc.lones)
		}
	}

	// The lone point is where a path's point would be.
	c := at(Series{Points: minutes(1, nan, 4)})
	dots := render(t, c).find("circle", "dot s0")
	if len(dots) != 2 || dots[1].attr("cx") != "85.3" || dots[1].attr("cy") != "30" {
		t.Errorf("dots %v, want the second at 85.3,30", dots)
	}
}

func TestNoData(t *testing.T) {
	for name, tc := range map[string]struct {
		c    *Chart
		none bool
	}{
		"no series":    {at(), true},
		"no points":    {at(Series{Name: "web"}), true},
		"NaN only":     {at(Series{Points: minutes(math.NaN(), math.NaN())}), true},
		"out of range": {at(Series{Points: []Point{{t0.Add(-time.Second), 1}, {t0.Add(time.Hour + time.Second), 1}}}), true},
		"a point":      {at(Series{Points: minutes(math.NaN(), 0)}), false},
		"stacked":      {&Chart{From: t0, To: t0.Add(time.Hour), Stacked: []Series{{Points: minutes(1)}}}, false},
	} {
		texts := render(t, tc.c).find("text", "nodata")
		if tc.none != (len(texts) == 1) || len(texts) == 1 && texts[0].Text != "No data" {
			t.Errorf("%s: nodata texts %v", name, texts)
		}
	}
}

// labels returns the text of the tick labels, from the top of the y axis
// down and then along the x axis.
func labels(root *node) []string {
	var s []string
	for _, n := range root.find("text", "tick") {
		s = append(s, n.Text)
	}
	return s
}

func TestAxisLabels(t *testing.T) {
	from := time.Date(2026, 3, 2, 14, 43, 7, 0, time.UTC)
	c := &Chart{
		Unit: Bytes, From: from, To: from.Add(time.Hour), Step: time.Minute,
		Lines: []Series{{Points: []Point{{from, 370 * mib}}}},
		Limit: 512 * mib,
	}
	want := "600 MB,400 MB,200 MB,0,14:50,15:00,15:10,15:20,15:30,15:40"
	if got := strings.Join(labels(render(t, c)), ","); got != want {
		t.Errorf("labels %s, want %s", got, want)
	}

	c.Location = time.FixedZone("IST", 5*3600+30*60) // a half-hour zone: ticks on its clock, not UTC's
	want = "600 MB,400 MB,200 MB,0,20:20,20:30,20:40,20:50,21:00,21:10"
	if got := strings.Join(labels(render(t, c)), ","); got != want {
		t.Errorf("labels in IST %s, want %s", got, want)
	}
}

func TestLimit(t *testing.T) {
	c := at(Series{Name: "web", Points: minutes(100 * mib)})
	c.Unit, c.Limit = Bytes, 512*mib
	root := render(t, c)
	// The axis reaches the limit, 600 MB, so 512 MB is at 160-130*512/600.
	if l := root.find("path", "limit"); len(l) != 1 || l[0].attr("d") != "M64 49.1H704" {
		t.Errorf("limit %v, want one at y 49.1", l)
	}
	legend := root.find("text", "legend")
	if len(legend) != 1 || legend[0].Text != " web 512 MB" {
		t.Fatalf("legend %v", legend)
	}
	if sw := legend[0].Children; len(sw) != 2 || sw[0].attr("class") != "sw s0" || sw[1].attr("class") != "sw limit" {
		t.Errorf("legend swatches %v", sw)
	}

	c.LimitLabel = "quota"
	if legend := render(t, c).find("text", "legend"); legend[0].Text != " web quota" {
		t.Errorf("legend %q, want the limit's label", legend[0].Text)
	}
	for _, limit := range []float64{0, -1, math.Inf(1), math.NaN()} {
		c.Limit = limit
		if l := render(t, c).find("path", "limit"); len(l) != 0 {
			t.Errorf("limit %v drawn: %v", limit, l)
		}
	}
}

func TestClasses(t *testing.T) {
	c := at(
		Series{Name: "a", Points: minutes(1, 2)},
		Series{Name: "b", Class: "web", Points: minutes(1, 2)},
		Series{Name: "c", Points: minutes(1, 2)},
	)
	c.Stacked = []Series{{Name: "d", Points: minutes(1, 2)}}
	root := render(t, c)
	var got []string
	root.walk(func(n *node) {
		if cl := n.attr("class"); strings.HasPrefix(cl, "line ") || strings.HasPrefix(cl, "area ") || strings.HasPrefix(cl, "sw ") {
			got = append(got, cl)
		}
	})
	want := "area s3,line s0,line web,line s2,sw s0,sw web,sw s2,sw s3"
	if strings.Join(got, ",") != want {
		t.Errorf("classes %s, want %s", strings.Join(got, ","), want)
	}
}

func TestMarkers(t *testing.T) {
	c := at()
	c.Markers = []Marker{
		{T: t0.Add(-time.Second), Kind: "release", Text: "before"},
		{T: t0, Kind: "release", Text: "v12 Deploy 3f2a by alice"},
		{T: t0.Add(30 * time.Minute), Kind: "crash"},
		{T: t0.Add(time.Hour), Kind: "scale", Text: "web=2"},
		{T: t0.Add(time.Hour + time.Second), Kind: "restart", Text: "after"},
	}
	var got []string
	render(t, c).walk(func(n *node) {
		if cl := n.attr("class"); strings.HasPrefix(cl, "marker ") {
			var title string
			for _, c := range n.Children {
				if c.XMLName.Local == "title" {
					title = c.Text
				}
			}
			got = append(got, cl+"|"+strings.Fields(n.attr("d"))[0]+"|"+title)
		}
	})
	want := []string{
		"marker m-release|M64|v12 Deploy 3f2a by alice",
		"marker m-crash|M384|",
		"marker m-scale|M704|web=2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("markers\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Every text a chart is given comes out as text: hostile text must parse
// back to itself and add no element or attribute (which render checks).
func TestEscaping(t *testing.T) {
	hostile := []string{
		`</svg><script>alert(1)</script>`,
		`"onload="x`,
		`' onmouseover='x`,
		`x" style="fill:red`,
		`<![CDATA[x]]>&amp;&#0;`,
	}
	for _, s := range hostile {
		c := at(Series{Name: s, Class: s, Points: minutes(1, 2)})
		c.ID, c.Title, c.Limit, c.LimitLabel = s, s, 1, s
		c.Stacked = []Series{{Name: s, Class: s, Points: minutes(1, 1)}}
		c.Markers = []Marker{{T: t0, Kind: s, Text: s}}
		root := render(t, c)
		if root.attr("id") != s || root.Children[0].Text != s {
			t.Errorf("%q: id %q, title %q", s, root.attr("id"), root.Children[0].Text)
		}
		var found int
		root.walk(func(n *node) {
			if n.XMLName.Local == "title" && n.Text == s && n.attr("id") == "" {
				found++ // the marker's
			}
		})
		if found != 1 {
			t.Errorf("%q: the marker's title is not its text", s)
		}
	}

	// Text that is not XML's (control characters, broken UTF-8) is
	// replaced, not passed on to break the page's parse.
	c := at()
	c.Title = "a\x00b\x1bc\xffd\uFFFEe\tf"
	if got, want := render(t, c).Children[0].Text, "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe\tf"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
}

// parsePath returns the coordinates of a path made of M, L and Z.
func parsePath(t *testing.T, d string) [][2]float64 {
	t.Helper()
	var pts [][2]float64
	for _, seg := range strings.FieldsFunc(d, func(r rune) bool { return r == 'M' || r == 'L' || r == 'Z' }) {
		xy := strings.Fields(seg)
		if len(xy) != 2 {
			t.Fatalf("path %q: segment %q", d, seg)
		}
		x, err1 := strconv.ParseFloat(xy[0], 64)
		y, err2 := strconv.ParseFloat(xy[1], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("path %q: segment %q", d, seg)
		}
		pts = append(pts, [2]float64{x, y})
	}
	return pts
}

func TestStacked(t *testing.T) {
	a := []float64{10, 20, 30, 20, math.NaN(), 10}
	b := []float64{5, 5, 5, 5, 5, 5}
	c := &Chart{
		From: t0, To: t0.Add(5 * time.Minute), Step: time.Minute,
		Stacked: []Series{{Points: minutes(a...)}, {Points: minutes(b...)}},
	}
	root := render(t, c)
	// The top is 40: 35 in steps of 10. The plot is 130 high above 160.
	y := func(v float64) float64 { return math.Round((160-v*130/40)*10) / 10 }
	x := func(i int) float64 { return math.Round((64+float64(i)*640/5)*10) / 10 }

	// The lower series is cut by its NaN: two areas, from the baseline.
	lower := root.find("path", "area s0")
	if len(lower) != 2 {
		t.Fatalf("%d areas for the lower series, want 2", len(lower))
	}
	pts := parsePath(t, lower[0].attr("d"))
	for i, want := range [][2]float64{{x(0), y(10)}, {x(1), y(20)}, {x(2), y(30)}, {x(3), y(20)}, {x(3), 160}, {x(2), 160}, {x(1), 160}, {x(0), 160}} {
		if pts[i] != want {
			t.Errorf("lower area point %d is %v, want %v", i, pts[i], want)
		}
	}

	// The upper series is whole: its top edge is the sum, its bottom the
	// lower series' top, and 0 where that has no value.
	upper := root.find("path", "area s1")
	if len(upper) != 1 {
		t.Fatalf("%d areas for the upper series, want 1", len(upper))
	}
	pts = parsePath(t, upper[0].attr("d"))
	if len(pts) != 2*len(b) {
		t.Fatalf("upper area has %d points, want %d", len(pts), 2*len(b))
	}
	for i := range b {
		lo := a[i]
		if math.IsNaN(lo) {
			lo = 0
		}
		top, bottom := pts[i], pts[len(pts)-1-i]
		if want := [2]float64{x(i), y(lo + b[i])}; top != want {
			t.Errorf("upper top at %d is %v, want %v", i, top, want)
		}
		if want := [2]float64{x(i), y(lo)}; bottom != want {
			t.Errorf("upper bottom at %d is %v, want %v", i, bottom, want)
		}
	}
}

// Stacked series are matched by time, not by index: a series that starts
// later still sits on the one below at its own times.
func TestStackedByTime(t *testing.T) {
	c := &Chart{
		From: t0, To: t0.Add(4 * time.Minute), Step: time.Minute,
		Stacked: []Series{
			{Points: minutes(10, 10, 10, 10, 10)},
			{Points: minutes(0, 0, 20, 20, 20)[2:]},
		},
	}
	// A minute is 160 wide. The top is 30, so 30 is at y 30 and 10 at
	// 160-130/3.
	got := render(t, c).find("path", "area s1")
	if len(got) != 1 || got[0].attr("d") != "M384 30L544 30L704 30L704 116.7L544 116.7L384 116.7Z" {
		t.Errorf("upper area %v", got)
	}
}

func TestDeterministic(t *testing.T) {
	c := week()
	var a, b bytes.Buffer
	if err := c.WriteSVG(&a); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two drawings of one chart differ")
	}
	if a.Len() > c.sizeHint() {
		t.Errorf("the SVG is %d bytes, more than the %d guessed", a.Len(), c.sizeHint())
	}
	render(t, c)
}

// A week's ticks are labelled with the day, a month's with the date; the
// weeks of a month begin on Mondays.
func TestXLabels(t *testing.T) {
	c := &Chart{From: time.Date(2026, 3, 2, 14, 43, 0, 0, time.UTC)}
	c.To = c.From.Add(7 * 24 * time.Hour)
	got := labels(render(t, c))[6:] // after 1, 0.8, 0.6, 0.4, 0.2, 0
	if want := "Tue 3,Wed 4,Thu 5,Fri 6,Sat 7,Sun 8,Mon 9"; strings.Join(got, ",") != want {
		t.Errorf("a week's labels %s, want %s", strings.Join(got, ","), want)
	}
	c.From = time.Date(2026, 3, 4, 14, 43, 0, 0, time.UTC) // a Wednesday
	c.To = c.From.Add(30 * 24 * time.Hour)
	got = labels(render(t, c))[6:]
	if want := "Mar 9,Mar 16,Mar 23,Mar 30"; strings.Join(got, ",") != want {
		t.Errorf("a month's labels %s, want %s", strings.Join(got, ","), want)
	}
}
