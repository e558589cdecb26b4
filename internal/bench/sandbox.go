package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyno-run/dyno/isolate"
)

// Published start-up times on this kind of machine, as root, in ms:
// /bin/true from start to exit.
const (
	refExec    = 2.2  // plain exec
	refGoNS    = 4.9  // a Go spawn with the five namespaces
	refUnshare = 7.9  // unshare -Urpmfiu --mount-proc
	refBwrap   = 12.5 // bwrap with binds, /proc, /dev and /tmp

	// The goals of issue 14, each a median over bwrap's in the same run:
	// a cold one-off through the CLI (`dyno run --isolate`), and a dyno
	// started from a warm init, as the daemon and dyno start --isolate
	// start them.
	targetColdRatio  = 1.5
	targetWarmRatio  = 1.0
	targetSizeSpread = 0.10 // the 1 GB lower dir's median over the 1 MB one's, less 1
)

// The lower dirs of the size comparison: one file of a megabyte, and
// gbFiles of them.
const (
	fileBytes = 1 << 20
	gbFiles   = 1000
)

// warmups is how many untimed starts each starter makes first: the
// first run fills caches that every later one finds full.
const warmups = 3

// A starter is one way of running /bin/true, timed from start to exit.
type starter struct {
	label string
	run   func() error
	dyno  bool // its failure is dyno's, not a comparison's

	times    []time.Duration
	failures int
	firstErr error
	warning  string // what a dyno's init fell back on
}

// A startup is one run of the sandbox start-up test.
type startup struct {
	b       *bench
	sp      *isolate.Spawner
	warmSp  *isolate.Spawner // Prewarm on, as dyno start --isolate runs it
	scratch string           // on a disk filesystem: lower dirs and dyno state
	state   string           // the dynos' state dir
	notes   []string

	// The rows of the report. bwrap, unshare and gb are nil when left
	// out; analysis rows explain the dyno rows rather than meet targets.
	direct, ns, plain, whole, warm, bwrap, unshare, mb, gb, cli *starter
	analysis                                                    []*starter
	bwrapVersion                                                string
}

func (b *bench) sandbox() {
	fmt.Fprintf(b.out, "sandbox start-up: /bin/true from start to exit, %d runs of each, in shuffled rounds (%s)\n", b.starts, asWho())
	s := &startup{b: b}
	if err := s.run(); err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		b.failed = true
	}
}

func (s *startup) run() error {
	fsName, err := s.makeScratch()
	if err != nil {
		return err
	}
	defer removeAll(s.scratch)
	s.state = filepath.Join(s.scratch, "state")

	// Spawner makes this process a child subreaper; the sections before
	// this one ran without, and it is undone when this one ends.
	s.sp, err = isolate.NewSpawner()
	if err != nil {
		return err
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	defer s.sp.Close()
	if s.warmSp, err = isolate.NewSpawner(); err != nil {
		return err
	}
	s.warmSp.SetPrewarm(true)
	defer s.warmSp.Close()
	probe, err := s.sp.Probe(s.state)
	if err != nil {
		return err
	}

	small := filepath.Join(s.scratch, "small")
	if err := os.Mkdir(small, 0o755); err != nil {
		return fmt.Errorf("make lower dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(small, "Procfile"), []byte("web: true\n"), 0o644); err != nil {
		return fmt.Errorf("make lower dir: %w", err)
	}
	mbDir := filepath.Join(s.scratch, "1mb")
	if err := writeLower(mbDir, 1); err != nil {
		return err
	}
	gbDir := ""
	switch {
	case s.b.skipGB:
		s.note("1 GB lower dir left out (-skip-gb)")
	case !probe.Overlay:
		s.note("1 GB lower dir left out: each start would copy it; %s", probe.Warning)
	default:
		gbDir = filepath.Join(s.scratch, "1gb")
		start := time.Now()
		if err := writeLower(gbDir, gbFiles); err != nil {
			return err
		}
		// Written back now, not while the starts are timed.
		unix.Sync()
		fmt.Fprintf(s.b.out, "  lower dirs on %s in %s; the 1 GB one (%d files of 1 MB) made in %.1f s\n",
			fsName, s.scratch, gbFiles, time.Since(start).Seconds())
	}
	if gbDir == "" {
		fmt.Fprintf(s.b.out, "  lower dirs on %s in %s\n", fsName, s.scratch)
	}

	s.direct = s.execStarter("plain exec", nil, "/bin/true")
	s.ns = s.execStarter("Go spawn, 5 namespaces", &syscall.SysProcAttr{
		Cloneflags:                 unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
	}, "/bin/true")
	s.plain = s.dynoStarter("dyno plain (no sandbox)", "")
	s.whole = s.dynoStarter("whole dyno (sandbox)", small)
	s.warm = s.warmStarter("whole dyno, warm init", small)
	s.bwrap = s.bwrapStarter(small)
	s.unshare = s.unshareStarter()
	s.mb = s.dynoStarter("whole dyno, 1 MB /app", mbDir)
	if gbDir != "" {
		s.gb = s.dynoStarter("whole dyno, 1 GB /app", gbDir)
	}
	s.cli = s.cliStarter(small)
	s.analysis = []*starter{
		s.initStarter("exec init: bench binary", "/proc/self/exe"),
		s.initStarter("exec init: -dyno binary", s.b.dyno),
		s.cli,
	}

	s.measure(append(s.rows(), s.analysis...))
	s.report()
	return nil
}

// rows returns the starters of the main table, in its order.
func (s *startup) rows() []*starter {
	var rows []*starter
	for _, st := range []*starter{s.direct, s.ns, s.plain, s.whole, s.warm, s.bwrap, s.unshare, s.mb, s.gb} {
		if st != nil {
			rows = append(rows, st)
		}
	}
	return rows
}

// measure runs each starter b.starts times. A starter that fails while
// warming up is reported and left out rather than timed failing.
func (s *startup) measure(starters []*starter) {
	var timed []*starter
	for _, st := range starters {
		var err error
		for range warmups {
			if err = st.run(); err != nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintf(s.b.out, "  %-30s error: %v\n", st.label, err)
			s.b.failed = s.b.failed || st.dyno
			continue
		}
		timed = append(timed, st)
	}
	// Rounds in a new random order each, so that machine noise, and
	// whatever one start leaves the next to clean up, falls on all.
	rng := rand.New(rand.NewPCG(1, 2))
	for range s.b.starts {
		rng.Shuffle(len(timed), func(i, j int) { timed[i], timed[j] = timed[j], timed[i] })
		for _, st := range timed {
			start := time.Now()
			err := st.run()
			d := time.Since(start)
			if err != nil {
				st.failures++
				if st.firstErr == nil {
					st.firstErr = err
				}
				continue
			}
			st.times = append(st.times, d)
		}
	}
	for _, st := range timed {
		slices.Sort(st.times)
	}
}

func (s *startup) report() {
	b := s.b
	fmt.Fprintf(b.out, "  %-30s %8s  %8s\n", "", "median", "p90")
	s.printRows(s.rows())
	var verdicts []string
	if r, ok := ratio(s.whole, s.bwrap); ok {
		fmt.Fprintf(b.out, "  %-30s %.2fx\n", "ratio whole dyno/bwrap", r)
	}
	if r, ok := ratio(s.warm, s.bwrap); ok {
		fmt.Fprintf(b.out, "  %-30s %.2fx\n", "ratio warm dyno/bwrap", r)
		verdicts = append(verdicts, "warm dyno/bwrap "+metOrMissed(r <= targetWarmRatio))
	}
	if r, ok := ratio(s.cli, s.bwrap); ok {
		fmt.Fprintf(b.out, "  %-30s %.2fx\n", "ratio dyno run (CLI)/bwrap", r)
		verdicts = append(verdicts, "cold dyno run/bwrap "+metOrMissed(r <= targetColdRatio))
	}
	if r, ok := ratio(s.gb, s.mb); ok {
		fmt.Fprintf(b.out, "  %-30s %.2f\n", "ratio 1 GB/1 MB /app", r)
		verdicts = append(verdicts, "lower-dir size "+metOrMissed(math.Abs(r-1) <= targetSizeSpread))
	}
	fmt.Fprintf(b.out, "  targets, medians over bwrap's in the same run: a warm dyno (as the daemon starts one) %.1fx,\n"+
		"    a cold `dyno run --isolate` %.1fx; lower-dir size within %.0f%%",
		targetWarmRatio, targetColdRatio, targetSizeSpread*100)
	if len(verdicts) > 0 {
		fmt.Fprintf(b.out, ": %s", strings.Join(verdicts, "; "))
	}
	fmt.Fprintln(b.out)
	if s.bwrap != nil {
		fmt.Fprintf(b.out, "  bwrap %s: /app is a plain bind of the lower dir, no overlay (bwrap 0.8 has none)\n", s.bwrapVersion)
	}
	fmt.Fprintf(b.out, "  reference, measured by others on this kind of machine, as root: plain exec of /bin/true %.1f ms,\n"+
		"    a Go spawn with the five namespaces %.1f ms, `unshare -Urpmfiu --mount-proc` %.1f ms,\n"+
		"    bwrap with binds, /proc, /dev and /tmp %.1f ms (bwrap 0.8 has no overlay; an overlay mount adds 6 to 7 ms)\n",
		refExec, refGoNS, refUnshare, refBwrap)

	fmt.Fprintln(b.out, "  for the analysis: the dyno rows start this benchmark's binary as the dyno's init, not the -dyno binary")
	s.printRows(s.analysis)
	fmt.Fprintln(b.out, "  exec init: the binary run as `init` with no control socket, so that it exits at once;\n"+
		"    dyno run: the -dyno binary's CLI, one-off and cold: sh -c 'exec /bin/true' in a fresh dyno")
	if dynamic, err := isDynamic(b.dyno); err == nil && dynamic {
		fmt.Fprintln(b.out, "  the -dyno binary is dynamically linked: each dyno's init loads libc first; `make build` links it statically")
	}
	for _, n := range s.notes {
		fmt.Fprintf(b.out, "  %s\n", n)
	}
}

// printRows prints the median and p90 of each starter that ran, and its
// failures and warnings.
func (s *startup) printRows(starters []*starter) {
	b := s.b
	for _, st := range starters {
		if len(st.times) == 0 {
			continue
		}
		fmt.Fprintf(b.out, "  %-30s %5.2f ms  %5.2f ms\n", st.label, ms(percentile(st.times, 0.5)), ms(percentile(st.times, 0.9)))
		if st.failures > 0 {
			fmt.Fprintf(b.out, "  %-30s %d of %d runs failed, first: %v\n", "", st.failures, b.starts, st.firstErr)
			b.failed = b.failed || st.dyno
		}
		if st.warning != "" {
			fmt.Fprintf(b.out, "  %-30s init warned: %s\n", "", st.warning)
		}
	}
}

// ratio returns the ratio of a's median to b's, if both ran.
func ratio(a, b *starter) (float64, bool) {
	if a == nil || b == nil || len(a.times) == 0 || len(b.times) == 0 {
		return 0, false
	}
	return float64(percentile(a.times, 0.5)) / float64(percentile(b.times, 0.5)), true
}

func (s *startup) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// execStarter runs argv, with attr if not nil, stdio on /dev/null.
func (s *startup) execStarter(label string, attr *syscall.SysProcAttr, argv ...string) *starter {
	return &starter{label: label, run: func() error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.SysProcAttr = attr
		return cmd.Run()
	}}
}

// dynoStarter starts a dyno: sandboxed over lower, or plain if lower is
// "".
func (s *startup) dynoStarter(label, lower string) *starter {
	st := &starter{label: label, dyno: true}
	spec := isolate.Spec{Name: "bench.1", Argv: []string{"/bin/true"}, Dir: "/", Env: []string{"PATH=/usr/bin:/bin"}}
	if lower != "" {
		spec.Dir = "/app"
		spec.Sandbox = &isolate.Sandbox{Lower: lower, StateDir: s.state, Seccomp: true}
	}
	st.run = func() error { return runTrue(s.sp, spec, st) }
	return st
}

// runTrue starts spec's /bin/true in a dyno from sp and checks it
// exited 0, noting the first fallback the dyno reported.
func runTrue(sp *isolate.Spawner, spec isolate.Spec, st *starter) error {
	d, err := sp.Start(spec)
	if err != nil {
		return err
	}
	if w := d.Warnings(); len(w) > 0 && st.warning == "" {
		st.warning = w[0]
	}
	status, err := d.Wait()
	if err != nil {
		return err
	}
	if status != 0 {
		return fmt.Errorf("/bin/true in a dyno exited with status %d", status)
	}
	return nil
}

// warmStarter starts whole dynos from a spawner that keeps an init
// started ahead (isolate.Spawner.SetPrewarm), as dyno start --isolate does:
// a formation's restarts and scale-ups find one waiting.
func (s *startup) warmStarter(label, lower string) *starter {
	st := &starter{label: label, dyno: true}
	spec := isolate.Spec{Name: "bench.1", Argv: []string{"/bin/true"}, Dir: "/app", Env: []string{"PATH=/usr/bin:/bin"},
		Sandbox: &isolate.Sandbox{Lower: lower, StateDir: s.state + "-warm", Seccomp: true}}
	st.run = func() error { return runTrue(s.warmSp, spec, st) }
	return st
}

// initStarter runs path as a dyno's init with no control socket: it
// exits at once, with status 125, having started and stopped the Go
// runtime and run the binary's package initialisation.
func (s *startup) initStarter(label, path string) *starter {
	return &starter{label: label, dyno: true, run: func() error {
		err := exec.Command(path, "init", "bench.1").Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 125 {
			return nil
		}
		if err == nil {
			return errors.New("init exited with status 0 without a control socket, want 125")
		}
		return err
	}}
}

// cliStarter runs `dyno run --isolate /bin/true` in dir, with the
// dyno's state under the scratch folder.
func (s *startup) cliStarter(dir string) *starter {
	env := append(os.Environ(), "DYNO_HOME="+filepath.Join(s.scratch, "home"))
	return &starter{label: "dyno run --isolate (CLI)", dyno: true, run: func() error {
		cmd := exec.Command(s.b.dyno, "run", "--isolate", "/bin/true")
		cmd.Dir = dir
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%w: %s", err, firstLine(out))
		}
		return nil
	}}
}

// bwrapStarter returns bwrap with binds like a dyno's root, or nil when
// bwrap is not installed or does not run here.
func (s *startup) bwrapStarter(lower string) *starter {
	path, err := exec.LookPath("bwrap")
	if err != nil {
		s.note("bwrap left out: it is not on PATH (Debian: apt-get install bubblewrap)")
		return nil
	}
	s.bwrapVersion = "(version unknown)"
	if out, err := exec.Command(path, "--version").Output(); err == nil {
		s.bwrapVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "bubblewrap ")
	}
	argv := append([]string{path}, bwrapArgs(hostRoot(isolate.DefaultReadOnly), lower)...)
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		s.note("bwrap left out: it does not run here: %v: %s", err, firstLine(out))
		return nil
	}
	return s.execStarter("bwrap "+s.bwrapVersion+", binds", nil, argv...)
}

// unshareStarter returns util-linux unshare with the namespaces of a
// dyno and a new /proc, or nil when it is not installed or cannot.
func (s *startup) unshareStarter() *starter {
	path, err := exec.LookPath("unshare")
	if err != nil {
		s.note("unshare left out: it is not on PATH")
		return nil
	}
	argv := []string{path, "-Urpmfiu", "--mount-proc", "/bin/true"}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		s.note("unshare left out: `unshare -Urpmfiu --mount-proc` fails here: %v: %s", err, firstLine(out))
		return nil
	}
	return s.execStarter("unshare -Urpmfiu --mount-proc", nil, argv...)
}

// A hostPath is how a path of the host's root is made: a symlink to
// link, or a directory when link is "".
type hostPath struct {
	path string
	link string
}

// hostRoot returns the paths of the host that exist, as they are.
func hostRoot(paths []string) []hostPath {
	var hp []hostPath
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			link, err := os.Readlink(p)
			if err != nil {
				continue
			}
			hp = append(hp, hostPath{path: p, link: link})
			continue
		}
		hp = append(hp, hostPath{path: p})
	}
	return hp
}

// bwrapArgs returns bwrap's arguments for a root like a dyno's: the
// host's paths read-only (or the same symlinks), a new /proc, a minimal
// /dev, a tmpfs /tmp and lower bound on /app, all five namespaces but
// the network.
func bwrapArgs(root []hostPath, lower string) []string {
	args := []string{"--unshare-user", "--unshare-pid", "--unshare-uts", "--unshare-ipc"}
	for _, p := range root {
		if p.link != "" {
			args = append(args, "--symlink", p.link, p.path)
		} else {
			args = append(args, "--ro-bind", p.path, p.path)
		}
	}
	return append(args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
		"--bind", lower, "/app", "--chdir", "/app", "/bin/true")
}

// makeScratch makes the folder for lower dirs and dyno state on a disk
// filesystem, which overlay's upper layer needs: the work folder when it
// is on one, else a new folder in the first of /var/tmp and the user's
// cache folder that is. It returns the filesystem's name.
func (s *startup) makeScratch() (string, error) {
	name, disk := diskFS(s.b.work)
	if disk {
		s.scratch = filepath.Join(s.b.work, "sandbox")
		return name, os.Mkdir(s.scratch, 0o755)
	}
	tried := []string{s.b.work + " (" + name + ")"}
	candidates := []string{"/var/tmp"}
	if cache, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, cache)
	}
	for _, dir := range candidates {
		name, disk := diskFS(dir)
		if !disk {
			tried = append(tried, dir+" ("+name+")")
			continue
		}
		scratch, err := os.MkdirTemp(dir, "dyno-bench-")
		if err != nil {
			tried = append(tried, dir+" ("+err.Error()+")")
			continue
		}
		s.scratch = scratch
		s.b.addScratch(scratch)
		return name, nil
	}
	return "", fmt.Errorf("no folder on a disk filesystem for the dynos' state: tried %s; set TMPDIR to one", strings.Join(tried, ", "))
}

// diskFS names the filesystem dir is on and says whether it keeps files
// on a disk: not tmpfs, ramfs or overlay, which cannot hold an overlay's
// upper layer or are not what the size comparison is about.
func diskFS(dir string) (name string, disk bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err.Error(), false
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		return "tmpfs", false
	case unix.RAMFS_MAGIC:
		return "ramfs", false
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay", false
	case unix.EXT4_SUPER_MAGIC:
		return "ext4", true
	case unix.XFS_SUPER_MAGIC:
		return "xfs", true
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs", true
	}
	return fmt.Sprintf("filesystem type %#x", st.Type), true
}

// writeLower makes dir with n files of a megabyte of pseudo-random
// bytes, so that no filesystem compresses or dedupes them away.
func writeLower(dir string, n int) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("make lower dir: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 0))
	buf := make([]byte, fileBytes)
	for i := range n {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		name := filepath.Join(dir, "blob"+strconv.Itoa(i))
		if err := os.WriteFile(name, buf, 0o644); err != nil {
			return fmt.Errorf("make lower dir: %w", err)
		}
	}
	return nil
}

// removeAll removes path even where a dyno's overlay left a directory
// without permissions (work/work), which stops os.RemoveAll for anyone
// but root.
func removeAll(path string) {
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(path)
}

// isDynamic reports whether the executable at path asks for a dynamic
// loader.
func isDynamic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true, nil
		}
	}
	return false, nil
}

// percentile returns the nearest-rank p-th percentile of sorted, which
// must not be empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// asWho says whose the numbers are: the references are root's.
func asWho() string {
	if os.Getuid() == 0 {
		return "as root"
	}
	return "as uid " + strconv.Itoa(os.Getuid()) + "; the references are root's"
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	if len(line) == 0 {
		return "no output"
	}
	return string(line)
}
