package daemon

import (
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/appmetrics"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
	"github.com/dyno-run/dyno/supervisor/dashboard"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/dyno-run/dyno/supervisor/router"
)

// The daemon's side of the dashboard (supervisor/dashboard): what it
// shows, read from the ledgers, the supervisors and each app's metrics
// store; the actions, through the same code as the API's; and the
// sampler that fills the stores every 10 s.

// live is what an app's open dashboard pages listen to.
type live struct {
	mu       sync.Mutex
	next     int
	watchers map[int]func(dashboard.Change)
	closed   chan struct{}
	// changed wakes watchDynos after a dyno changed; crashes are the
	// dynos' crash counts as it last saw them.
	changed chan struct{}
	crashes map[string]int
}

func newLive() *live {
	return &live{watchers: map[int]func(dashboard.Change){}, closed: make(chan struct{}),
		changed: make(chan struct{}, 1), crashes: map[string]int{}}
}

// notify tells every open page of the app what changed.
func (r *appRun) notify(c dashboard.Change) {
	r.live.mu.Lock()
	defer r.live.mu.Unlock()
	for _, w := range r.live.watchers {
		w(c)
	}
}

// event marks e on the app's charts.
func (r *appRun) event(e appmetrics.Event) {
	if r.metrics != nil {
		if err := r.metrics.AddEvent(e); err != nil {
			r.d.logf("%s: %v", r.name, err)
		}
	}
	r.notify(dashboard.ChangeRelease)
}

// dynosChanged is the supervisor's OnChange for the dashboard. An
// OnChange must not block, so it only wakes watchDynos: a burst of
// changes (a scale to 200) is one look at the dynos.
func (r *appRun) dynosChanged() {
	select {
	case r.live.changed <- struct{}{}:
	default:
	}
}

// watchDynos marks each crash (R15 when the kernel killed the dyno for
// its memory) and tells the open pages that the dynos changed, until
// the app is closed.
func (r *appRun) watchDynos() {
	for {
		select {
		case <-r.live.closed:
			return
		case <-r.live.changed:
		}
		now := time.Now()
		seen := map[string]bool{}
		for _, st := range r.sup.Status() {
			seen[st.Name] = true
			// A count below the last is a new dyno of the same name
			// (a new release), which starts from none.
			if st.Crashes > r.live.crashes[st.Name] && !st.OneOff {
				e := appmetrics.Event{Time: now, Kind: "crash", Text: st.Name + " crashed"}
				if st.OOMKilled {
					e.Kind, e.Text = "r15", st.Name+": R15 memory quota vastly exceeded, killed"
				}
				r.event(e)
			}
			r.live.crashes[st.Name] = st.Crashes
		}
		for name := range r.live.crashes {
			if !seen[name] {
				delete(r.live.crashes, name)
			}
		}
		r.notify(dashboard.ChangeDynos)
	}
}

// closeLive ends the app's pages' streams.
func (r *appRun) closeLive() {
	r.live.mu.Lock()
	defer r.live.mu.Unlock()
	select {
	case <-r.live.closed:
	default:
		close(r.live.closed)
	}
}

// sampleMetrics stores a sample of every app's dynos and traffic every
// appmetrics.Every until ctx ends, and sweeps unused series daily.
func (d *Daemon) sampleMetrics(ctx context.Context) {
	tick := time.NewTicker(appmetrics.Every)
	defer tick.Stop()
	var lastSweep time.Time // the first sample sweeps
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			d.mu.Lock()
			apps := slices.Collect(maps.Values(d.apps))
			d.mu.Unlock()
			sweep := now.Sub(lastSweep) > 24*time.Hour
			if sweep {
				lastSweep = now
			}
			for _, a := range apps {
				a.sample(now)
				if sweep && a.metrics != nil {
					if err := a.metrics.Sweep(now); err != nil {
						d.logf("%s: %v", a.name, err)
					}
				}
			}
		}
	}
}

// sample reads the app's formation dynos (from their cgroups, else
// from /proc) and the router's counts, and stores them.
func (r *appRun) sample(now time.Time) {
	traffic := r.route.TakeTraffic()
	if r.metrics == nil {
		return
	}
	var dynos []appmetrics.Dyno
	for _, st := range r.sup.Status() {
		if st.OneOff || st.InitPid <= 0 || st.State != supervisor.Up && st.State != supervisor.Starting {
			continue
		}
		dy := appmetrics.Dyno{Name: st.Name, Type: st.Type, Quota: r.sizes[st.Size].Memory, Pid: st.InitPid}
		if m := st.Metrics; m != nil && m.MemoryTotal > 0 {
			dy.Memory, dy.RSS, dy.Swap, dy.CPU, dy.Measured = m.MemoryTotal, m.MemoryRSS, m.MemorySwap, st.CPU, true
		} else if rss, cpu, err := appmetrics.Tree(st.InitPid); err == nil {
			dy.Memory, dy.RSS, dy.CPU, dy.Measured = rss, rss, cpu, true
		}
		dynos = append(dynos, dy)
	}
	if err := r.metrics.Record(now, dynos, traffic); err != nil {
		// The daemon's log, once per distinct error: the app's own log
		// is its dynos' and its users'.
		msg := err.Error()
		r.mu.Lock()
		same := r.metricsErr == msg
		r.metricsErr = msg
		r.mu.Unlock()
		if !same {
			r.d.logf("%s: metrics: %v", r.name, err)
		}
	}
	r.notify(dashboard.ChangeMetrics)
}

// dashSource is the daemon as the dashboard's Source.
type dashSource struct{ d *Daemon }

func (s dashSource) app(name string) (*appRun, error) {
	if a, ok := s.d.app(name); ok {
		return a, nil
	}
	return nil, fmt.Errorf("%s: %w", name, dashboard.ErrNoApp)
}

func (s dashSource) Apps(ctx context.Context) ([]dashboard.AppSummary, error) {
	names, err := s.d.cfg.Home.List()
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.AppSummary, 0, len(names))
	for _, n := range names {
		a, ok := s.d.app(n)
		if !ok {
			continue // not taken up yet, or destroyed since the list
		}
		st, err := a.app.Ledger.State()
		if err != nil {
			return nil, err
		}
		sum := dashboard.AppSummary{Name: n, State: a.dashState(st, a.sup.Status()), URL: s.webURL(a, st)}
		if st.Current != nil {
			sum.Release = st.Current.Version
		}
		if f, _, err := a.app.Formation(st); err == nil && st.Current != nil {
			sum.Formation = app.FormationArgs(f, app.FormationTypes(st.Current))
		}
		if ev, err := a.events(time.Now().Add(-7 * 24 * time.Hour)); err == nil && len(ev) > 0 {
			sum.LastEvent = ev[len(ev)-1]
		}
		out = append(out, sum)
	}
	return out, nil
}

// dashState is the app's state in the dashboard's words.
func (r *appRun) dashState(st *ledger.State, dynos []supervisor.DynoStatus) string {
	switch {
	case st.Current == nil || st.Current.Slug == "":
		return dashboard.StateNoRelease
	case st.Maintenance:
		return dashboard.StateMaintenance
	case r.sup.Asleep():
		return dashboard.StateSleeping
	}
	formation := 0
	for _, d := range dynos {
		if d.OneOff {
			continue
		}
		formation++
		if d.State == supervisor.Crashed {
			return dashboard.StateCrashed
		}
	}
	if formation == 0 {
		return dashboard.StateIdle
	}
	return dashboard.StateRunning
}

// webURL is the app's address on the router, "" when it has no web
// dynos or the router listens nowhere.
func (s dashSource) webURL(a *appRun, st *ledger.State) string {
	g := s.d.routing
	if g == nil || st.Current == nil {
		return ""
	}
	if f, _, err := a.app.Formation(st); err != nil || f["web"].Quantity == 0 {
		return ""
	}
	// HTTPS where the router has it, as the address to give out.
	g.mu.Lock()
	scheme, addr, std := "https", g.addrs["https"], "443"
	if addr == nil {
		scheme, addr, std = "http", g.addrs["http"], "80"
	}
	g.mu.Unlock()
	if addr == nil {
		return ""
	}
	u := scheme + "://" + app.DefaultHost(a.name, g.domain)
	if _, port, _ := net.SplitHostPort(addr.String()); port != std {
		u += ":" + port
	}
	return u + "/"
}

func (s dashSource) App(ctx context.Context, name string) (*dashboard.AppView, error) {
	a, err := s.app(name)
	if err != nil {
		return nil, err
	}
	st, err := a.app.Ledger.State()
	if err != nil {
		return nil, err
	}
	status := a.sup.Status()
	v := &dashboard.AppView{Name: name, State: a.dashState(st, status), URL: s.webURL(a, st), Maintenance: st.Maintenance,
		Domains: st.Domains, Sizes: slices.Sorted(maps.Keys(a.sizes))}
	if st.Current != nil {
		v.Release = st.Current.Version
		v.ConfigNames = slices.Sorted(maps.Keys(st.Current.ConfigVars))
		if f, _, err := a.app.Formation(st); err == nil {
			for _, t := range app.ProcessTypeNames(st.Current.ProcessTypes) {
				e := f[t]
				v.Formation = append(v.Formation, dashboard.FormationRow{Type: t, Quantity: e.Quantity, Size: e.Size, Command: st.Current.ProcessTypes[t]})
			}
		}
	}
	for _, d := range status {
		row := dashboard.DynoRow{Name: d.Name, Type: d.Type, Size: d.Size, State: string(d.State), Since: d.Since,
			Quota: a.sizes[d.Size].Memory, OneOff: d.OneOff}
		if d.Idle {
			row.State = "idle"
		}
		if a.metrics != nil {
			row.Memory, row.CPU, _ = a.metrics.Now(d.Name)
		}
		v.Dynos = append(v.Dynos, row)
	}
	rels, err := a.app.Ledger.Releases(releasesShown)
	if err != nil {
		return nil, err
	}
	for _, r := range rels {
		v.Releases = append(v.Releases, dashboard.ReleaseRow{Version: r.Version, Description: r.Description, User: r.User,
			Time: r.Time, Status: r.Status, Current: st.Current != nil && r.Version == st.Current.Version})
	}
	for _, at := range st.Attachments {
		v.Addons = append(v.Addons, dashboard.AddonRow{Name: at.Name, Addon: at.Addon, Service: at.Service, Plan: at.Plan})
	}
	return v, nil
}

// releasesShown is how many releases the app's page lists, as the
// Heroku Dashboard's activity tab shows the latest.
const releasesShown = 15

func (s dashSource) ConfigVars(ctx context.Context, name string) (map[string]string, error) {
	a, err := s.app(name)
	if err != nil {
		return nil, err
	}
	st, err := a.app.Ledger.State()
	if err != nil || st.Current == nil {
		return nil, err
	}
	return st.Current.ConfigVars, nil
}

func (s dashSource) Metrics(ctx context.Context, name string, rg dashboard.Range) (*dashboard.Metrics, error) {
	a, err := s.app(name)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	m := &dashboard.Metrics{From: now.Add(-rg.Span), To: now, Step: rg.Step}
	if m.Events, err = a.events(m.From); err != nil {
		return nil, err
	}
	if a.metrics == nil {
		return m, nil
	}
	ser, err := a.metrics.Read(rg.Step, m.From, now)
	if err != nil {
		return nil, err
	}
	status := a.sup.Status()
	// Every type the formation runs has its charts, with data or not
	// yet; a type scaled to 0 keeps them while the range has its data.
	types := map[string]int64{}
	if st, err := a.app.Ledger.State(); err == nil {
		if f, _, err := a.app.Formation(st); err == nil {
			for t, e := range f {
				if e.Quantity > 0 {
					types[t] = a.sizes[e.Size].Memory
				}
			}
		}
	}
	for t, ts := range ser.Types {
		if _, ok := types[t]; !ok {
			types[t] = ts.Quota
		}
	}
	names := make(map[string]string, len(types))
	for t := range types {
		names[t] = ""
	}
	for _, t := range app.ProcessTypeNames(names) {
		ts, ok := ser.Types[t]
		if !ok {
			ts.Quota = types[t]
		}
		tm := dashboard.TypeMetrics{Type: t, Memory: dashPoints(ts.Memory), MemoryMax: dashPoints(ts.MemoryMax),
			Quota: ts.Quota, CPU: dashPoints(ts.CPU), CPUMax: dashPoints(ts.CPUMax)}
		// The dynos of the type now, when there are few enough to
		// draw a line each.
		var names []string
		for _, st := range status {
			if st.Type == t && !st.OneOff {
				names = append(names, st.Name)
			}
		}
		if len(names) > dynoLines {
			names = nil
		}
		per, err := a.metrics.DynoMemory(names, rg.Step, m.From, now)
		if err != nil {
			return nil, err
		}
		for _, name := range slices.SortedFunc(maps.Keys(per), dynoOrder) {
			tm.Dynos = append(tm.Dynos, dashboard.Series{Name: name, Points: dashPoints(per[name])})
		}
		m.Types = append(m.Types, tm)
	}
	m.Requests = dashPoints(ser.Requests)
	m.P50, m.P95, m.P99 = dashPoints(ser.P50), dashPoints(ser.P95), dashPoints(ser.P99)
	for i, c := range ser.Classes {
		if i == 0 && allZero(c) {
			continue // 1xx: rare enough to leave out unless there are some
		}
		m.Classes = append(m.Classes, dashboard.Series{Name: strconv.Itoa(i+1) + "xx", Points: dashPoints(c)})
	}
	for code, c := range ser.Codes {
		if len(c) > 0 {
			m.Codes = append(m.Codes, dashboard.Series{Name: router.Code(code).String(), Points: dashPoints(c)})
		}
	}
	return m, nil
}

// dynoLines is how many dynos a type may have for its memory chart to
// draw a line for each: the chart's eight colours.
const dynoLines = 8

// dynoOrder sorts web.2 before web.10.
func dynoOrder(a, b string) int {
	na, _ := strconv.Atoi(a[strings.LastIndexByte(a, '.')+1:])
	nb, _ := strconv.Atoi(b[strings.LastIndexByte(b, '.')+1:])
	if na != nb {
		return na - nb
	}
	return strings.Compare(a, b)
}

func allZero(ps []appmetrics.Point) bool {
	for _, p := range ps {
		if p.V != 0 && !math.IsNaN(p.V) {
			return false
		}
	}
	return true
}

func dashPoints(ps []appmetrics.Point) []dashboard.Point {
	out := make([]dashboard.Point, len(ps))
	for i, p := range ps {
		out[i] = dashboard.Point{T: p.T, V: p.V}
	}
	return out
}

// events are the app's markers from from on, oldest first: releases,
// scale changes and maintenance from the ledger (with who made them),
// and crashes, restarts and R14s from its metrics store.
func (r *appRun) events(from time.Time) ([]dashboard.Event, error) {
	recs, err := r.app.Ledger.Since(from, ledger.TypeRelease, ledger.TypeFormation, ledger.TypeMaintenance)
	if err != nil {
		return nil, err
	}
	var out []dashboard.Event
	for _, rec := range recs {
		switch {
		case rec.Release != nil:
			out = append(out, dashboard.Event{Time: rec.Time, Kind: "release",
				Text: fmt.Sprintf("v%d %s by %s", rec.Release.Version, rec.Release.Description, rec.User)})
		case rec.Formation != nil:
			_, scaled := app.FormationText(rec.Formation)
			out = append(out, dashboard.Event{Time: rec.Time, Kind: "scale", Text: "Scaled to " + scaled + " by " + rec.User})
		case rec.Maintenance != nil:
			out = append(out, dashboard.Event{Time: rec.Time, Kind: "maintenance", Text: app.MaintenanceEvent(*rec.Maintenance) + " by " + rec.User})
		}
	}
	if r.metrics != nil {
		evs, err := r.metrics.Events(from)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			out = append(out, dashboard.Event{Time: e.Time, Kind: e.Kind, Text: e.Text})
		}
	}
	slices.SortStableFunc(out, func(a, b dashboard.Event) int { return a.Time.Compare(b.Time) })
	return out, nil
}

func (s dashSource) User(ctx context.Context) (string, error) {
	acct, err := s.d.account()
	if err != nil {
		return "", err
	}
	return acct.Email, nil
}

func (s dashSource) Restart(ctx context.Context, name, dyno, user string) error {
	a, err := s.app(name)
	if err != nil {
		return err
	}
	return a.restart(dyno, user)
}

func (s dashSource) Scale(ctx context.Context, name, typ string, quantity int, size, user string) error {
	a, err := s.app(name)
	if err != nil {
		return err
	}
	_, err = a.scale([]app.Scale{{Type: typ, Op: '=', N: quantity, Size: size}}, user)
	return err
}

func (s dashSource) Rollback(ctx context.Context, name string, version int, user string) (int, error) {
	a, err := s.app(name)
	if err != nil {
		return 0, err
	}
	if _, err := a.app.Ledger.Release(version); errors.Is(err, ledger.ErrNoRelease) {
		return 0, fmt.Errorf("%s has no v%d", name, version)
	}
	rel, err := a.rollback(version, user)
	return rel.Version, err
}

func (s dashSource) Maintenance(ctx context.Context, name string, on bool, user string) error {
	a, err := s.app(name)
	if err != nil {
		return err
	}
	_, err = a.setMaintenance(on, user)
	return err
}

func (s dashSource) Watch(ctx context.Context, name string, changed func(dashboard.Change)) error {
	a, err := s.app(name)
	if err != nil {
		return err
	}
	a.live.mu.Lock()
	id := a.live.next
	a.live.next++
	a.live.watchers[id] = changed
	a.live.mu.Unlock()
	defer func() {
		a.live.mu.Lock()
		delete(a.live.watchers, id)
		a.live.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-a.live.closed:
		return nil
	case <-s.d.life.Done():
		return nil
	}
}

func (s dashSource) Logs(ctx context.Context, name string, n int, send func([][]byte) bool) error {
	a, err := s.app(name)
	if err != nil {
		return err
	}
	// Subscribed before the history is read: a line written between
	// the two wakes the follow, which then finds it through the cursor.
	wake := a.hub.Subscribe(logstore.Filter{}, 1)
	defer wake.Close()
	lines, cur, err := logstore.Follow(a.app.LogsDir(), logstore.Filter{}, n)
	if err != nil {
		return err
	}
	defer cur.Close()
	give := func(lines []logstore.Line) bool {
		raw := make([][]byte, len(lines))
		for i, l := range lines {
			raw[i] = l.Raw
		}
		return send(raw)
	}
	if !give(lines) {
		return nil
	}
	return followLogs(ctx, wake, cur, dashboardKeepAlive, give)
}

// dashboardKeepAlive is how often a quiet log pane hears from the
// daemon: within the router's 55 s idle limit.
const dashboardKeepAlive = 25 * time.Second

// dashboardServer makes the dashboard served under base ("" on its own
// host, "/dashboard" on the API's listener).
func (d *Daemon) dashboardServer(base string) (http.Handler, error) {
	return dashboard.New(dashboard.Config{
		Source: dashSource{d},
		Tokens: apitoken.NewVerifier(APIDir(d.cfg.Home.Dir)),
		KeyDir: APIDir(d.cfg.Home.Dir),
		Base:   base,
	})
}

// serveDashboard starts the dashboard for the router: an HTTP server
// on a loopback port of its own, which the router reaches as the one
// backend of dashboard.DOMAIN, as it reaches a web dyno. It stops with
// the router.
func (g *routing) serveDashboard() error {
	h, err := g.d.dashboardServer("")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: g.d.cfg.HeaderTimeout, IdleTimeout: idleTimeout,
		MaxHeaderBytes: maxHeaderBytes, ErrorLog: log.New(serverLog{g.d}, "dashboard: ", 0)}
	g.wg.Go(func() { srv.Serve(ln) })
	g.wg.Go(func() {
		<-g.stopped
		srv.Close() // its streams end with the daemon
	})
	a := router.NewApp(dashboard.Host, time.Now)
	a.Update(router.Running, []router.Backend{{Dyno: "dashboard", Addr: ln.Addr().String()}})
	g.dashboard = a
	return nil
}
