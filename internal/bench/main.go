// Command bench is dyno's end-to-end benchmark. It runs the dyno binary
// the way a user does, on a Procfile in a temporary folder, and reports:
//
//   - log throughput: processes writing 80-byte lines flat out through
//     `dyno start` into a file, in both log formats, with the supervisor's
//     own CPU time per line and a byte-for-byte check of every line;
//   - supervisor memory: the resident memory of `dyno start` and of its
//     `dyno init` processes while they run idle processes;
//   - sandbox start-up: how long /bin/true takes from start to exit in a
//     dyno, sandboxed or not, next to a plain exec, bare namespaces,
//     unshare and bwrap, and with a lower dir of 1 MB and of 1 GB;
//   - router: the daemon's router under wrk beside nginx in front of the
//     same web dynos, its memory with 10,000 idle connections and during
//     1 GB transfers (needs wrk and nginx for its load rows).
//
// When node-foreman (nf) is installed, it runs the same Procfiles for
// comparison; the memory test also runs hivemind and goreman when they
// are on PATH, and says how to install whichever is not. From the repository root, as `make bench` does:
//
//	go run ./internal/bench -dyno bin/dyno
//
// -only runs some sections alone: -only sandbox, -only logs,memory,
// -only router.
//
// The sandbox section starts dynos through package isolate, whose init
// is the running binary re-executed: there it is this benchmark's binary,
// not the -dyno one.
//
// The exit status is 0 once the report is printed, whatever it says; it
// is 1 only when the benchmark cannot run (no dyno binary, no go command
// to build the line generator, dyno failing to run at all), 2 for
// wrong flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/supervisor/project"
)

// linegenPkg is the line generator, built once per run into the work
// folder so that its own speed does not depend on how bench was started.
const linegenPkg = "github.com/dyno-run/dyno/internal/bench/linegen"

// sections are the parts of the report, in the order they run, by the
// names -only takes.
var sections = []string{"logs", "memory", "releases", "daemon", "fleet", "router", "deploys", "wake", "sandbox"}

type config struct {
	dyno   string // the dyno binary
	lines  int    // lines per process in the throughput test
	procs  int    // processes in the throughput test
	idle   int    // processes in the memory test
	starts int    // starts of each kind in the sandbox test
	skipNF bool
	skipGB bool   // leave the 1 GB lower dir, slug and transfers out
	only   string // comma-separated sections to run; "" for all

	isolate bool // the memory test's processes isolated (dyno start --isolate)

	routerDuration time.Duration // each wrk run of the router section
	routerRounds   int           // interleaved rounds of the router section
}

// runs reports whether section is to run.
func (c *config) runs(section string) bool {
	return c.only == "" || slices.Contains(strings.Split(c.only, ","), section)
}

// A bench is one run of the benchmark.
type bench struct {
	config
	nf      string // node-foreman's nf, or "" to leave it out
	work    string // temporary folder, removed at the end
	linegen string // the built line generator
	out     io.Writer

	failed bool // a measurement of dyno itself failed

	mu       sync.Mutex
	running  *idleRun       // the memory test's manager, if one runs
	stopWith syscall.Signal // how to stop it
	scratch  []string       // folders outside work to remove on abort
	cleanup  func()         // stops what the running section started, or nil
}

// setCleanup records what abort must call to stop the running section's
// processes, or nil.
func (b *bench) setCleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanup = f
}

// addScratch records a folder made outside the work folder, for abort.
func (b *bench) addScratch(dir string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scratch = append(b.scratch, dir)
}

// setRunning records the manager that abort must stop, or nil.
func (b *bench) setRunning(run *idleRun, sig syscall.Signal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.running, b.stopWith = run, sig
}

// abort cleans up after an interrupted run: it stops the idle processes,
// which nothing else would, and removes the work folder and any scratch
// folder. A throughput run in flight ends by itself within seconds; a
// dyno's init kills its dyno once this process, its manager, is gone.
func (b *bench) abort() {
	b.mu.Lock()
	run, sig, scratch, cleanup := b.running, b.stopWith, b.scratch, b.cleanup
	b.mu.Unlock()
	if run != nil {
		run.stop(sig)
	}
	if cleanup != nil {
		cleanup()
	}
	removeAll(b.work)
	for _, dir := range scratch {
		removeAll(dir)
	}
}

func main() {
	// The sandbox section starts dynos, whose init is this binary
	// re-executed (`dyno init NAME`): dispatch it as cmd/dyno does.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		isolate.Init()
	}
	var cfg config
	flag.StringVar(&cfg.dyno, "dyno", "", "the dyno `binary` to measure (required)")
	flag.IntVar(&cfg.lines, "lines", 200000, "lines each process writes in the throughput test")
	flag.IntVar(&cfg.procs, "procs", 4, "processes in the throughput test")
	flag.IntVar(&cfg.idle, "idle", 50, "idle processes in the memory test")
	flag.BoolVar(&cfg.isolate, "isolate", false, "isolate the memory test's processes (dyno start --isolate)")
	flag.IntVar(&cfg.starts, "starts", 200, "starts of each kind in the sandbox test")
	flag.BoolVar(&cfg.skipNF, "skip-nf", false, "leave node-foreman out even when nf is installed")
	flag.BoolVar(&cfg.skipGB, "skip-gb", false, "leave the 1 GB lower dir, slug and transfers out of the sandbox, releases and router tests")
	flag.DurationVar(&cfg.routerDuration, "router-duration", 10*time.Second, "each wrk run of the router section, whole seconds")
	flag.IntVar(&cfg.routerRounds, "router-rounds", 5, "interleaved rounds of nginx, router and direct runs in the router section")
	flag.StringVar(&cfg.only, "only", "", "run only these `sections`, comma-separated: "+strings.Join(sections, ", "))
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./internal/bench -dyno bin/dyno [flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		flag.Usage()
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (c *config) validate() error {
	switch {
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	case c.dyno == "":
		return errors.New("-dyno is required")
	case c.lines < 1 || c.lines > 9_999_999:
		// The generator numbers lines with seven digits.
		return fmt.Errorf("-lines %d: want 1 to 9999999", c.lines)
	// Both run as one process type under dyno start, which runs at most
	// project.MaxCount of a type.
	case c.procs < 1 || c.procs > project.MaxCount:
		return fmt.Errorf("-procs %d: want 1 to %d", c.procs, project.MaxCount)
	case c.idle < 1 || c.idle > project.MaxCount:
		return fmt.Errorf("-idle %d: want 1 to %d", c.idle, project.MaxCount)
	case c.starts < 1 || c.starts > 100000:
		return fmt.Errorf("-starts %d: want 1 to 100000", c.starts)
	case c.routerDuration < time.Second || c.routerDuration > time.Hour || c.routerDuration%time.Second != 0:
		return fmt.Errorf("-router-duration %v: want whole seconds from 1s to 1h, as wrk takes them", c.routerDuration)
	case c.routerRounds < 1 || c.routerRounds > 100:
		return fmt.Errorf("-router-rounds %d: want 1 to 100", c.routerRounds)
	}
	if c.only != "" {
		for s := range strings.SplitSeq(c.only, ",") {
			if !slices.Contains(sections, s) {
				return fmt.Errorf("-only %q: unknown section %q; want some of %s", c.only, s, strings.Join(sections, ", "))
			}
		}
	}
	return nil
}

func run(cfg config) error {
	b := &bench{config: cfg, out: os.Stdout}
	// Every test runs in its own folder, where a relative path would
	// no longer lead to the binary.
	dyno, err := filepath.Abs(cfg.dyno)
	if err != nil {
		return fmt.Errorf("locate dyno binary: %w", err)
	}
	if fi, err := os.Stat(dyno); err != nil {
		return fmt.Errorf("dyno binary: %w (build it with `go build -o bin/dyno ./cmd/dyno`)", err)
	} else if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("dyno binary %s is not an executable file", dyno)
	}
	b.dyno = dyno

	if !cfg.skipNF {
		// Missing nf is normal: the comparison is optional.
		b.nf, _ = exec.LookPath("nf")
	}

	b.work, err = os.MkdirTemp("", "dyno-bench-")
	if err != nil {
		return fmt.Errorf("make work folder: %w", err)
	}
	defer os.RemoveAll(b.work)
	// An interrupted run would otherwise leave idle processes running
	// and an output file of up to 100 MB behind. SIGPIPE comes when the
	// report is piped into a reader that quits early, like head.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		sig := <-sigs
		b.abort()
		fmt.Fprintf(os.Stderr, "bench: %v\n", sig)
		os.Exit(1)
	}()

	if cfg.runs("logs") {
		b.linegen = filepath.Join(b.work, "linegen")
		build := exec.Command("go", "build", "-o", b.linegen, linegenPkg)
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build line generator %s (run bench inside the dyno module): %w\n%s", linegenPkg, err, out)
		}
	}

	sep := ""
	section := func(name string, f func()) {
		if cfg.runs(name) {
			fmt.Fprint(b.out, sep)
			sep = "\n"
			f()
		}
	}
	section("logs", b.throughput)
	section("memory", b.memory)
	section("releases", b.releases)
	section("daemon", b.daemonRestart)
	section("fleet", b.fleet)
	section("router", b.router)
	section("deploys", b.deploys)
	section("wake", b.wake)
	// Last: it makes this process a child subreaper while it runs.
	section("sandbox", b.sandbox)
	if b.nf == "" && !cfg.skipNF && cfg.runs("logs") {
		fmt.Fprintln(b.out, "\nnode-foreman left out: nf is not on PATH (npm install -g foreman)")
	}
	if b.failed {
		return errors.New("dyno could not be measured; see the report above")
	}
	return nil
}

// mkdirProcfile makes a folder under the work folder holding a Procfile
// with one process type.
func (b *bench) mkdirProcfile(name, procType, command string) (string, error) {
	dir := filepath.Join(b.work, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("make folder for %s: %w", name, err)
	}
	procfile := procType + ": " + command + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644); err != nil {
		return "", fmt.Errorf("write Procfile for %s: %w", name, err)
	}
	return dir, nil
}

// mb formats a byte count in megabytes (10⁶ bytes), the unit of the
// memory target.
func mb(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
