package main

import (
	"context"
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
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
	"github.com/dyno-run/dyno/supervisor/daemon"
)

const (
	fleetDynos      = 200
	fleetLines      = 2000 // lines each dyno writes, at once
	targetFleetRSS  = 100 << 20
	fleetScaleLimit = 2 * time.Minute
)

// fleet runs 200 isolated dynos under one daemon: the time to scale from
// 0 to 200 and back, the daemon's RSS at 200, and the log throughput when
// all 200 write at once, checked line by line in the app's stored logs.
//
// The dynos write only once all are up, when the bench tells them to:
// lines written while others still start would make the throughput the
// number of lines over the time it takes to start 200 dynos.
func (b *bench) fleet() {
	fmt.Fprintf(b.out, "fleet: %d dynos under the daemon, each writing %d lines of 80 bytes once all are up\n", fleetDynos, fleetLines)
	if err := b.runFleet(); err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		b.failed = true
	}
}

func (b *bench) runFleet() error {
	if b.linegen == "" {
		b.linegen = filepath.Join(b.work, "linegen")
		if out, err := exec.Command("go", "build", "-o", b.linegen, linegenPkg).CombinedOutput(); err != nil {
			return fmt.Errorf("build line generator: %w\n%s", err, out)
		}
	}
	home := app.Home{Dir: filepath.Join(b.work, "fleet-home")}
	a, err := home.Create("fleet", "bench")
	if err != nil {
		return err
	}
	// Past Heroku's 100 of a type: the fleet is one type, fleetDynos strong.
	// And the router, for the dashboard at dashboard.localhost.
	port, err := freePort()
	if err != nil {
		return err
	}
	routerAddr := "127.0.0.1:" + strconv.Itoa(port)
	limit := fmt.Sprintf("[formation]\nmax_quantity = %d\n\n[router]\nlisten = %q\n", fleetDynos, routerAddr)
	if err := os.WriteFile(home.SizesFile(), []byte(limit), 0o600); err != nil {
		return err
	}
	tree := filepath.Join(b.work, "fleet-slug")
	os.MkdirAll(tree, 0o755)
	gen, _ := os.ReadFile(b.linegen)
	if err := os.WriteFile(filepath.Join(tree, "linegen"), gen, 0o755); err != nil {
		return err
	}
	sl, _, err := home.Slugs().Pack(tree, slug.PackOptions{})
	if err != nil {
		return err
	}
	// Dynos share the host's network: each connects to the bench and
	// waits for a newline before it writes.
	gate, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the dynos: %w", err)
	}
	defer gate.Close()
	waiting := acceptAll(gate)
	command := fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d && read -r _ <&3 && exec 3<&- && ./linegen %d && exec sleep 100000",
		gate.Addr().(*net.TCPAddr).Port, fleetLines)
	if _, err := a.Deploy(sl.Digest, "", map[string]string{"gen": command}, nil, nil, "bench"); err != nil {
		return err
	}
	socket := filepath.Join(home.Dir, "dyno.sock")
	client := daemon.NewClient(socket)
	cmd := exec.Command(b.dyno, "daemon")
	cmd.Env = append(os.Environ(), "DYNO_HOME="+home.Dir, "DYNO_SOCKET="+socket)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	count := func(state string) int {
		var dynos []struct {
			State string `json:"state"`
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if client.Do(ctx, http.MethodGet, "/apps/fleet/dynos", nil, &dynos) != nil {
			return -1
		}
		if state == "" {
			return len(dynos)
		}
		n := 0
		for _, d := range dynos {
			if d.State == state {
				n++
			}
		}
		return n
	}
	waitFor := func(what string, ok func() bool) (time.Duration, error) {
		t0 := time.Now()
		for !ok() {
			if time.Since(t0) > fleetScaleLimit {
				return 0, fmt.Errorf("%s: not after %v", what, fleetScaleLimit)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(t0), nil
	}
	if _, err := waitFor("the daemon's API", func() bool { return count("") == 0 }); err != nil {
		return err
	}
	scale := func(n int) error {
		if _, err := a.ApplyScale([]app.Scale{{Type: "gen", Op: '=', N: n}}, []string{app.DefaultSize}, "bench"); err != nil {
			return err
		}
		client.Nudge()
		return nil
	}
	load := loadAverage()
	cpu0, _ := readProc(cmd.Process.Pid)
	if err := scale(fleetDynos); err != nil {
		return err
	}
	up, err := waitFor("200 dynos up", func() bool { return count("up") == fleetDynos })
	if err != nil {
		return err
	}
	cpu1, _ := readProc(cmd.Process.Pid)
	fmt.Fprintf(b.out, "  %-34s %8.2f s   (%.1f ms a dyno; the daemon's CPU %.1f ms a dyno; load average %s before)\n",
		"scale 0 -> 200, all up", up.Seconds(), perDyno(up), perDyno(cpu1.cpu-cpu0.cpu), load)
	conns, err := waiting(fleetDynos, fleetScaleLimit)
	if err != nil {
		return err
	}
	// Starts still settling (inits exiting their set-up, the next warm
	// init) would otherwise share the cores with the first writes.
	time.Sleep(time.Second)
	for _, c := range conns {
		c.Write([]byte("\n"))
		c.Close()
	}

	// Every dyno's lines are in the store once its generator is done; the
	// store's files in order make one stream to check.
	logs := filepath.Join(home.Dir, "apps", "fleet", "logs")
	want := fleetDynos * fleetLines
	var burst int64
	stored := func() bool {
		burst = max(burst, rssOf(cmd.Process.Pid))
		return appLines(logs) >= want
	}
	if _, err := waitFor("all lines stored", stored); err != nil {
		return err
	}
	// The steady state: 200 dynos running, their output done.
	time.Sleep(time.Second)
	rss := rssOf(cmd.Process.Pid)
	fmt.Fprintf(b.out, "  %-34s %8s   (target < 100 MB: %s; %s while all 200 wrote at once)\n",
		"daemon RSS at 200 dynos", mb(rss), metOrMissed(rss < targetFleetRSS), mb(burst))
	if err := b.dashboard(home.Dir, routerAddr); err != nil {
		fmt.Fprintf(b.out, "  dashboard: error: %v\n", err)
		b.failed = true
	}
	if err := scale(0); err != nil {
		return err
	}
	down, err := waitFor("all dynos gone", func() bool { return count("") == 0 })
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "  %-34s %8.2f s\n", "scale 200 -> 0, all gone", down.Seconds())

	joined := filepath.Join(b.work, "fleet.log")
	first, last, err := joinLogs(logs, joined)
	if err != nil {
		return err
	}
	names := make([]string, fleetDynos)
	for i := range names {
		names[i] = "gen." + strconv.Itoa(i+1)
	}
	t, err := checkOutput(joined, parseLogplex, names, fleetLines)
	if err != nil {
		return err
	}
	span := last.Sub(first)
	fmt.Fprintf(b.out, "  %-34s %8.0f lines/s   (%d lines in %.2f s, first to last line written)\n", "log throughput, 200 writers at once", float64(t.intact)/span.Seconds(), t.intact, span.Seconds())
	fmt.Fprintf(b.out, "  %-34s cut %d  lost %d  duplicated %d  out of order %d\n", "lines", t.cut, t.lost, t.duplicated, t.disordered)
	return nil
}

// acceptAll accepts connections on l until it is closed. The function
// it returns waits until n have come, or until limit has passed.
func acceptAll(l net.Listener) func(n int, limit time.Duration) ([]net.Conn, error) {
	conns := make(chan net.Conn)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	return func(n int, limit time.Duration) ([]net.Conn, error) {
		var got []net.Conn
		timeout := time.After(limit)
		for len(got) < n {
			select {
			case c := <-conns:
				got = append(got, c)
			case <-timeout:
				return nil, fmt.Errorf("%d of %d dynos connected to the bench within %v", len(got), n, limit)
			}
		}
		return got, nil
	}
}

// perDyno is d shared among the fleet's dynos, in milliseconds.
func perDyno(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond) / fleetDynos
}

// loadAverage is the machine's 1-minute load average, as uptime says
// it: other work on the machine slows the starts.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// rssOf is a process's VmRSS in bytes.
func rssOf(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// storeFiles are a log store's files, oldest first.
func storeFiles(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "[0-9]*.log"))
	slices.SortFunc(names, func(a, b string) int {
		na, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(a), ".log"))
		nb, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(b), ".log"))
		return na - nb
	})
	return append(names, filepath.Join(dir, "current.log"))
}

// appLines counts the app[gen.N] lines stored so far.
func appLines(dir string) int {
	n := 0
	for _, f := range storeFiles(dir) {
		b, _ := os.ReadFile(f)
		n += strings.Count(string(b), " app[gen.")
	}
	return n
}

// joinLogs concatenates the store's files, oldest first, into out, and
// returns the times of the first and last generated lines.
func joinLogs(dir, out string) (first, last time.Time, err error) {
	w, err := os.Create(out)
	if err != nil {
		return first, last, err
	}
	defer w.Close()
	for _, f := range storeFiles(dir) {
		r, err := os.Open(f)
		if err != nil {
			continue
		}
		io.Copy(w, r)
		r.Close()
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, " app[gen.") {
				continue
			}
			t, err := time.Parse("2006-01-02T15:04:05.000000-07:00", strings.Fields(l)[0])
			if err != nil {
				continue
			}
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
	}
	return first, last, nil
}
