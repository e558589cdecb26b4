package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/appmetrics"
	"github.com/dyno-run/dyno/supervisor/dashboard"
	"github.com/dyno-run/dyno/supervisor/drain"
	"github.com/dyno-run/dyno/supervisor/logmux"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/dyno-run/dyno/supervisor/release"
	"github.com/dyno-run/dyno/supervisor/router"
)

// appRun is one app under the daemon: its dynos' supervisor, its logs,
// and the release it runs.
type appRun struct {
	d    *Daemon
	name string
	app  *app.App

	sizes map[string]cgroup.Size // dyno.toml's, read when the app was taken up
	ids   *isolate.IDRange       // the app's own host ids; nil: the daemon's one uid
	store *logstore.Store
	hub   *logstore.Hub
	// drains get every line the store gets (drains.go), never holding
	// up the mux; look keeps them to the ledger's list.
	drains *drain.Manager
	logs   *logmux.Mux
	sup    *supervisor.Supervisor
	// route is the app as the router sees it; routeMu orders its
	// updates (routeState).
	route   *router.App
	routeMu sync.Mutex

	mu  sync.Mutex
	seq int // the ledger record last acted on
	// stamp is the ledger's when a look last succeeded (stamped).
	stamp   ledger.Stamp
	stamped bool
	rel     *ledger.Release
	slug    *release.Slug // the running release's, held against slugs:gc
	lower   string        // where it is unpacked
	lastErr string
	// pending: the last look found the newest release pending, so the
	// next looks check who runs its phase even if the ledger is
	// unchanged (its maker may die without a word). phase: this daemon
	// runs one.
	pending, phase bool
	// webs is how many web dynos the formation wants; domains are the
	// app's custom domains, both as of the last ledger change.
	webs    int
	domains []string
	certs   []ledger.Cert

	// maint is maintenance mode as the router applies it.
	maint maintenance

	// eco: the formation's web dynos are eco, so the app sleeps when
	// idle (sleep.go); as of the last ledger change. awake is when it
	// was taken up or last woken; waking is set while a wake is under
	// way.
	eco    bool
	awake  time.Time
	waking atomic.Bool

	// metrics is the app's metrics store (nil when it could not be
	// opened: the daemon's log says why); live, its open dashboard
	// pages (dashboard.go).
	metrics    *appmetrics.Store
	metricsErr string // the last error storing a sample, said once
	live       *live

	// attached are heroku run's run.N (attach.go), by name, under mu;
	// attachedWG counts them until each has ended.
	attached   map[string]*attachedDyno
	attachedWG sync.WaitGroup
}

func (d *Daemon) openApp(name string) (r *appRun, err error) {
	a, err := d.cfg.Home.Open(name)
	if err != nil {
		return nil, err
	}
	sizes, err := loadSizes(d.cfg.Home)
	if err != nil {
		return nil, err
	}
	// Directories of dynos killed with a daemon that died; live ones
	// are locked by their inits and kept.
	if _, err := isolate.SweepDynoDirs(a.DynosDir()); err != nil {
		return nil, err
	}
	store, err := logstore.Open(a.LogsDir(), logstore.Options{KeepBytes: d.cfg.LogKeep})
	if err != nil {
		return nil, err
	}
	r = &appRun{d: d, name: name, app: a, sizes: sizes, store: store, hub: logstore.NewHub(),
		route: router.NewApp(name, time.Now), drains: d.newDrains(name), live: newLive()}
	if r.metrics, err = appmetrics.Open(a.MetricsDir()); err != nil {
		// The dynos run without it; the dashboard draws no charts.
		d.logf("%s: %v", name, err)
	}
	r.logs = logmux.New(io.MultiWriter(store, r.hub, r.drains), logmux.Options{Format: logmux.FormatLogplex})
	ids, _, err := supervisor.AppIDs(d.cfg.Home.Dir, name, d.cfg.Home.Holds)
	if err != nil {
		store.Close()
		r.closeDrains()
		if r.metrics != nil {
			r.metrics.Close()
		}
		return nil, err
	}
	r.ids = ids
	r.slug = &release.Slug{App: a, IDs: ids, Grace: d.cfg.StopTimeout + slugMargin}
	runner := d.newRunner(a, sizes, ids)
	// A warm init per app: restarts, scale-ups and new releases skip
	// the init's clone, exec and runtime start-up, and with the app's
	// own ids its mapping and re-execution too.
	if d.spawner != nil {
		d.spawner.WarmUp(a.DynosDir(), ids)
	}
	r.sup = supervisor.NewSupervisor(supervisor.Options{
		Runner:      runner,
		Logs:        r.logs,
		StopTimeout: d.cfg.StopTimeout,
		BootTimeout: d.cfg.BootTimeout,
		Restart:     d.cfg.Restart,
		Cycle:       max(d.cfg.Cycle, 0),
		CycleJitter: d.cfg.CycleJitter,
		NewPort:     d.allocPort,
		OnChange: func() {
			r.routeState()
			r.dynosChanged()
			d.trimmer.Kick()
		},
	})
	r.awake = time.Now()
	// Asleep when the daemon stopped: it stays so, its dynos idle from
	// the start, until a request wakes it.
	if r.sleepMarked() {
		r.sup.Sleep()
	}
	r.route.SetWaker(r.wakeOnRequest)
	go r.watchDynos()
	return r, nil
}

// slugMargin is how much longer than the stop timeout a slug stays held
// after a new release moved its app to another: the old dynos' stop may
// begin a little after the move.
const slugMargin = 10 * time.Second

// isolatedRunner starts app a's dynos isolated (newRunner's default).
func (d *Daemon) isolatedRunner(a *app.App, sizes map[string]cgroup.Size, ids *isolate.IDRange) supervisor.IsolatedRunner {
	return supervisor.IsolatedRunner{
		IDs:       ids,
		Spawner:   d.spawner,
		StateDir:  a.DynosDir(),
		CopyLower: d.copy,
		Seccomp:   true,
		Cgroups:   d.cgroups,
		Profile:   true,
		Sizes:     sizes,
		Size:      sizes[app.DefaultSize],
	}
}

// fail says what keeps the app from its formation, once per distinct
// error, in the daemon's log and the app's.
func (r *appRun) fail(err error) {
	r.mu.Lock()
	same := r.lastErr == err.Error()
	r.lastErr = err.Error()
	r.mu.Unlock()
	if !same {
		r.d.logf("%s: %v", r.name, err)
		r.logs.System("manager", err.Error())
	}
}

// converge brings the app's dynos to what its ledger says, when the
// ledger has changed since the last look, and sees that a pending
// release's phase runs.
//
// The main loop calls it every poll for every app. Once a look has
// succeeded, the next ones stat the ledger and stop there while its
// stamp stays the same and settled: most polls find nothing new, and
// reading and folding the whole ledger each time would cost every app a
// read and garbage four times a second.
func (r *appRun) converge() error {
	stamp, serr := r.app.Ledger.Stamp()
	r.mu.Lock()
	same := serr == nil && r.stamped && stamp == r.stamp && !r.pending
	r.mu.Unlock()
	if same && stamp.Settled(time.Now()) {
		return nil
	}
	err := r.look()
	r.mu.Lock()
	// Stamped before the look: a write during it changes the stamp.
	r.stamp, r.stamped = stamp, serr == nil && err == nil
	r.mu.Unlock()
	return err
}

// look reads the ledger and acts on what changed since the last look.
func (r *appRun) look() error {
	st, err := r.app.Ledger.State()
	if err != nil {
		return err
	}
	r.mu.Lock()
	look := st.Seq != r.seq || r.pending
	r.mu.Unlock()
	if look {
		r.checkPhase(st)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.Seq == r.seq {
		return nil
	}
	defer r.notify(dashboard.ChangeRelease)
	// The router's view, whatever becomes of the release below; and
	// the drains, which carry the app's lines with or without one.
	r.domains, r.certs = st.Domains, st.Certs
	r.drains.Set(st.Drains)
	rel := st.Current
	pageURL := ""
	if rel != nil {
		pageURL = rel.ConfigVars[MaintenancePageVar]
	}
	r.maint.set(st.Maintenance, pageURL)
	if rel == nil || rel.Slug == "" {
		r.seq = st.Seq
		r.rel, r.webs = nil, 0
		r.sup.Reconcile(nil)
		return nil
	}
	// The formation is checked against the limit before anything is
	// sized by it: a ledger written by an older dyno, or by hand, may
	// hold any number.
	f, over, err := r.app.Formation(st)
	if err != nil {
		return err
	}
	// The app's own copy when it has its own ids: made once, then each
	// start mounts it as it is.
	lower, err := r.slug.Use(rel.Slug)
	if err != nil {
		return err
	}
	r.lower = lower
	r.rel = rel
	if over != "" {
		// Once per ledger change: converge gets here only when the
		// ledger has changed.
		r.d.logf("%s: %s", r.name, over)
		r.logs.System("manager", over)
	}
	r.seq = st.Seq
	r.lastErr = ""
	// Dynos that run this release at this size keep running; on a new
	// release every one restarts, as Heroku restarts an app on a
	// release, even when its slug and config are the same as before.
	dynos := release.Dynos(rel, f, r.options())
	r.webs = 0
	preboot := slices.Contains(st.Features, "preboot")
	// Heroku's dyno ids are heroku.APP.UUID, the UUID the process's.
	metrics := ""
	if slices.Contains(st.Features, "log-runtime-metrics") {
		metrics = "heroku." + r.name
	}
	r.eco = f["web"].Quantity > 0 && f["web"].Size == sleepingSize
	for i, c := range dynos {
		dynos[i].RuntimeMetrics = metrics
		if c.Web {
			r.webs++
			// A web dyno's next restart for a new config starts the
			// new process beside the old one (supervisor/preboot.go).
			dynos[i].Preboot = preboot
		}
	}
	r.sup.Reconcile(dynos)
	return nil
}

// checkPhase starts the phase of the newest release when it is pending
// and no one runs it (app.App.RunReleasePhase decides).
func (r *appRun) checkPhase(st *ledger.State) {
	pending := false
	defer func() {
		r.mu.Lock()
		r.pending = pending
		r.mu.Unlock()
	}()
	if st.LastVersion == 0 || st.Current != nil && st.Current.Version == st.LastVersion {
		return
	}
	rel, err := r.app.Ledger.Release(st.LastVersion)
	if err != nil || rel.Status != ledger.StatusPending {
		return
	}
	pending = true
	r.startPhase(*rel)
}

// startPhase runs rel's release phase in the background, unless this
// daemon runs one for the app already or is shutting down. Whether it
// is this daemon's to run is RunReleasePhase's to say.
func (r *appRun) startPhase(rel ledger.Release) {
	r.mu.Lock()
	if r.phase {
		r.mu.Unlock()
		return
	}
	r.phase = true
	r.mu.Unlock()
	d := r.d
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		r.mu.Lock()
		r.phase = false
		r.mu.Unlock()
		return
	}
	// Added under d.mu, before shutdown's Wait can begin.
	d.background.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.background.Done()
		ran, err := r.app.RunReleasePhase(d.life, rel, io.Discard, func(ctx context.Context, rel ledger.Release, lower string) (int, error) {
			return d.runPhase(ctx, r, rel, lower)
		})
		r.mu.Lock()
		r.phase = false
		r.mu.Unlock()
		switch {
		case err != nil:
			d.logf("%s: %v", r.name, err)
			r.logs.Line("api", []byte(fmt.Sprintf("Release v%d failed: %v", rel.Version, err)))
		case ran:
			r.logs.Line("api", []byte(fmt.Sprintf("Release v%d succeeded", rel.Version)))
		default:
			// Another process runs it: nothing changed, and a nudge
			// would only bring the loop straight back here.
			return
		}
		d.Nudge()
	}()
}

// phaseRunner runs rel's release command with its slug at lower, and
// returns its exit status.
type phaseRunner func(ctx context.Context, r *appRun, rel ledger.Release, lower string) (int, error)

// releasePhaseRunner runs a release phase as the CLI does: a one-off
// dyno release.N of the new release (release.RunPhase), isolated, its
// output in the app's logs.
func (d *Daemon) releasePhaseRunner(ctx context.Context, r *appRun, rel ledger.Release, lower string) (int, error) {
	if d.spawner == nil {
		return -1, errors.New("this daemon runs no dynos")
	}
	if r.ids != nil {
		// lower is the store's shared tree; the app's ids want theirs.
		var err error
		if lower, err = r.app.Lower(rel.Slug, r.ids); err != nil {
			return -1, err
		}
	}
	runner := d.isolatedRunner(r.app, r.sizes, r.ids)
	o := r.options()
	o.Lower, o.BasePort = lower, d.allocPort()
	return release.RunPhase(ctx, runner, r.logs, rel, o, d.cfg.StopTimeout)
}

// options are how the app's dynos run under this daemon: over the
// running release's slug, each process given its own port at start.
// Called with r.mu held.
func (r *appRun) options() release.Options {
	return release.Options{Lower: r.lower, Quota: r.quota}
}

// quota is size's memory when limits are on (R14), else 0.
func (r *appRun) quota(size string) int64 {
	if r.d.cgroups == nil {
		return 0
	}
	return r.sizes[size].Memory
}

// runDetached starts run.N of the current release, its output to the
// app's logs (dyno run --detached, heroku run:detached): req's env over
// the config vars, at its size, listed by ps as its type.
func (r *appRun) runDetached(req DynoRequest, user string) (supervisor.DynoConfig, error) {
	r.mu.Lock()
	rel, o := r.rel, r.options()
	r.mu.Unlock()
	if rel == nil {
		return supervisor.DynoConfig{}, release.NoCode(r.name)
	}
	size, err := release.Size(r.sizes, req.Size)
	if err != nil {
		return supervisor.DynoConfig{}, err
	}
	if req.Type != "" && !slug.ValidProcessType(req.Type) {
		return supervisor.DynoConfig{}, fmt.Errorf("type %q: a process type is letters, digits, _ and -, like run or worker", req.Type)
	}
	o.Env = req.Env
	c := release.OneOff(rel, req.Command, size, o)
	if req.Type != "" {
		c.Type = req.Type
	}
	r.logs.Line("api", []byte(fmt.Sprintf("Starting process with command `%s` by user %s", c.Command, user)))
	return c, r.sup.StartOneOff(c)
}

// close stops the app's dynos and releases what it holds.
func (r *appRun) close() {
	// heroku run's one-offs stop beside the formation, within the
	// same stop timeout.
	var attachedDone sync.WaitGroup
	attachedDone.Go(r.closeAttached)
	r.sup.Shutdown()
	attachedDone.Wait()
	r.hub.Close() // ends the app's log tails
	r.closeLive()
	// After the dynos: their last lines reach the drains too.
	r.closeDrains()
	if r.d.spawner != nil {
		r.d.spawner.DropWarm(r.app.DynosDir())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slug.Close()
	r.store.Close()
	if r.metrics != nil {
		r.metrics.Close()
	}
}

// allocPort hands out ports from 20000 to 29999 in turn, skipping any
// that a socket holds: each new dyno gets a port of its own (a
// replacement starts while the dyno it replaces still stops), and ten
// thousand starts pass before a number comes round again.
func (d *Daemon) allocPort() int {
	d.portMu.Lock()
	defer d.portMu.Unlock()
	for range d.ports[1] - d.ports[0] + 1 {
		d.port++
		if d.port < d.ports[0] || d.port > d.ports[1] {
			d.port = d.ports[0]
		}
		if !supervisor.PortTaken(d.port) {
			break
		}
	}
	return d.port
}

// loadSizes reads dyno.toml's sizes (Heroku's by default).
func loadSizes(h app.Home) (map[string]cgroup.Size, error) { return cgroup.LoadSizes(h.SizesFile()) }
