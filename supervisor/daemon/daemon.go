// Package daemon is `dyno daemon`: the production dyno manager of one
// machine. It keeps every app's current release running at its
// formation, in isolated dynos, follows every change appended to the
// apps' ledgers (by any process, while it runs or not), stores and tails
// their logs, and answers an HTTP+JSON API on a unix socket whose
// resources follow Heroku's Platform API.
//
// The ledger is the truth (shared/DESIGN.md, principle 1): the daemon
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
// while the operator's login shell has one).
func ClientSocketPath(home string, environ []string) string {
	p := SocketPath(home, environ)
	if _, err := os.Stat(p); err != nil {
		if alt := filepath.Join(home, "dyno.sock"); alt != p {
			if _, err := os.Stat(alt); err == nil {
				return alt
			}
		}
	}
	return p
}

// Daemon is a running daemon.
type Daemon struct {
	cfg     Config
	spawner *isolate.Spawner
	cgroups *cgroup.Tree
	copy    bool // overlay refused: dynos copy their slug
	nudge   chan struct{}

	mu   sync.Mutex
	apps map[string]*appRun

	// convergeMu makes one converge at a time: the main loop's and an
	// API request's for an app it does not know yet.
	convergeMu sync.Mutex

	portMu sync.Mutex
	port   int // the last port handed out

	closing sync.WaitGroup // destroyed apps whose dynos are stopping
}

// Run runs the daemon until ctx is done, then stops every dyno with
// Heroku's sequence.
func Run(ctx context.Context, cfg Config) error {
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
	if cfg.Cycle == 0 {
		cfg.Cycle, cfg.CycleJitter = 24*time.Hour, 216*time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if err := os.MkdirAll(cfg.Home.Dir, 0o700); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	lock, err := lockHome(cfg.Home.Dir)
	if err != nil {
		return err
	}
	defer lock.Close()

	d := &Daemon{cfg: cfg, nudge: make(chan struct{}, 1), apps: map[string]*appRun{}}
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
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer os.Remove(cfg.Socket)
	d.logf("listening on %s", cfg.Socket)

	d.converge()
	if cfg.Ready != nil {
		cfg.Ready()
	}
	tick := time.NewTicker(cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if cfg.Stopping != nil {
				cfg.Stopping()
			}
			d.logf("stopping every dyno")
			// Handlers first, so none takes up an app while dynos stop;
			// a log tail would hold Shutdown forever, hence the limit.
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			srv.Shutdown(sctx)
			cancel()
			srv.Close()
			d.shutdown()
			return nil
		case <-tick.C:
		case <-d.nudge:
		}
		if cfg.Alive != nil {
			cfg.Alive()
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
// destroyed ones stop, changed ones reconcile.
func (d *Daemon) converge() {
	d.convergeMu.Lock()
	defer d.convergeMu.Unlock()
	names, err := d.cfg.Home.List()
	if err != nil {
		d.logf("list apps: %v", err)
		return
	}
	seen := map[string]bool{}
	for _, name := range names {
		seen[name] = true
		d.mu.Lock()
		a := d.apps[name]
		d.mu.Unlock()
		if a == nil {
			var err error
			if a, err = d.openApp(name); err != nil {
				d.logf("%s: %v", name, err)
				continue
			}
			d.mu.Lock()
			d.apps[name] = a
			d.mu.Unlock()
		}
		if err := a.converge(); err != nil {
			a.fail(err)
		}
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
	for _, a := range gone {
		d.logf("%s: destroyed; stopping its dynos", a.name)
		d.closing.Add(1)
		go func() {
			defer d.closing.Done()
			a.close()
		}()
	}
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

// shutdown stops every app's dynos at once and waits.
func (d *Daemon) shutdown() {
	d.mu.Lock()
	apps := make([]*appRun, 0, len(d.apps))
	for _, a := range d.apps {
		apps = append(apps, a)
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.close()
		}()
	}
	wg.Wait()
	d.closing.Wait()
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
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("daemon: socket dir: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("daemon: something already answers on %s; stop it or set DYNO_SOCKET", path)
		}
		os.Remove(path)
	}
	// The umask makes the socket 0600 from its creation on: no window
	// in which another user could connect.
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("daemon: listen on %s: %w", path, err)
	}
	return ln, nil
}
