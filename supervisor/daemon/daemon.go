// Package daemon is `dyno daemon`: the production dyno manager of one
// machine. It keeps every app's current release running at its
// formation, in isolated dynos, follows every change appended to the
// apps' ledgers (by any process, while it runs or not), stores and tails
// their logs, and answers an HTTP+JSON API on a unix socket (and, where
// dyno.toml's [api] says so, on TCP with TLS and a token) whose
// resources follow Heroku's Platform API.
//
// The ledger is the truth (docs/design.md, principle 1): the daemon
// holds nothing it could not rebuild from the ledgers and the processes
// it runs. Killed at any instant, it leaves no dyno alive (each dyno's
// init dies with its control socket), and when it starts again it sweeps
// what was left and converges to the same formation.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dyno-run/dyno/internal/memtrim"
	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"golang.org/x/sys/unix"
)

// Config is how a daemon runs.
type Config struct {
	Home   app.Home
	Socket string // the API's unix socket (SocketPath)
	// Poll is how often the ledgers are checked for changes made by
	// other processes; 0 means 250 ms, so a change takes effect within a
	// second even without a nudge over the API.
	Poll time.Duration
	// Restart is the restart policy; the zero value means
	// supervisor.ProductionRestartPolicy.
	Restart supervisor.RestartPolicy
	// Cycle is daily cycling (24 h + up to 216 min); negative disables.
	Cycle, CycleJitter time.Duration
	StopTimeout        time.Duration // 0: 30 s
	BootTimeout        time.Duration // 0: 60 s
	// SleepAfter is how long an app on eco web dynos goes without a
	// request before its dynos sleep; 0 means 30 minutes (sleep.go).
	SleepAfter time.Duration
	// LogKeep is how much of each app's logs is kept, in bytes (never
	// fewer than 1,500 lines); 0 means 100 MB.
	LogKeep int64
	// Log gets the daemon's own lines (journald-friendly: one line each,
	// no timestamp of its own).
	Log io.Writer
	// Ready is called once the formation is being brought up and the API
	// answers (systemd's READY=1); Stopping when shutdown begins.
	Ready, Stopping func()
	// Alive is called on every turn of the main loop (the watchdog's
	// proof of life).
	Alive func()
	// HeaderTimeout is how long a client may take to send a request's
	// headers; 0 means 10 s. BodyTimeout is how long it may take to send
	// the whole request, body included; 0 means 15 s (a body is at most
	// 1 MB, on a local socket). A client that
	// sends half a request is disconnected then, rather than holding a
	// connection (and its goroutine) for ever. WriteTimeout is how long
	// an answer may take to be taken, 0 meaning a minute (the log stream
	// gets it anew for each write).
	HeaderTimeout, BodyTimeout, WriteTimeout time.Duration
	// Router is where the router takes HTTP and HTTPS requests for
	// every app, and the domain of their default hostnames. An empty
	// Listen or RouterOff, and an empty TLSListen, are no listener; an
	// empty Domain is localhost.
	Router RouterSettings
	// API is where the API listens on TCP, with TLS and a token
	// (apitcp.go), beside the socket; an empty Listen is nowhere.
	API APISettings
}

// withDefaults fills in the zero values.
func (cfg Config) withDefaults() Config {
	if cfg.Poll == 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Restart == (supervisor.RestartPolicy{}) {
		cfg.Restart = supervisor.ProductionRestartPolicy
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 60 * time.Second
	}
	if cfg.SleepAfter == 0 {
		cfg.SleepAfter = 30 * time.Minute
	}
	if cfg.Cycle == 0 {
		cfg.Cycle, cfg.CycleJitter = 24*time.Hour, 216*time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = 15 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = time.Minute
	}
	if cfg.Router.Domain == "" {
		cfg.Router.Domain = DefaultRouterSettings().Domain
	}
	if cfg.Router.Listen == RouterOff {
		cfg.Router.Listen = ""
	}
	return cfg
}

// SocketPath is where the API listens: $XDG_RUNTIME_DIR/dyno/dyno.sock,
// else $DYNO_HOME/dyno.sock; DYNO_SOCKET overrides both.
func SocketPath(home string, environ []string) string {
	get := func(k string) string {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}
	if s := get("DYNO_SOCKET"); s != "" {
		return s
	}
	if x := get("XDG_RUNTIME_DIR"); x != "" {
		return filepath.Join(x, "dyno", "dyno.sock")
	}
	return filepath.Join(home, "dyno.sock")
}

// PrivatePaths are what no dyno may see of dyno's own state: the home
// (every app's ledger, config vars included) and the socket's runtime
// directory, or the socket alone when DYNO_SOCKET puts it in a folder of
// its own choosing (isolate.Spawner.Hide).
func PrivatePaths(home, socket string) []string {
	paths := []string{home}
	if dir := filepath.Dir(socket); filepath.Base(dir) == "dyno" {
		paths = append(paths, dir)
	} else {
		paths = append(paths, socket)
	}
	return paths
}

// ClientSocketPath is where a client finds the daemon: as SocketPath,
// but when $XDG_RUNTIME_DIR's socket is not there, the one in $DYNO_HOME
// (a daemon run by systemd as a system service has no XDG_RUNTIME_DIR,
// while the operator's login shell has one). And the other way round:
// with no XDG_RUNTIME_DIR (sudo -u clears it) and no socket in
// $DYNO_HOME, the one in the user's runtime directory,
// /run/user/UID/dyno/dyno.sock, where a daemon run by the user's own
// systemd (a user service, lingering) listens; so `sudo -u dyno dyno
// ...` finds a daemon under either unit (docs/operations.md, 4b).
func ClientSocketPath(home string, environ []string) string {
	p := SocketPath(home, environ)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	alts := []string{filepath.Join(home, "dyno.sock")}
	set := func(k string) bool {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, k+"="); ok && v != "" {
				return true
			}
		}
		return false
	}
	if !set("XDG_RUNTIME_DIR") && !set("DYNO_SOCKET") {
		alts = append(alts, filepath.Join(runUser, strconv.Itoa(os.Getuid()), "dyno", "dyno.sock"))
	}
	for _, alt := range alts {
		if alt == p {
			continue
		}
		if _, err := os.Stat(alt); err == nil {
			return alt
		}
	}
	return p
}

// runUser holds the users' runtime directories, which systemd-logind
// makes (/run/user/UID, XDG_RUNTIME_DIR in a session); tests move it.
var runUser = "/run/user"

// Daemon is a running daemon.
type Daemon struct {
	cfg     Config
	spawner *isolate.Spawner // nil only in the API's own tests: no dyno starts
	cgroups *cgroup.Tree
	copy    bool // overlay refused: dynos copy their slug
	nudge   chan struct{}
	// newRunner is what starts an app's dynos, and runPhase what runs a
	// release phase (isolatedRunner and releasePhaseRunner; the API's
	// tests replace them).
	newRunner func(a *app.App, sizes map[string]cgroup.Size, ids *isolate.IDRange) supervisor.Runner
	runPhase  phaseRunner

	// life ends when shutdown begins: release phases under way stop.
	life    context.Context
	endLife context.CancelFunc
	mu      sync.Mutex
	apps    map[string]*appRun
	// lister lists the apps for converge, which only the main loop runs:
	// reading apps/ only when it has changed keeps an idle poll from
	// making garbage the router's GC would pay for.
	lister   app.Lister
	closed   bool          // shutdown began: no app is taken up any more
	nextTurn chan struct{} // closed when the next converge to start has ended

	portMu sync.Mutex
	port   int // the last port handed out
	// ports are the first and last port handed out to dynos: 20000 and
	// 29999 (tests running daemons side by side give each its own).
	ports [2]int

	// routing is the router's, nil when it listens nowhere.
	routing *routing
	// tcp is the API's TCP listener, nil when it listens nowhere.
	tcp *apiTCP
	// attachTTL is how long heroku run's secrets wait for their client;
	// 0 is rendezvous.DefaultTTL (tests shorten it).
	attachTTL time.Duration

	// acct is the account GET /account answers, once account has read
	// or made its id.
	accountMu sync.Mutex
	acct      Account

	// logSessions are the log streams handed out over TCP as
	// capability URLs (logsession.go).
	logSessions logSessions

	// background counts destroyed apps whose dynos are stopping and
	// release phases running: shutdown waits for them.
	background sync.WaitGroup

	// services are the add-on servers the daemon runs (services.go).
	services *services

	// trimmer gives back what start-up and each burst of dyno changes
	// mapped, once they are over (internal/memtrim).
	trimmer *memtrim.Trimmer
}

func newDaemon(cfg Config) *Daemon {
	d := &Daemon{cfg: cfg, nudge: make(chan struct{}, 1), apps: map[string]*appRun{}, lister: app.Lister{Home: cfg.Home}, nextTurn: make(chan struct{}),
		ports: [2]int{20000, 29999}}
	d.life, d.endLife = context.WithCancel(context.Background())
	d.newRunner = func(a *app.App, sizes map[string]cgroup.Size, ids *isolate.IDRange) supervisor.Runner {
		return d.isolatedRunner(a, sizes, ids)
	}
	d.runPhase = d.releasePhaseRunner
	d.services = newServices(d)
	d.trimmer = memtrim.NewTrimmer(memtrim.QuietPeriod)
	return d
}

// Run runs the daemon until ctx is done, then stops every dyno with
// Heroku's sequence.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Home.Dir, 0o700); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	lock, err := lockHome(cfg.Home.Dir)
	if err != nil {
		return err
	}
	defer lock.Close()

	d := newDaemon(cfg)
	if d.spawner, err = isolate.NewSpawner(); err != nil {
		return err
	}
	defer d.spawner.Close()
	if err := d.spawner.Hide(PrivatePaths(cfg.Home.Dir, cfg.Socket)...); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	probe, err := d.spawner.Probe(cfg.Home.DynosDir())
	if err != nil {
		return fmt.Errorf("daemon: dynos cannot be isolated here: %w", err)
	}
	// Warm inits from now on: the probe needs none kept.
	d.spawner.SetPrewarm(true)
	d.sweepGoneApps()
	if probe.Warning != "" {
		d.logf("%s", probe.Warning)
	}
	d.copy = !probe.Overlay
	// Said once: each app's dynos run as ids of its own only where this
	// user has subordinate ids (supervisor.AppIDs).
	if warning := supervisor.NoAppIDs(cfg.Home.Dir); warning != "" {
		d.logf("%s", warning)
	}
	tree, reason, err := supervisor.SetupCgroups()
	switch {
	case reason != "":
		d.logf("%s", reason)
	case err != nil:
		d.logf("cgroup v2 limits are off: %v", err)
	default:
		d.cgroups = tree
		if err := tree.Refused(); err != nil {
			d.logf("some cgroup v2 limits are off: %v", err)
		}
	}

	ln, err := listen(cfg.Socket)
	if err != nil {
		return err
	}
	srv := d.server()
	go srv.Serve(ln)
	defer os.Remove(cfg.Socket)
	d.logf("listening on %s", cfg.Socket)
	if cfg.API.Listen != "" {
		if err := d.startAPI(); err != nil {
			srv.Close()
			return err
		}
	}
	if cfg.Router.Listen != "" || cfg.Router.TLSListen != "" {
		d.routing = newRouting(d)
		if err := d.routing.serveDashboard(); err != nil {
			d.logf("%v; the dashboard is off", err)
		}
		d.routing.start(cfg.Router.Listen, cfg.Router.TLSListen)
	}
	go d.sampleMetrics(ctx)
	// The add-on servers come up before the apps that use them, within
	// systemd's start timeout (TimeoutStartSec=, 90 s).
	d.services.boot()
	d.services.awaitBoot(serviceBootWait)
	go d.trimmer.Run(ctx, nil)
	d.trimmer.Kick() // start-up itself, apps or none
	d.loop(ctx, srv)
	return nil
}

// server is the API's HTTP server. Its timeouts bound what a client can
// hold: headers and body must come within HeaderTimeout and BodyTimeout,
// an answer must be taken within WriteTimeout (the log stream extends
// its own deadlines), and an idle connection is closed after
// idleTimeout.
func (d *Daemon) server() *http.Server {
	// The socket's own: a command has the daemon run an add-on server
	// (services.go); nothing for the TCP API's clients.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /dyno/services/{service}", d.startService)
	mux.Handle("/", d.routes())
	return d.serverFor(mux)
}

// serverFor is an HTTP server for h with the API's timeouts: the
// socket's, and the TCP listener's (whose handler checks the token
// first). The log streams of log sessions are served before h: their
// URL is their credential (logsession.go), and the client that reads
// them sends no token.
func (d *Daemon) serverFor(h http.Handler) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /log-stream/{session}", d.serveLogSession)
	mux.Handle("/", h)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: d.cfg.HeaderTimeout,
		ReadTimeout:       d.cfg.BodyTimeout,
		WriteTimeout:      d.cfg.WriteTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

const (
	idleTimeout    = 2 * time.Minute
	maxHeaderBytes = 64 << 10
)

// loop converges until ctx is done, then stops the API and every dyno.
func (d *Daemon) loop(ctx context.Context, srv *http.Server) {
	d.converge()
	if d.cfg.Ready != nil {
		d.cfg.Ready()
	}
	tick := time.NewTicker(d.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if d.cfg.Stopping != nil {
				d.cfg.Stopping()
			}
			d.logf("stopping every dyno")
			// Handlers first, so none takes up an app while dynos stop;
			// a log tail would hold Shutdown forever, hence the limit.
			// The socket's server and the TCP one stop side by side,
			// within the same second.
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			var tcpDone sync.WaitGroup
			if d.tcp != nil {
				tcpDone.Go(func() { d.tcp.shutdown(sctx) })
			}
			srv.Shutdown(sctx)
			srv.Close()
			tcpDone.Wait()
			cancel()
			d.logSessions.closeAll()
			// The router takes no new connection; requests under way
			// go on while their dynos stop, as long as those do.
			if d.routing != nil {
				d.routing.stop(d.cfg.StopTimeout)
			}
			d.shutdown()
			// After the apps' dynos, which may have used them to the
			// end: the add-on servers stop cleanly.
			d.services.stopAll(d.cfg.StopTimeout)
			if d.routing != nil {
				d.routing.close()
			}
			return
		case <-tick.C:
		case <-d.nudge:
		}
		if d.cfg.Alive != nil {
			d.cfg.Alive()
		}
		d.converge()
	}
}

func (d *Daemon) logf(format string, args ...any) {
	fmt.Fprintf(d.cfg.Log, format+"\n", args...)
}

// Nudge makes the main loop look at the ledgers now.
func (d *Daemon) Nudge() {
	select {
	case d.nudge <- struct{}{}:
	default:
	}
}

// converge brings every app to its ledger's state: new apps start,
// destroyed ones stop, changed ones reconcile. Only the main loop calls
// it, so two never run at once and none runs after shutdown.
func (d *Daemon) converge() {
	d.mu.Lock()
	done := d.nextTurn
	d.nextTurn = make(chan struct{})
	d.mu.Unlock()
	defer close(done)

	names, err := d.lister.List()
	if err != nil {
		d.logf("list apps: %v", err)
		return
	}
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		seen[name] = true
		a, ok := d.app(name)
		if !ok {
			if a, err = d.takeUp(name); err != nil {
				d.logf("%s: %v", name, err)
				continue
			}
			if a == nil {
				return // shutting down
			}
		}
		if err := a.converge(); err != nil {
			a.fail(err)
		}
		a.checkSleep(time.Now())
		a.routeState()
	}
	d.mu.Lock()
	var gone []*appRun
	for name, a := range d.apps {
		if !seen[name] {
			gone = append(gone, a)
			delete(d.apps, name)
		}
	}
	d.mu.Unlock()
	if d.routing != nil {
		d.mu.Lock()
		apps := make([]hostsOf, 0, len(d.apps))
		for _, a := range d.apps {
			a.mu.Lock()
			apps = append(apps, hostsOf{app: a, domains: a.domains, certs: a.certs})
			a.mu.Unlock()
		}
		d.mu.Unlock()
		d.routing.refresh(apps)
	}
	for _, a := range gone {
		d.logf("%s: destroyed; stopping its dynos", a.name)
		d.background.Add(1)
		go func() {
			defer d.background.Done()
			a.close()
		}()
	}
}

// takeUp opens an app the daemon does not run yet and adds it, unless
// shutdown has begun (then it returns nil): an app added after shutdown
// took its list of apps would never be stopped.
func (d *Daemon) takeUp(name string) (*appRun, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, nil
	}
	a, err := d.openApp(name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		a.close()
		return nil, nil
	}
	d.apps[name] = a
	return a, nil
}

// awaitApp returns app name once the main loop runs it. An app created
// since the loop's last turn is waited for, one turn at most (bounded by
// appWait and the request's ctx): the handler nudges the loop rather
// than converge itself, which would race the loop and shutdown.
func (d *Daemon) awaitApp(ctx context.Context, name string) (*appRun, error) {
	if a, ok := d.app(name); ok {
		return a, nil
	}
	if _, err := d.cfg.Home.Open(name); err != nil {
		return nil, err
	}
	d.mu.Lock()
	closed, turn := d.closed, d.nextTurn
	d.mu.Unlock()
	if closed {
		return nil, errShuttingDown
	}
	d.Nudge()
	timer := time.NewTimer(appWait)
	defer timer.Stop()
	select {
	case <-turn:
	case <-timer.C:
	case <-ctx.Done():
	}
	if a, ok := d.app(name); ok {
		return a, nil
	}
	return nil, notTakenUp(name)
}

// appWait bounds how long a request waits for the loop to take up an app.
const appWait = 5 * time.Second

var errShuttingDown = errors.New("the dyno daemon is shutting down")

// notTakenUp is an app that exists but the loop could not take up (its
// error is in the daemon's log).
type notTakenUp string

func (n notTakenUp) Error() string {
	return string(n) + " is not running under the daemon yet; the daemon's log says why"
}

// sweepGoneApps removes dyno dirs left by apps destroyed while their
// dynos ran with a daemon that died.
func (d *Daemon) sweepGoneApps() {
	entries, err := os.ReadDir(d.cfg.Home.DynosDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := d.cfg.Home.Open(e.Name()); err != nil {
			dir := filepath.Join(d.cfg.Home.DynosDir(), e.Name())
			isolate.SweepDynoDirs(dir)
			os.Remove(dir)
		}
	}
}

// shutdown stops every app's dynos at once and waits. From here on no
// app is taken up (closed, under the lock the list is taken under) and
// release phases under way stop.
func (d *Daemon) shutdown() {
	d.mu.Lock()
	d.closed = true
	apps := make([]*appRun, 0, len(d.apps))
	for _, a := range d.apps {
		apps = append(apps, a)
	}
	d.mu.Unlock()
	// After closed: a phase is either under way (and stops now) or
	// never starts.
	d.endLife()
	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.close()
		}()
	}
	wg.Wait()
	d.background.Wait()
}

// app returns a running app by name.
func (d *Daemon) app(name string) (*appRun, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok := d.apps[name]
	return a, ok
}

// lockHome makes sure one daemon runs per $DYNO_HOME: an flock on
// daemon.lock, held for the daemon's life, with its pid inside for the
// message a second one prints.
func lockHome(home string) (*os.File, error) {
	path := filepath.Join(home, "daemon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		pid := strings.TrimSpace(string(b))
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another dyno daemon (pid %s) already runs on %s; stop it first (systemctl stop dyno, or kill %s)", pid, home, pid)
		}
		return nil, fmt.Errorf("daemon: lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// listen opens the API socket: its directory 0700, the socket 0600. A
// socket left by a daemon that crashed answers no connection: it is
// removed. (A live one cannot be there: the home lock is held.)
//
// The socket is bound in a fresh 0700 directory beside its path,
// chmodded 0600 there and only then renamed into place, so no other user
// can connect in between. Setting the umask instead would change it for
// the whole process: a file another goroutine created meanwhile would
// get the socket's mode.
func listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: socket dir: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("daemon: something already answers on %s; stop it or set DYNO_SOCKET", path)
		}
		os.Remove(path)
	}
	// MkdirTemp makes the directory 0700 whatever the umask.
	tmp, err := os.MkdirTemp(dir, ".dyno-sock-")
	if err != nil {
		return nil, fmt.Errorf("daemon: listen on %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	ln, err := net.Listen("unix", bound)
	if err != nil {
		return nil, fmt.Errorf("daemon: listen on %s: %w", path, err)
	}
	// The socket moves: closing the listener must not unlink the path
	// it was bound at (Run removes the real one).
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(bound, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("daemon: listen on %s: %w", path, err)
	}
	if err := os.Rename(bound, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("daemon: listen on %s: %w", path, err)
	}
	return ln, nil
}
