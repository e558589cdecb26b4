package router

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// AppState is what an app's web formation can do for a request now, as
// the dyno manager last said.
type AppState uint8

const (
	// NoRelease: nothing deployed yet; requests get H81.
	NoRelease AppState = iota
	// NoWeb: the formation has no web dynos; requests get H14.
	NoWeb
	// Crashed: every web dyno crashed (or failed to boot) and none is
	// starting; requests get H10.
	Crashed
	// Booting: web dynos are starting or restarting and none is up:
	// requests wait for one, up to BootWait (H20).
	Booting
	// Running: at least one web dyno is up.
	Running
	// Sleeping: the app's dynos sleep (eco): a request wakes them
	// through the app's waker and waits for one to come up, as for
	// Booting.
	Sleeping
)

// BootWait is how long a request waits for a web dyno to come up, as
// Heroku's router holds a request for up to 75 s (H20 after).
const BootWait = 75 * time.Second

// App is one app as the router sees it: its state and the web dynos that
// are up. The dyno manager calls Update on every change; the engine calls
// Pick for each request, from any number of goroutines.
type App struct {
	name   string
	picker *Picker

	mu      sync.Mutex
	state   AppState
	changed chan struct{} // closed and replaced by each Update

	// maintenance is the page every request gets (H80) while the app
	// is in maintenance mode; nil when it is not. Atomic: the event
	// loops read it for every request.
	maintenance atomic.Pointer[string]
	// lastRequest is when a request last came for the app, in unix
	// nanoseconds: the daemon puts an idle eco app to sleep by it.
	lastRequest atomic.Int64
	// traffic counts the app's requests for the dashboard.
	traffic traffic
	// waker is called when a request comes while the app sleeps; it
	// must not block. Set once, before the app is routed to.
	waker func()
}

// NewApp returns app name in state NoRelease, reading the time from now
// (time.Now, or a fake clock in tests).
func NewApp(name string, now func() time.Time) *App {
	return &App{name: name, picker: NewPicker(now), changed: make(chan struct{})}
}

// SetWaker makes wake what a request for the app calls while it is
// Sleeping (the daemon starts its dynos). Call it before the app is in
// a Table.
func (a *App) SetWaker(wake func()) { a.waker = wake }

// LastRequest is when a request last came for the app; the zero time if
// none has.
func (a *App) LastRequest() time.Time {
	if n := a.lastRequest.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// requested records that a request came now. It writes at most once a
// second: every loop reads the word for every request, and a store per
// request would bounce its cache line between the cores.
func (a *App) requested() {
	now := time.Now().UnixNano()
	if now-a.lastRequest.Load() >= int64(time.Second) {
		a.lastRequest.Store(now)
	}
}

// Name is the app's name, the log line's app.
func (a *App) Name() string { return a.name }

// Update says what the app's web formation is now: its state and the
// dynos that are up and take requests (a dyno that is booting, or has
// been sent SIGTERM, is not among them). Requests waiting in Pick look
// again.
func (a *App) Update(state AppState, up []Backend) {
	if state == Running && len(up) == 0 {
		state = Booting
	}
	if state != Running {
		up = nil
	}
	a.picker.SetUp(up)
	a.mu.Lock()
	a.state = state
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
}

// SetMaintenance turns maintenance mode on, with page as the HTML every
// request is answered with (H80's own when ""), or off. Requests waiting
// in Pick look again, and get H80 when it is on.
func (a *App) SetMaintenance(on bool, page string) {
	if !on {
		if a.maintenance.Swap(nil) == nil {
			return
		}
	} else {
		if page == "" {
			page = H80.Page()
		}
		if old := a.maintenance.Load(); old != nil && *old == page {
			return
		}
		a.maintenance.Store(&page)
	}
	a.mu.Lock()
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
}

// Page is the page the app's requests get for code: the maintenance
// page for H80, the code's own otherwise.
func (a *App) Page(code Code) string {
	if code == H80 && a != nil {
		if p := a.maintenance.Load(); p != nil {
			return *p
		}
	}
	return code.Page()
}

// State is the app's state as last updated.
func (a *App) State() AppState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Quarantine keeps b from new requests for 5 s: it refused a connection.
func (a *App) Quarantine(b Backend) { a.picker.Quarantine(b) }

// Pick returns the web dyno a request goes to, or the code to answer
// with. A request waits while the app's web dynos boot or restart, or
// while every dyno that is up is quarantined, until deadline (H20) or
// until ctx ends (the client went away: H27). refused says an earlier
// try of this request was refused: when every dyno is then quarantined,
// the answer is H21 at once rather than a wait, since each has refused.
func (a *App) Pick(ctx context.Context, deadline time.Time, refused bool) (Backend, Code) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	a.requested()
	for {
		a.mu.Lock()
		state, changed := a.state, a.changed
		a.mu.Unlock()
		if a.maintenance.Load() != nil {
			return Backend{}, H80
		}
		switch state {
		case Sleeping:
			if a.waker != nil {
				a.waker()
			}
		case NoRelease:
			return Backend{}, H81
		case NoWeb:
			return Backend{}, H14
		case Crashed:
			return Backend{}, H10
		case Running:
			b, err := a.picker.Pick()
			if err == nil {
				return b, OK
			}
			if refused && errors.Is(err, ErrAllQuarantined) {
				return Backend{}, H21
			}
		}
		// Booting, or every dyno up is quarantined (or the one that was
		// up just left): wait for a change, or for a quarantine to end.
		wait := time.Until(deadline)
		if wait <= 0 {
			return Backend{}, H20
		}
		if next, ok := a.picker.nextFree(); ok {
			wait = min(wait, time.Until(next))
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			return Backend{}, H27
		}
	}
}

// Table is what the router routes by: hostnames to apps. The daemon
// builds a new one when apps or domains change and swaps it in whole;
// an App in it lives on across tables, so its state and quarantines do.
type Table struct {
	hosts *Hosts
	apps  map[string]*App
}

// NewTable returns a table routing by hosts to apps (by name). An app
// hosts names but apps lacks is not routed to.
func NewTable(hosts *Hosts, apps map[string]*App) *Table {
	return &Table{hosts: hosts, apps: apps}
}

// Lookup returns the app serving host (a Host header's value).
func (t *Table) Lookup(host string) (*App, bool) {
	if t == nil || t.hosts == nil {
		return nil, false
	}
	name, ok := t.hosts.Lookup(host)
	if !ok {
		return nil, false
	}
	a, ok := t.apps[name]
	return a, ok
}
