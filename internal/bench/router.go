package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
	"github.com/dyno-run/dyno/supervisor/daemon"
)

// The router section's app, load and targets (issue 10, "As fast as
// nginx").
const (
	okserverPkg = "github.com/dyno-run/dyno/internal/bench/okserver"
	routerApp   = "okapp"
	routerHost  = routerApp + ".localhost"
	wrkThreads  = 2
	wrkConns    = 50
	// Each measured run follows an unrecorded one this long against the
	// same target, so that the 10 s measured are the steady state the
	// issue asks about: the proxies' buffers and pools grown, the
	// backends' accept queues warm.
	wrkWarmup     = 2 * time.Second
	idleConns     = 10000
	transferBytes = 1 << 30

	targetRouterRPS = 0.95 // × nginx's req/s, paired per round
	targetRouterP99 = 1.15 // × nginx's p99, paired per round
	targetIdleRSS   = 100e6
	// A transfer leaves the router's memory flat when its peak grows by
	// less than this: a few buffers, not the body.
	flatRSS = 16 << 20

	routerWait = time.Minute // for the daemon, a formation, nginx
	// The quiet gate: before each load run, wait until the machine has
	// used under a quarter of a core for a window, at most quietMax.
	quietWindow = 500 * time.Millisecond
	quietMax    = 3 * time.Second
)

// A routerBench is one run of the router section: a daemon whose router
// listens on a free port, an app of okserver web dynos, and nginx beside
// it when installed.
type routerBench struct {
	b      *bench
	wrk    string // "" when wrk is not installed
	nginx  string // "" when nginx is not installed
	dir    string // the section's folder under the work folder
	listen string // the router's address, 127.0.0.1:PORT
	home   app.Home
	app    *app.App
	client *daemon.Client
	gc     *gcCounter
	slugs  map[int]string // the deploys section's build slugs, by deploy
	// webDir, when set, is a Go example app's folder whose binary is
	// the web process instead of okserver; extraConf is added to
	// dyno.toml.
	webDir, extraConf string
	log               *os.File // the daemon's stdout and stderr

	mu        sync.Mutex
	daemon    *exec.Cmd
	exited    chan struct{} // closed when the daemon has exited
	nginxProc *nginxRun
	wrkCmd    *exec.Cmd  // the wrk run in progress
	conns     []net.Conn // the idle connections, while they are open
	closed    bool
}

// A backend is one web dyno's okserver process.
type backend struct {
	dyno string // web.1
	pid  int
	port int
}

// router measures the daemon's router as a user runs it, beside nginx
// proxying to the same web dynos: requests per second, latency, CPU per
// request and GC cycles under wrk with 1 and then 2 web dynos; the
// daemon's memory with 10,000 idle keep-alive connections; and 1 GB
// uploads and a download through it.
func (b *bench) router() {
	fmt.Fprintf(b.out, "router: the daemon's router beside nginx (2 workers, keepalive 64), wrk -t%d -c%d -d%v --latency after a %v warm-up, %s interleaved\n",
		wrkThreads, wrkConns, b.routerDuration, wrkWarmup, plural(b.routerRounds, "round"))
	r := &routerBench{b: b, dir: filepath.Join(b.work, "router"), exited: make(chan struct{})}
	b.setCleanup(r.close)
	defer func() {
		r.close()
		b.setCleanup(nil)
	}()
	if err := r.run(); err != nil {
		r.mu.Lock()
		aborted := r.closed
		r.mu.Unlock()
		if aborted {
			// abort stopped the processes under it; it reports.
			return
		}
		fmt.Fprintf(b.out, "  error: %v\n", err)
		if tail := r.daemonLogTail(); tail != "" {
			fmt.Fprintf(b.out, "  the daemon's last lines:\n%s", tail)
		}
		b.failed = true
	}
}

func (r *routerBench) run() error {
	b := r.b
	r.wrk = lookTool("wrk")
	r.nginx = lookTool("nginx")
	if r.wrk == "" {
		fmt.Fprintln(b.out, "  wrk is not installed (apt-get install wrk): the load rows are left out")
	}
	if r.nginx == "" {
		fmt.Fprintln(b.out, "  nginx is not installed (apt-get install nginx-light): the nginx rows are left out")
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	canIdle := raiseNoFile(idleConns + 1000)
	if err := r.startDaemon(); err != nil {
		return err
	}
	var lastBackends []backend
	routed := false
	for _, n := range []int{1, 2} {
		backends, err := r.scale(n)
		if err != nil {
			return err
		}
		lastBackends = backends
		if n == 1 {
			if why := r.routerAnswers(); why != "" {
				fmt.Fprintf(b.out, "  %s: its rows, idle connections and transfers are left out\n", why)
			} else {
				routed = true
			}
		}
		if r.wrk != "" {
			if err := r.loadTable(n, backends, routed); err != nil {
				return err
			}
		}
	}
	if !routed {
		return nil
	}
	// Transfers first: the heap the idle connections leave behind, free
	// but still resident, would hide a transfer's growth.
	if b.skipGB {
		fmt.Fprintln(b.out, "  1 GB transfers left out (-skip-gb)")
	} else if err := r.transfers(lastBackends[0]); err != nil {
		return err
	}
	if canIdle != "" {
		fmt.Fprintf(b.out, "  %s idle connections left out: %s\n", thousands(idleConns), canIdle)
		return nil
	}
	return r.idleConnections()
}

// lookTool finds a program on PATH or in the sbin folders, where Debian
// puts nginx and which a user's PATH often lacks.
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// raiseNoFile raises this process's RLIMIT_NOFILE to at least want open
// files, for the idle connections at both ends: the daemon, started
// after, inherits it. Go raises its own soft limit at start-up but
// gives children the original one back unless the program sets the
// limit itself (package syscall), as here. It returns why it could not,
// or "".
func raiseNoFile(want uint64) string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Sprintf("read RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur >= want {
		return ""
	}
	raised := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
		return ""
	}
	// Not root: as far as the hard limit goes.
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur >= want {
		return ""
	}
	return fmt.Sprintf("RLIMIT_NOFILE's hard limit is %d, under the %d needed (raise it: ulimit -Hn %d as root)", lim.Max, want, want)
}

// niced is a command run at nice -10 when this process may raise
// priorities, as every process of the reference measurements ran: the
// load's own processes then win over whatever else the machine runs.
func niced(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		if nice, err := exec.LookPath("nice"); err == nil {
			return exec.Command(nice, append([]string{"-n", "-10", name}, args...)...)
		}
	}
	return exec.Command(name, args...)
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startDaemon builds okserver into a slug, deploys it as the app's web
// process and starts `dyno daemon` on a fresh DYNO_HOME whose dyno.toml
// puts the router on a free port.
func (r *routerBench) startDaemon() error {
	b := r.b
	r.home = app.Home{Dir: filepath.Join(r.dir, "home")}
	a, err := r.home.Create(routerApp, "bench")
	if err != nil {
		return err
	}
	r.app = a
	tree := filepath.Join(r.dir, "slug")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	// Static, so that it runs in any dyno's root. The web process is
	// okserver, or the Go example app that webDir names (its own module).
	bin, pkg, dir := "okserver", okserverPkg, ""
	if r.webDir != "" {
		bin, pkg, dir = filepath.Base(r.webDir), ".", r.webDir
	}
	build := exec.Command("go", "build", "-o", filepath.Join(tree, bin), pkg)
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s (run bench inside the dyno module): %w\n%s", pkg, err, out)
	}
	sl, _, err := r.home.Slugs().Pack(tree, slug.PackOptions{})
	if err != nil {
		return err
	}
	if _, err := a.Deploy(sl.Digest, "", map[string]string{"web": "./" + bin}, nil, nil, "bench"); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	r.listen = "127.0.0.1:" + strconv.Itoa(port)
	conf := fmt.Sprintf("[router]\nlisten = %q\n\n[daemon]\nstop_timeout = \"5s\"\n%s", r.listen, r.extraConf)
	if err := os.WriteFile(r.home.SizesFile(), []byte(conf), 0o600); err != nil {
		return err
	}
	r.log, err = os.Create(filepath.Join(r.dir, "daemon.log"))
	if err != nil {
		return err
	}
	r.gc = &gcCounter{log: r.log}
	socket := filepath.Join(r.home.Dir, "dyno.sock")
	r.client = daemon.NewClient(socket)
	cmd := niced(b.dyno, "daemon")
	// gctrace prints a line on stderr at the end of every collection:
	// the count during a load run is the GC cycles it cost. Dynos do
	// not inherit the daemon's environment.
	godebug := "gctrace=1"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	cmd.Env = append(os.Environ(), "DYNO_HOME="+r.home.Dir, "DYNO_SOCKET="+socket, "GODEBUG="+godebug)
	cmd.Stdout, cmd.Stderr = r.log, r.gc
	// Its own process group: a Ctrl-C reaches the benchmark, whose
	// abort stops the daemon, rather than both at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("interrupted")
	}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return fmt.Errorf("start dyno daemon: %w", err)
	}
	r.daemon = cmd
	r.mu.Unlock()
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	_, err = r.waitFor("the daemon's API", func() (bool, error) {
		_, err := r.dynos()
		return err == nil, nil
	})
	return err
}

// daemonPid is the daemon's pid (nice execs it in place).
func (r *routerBench) daemonPid() int { return r.daemon.Process.Pid }

// waitFor polls ok until it is true, fails, routerWait passes or the
// daemon exits.
func (r *routerBench) waitFor(what string, ok func() (bool, error)) (time.Duration, error) {
	t0 := time.Now()
	for {
		done, err := ok()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		if done {
			return time.Since(t0), nil
		}
		select {
		case <-r.exited:
			return 0, fmt.Errorf("%s: the daemon exited (%v)", what, r.daemon.ProcessState)
		default:
		}
		if time.Since(t0) > routerWait {
			return 0, fmt.Errorf("%s: not after %v", what, routerWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dynos lists the app's dynos through the daemon's API.
func (r *routerBench) dynos() ([]daemon.Dyno, error) {
	var dynos []daemon.Dyno
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.client.Do(ctx, http.MethodGet, "/apps/"+routerApp+"/dynos", nil, &dynos)
	return dynos, err
}

// scale sets the app's web formation to n, waits until exactly n web
// dynos are up and answer on their ports, and returns them by name.
func (r *routerBench) scale(n int) ([]backend, error) {
	if _, err := r.app.ApplyScale([]app.Scale{{Type: "web", Op: '=', N: n}}, []string{app.DefaultSize}, "bench"); err != nil {
		return nil, err
	}
	r.client.Nudge()
	var backends []backend
	_, err := r.waitFor(fmt.Sprintf("%d web dynos up", n), func() (bool, error) {
		dynos, err := r.dynos()
		if err != nil {
			return false, nil
		}
		up := 0
		for _, d := range dynos {
			if d.Type != "web" {
				continue
			}
			if d.State != "up" {
				return false, nil
			}
			up++
		}
		if up != n {
			return false, nil
		}
		backends, err = r.backends()
		if err != nil || len(backends) != n {
			return false, nil
		}
		for _, be := range backends {
			if _, err := getOK("127.0.0.1:"+strconv.Itoa(be.port), ""); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
	return backends, err
}

// backends finds the web dynos' okserver processes under the daemon and
// their ports. The daemon's API does not say which port a dyno has (the
// router hides it), and a sandboxed dyno's pid there is its pid inside
// its own pid namespace; /proc from outside shows the processes with
// the PORT and DYNO each was started with.
func (r *routerBench) backends() ([]backend, error) {
	procs, err := descendants(r.daemonPid())
	if err != nil {
		return nil, err
	}
	var out []backend
	for _, p := range procs {
		if p.comm != "okserver" || p.state == 'Z' {
			continue
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ")
		if err != nil {
			continue
		}
		be := backend{pid: p.pid}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("PORT=")); ok {
				be.port, _ = strconv.Atoi(string(v))
			} else if v, ok := bytes.CutPrefix(kv, []byte("DYNO=")); ok {
				be.dyno = string(v)
			}
		}
		if be.port > 0 {
			out = append(out, be)
		}
	}
	slices.SortFunc(out, func(a, b backend) int { return strings.Compare(a.dyno, b.dyno) })
	return out, nil
}

// getOK sends GET / to addr, with host as Host when not empty, on a new
// connection, and returns the body when the answer is 200.
func getOK(addr, host string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if host != "" {
		req.Host = host
	}
	req.Close = true
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s: %s", addr, resp.Status)
	}
	return string(body), nil
}

// routerAnswers says why the router cannot be measured, or "" once it
// answers the app's web dyno's "ok". A daemon without a router yet
// listens on nothing; the section then measures nginx and the dynos
// alone.
func (r *routerBench) routerAnswers() string {
	var last error
	t0 := time.Now()
	for time.Since(t0) < 10*time.Second {
		c, err := net.DialTimeout("tcp", r.listen, time.Second)
		if err != nil {
			if time.Since(t0) > 3*time.Second {
				return "router not listening on " + r.listen
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		c.Close()
		body, err := getOK(r.listen, routerHost)
		if err == nil && body == "ok\n" {
			return ""
		}
		if err == nil {
			err = fmt.Errorf("body %q, want \"ok\\n\"", body)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("router on %s does not answer Host: %s with the dyno's ok (%v)", r.listen, routerHost, last)
}

// A target is what wrk loads: nginx, the router or a dyno directly.
type target struct {
	name string
	addr string
	cpu  func() time.Duration // the proxy's CPU time so far; nil for none
}

// A loadRun is one wrk run against one target.
type loadRun struct {
	wrkResult
	cpuPerReq time.Duration // the proxy's CPU per request; -1 for none
	gc        gcCycles      // the daemon's GC cycles during the run; heap -1 when not the router
	other     float64       // cores used by other processes meanwhile
	quiet     bool          // the quiet gate opened
}

// loadTable measures nginx, the router and web.1 directly, interleaved
// round by round, and prints their medians and the ratios to nginx's
// numbers of the same round.
func (r *routerBench) loadTable(n int, backends []backend, routed bool) error {
	b := r.b
	var targets []target
	if r.nginx != "" {
		// nginx failing is no failure of dyno's: the other rows stand.
		if ng, err := r.startNginx(backends); err != nil {
			fmt.Fprintf(b.out, "  nginx did not start, its rows are left out: %v\n", err)
		} else {
			defer r.stopNginx()
			targets = append(targets, target{name: "nginx", addr: ng.addr, cpu: ng.cpu})
		}
	}
	if routed {
		pid := r.daemonPid()
		targets = append(targets, target{name: "router", addr: r.listen, cpu: func() time.Duration {
			p, _ := readProc(pid)
			return p.cpu
		}})
	}
	targets = append(targets, target{name: "direct to " + backends[0].dyno, addr: "127.0.0.1:" + strconv.Itoa(backends[0].port)})

	runs := make([][]loadRun, len(targets))
	for range b.routerRounds {
		for i, t := range targets {
			run, err := r.measure(t, backends)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			runs[i] = append(runs[i], run)
		}
	}
	r.printTable(n, targets, runs)
	return nil
}

// measure runs wrk once against t, after the quiet gate, with the CPU
// the proxy, the backends, wrk and everything else used meanwhile.
func (r *routerBench) measure(t target, backends []backend) (loadRun, error) {
	run := loadRun{cpuPerReq: -1, gc: gcCycles{heap: -1}}
	if _, err := r.runWrk(t.addr, wrkWarmup); err != nil {
		return run, err
	}
	run.quiet = quietGate()
	backendCPU := func() time.Duration {
		var sum time.Duration
		for _, be := range backends {
			p, _ := readProc(be.pid)
			sum += p.cpu
		}
		return sum
	}
	var proxy0 time.Duration
	if t.cpu != nil {
		proxy0 = t.cpu()
	}
	back0 := backendCPU()
	stat0, _ := readCPUTimes()
	gc0 := r.gc.Cycles()
	t0 := time.Now()
	w, err := r.runWrk(t.addr, r.b.routerDuration)
	if err != nil {
		return run, err
	}
	elapsed := time.Since(t0)
	if t.name == "router" {
		run.gc = r.gc.Cycles().sub(gc0)
	}
	run.wrkResult = w.result
	var proxy time.Duration
	if t.cpu != nil {
		proxy = t.cpu() - proxy0
		if w.result.requests > 0 {
			run.cpuPerReq = proxy / time.Duration(w.result.requests)
		}
	}
	back := backendCPU() - back0
	stat1, _ := readCPUTimes()
	busy := time.Duration(stat1.busy-stat0.busy-(stat1.softirq-stat0.softirq)) * time.Second / userHZ
	other := busy - proxy - back - w.cpu
	run.other = max(0, other.Seconds()/elapsed.Seconds())
	return run, nil
}

// quietGate waits until the machine has used under a quarter of one
// core for a whole window, for at most quietMax, so that a load run
// does not start in the middle of someone else's build. It reports
// whether the gate opened.
func quietGate() bool {
	deadline := time.Now().Add(quietMax)
	for {
		s0, err := readCPUTimes()
		if err != nil {
			return false
		}
		time.Sleep(quietWindow)
		s1, err := readCPUTimes()
		if err != nil {
			return false
		}
		used := time.Duration(s1.busy-s0.busy) * time.Second / userHZ
		if used < quietWindow/4 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseProcStat(b)
}

// A wrkRun is wrk's report and the CPU time wrk itself used.
type wrkRun struct {
	result wrkResult
	cpu    time.Duration
}

// runWrk runs wrk against addr for d, with the app's Host.
func (r *routerBench) runWrk(addr string, d time.Duration) (wrkRun, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := niced(r.wrk, "-t"+strconv.Itoa(wrkThreads), "-c"+strconv.Itoa(wrkConns), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
		"--latency", "-H", "Host: "+routerHost, "http://"+addr+"/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return wrkRun{}, errors.New("interrupted")
	}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return wrkRun{}, fmt.Errorf("start wrk: %w", err)
	}
	r.wrkCmd = cmd
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.wrkCmd = nil
		r.mu.Unlock()
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return wrkRun{}, fmt.Errorf("wrk against %s: not done after %v", addr, d+30*time.Second)
	}
	if err != nil {
		return wrkRun{}, fmt.Errorf("wrk against %s: %w\n%s", addr, err, out.String())
	}
	res, err := parseWrk(out.String())
	if err != nil {
		return wrkRun{}, err
	}
	return wrkRun{result: res, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, nil
}

// printTable prints one formation's medians and paired ratios.
func (r *routerBench) printTable(n int, targets []target, runs [][]loadRun) {
	out := r.b.out
	dynos := "1 web dyno"
	if n > 1 {
		dynos = fmt.Sprintf("%d web dynos", n)
	}
	fmt.Fprintln(out, tableRow(dynos, "req/s", "p50 ms", "p99 ms", "CPU µs/req", "GC", "× nginx", "p99 ÷ nginx"))
	nginx := -1
	for i, t := range targets {
		if t.name == "nginx" {
			nginx = i
		}
	}
	var notes []string
	maxOther, gateShut := 0.0, 0
	ratios := map[string][2]float64{}
	for i, t := range targets {
		var rps, p50, p99, cpu, reqRatio, p99Ratio []float64
		gc := gcCycles{heap: -1}
		var errs, non2xx int64
		for k, run := range runs[i] {
			rps = append(rps, run.rps)
			p50 = append(p50, ms(run.p50))
			p99 = append(p99, ms(run.p99))
			if run.cpuPerReq >= 0 {
				cpu = append(cpu, float64(run.cpuPerReq)/float64(time.Microsecond))
			}
			gc.heap = max(gc.heap, run.gc.heap)
			gc.timed += max(0, run.gc.timed)
			errs += run.socketErrors
			non2xx += run.non2xx
			maxOther = max(maxOther, run.other)
			if !run.quiet {
				gateShut++
			}
			if nginx >= 0 {
				ng := runs[nginx][k]
				reqRatio = append(reqRatio, run.rps/ng.rps)
				p99Ratio = append(p99Ratio, float64(run.p99)/float64(ng.p99))
			}
		}
		fmt.Fprintln(out, tableRow(t.name, thousands(median(rps)), fmt.Sprintf("%.2f", median(p50)), fmt.Sprintf("%.2f", median(p99)),
			orDash(cpu, "%.1f"), gcCell(gc), orDash(reqRatio, "%.2f"), orDash(p99Ratio, "%.2f")))
		if len(reqRatio) > 0 {
			ratios[t.name] = [2]float64{median(reqRatio), median(p99Ratio)}
		}
		if errs > 0 || non2xx > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d socket errors, %d responses not 2xx or 3xx over %d runs", t.name, errs, non2xx, len(runs[i])))
		}
	}
	for _, note := range notes {
		fmt.Fprintf(out, "  ! %s\n", note)
	}
	fmt.Fprintf(out, "  (medians of %s, ratios paired by round; CPU: nginx's workers, the whole daemon; GC: the daemon's cycles that allocation started, most in a run, +Nt the runtime's 2-minute timed cycles that fell in any run; other load ≤ %.0f%% of a core",
		plural(len(runs[0]), "round"), 100*maxOther)
	if gateShut > 0 {
		fmt.Fprintf(out, "; %s started on a busy machine", plural(gateShut, "run"))
	}
	fmt.Fprintln(out, ")")
	if rt, ok := ratios["router"]; ok && nginx >= 0 {
		fmt.Fprintf(out, "  targets: router req/s ≥ %.2f× nginx's: %s; p99 ≤ %.2f× nginx's: %s\n",
			targetRouterRPS, metOrMissed(rt[0] >= targetRouterRPS), targetRouterP99, metOrMissed(rt[1] <= targetRouterP99))
	}
}

// tableRow lays out a row of the load table: the name left-aligned,
// the numbers right-aligned, by characters (µ, ×, ÷ and – are more than
// a byte each).
func tableRow(name string, cells ...string) string {
	widths := []int{9, 8, 8, 12, 5, 9, 13}
	var sb strings.Builder
	sb.WriteString("  " + name + strings.Repeat(" ", max(1, 22-utf8.RuneCountInString(name))))
	for i, c := range cells {
		sb.WriteString(strings.Repeat(" ", max(1, widths[i]-utf8.RuneCountInString(c))) + c)
	}
	return sb.String()
}

// plural is n and noun, with an s when n is not 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func orDash(v []float64, format string) string {
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf(format, median(v))
}

// gcCell is the most heap-started cycles in one run, then the runtime's
// timed cycles over all the runs, if any: "0+1t".
func gcCell(c gcCycles) string {
	if c.heap < 0 {
		return "–"
	}
	if c.timed > 0 {
		return fmt.Sprintf("%d+%dt", c.heap, c.timed)
	}
	return strconv.Itoa(c.heap)
}

// thousands formats a rate as a whole number with commas: 24,387.
func thousands(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// An nginxRun is nginx proxying to the web dynos.
type nginxRun struct {
	cmd  *exec.Cmd
	addr string
	dir  string
	done chan struct{}
}

// cpu is the CPU time nginx's workers have used: the master only
// starts and watches them.
func (n *nginxRun) cpu() time.Duration {
	procs, _ := descendants(n.cmd.Process.Pid)
	var sum time.Duration
	for _, p := range procs {
		sum += p.cpu
	}
	return sum
}

// nginxConf configures nginx to do what the router does, as the
// reference measurements did: 2 workers, a pool of keep-alive
// connections to the dynos, HTTP/1.1 to them, Heroku's request headers,
// and one buffered log line per request. keepalive_requests is raised
// because the router does not close a client's connection after 1,000
// requests, nginx's default.
func nginxConf(dir, addr string, backends []backend) string {
	var servers strings.Builder
	for _, be := range backends {
		fmt.Fprintf(&servers, "    server 127.0.0.1:%d;\n", be.port)
	}
	return fmt.Sprintf(`worker_processes 2;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
  worker_connections 4096;
}
http {
  log_format router 'at=info method=$request_method path="$request_uri" host=$host request_id=$request_id fwd="$remote_addr" '
                    'dyno=web connect=$upstream_connect_time service=$upstream_response_time status=$status bytes=$bytes_sent protocol=$scheme';
  access_log %[1]s/access.log router buffer=64k flush=1s;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  keepalive_requests 1000000;
  upstream dynos {
%[3]s    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen %[2]s;
    location / {
      proxy_pass http://dynos;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header X-Request-Start $msec;
      proxy_set_header Via "1.1 vegur";
    }
  }
}
`, dir, addr, servers.String())
}

// startNginx starts nginx in front of backends on a free port and waits
// until it answers through them.
func (r *routerBench) startNginx(backends []backend) (*nginxRun, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.dir, "nginx-")
	if err != nil {
		return nil, err
	}
	ng := &nginxRun{addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, done: make(chan struct{})}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, ng.addr, backends)), 0o644); err != nil {
		return nil, err
	}
	// -e: errors before the configuration is read go there too, not to
	// the system's log folder.
	ng.cmd = niced(r.nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	var out bytes.Buffer
	ng.cmd.Stdout, ng.cmd.Stderr = &out, &out
	ng.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("interrupted")
	}
	if err := ng.cmd.Start(); err != nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	r.nginxProc = ng
	r.mu.Unlock()
	go func() {
		ng.cmd.Wait()
		close(ng.done)
	}()
	t0 := time.Now()
	for {
		body, err := getOK(ng.addr, routerHost)
		if err == nil && body == "ok\n" {
			return ng, nil
		}
		select {
		case <-ng.done:
			logged, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited (%v):\n%s%s", ng.cmd.ProcessState, out.String(), logged)
		default:
		}
		if time.Since(t0) > routerWait {
			return nil, fmt.Errorf("nginx on %s does not answer through the dynos after %v: %v", ng.addr, routerWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopNginx stops nginx, if it runs, and its workers.
func (r *routerBench) stopNginx() {
	r.mu.Lock()
	ng := r.nginxProc
	r.nginxProc = nil
	r.mu.Unlock()
	if ng == nil {
		return
	}
	// SIGTERM is nginx's fast shutdown; its workers are in its group.
	syscall.Kill(ng.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-ng.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-ng.cmd.Process.Pid, syscall.SIGKILL)
		<-ng.done
	}
	// Workers that outlived their master.
	syscall.Kill(-ng.cmd.Process.Pid, syscall.SIGKILL)
}

// close stops everything the section started: nginx, the idle
// connections, then the daemon, which stops its dynos. It runs at the
// end of the section and on abort, whichever comes first.
func (r *routerBench) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	conns := r.conns
	r.conns = nil
	cmd := r.daemon
	if r.wrkCmd != nil {
		// Its own group: wrk and the threads it runs.
		syscall.Kill(-r.wrkCmd.Process.Pid, syscall.SIGKILL)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	r.stopNginx()
	if cmd != nil {
		// SIGINT stops the dynos (stop_timeout 5 s) and then the daemon.
		syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-r.exited:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-r.exited
		}
	}
	if r.log != nil {
		r.log.Close()
	}
}

// daemonLogTail is the end of the daemon's output, for errors.
func (r *routerBench) daemonLogTail() string {
	if r.log == nil {
		return ""
	}
	b, err := os.ReadFile(r.log.Name())
	if err != nil {
		return ""
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		if !isGCLine([]byte(line)) && strings.TrimSpace(line) != "GC forced" {
			lines = append(lines, "    "+line)
		}
	}
	return strings.Join(lines[max(0, len(lines)-10):], "")
}

// idleConnections opens idleConns keep-alive connections to the router,
// each sending one request and reading its answer, then leaves them
// open: the daemon's RSS before and after is what an idle client costs.
func (r *routerBench) idleConnections() error {
	pid := r.daemonPid()
	before := rssOf(pid)
	conns := make([]net.Conn, idleConns)
	errs := make(chan error, idleConns)
	next := make(chan int)
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := range next {
				c, err := idleRequest(r.listen)
				if err != nil {
					failures.Add(1)
					errs <- fmt.Errorf("idle connection %d: %w", i+1, err)
					continue
				}
				conns[i] = c
			}
		})
	}
	// A router that hangs or refuses would otherwise keep this phase
	// going for an hour, 30 s per connection.
	t0 := time.Now()
	for i := range idleConns {
		if failures.Load() >= 100 || time.Since(t0) > 2*time.Minute {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	opened := time.Since(t0)
	r.mu.Lock()
	for _, c := range conns {
		if c != nil {
			r.conns = append(r.conns, c)
		}
	}
	open := len(r.conns)
	r.mu.Unlock()
	close(errs)
	failed := 0
	var first error
	for err := range errs {
		if first == nil {
			first = err
		}
		failed++
	}
	// Let anything the router does after a response (pool returns, log
	// flushes) finish before sampling.
	time.Sleep(time.Second)
	after := rssOf(pid)
	// Idle, but still served: a second request on some of them.
	alive := 0
	for i := 0; i < len(conns); i += len(conns) / 100 {
		if conns[i] != nil && secondRequest(conns[i]) == nil {
			alive++
		}
	}
	growth := after - before
	fmt.Fprintf(r.b.out, "  %-34s %8s   (RSS %s before, %s after; target < 100 MB: %s)\n",
		fmt.Sprintf("%s idle keep-alive connections", thousands(idleConns)), mb(growth), mb(before), mb(after), metOrMissed(growth < targetIdleRSS && failed == 0))
	fmt.Fprintf(r.b.out, "  %-34s %s of %s answered in %.1f s; %d of 100 sampled still answer a second request\n", "", thousands(float64(open)), thousands(idleConns), opened.Seconds(), alive)
	if first != nil {
		fmt.Fprintf(r.b.out, "  ! %d connections failed; the first: %v\n", failed, first)
	}
	r.mu.Lock()
	conns, r.conns = r.conns, nil
	r.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return nil
}

var idleRequestText = []byte("GET / HTTP/1.1\r\nHost: " + routerHost + "\r\n\r\n")

// idleRequest opens a connection to addr, sends one request and reads
// its answer, and returns the connection, open.
func idleRequest(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := exchange(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func secondRequest(c net.Conn) error { return exchange(c) }

// exchange sends a GET on c and reads its answer whole, within 30 s.
func exchange(c net.Conn) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(idleRequestText); err != nil {
		return err
	}
	// The reader is dropped after: only the connection is kept, and the
	// answer, with its length, leaves nothing behind in it.
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		return fmt.Errorf("answer %s %q, want 200 \"ok\\n\"", resp.Status, body)
	}
	if resp.Close {
		return errors.New("the router closes the connection after one request")
	}
	return nil
}

// transfers sends 1 GB up (with a Content-Length, then chunked) and
// down through the router, each beside the same transfer straight to
// the dyno, with the daemon's RSS sampled every 100 ms.
func (r *routerBench) transfers(direct backend) error {
	want, err := patternSum(transferBytes)
	if err != nil {
		return err
	}
	directAddr := "127.0.0.1:" + strconv.Itoa(direct.port)
	pid := r.daemonPid()
	kinds := []struct {
		name string
		do   func(addr string) error
	}{
		{"1 GB upload, Content-Length", func(addr string) error { return upload(addr, transferBytes, want) }},
		{"1 GB upload, chunked", func(addr string) error { return upload(addr, -1, want) }},
		{"1 GB download", func(addr string) error { return download(addr, transferBytes) }},
	}
	for _, k := range kinds {
		t0 := time.Now()
		if err := k.do(directAddr); err != nil {
			return fmt.Errorf("%s straight to %s: %w", k.name, direct.dyno, err)
		}
		directRate := float64(transferBytes) / 1e6 / time.Since(t0).Seconds()

		before := rssOf(pid)
		peak := before
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					peak = max(peak, rssOf(pid))
				}
			}
		}()
		t0 = time.Now()
		err := k.do(r.listen)
		d := time.Since(t0)
		close(stop)
		<-sampled
		if err != nil {
			fmt.Fprintf(r.b.out, "  %-34s failed through the router: %v\n", k.name, err)
			continue
		}
		rate := float64(transferBytes) / 1e6 / d.Seconds()
		fmt.Fprintf(r.b.out, "  %-34s %5.0f MB/s   (direct %.0f MB/s; daemon RSS %s, +%s at peak; flat: %s)\n",
			k.name, rate, directRate, mb(before), mb(peak-before), metOrMissed(peak-before < flatRSS))
	}
	return nil
}

// transferClient carries the transfers: no proxy from the environment,
// no compression, 2 minutes at most each (8.5 MB/s).
var transferClient = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true},
}

// A pattern is the upload's body: a 1 MiB block of pseudo-random bytes
// repeated, so that a byte out of place changes the hash the dyno
// answers.
type pattern struct {
	block []byte
	off   int64
	left  int64
}

var patternBlock = func() []byte {
	b := make([]byte, 1<<20)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		// xorshift64: any fixed sequence that is not all one byte.
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}()

func newPattern(n int64) *pattern { return &pattern{block: patternBlock, left: n} }

func (p *pattern) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	i := int(p.off % int64(len(p.block)))
	n := copy(b[:min(int64(len(b)), p.left)], p.block[i:])
	p.off += int64(n)
	p.left -= int64(n)
	return n, nil
}

// patternSum is the dyno's answer to an upload of n pattern bytes.
func patternSum(n int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, newPattern(n)); err != nil {
		return "", err
	}
	return strconv.FormatInt(n, 10) + " " + hex.EncodeToString(h.Sum(nil)) + "\n", nil
}

// upload POSTs transferBytes pattern bytes to addr's /upload, with a
// Content-Length of length or chunked when length is -1, and checks the
// dyno's count and hash.
func upload(addr string, length int64, want string) error {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/upload", io.NopCloser(newPattern(transferBytes)))
	if err != nil {
		return err
	}
	req.Host = routerHost
	req.ContentLength = length
	resp, err := transferClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != want {
		return fmt.Errorf("answer %s %q, want 200 %q", resp.Status, body, want)
	}
	return nil
}

// download GETs n bytes from addr's /download and checks the count.
func download(addr string, n int64) error {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/download?bytes="+strconv.FormatInt(n, 10), nil)
	if err != nil {
		return err
	}
	req.Host = routerHost
	resp, err := transferClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answer %s", resp.Status)
	}
	got, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 256<<10))
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", got, err)
	}
	if got != n {
		return fmt.Errorf("%d bytes, want %d", got, n)
	}
	return nil
}
