package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dyno-run/dyno/supervisor/dashboard/chart"
	"github.com/dyno-run/dyno/supervisor/logstore"
)

func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"bytes": formatBytes,
		"cpu": func(v float64) string {
			return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
		},
		"ago": func(t, now time.Time) string { return ago(now.Sub(t)) },
		"when": func(t time.Time) string {
			return t.In(s.cfg.Location).Format("2006/01/02 15:04:05 -0700")
		},
		"stateClass": func(state string) string {
			switch state {
			case "up", StateRunning:
				return "ok"
			case StateCrashed, "down":
				return "bad"
			case StateMaintenance, "starting", "restarting", "idle", StateSleeping:
				return "warn"
			}
			return "quiet"
		},
		"over": func(used, quota int64) bool { return quota > 0 && used > quota },
	}
}

// formatBytes is a memory figure as heroku ps and the charts show it.
func formatBytes(n int64) string {
	switch {
	case n <= 0:
		return "–"
	case n < 1<<20:
		return strconv.FormatInt(n>>10, 10) + " KB"
	case n < 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	}
	return strconv.FormatFloat(float64(n)/(1<<30), 'f', 2, 64) + " GB"
}

// ago is how long ago, as heroku ps words it ("~ 3m ago").
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

func (s *Server) appsPage(w http.ResponseWriter, r *http.Request, ses session) {
	apps, err := s.cfg.Source.Apps(r.Context())
	if err != nil {
		s.fail(w, r, ses, err)
		return
	}
	s.render(w, r, http.StatusOK, "apps", page{Title: "Apps", CSRF: s.csrf(ses), Apps: apps})
}

// rangeOf is the range a request asks for: ?range=1h|24h|7d.
func rangeOf(r *http.Request) Range {
	all := Ranges()
	for _, rg := range all {
		if rg.Name == r.URL.Query().Get("range") {
			return rg
		}
	}
	return all[0]
}

// logPaneLines is how many of the app's last lines the page starts with.
const logPaneLines = 100

func (s *Server) appPage(w http.ResponseWriter, r *http.Request, ses session) {
	ctx := r.Context()
	name := r.PathValue("app")
	a, err := s.cfg.Source.App(ctx, name)
	if err != nil {
		s.fail(w, r, ses, err)
		return
	}
	rg := rangeOf(r)
	m, err := s.cfg.Source.Metrics(ctx, name, rg)
	if err != nil {
		s.fail(w, r, ses, err)
		return
	}
	var lines []logLine
	s.cfg.Source.Logs(ctx, name, logPaneLines, func(batch [][]byte) bool {
		for _, l := range batch {
			lines = append(lines, parseLogLine(l))
		}
		return false // the history only: the script follows
	})
	s.render(w, r, http.StatusOK, "app", page{Title: a.Name, CSRF: s.csrf(ses), App: a,
		Charts: s.charts(m), Range: rg.Name, Ranges: Ranges(), Logs: lines, Live: true, Step: int(rg.Step / time.Second)})
}

// configVar is one config var; Value is set only on the config page.
type configVar struct{ Name, Value string }

func (s *Server) configPage(w http.ResponseWriter, r *http.Request, ses session) {
	ctx := r.Context()
	name := r.PathValue("app")
	a, err := s.cfg.Source.App(ctx, name)
	if err != nil {
		s.fail(w, r, ses, err)
		return
	}
	vars, err := s.cfg.Source.ConfigVars(ctx, name)
	if err != nil {
		s.fail(w, r, ses, err)
		return
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.Sort(names)
	list := make([]configVar, len(names))
	for i, k := range names {
		list[i] = configVar{k, vars[k]}
	}
	s.render(w, r, http.StatusOK, "config", page{Title: a.Name + " config vars", CSRF: s.csrf(ses), App: a, Config: list})
}

// logLine is a Logplex line split for the log pane, coloured as
// `dyno logs --tail` colours it: the header in its dyno's colour.
type logLine struct {
	Head  string // "2026-12-03T10:00:00.000000+00:00 app[web.1]:"
	Text  string
	Color int // logstore.ColorOf the dyno; -1 when the line has no header
}

// parseLogLine splits "TIME SOURCE[DYNO]: TEXT".
func parseLogLine(b []byte) logLine {
	l, ok := logstore.ParseLine(b)
	if !ok {
		return logLine{Text: string(b), Color: -1}
	}
	head, text, _ := bytes.Cut(b, []byte("]:"))
	return logLine{Head: string(head) + "]:", Text: string(text), Color: logstore.ColorOf(l.Dyno)}
}

// chartView is a chart ready for the page.
type chartView struct {
	ID  string
	SVG template.HTML
}

// charts draws the app's metrics over their range.
func (s *Server) charts(m *Metrics) []chartView {
	var out []chartView
	markers := make([]chart.Marker, 0, len(m.Events))
	for _, e := range m.Events {
		markers = append(markers, chart.Marker{T: e.Time, Kind: e.Kind, Text: e.Text})
	}
	draw := func(id string, c chart.Chart) {
		c.ID, c.From, c.To, c.Step, c.Markers, c.Location = id, m.From, m.To, m.Step, markers, s.cfg.Location
		var buf bytes.Buffer
		if err := c.WriteSVG(&buf); err != nil {
			s.cfg.ErrorLog.Printf("dashboard: chart %s: %v", id, err)
			return
		}
		// The chart package escapes every text it writes.
		out = append(out, chartView{ID: id, SVG: template.HTML(buf.String())})
	}
	for _, t := range m.Types {
		lines := []chart.Series{{Name: t.Type + " mean", Points: points(t.Memory)}, {Name: t.Type + " max", Points: points(t.MemoryMax)}}
		if len(t.Dynos) > 0 {
			// Few dynos: a line each, as Heroku draws memory per dyno.
			lines = lines[:0]
			for _, d := range t.Dynos {
				lines = append(lines, chart.Series{Name: d.Name, Points: points(d.Points)})
			}
		}
		draw("memory-"+t.Type, chart.Chart{Title: "Memory: " + t.Type, Unit: chart.Bytes, Lines: lines,
			Limit: float64(t.Quota), LimitLabel: "quota " + formatBytes(t.Quota)})
		draw("cpu-"+t.Type, chart.Chart{Title: "CPU: " + t.Type, Unit: chart.Percent,
			Lines: []chart.Series{{Name: t.Type + " mean", Points: percent(t.CPU)}, {Name: t.Type + " max", Points: percent(t.CPUMax)}}})
	}
	draw("throughput", chart.Chart{Title: "Throughput", Unit: chart.PerMinute,
		Lines: []chart.Series{{Name: "requests", Points: points(m.Requests)}}})
	draw("latency", chart.Chart{Title: "Response time", Unit: chart.Millis,
		Lines: []chart.Series{{Name: "p50", Points: points(m.P50)}, {Name: "p95", Points: points(m.P95)}, {Name: "p99", Points: points(m.P99)}}})
	var classes []chart.Series
	for _, c := range m.Classes {
		classes = append(classes, chart.Series{Name: c.Name, Class: "c" + c.Name[:1], Points: points(c.Points)})
	}
	draw("responses", chart.Chart{Title: "Responses by status", Unit: chart.PerMinute, Stacked: classes})
	var codes []chart.Series
	for _, c := range m.Codes {
		codes = append(codes, chart.Series{Name: c.Name, Points: points(c.Points)})
	}
	draw("errors", chart.Chart{Title: "Router errors by code", Unit: chart.PerMinute, Lines: codes})
	return out
}

func points(ps []Point) []chart.Point {
	out := make([]chart.Point, len(ps))
	for i, p := range ps {
		out[i] = chart.Point{T: p.T, V: p.V}
	}
	return out
}

// percent turns shares of a CPU into percent.
func percent(ps []Point) []chart.Point {
	out := points(ps)
	for i := range out {
		if !math.IsNaN(out[i].V) {
			out[i].V *= 100
		}
	}
	return out
}

// confirmView is an action's confirmation page.
type confirmView struct {
	Action string
	Say    string      // what will happen, in words
	Fields [][2]string // the form's fields, sent again with confirm=yes
}

// action confirms and then does one of the page's actions.
func (s *Server) action(w http.ResponseWriter, r *http.Request, ses session) {
	ctx := r.Context()
	name := r.PathValue("app")
	act := r.PathValue("action")
	a, err := s.cfg.Source.App(ctx, name)
	if err != nil {
		s.fail(w, r, ses, err)
		return
	}
	user, err := s.cfg.Source.User(ctx)
	if err != nil {
		s.fail(w, r, ses, err)
		return
	}
	form := r.PostForm
	var say string
	var do func() error
	var fields [][2]string
	switch act {
	case "restart":
		dyno := form.Get("dyno")
		say = "Restart every dyno of " + a.Name + "?"
		if dyno != "" {
			say = "Restart " + dyno + " of " + a.Name + "?"
		}
		fields = [][2]string{{"dyno", dyno}}
		do = func() error { return s.cfg.Source.Restart(ctx, a.Name, dyno, user) }
	case "scale":
		typ, size := form.Get("type"), form.Get("size")
		q, err := strconv.Atoi(form.Get("quantity"))
		if err != nil || q < 0 {
			s.actionError(w, r, ses, a, fmt.Sprintf("The quantity %q is not a whole number of dynos; give 0 or more.", form.Get("quantity")))
			return
		}
		to := typ + "=" + strconv.Itoa(q)
		if size != "" {
			to += ":" + size
		}
		say = "Scale " + a.Name + " to " + to + "?"
		fields = [][2]string{{"type", typ}, {"quantity", strconv.Itoa(q)}, {"size", size}}
		do = func() error { return s.cfg.Source.Scale(ctx, a.Name, typ, q, size, user) }
	case "rollback":
		v, err := strconv.Atoi(strings.TrimPrefix(form.Get("version"), "v"))
		if err != nil || v < 1 {
			s.actionError(w, r, ses, a, fmt.Sprintf("The release %q is not a version such as v3.", form.Get("version")))
			return
		}
		say = fmt.Sprintf("Roll %s back to v%d? This makes a new release with v%d's code and config.", a.Name, v, v)
		fields = [][2]string{{"version", strconv.Itoa(v)}}
		do = func() error { _, err := s.cfg.Source.Rollback(ctx, a.Name, v, user); return err }
	case "maintenance":
		on := form.Get("on") == "true"
		say = "Turn maintenance mode off for " + a.Name + "? Requests reach its web dynos again."
		if on {
			say = "Turn maintenance mode on for " + a.Name + "? Every request gets the maintenance page (H80)."
		}
		fields = [][2]string{{"on", strconv.FormatBool(on)}}
		do = func() error { return s.cfg.Source.Maintenance(ctx, a.Name, on, user) }
	default:
		http.NotFound(w, r)
		return
	}
	if form.Get("confirm") != "yes" {
		s.render(w, r, http.StatusOK, "confirm", page{Title: "Confirm", CSRF: s.csrf(ses), App: a,
			Confirm: &confirmView{Action: act, Say: say, Fields: fields}})
		return
	}
	if err := do(); err != nil {
		s.actionError(w, r, ses, a, err.Error())
		return
	}
	http.Redirect(w, r, s.cfg.Base+"/apps/"+a.Name, http.StatusSeeOther)
}

// actionError shows why an action was refused, with the way back.
func (s *Server) actionError(w http.ResponseWriter, r *http.Request, ses session, a *AppView, msg string) {
	s.render(w, r, http.StatusUnprocessableEntity, "error", page{Title: "Not done", CSRF: s.csrf(ses), App: a, Error: msg})
}
