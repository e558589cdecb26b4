package isolate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Spec describes one dyno to start.
type Spec struct {
	Name string   // "web.1": shown in ps as `dyno init web.1`
	Argv []string // the app's command line; see ShellArgv
	Dir  string   // working directory
	Env  []string // the app's whole environment
	// Stdin, Stdout and Stderr are handed to the app; nil means /dev/null.
	Stdin, Stdout, Stderr *os.File
	// TTY says Stdin is a terminal that the app takes as its controlling
	// terminal (a PTY slave for one-off dynos). With a Sandbox, the
	// terminal is made inside the dyno instead (Dyno.PTY), sized Rows x
	// Cols, and Stdin is not used.
	TTY        bool
	Rows, Cols uint16
	// Sandbox isolates the dyno; nil runs a plain process tree.
	Sandbox *Sandbox
}

// Spawner starts dynos. The process that makes one becomes a child
// subreaper, so that if a dyno's init dies abnormally, its orphans come to
// this process rather than the host's init, and SweepOrphans kills them.
type Spawner struct {
	initPath string

	mu sync.Mutex
	// prewarm keeps one sandboxed init started ahead, per state dir, so
	// the next sandboxed dyno skips the clone, the exec and the Go
	// runtime's start-up of its init (about 2 ms of a 5 ms start). The
	// warm init waits in its namespaces, before building anything, for
	// its config; it gets its stdio and cgroup then, not at clone time.
	prewarm bool
	closed  bool                 // Close was called: no more warm inits
	live    map[int]bool         // pids of inits started and not yet waited for
	warm    map[string]*warmSlot // by state dir
	dropped map[string]bool      // state dirs given up by DropWarm
	hidden  []string             // host paths no dyno sees (Hide), absolute
	warming sync.WaitGroup       // warm inits being launched
	cleanup sync.WaitGroup       // removals of dyno dirs in flight
	// warmLaunched, when set (by tests), runs after a warm init is
	// launched and before it is kept.
	warmLaunched func(stateDir string)
	// keepGoInit, set by tests, keeps every dyno's Go init resident
	// (Config.KeepGoInit).
	keepGoInit bool
}

// warmSlot is a state dir's warm init: l is nil while it is launched.
// A launch keeps its init only if its slot is still the state dir's
// when it ends: DropWarm and Close take the slot away. ids are the
// app's own ids it was launched with (mapped by newuidmap), nil for
// none: a start takes it only with the same.
type warmSlot struct {
	l   *launched
	ids *IDRange
}

// NewSpawner makes the calling process a child subreaper and returns a
// Spawner that re-executes the running binary as the init.
func NewSpawner() (*Spawner, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err)
	}
	return &Spawner{
		// /proc/self/exe stays valid even if the binary on disk is
		// replaced by an upgrade while dynos run.
		initPath: "/proc/self/exe",
		live:     make(map[int]bool),
		warm:     make(map[string]*warmSlot),
		dropped:  make(map[string]bool),
	}, nil
}

// SetPrewarm turns warm inits on or off: with it on, WarmUp keeps one
// sandboxed init started ahead per state dir, and each sandboxed start
// launches the next. Turning it off ends those kept.
func (sp *Spawner) SetPrewarm(on bool) {
	sp.mu.Lock()
	sp.prewarm = on
	var ended []*launched
	if !on {
		ended = sp.takeAllWarm()
	}
	sp.mu.Unlock()
	for _, l := range ended {
		sp.discard(l)
	}
}

// Dyno is a running dyno seen from the manager.
type Dyno struct {
	sp  *Spawner
	cmd *exec.Cmd
	pid int // the app's main process

	dir      *dynoDir // sandboxed dynos only
	id       string
	pty      *os.File
	warnings []string

	mu  sync.Mutex
	ctl *os.File // nil after Wait
	enc *json.Encoder
}

// launched is an init that runs and waits for its config.
type launched struct {
	cmd *exec.Cmd
	ctl *os.File
	dir *dynoDir // sandboxed inits only
	id  string
}

// Start starts the dyno's init, hands it the spec and waits until the app
// is running or has failed to start.
func (sp *Spawner) Start(spec Spec) (*Dyno, error) {
	if len(spec.Argv) == 0 {
		return nil, fmt.Errorf("start dyno %s: empty command", spec.Name)
	}
	cfg := Config{Name: spec.Name, Argv: spec.Argv, Dir: spec.Dir, Env: spec.Env, TTY: spec.TTY, KeepGoInit: sp.keepGoInit}
	var passFDs []int
	l := sp.takeWarm(spec)
	if l != nil {
		// A warm init has /dev/null for stdio: it gets the dyno's own
		// with its config, and is moved into its cgroup before that.
		if cg := spec.Sandbox.Cgroup; cg != nil {
			if err := cg.AddProcess(l.cmd.Process.Pid); err != nil {
				sp.discard(l)
				return nil, fmt.Errorf("start dyno %s: %w", spec.Name, err)
			}
		}
		null, err := os.Open(os.DevNull)
		if err != nil {
			sp.discard(l)
			return nil, fmt.Errorf("start dyno %s: %w", spec.Name, err)
		}
		defer null.Close()
		for _, f := range []*os.File{spec.Stdin, spec.Stdout, spec.Stderr} {
			if f == nil || (spec.TTY && f == spec.Stdin) {
				f = null
			}
			passFDs = append(passFDs, int(f.Fd()))
		}
		cfg.Stdio = true
	} else {
		var err error
		if l, err = sp.launch(spec.Name, spec); err != nil {
			return nil, fmt.Errorf("start dyno %s: %w", spec.Name, err)
		}
	}
	d := &Dyno{sp: sp, cmd: l.cmd, ctl: l.ctl, enc: json.NewEncoder(l.ctl), dir: l.dir, id: l.id}
	if spec.Sandbox != nil {
		cfg.Sandbox = sandboxConfig(spec, l)
		sp.mu.Lock()
		hidden := sp.hidden
		sp.mu.Unlock()
		cfg.Sandbox.Hidden = hiddenIn(hiddenNow(hidden), cfg.Sandbox.Lower, cfg.Sandbox.Binds, cfg.Sandbox.ReadOnly)
	}
	if err := d.handshake(cfg, passFDs); err != nil {
		return nil, fmt.Errorf("start dyno %s: %w", spec.Name, err)
	}
	if spec.Sandbox != nil {
		sp.mu.Lock()
		sp.warmUpLocked(spec.Sandbox.StateDir, spec.Sandbox.IDs)
		sp.mu.Unlock()
	}
	return d, nil
}

// takeWarm returns the warm init for spec's state dir, if one is ready.
// Warm inits bind DefaultReadOnly, so a spec with its own list goes
// cold, and so does one whose ids are not those the init was mapped
// with.
func (sp *Spawner) takeWarm(spec Spec) *launched {
	if spec.Sandbox == nil || spec.Sandbox.ReadOnly != nil {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	slot := sp.warm[spec.Sandbox.StateDir]
	if slot == nil || slot.l == nil { // none, or one still starting
		return nil
	}
	if !sameIDs(slot.ids, spec.Sandbox.IDs) {
		return nil
	}
	delete(sp.warm, spec.Sandbox.StateDir)
	return slot.l
}

// WarmUp starts, in the background, a warm init for dynos whose state
// dir is stateDir and whose ids are ids (Sandbox.IDs; nil for none),
// unless one is there or starting or warm inits are off (SetPrewarm).
// Each sandboxed start then launches the next; call it once ahead of
// the first. It undoes DropWarm: the state dir's app is (back) in use.
func (sp *Spawner) WarmUp(stateDir string, ids *IDRange) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	delete(sp.dropped, stateDir)
	sp.warmUpLocked(stateDir, ids)
}

// warmUpLocked reserves stateDir's slot and launches its warm init in
// the background; sp.mu is held. The reservation is made here, not in
// the goroutine, so that a DropWarm after it always sees it.
func (sp *Spawner) warmUpLocked(stateDir string, ids *IDRange) {
	if !sp.prewarm || sp.closed || sp.dropped[stateDir] {
		return
	}
	if _, ok := sp.warm[stateDir]; ok {
		return
	}
	slot := &warmSlot{}
	if ids != nil {
		r := *ids
		slot.ids = &r
	}
	sp.warm[stateDir] = slot
	sp.warming.Add(1)
	go func() {
		defer sp.warming.Done()
		sp.launchWarm(stateDir, slot)
	}()
}

func sameIDs(a, b *IDRange) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// launchWarm starts slot's init and builds the common part of its root,
// then keeps it, unless the slot was taken away meanwhile (DropWarm,
// Close, SetPrewarm(false)): then the init is ended, so nothing launched
// for an app being destroyed outlives it.
func (sp *Spawner) launchWarm(stateDir string, slot *warmSlot) {
	// With the app's ids, newuidmap and newgidmap map it here, and it
	// re-executes itself, off the critical path of a start too.
	l, err := sp.launch("", Spec{Sandbox: &Sandbox{StateDir: stateDir, IDs: slot.ids}})
	if err == nil {
		// Build the common part of the root now, while nobody waits.
		err = json.NewEncoder(l.ctl).Encode(Config{Prepare: true, Sandbox: &SandboxConfig{
			Root:     filepath.Join(l.dir.path, "root"),
			ReadOnly: DefaultReadOnly,
		}})
		if err != nil {
			sp.discard(l)
			l = nil
		}
	}
	if sp.warmLaunched != nil {
		sp.warmLaunched(stateDir)
	}
	sp.mu.Lock()
	ours := sp.warm[stateDir] == slot
	switch {
	case ours && l != nil:
		slot.l = l
		l = nil
	case ours:
		// The next start goes cold and reports whatever failed.
		delete(sp.warm, stateDir)
	}
	sp.mu.Unlock()
	if l != nil {
		sp.discard(l)
	}
}

// discard ends an init that never got its config: closing its socket
// makes it exit.
func (sp *Spawner) discard(l *launched) {
	l.ctl.Close()
	l.cmd.Wait()
	sp.mu.Lock()
	delete(sp.live, l.cmd.Process.Pid)
	sp.mu.Unlock()
	if l.dir != nil {
		l.dir.remove()
	}
}

// DropWarm ends the warm init kept or being launched for stateDir (its
// app is gone), and launches no more for it until WarmUp is called
// again.
func (sp *Spawner) DropWarm(stateDir string) {
	sp.mu.Lock()
	slot := sp.warm[stateDir]
	delete(sp.warm, stateDir)
	sp.dropped[stateDir] = true
	sp.mu.Unlock()
	if slot != nil && slot.l != nil {
		sp.discard(slot.l)
	}
}

// takeAllWarm empties the warm slots and returns the inits ready in
// them; sp.mu is held. Launches in flight see their slot gone and end
// their init themselves.
func (sp *Spawner) takeAllWarm() []*launched {
	var ready []*launched
	for _, slot := range sp.warm {
		if slot.l != nil {
			ready = append(ready, slot.l)
		}
	}
	clear(sp.warm)
	return ready
}

// Close ends the warm inits, those being launched included, and waits
// until the directories of every dyno that has ended are removed. Call
// it before exiting; what an exit cuts short, the next SweepDynoDirs
// removes.
func (sp *Spawner) Close() {
	sp.mu.Lock()
	sp.closed = true
	ready := sp.takeAllWarm()
	sp.mu.Unlock()
	for _, l := range ready {
		sp.discard(l)
	}
	sp.warming.Wait()
	sp.cleanup.Wait()
}

// launch forks and executes an init for spec, in the sandbox's
// namespaces with a fresh dyno dir when spec has a Sandbox. name "" makes
// a warm init: stdio /dev/null, no cgroup.
func (sp *Spawner) launch(name string, spec Spec) (*launched, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "dyno-control")
	child := os.NewFile(uintptr(fds[1]), "dyno-control")
	defer child.Close()
	args := []string{"dyno", "init"}
	mapped := spec.Sandbox != nil && spec.Sandbox.IDs != nil
	if mapped {
		args = append(args, "--mapped")
	}
	if name != "" {
		args = append(args, name)
	}
	cmd := &exec.Cmd{
		Path:       sp.initPath,
		Args:       args,
		Env:        []string{},
		ExtraFiles: []*os.File{child},
		// init leads its own session, so a Ctrl-C at the user's terminal
		// reaches the manager only, which stops dynos its own way.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	// Leave cmd.Stdin etc. nil when the spec's are nil: os/exec then
	// opens /dev/null. Assigning a nil *os.File would be a non-nil
	// io.Reader. A terminal made inside a sandbox leaves init's own
	// stdin /dev/null.
	if spec.Stdin != nil && !(spec.TTY && spec.Sandbox != nil) {
		cmd.Stdin = spec.Stdin
	}
	if spec.Stdout != nil {
		cmd.Stdout = spec.Stdout
	}
	if spec.Stderr != nil {
		cmd.Stderr = spec.Stderr
	}
	l := &launched{cmd: cmd, ctl: parent}
	var cgroupDir *os.File
	if sb := spec.Sandbox; sb != nil {
		if cgroupDir, err = l.prepareSandbox(name, sb); err != nil {
			parent.Close()
			return nil, err
		}
		if cgroupDir != nil {
			defer cgroupDir.Close()
		}
	}

	// Hold the lock across fork and registration so SweepOrphans never
	// mistakes a new init for an orphan.
	sp.mu.Lock()
	err = cmd.Start()
	if err != nil && cgroupDir != nil && cloneIntoCgroupRefused(err) {
		// Go has no fallback when clone3 or CLONE_INTO_CGROUP is refused,
		// and an exec.Cmd starts only once, so start a fresh copy without
		// it and move init in below, before it gets its config and starts
		// anything.
		cmd = retryCmd(cmd)
		l.cmd = cmd
		err = cmd.Start()
		if err == nil {
			if aerr := spec.Sandbox.Cgroup.AddProcess(cmd.Process.Pid); aerr != nil {
				cmd.Process.Kill()
				cmd.Wait()
				err = aerr
			}
		}
	}
	if err == nil {
		sp.live[cmd.Process.Pid] = true
	}
	sp.mu.Unlock()
	if err != nil {
		parent.Close()
		if l.dir != nil {
			l.dir.remove()
		}
		if spec.Sandbox != nil {
			err = diagnoseNamespaces(err)
		}
		return nil, err
	}
	if mapped {
		err = mapIDs(cmd.Process.Pid, *spec.Sandbox.IDs)
		if err == nil {
			err = json.NewEncoder(parent).Encode(Message{Type: msgMapped})
		}
		if err != nil {
			parent.Close()
			cmd.Process.Kill()
			cmd.Wait()
			sp.mu.Lock()
			delete(sp.live, cmd.Process.Pid)
			sp.mu.Unlock()
			l.dir.remove()
			return nil, fmt.Errorf("map the app's ids into dyno %s: %w", name, err)
		}
	}
	return l, nil
}

// cloneIntoCgroupRefused says whether a failed start with UseCgroupFD
// may work without it. clone3 itself is refused with ENOSYS (kernels
// before 5.3, and Docker's default seccomp profile) or EPERM (other
// seccomp profiles); kernels 5.3 to 5.6 answer E2BIG to its larger
// argument, or EINVAL to CLONE_INTO_CGROUP; and the kernel refuses the
// leaf itself with EBADF (not a cgroup2 directory: a hybrid hierarchy),
// EOPNOTSUPP, EBUSY or EACCES. For the last ones the write to
// cgroup.procs that follows gives the clearer error.
func cloneIntoCgroupRefused(err error) bool {
	for _, e := range []error{unix.ENOSYS, unix.EPERM, unix.E2BIG, unix.EINVAL, unix.EBADF, unix.EOPNOTSUPP, unix.EBUSY, unix.EACCES} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// retryCmd is a fresh, unstarted copy of cmd, whose Start failed,
// without CLONE_INTO_CGROUP.
func retryCmd(cmd *exec.Cmd) *exec.Cmd {
	attr := *cmd.SysProcAttr
	attr.UseCgroupFD, attr.CgroupFD = false, 0
	return &exec.Cmd{
		Path:        cmd.Path,
		Args:        cmd.Args,
		Env:         cmd.Env,
		Dir:         cmd.Dir,
		Stdin:       cmd.Stdin,
		Stdout:      cmd.Stdout,
		Stderr:      cmd.Stderr,
		ExtraFiles:  cmd.ExtraFiles,
		SysProcAttr: &attr,
	}
}

// RemoveAsOwner removes path with a helper that maps r the way a
// dyno's init does (mapIDs): as uid 0 of that namespace it may remove
// files of the app's ids, which this process may not.
func RemoveAsOwner(path string, r IDRange) error {
	if err := runHelper(r, Config{Remove: path}); err != nil {
		return fmt.Errorf("remove %s as the app's ids: %w", path, err)
	}
	return nil
}

// GiveTree hands every file under path that this process's uid and gid
// own to the dyno user of the app's ids (toApp: slice start + DynoUID,
// the uid its builds and dynos run as), or every file the app's ids own
// back to this process's: what a build sandbox with the app's ids
// (Sandbox.IDs) needs around its writable binds, so that the build can
// write them and the manager can pack and remove what it made. It runs a
// helper that maps r as a dyno's init does; this process may not chown
// to or from the app's ids itself.
func GiveTree(path string, r IDRange, toApp bool) error {
	return GiveTrees([]string{path}, r, toApp)
}

// GiveTrees is GiveTree for several trees at once, with one helper: each
// costs a fork, two execs of the setuid newuidmap and newgidmap and one
// of dyno, which a build handing over half a dozen folders would pay
// for each.
func GiveTrees(paths []string, r IDRange, toApp bool) error {
	if len(paths) == 0 {
		return nil
	}
	if err := runHelper(r, Config{Chown: &ChownConfig{Paths: paths, ToApp: toApp}}); err != nil {
		what := "give " + strings.Join(paths, ", ") + " to the app's ids"
		if !toApp {
			what = "take " + strings.Join(paths, ", ") + " back from the app's ids"
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// runHelper starts `dyno init --mapped` with r mapped, hands it cfg (a
// Remove or a Chown) and waits for its answer.
func runHelper(r IDRange, cfg Config) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "dyno-control")
	child := os.NewFile(uintptr(fds[1]), "dyno-control")
	defer parent.Close()
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{"dyno", "init", "--mapped"},
		Env:         []string{},
		ExtraFiles:  []*os.File{child},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Cloneflags: unix.CLONE_NEWUSER, Pdeathsig: syscall.SIGKILL},
	}
	err = cmd.Start()
	child.Close()
	if err != nil {
		return diagnoseNamespaces(err)
	}
	defer cmd.Wait()
	if err := mapIDs(cmd.Process.Pid, r); err != nil {
		cmd.Process.Kill()
		return err
	}
	enc := json.NewEncoder(parent)
	if err := enc.Encode(Message{Type: msgMapped}); err != nil {
		cmd.Process.Kill()
		return err
	}
	if err := enc.Encode(cfg); err != nil {
		cmd.Process.Kill()
		return err
	}
	var m Message
	if err := json.NewDecoder(parent).Decode(&m); err != nil {
		return fmt.Errorf("helper exited: %w", err)
	}
	if m.Type != msgStarted {
		return errors.New(m.Error)
	}
	return nil
}

// prepareSandbox makes the dyno's state dir and sets the clone flags.
func (l *launched) prepareSandbox(name string, sb *Sandbox) (*os.File, error) {
	l.id = newID()
	dirName := l.id[:8]
	if name != "" {
		dirName = name + "-" + dirName
	}
	dir, err := makeDynoDir(sb.StateDir, dirName)
	if err != nil {
		return nil, err
	}
	l.dir = dir
	if sb.IDs != nil {
		b, _ := json.Marshal(sb.IDs)
		if err := os.WriteFile(filepath.Join(dir.path, idsFile), b, 0o600); err != nil {
			dir.remove()
			l.dir = nil
			return nil, fmt.Errorf("create dyno dir: %w", err)
		}
	}
	cmd := l.cmd
	cmd.ExtraFiles = append(cmd.ExtraFiles, dir.lock) // lockFD
	attr := cmd.SysProcAttr
	// All namespaces at clone time, never unshare from Go: namespace
	// entry is per thread and the Go runtime moves goroutines between
	// threads; a freshly exec'd init starts with every thread inside.
	attr.Cloneflags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	if sb.IDs == nil {
		// The one id this process may map is its own: it is the dyno
		// user inside (user.go), whom init and the app both run as.
		// An execve as a uid other than 0 would leave init none of the
		// capabilities it needs to mount; it keeps them as ambient
		// ones (capabilities(7)), which it clears, with the rest,
		// before the app runs (dropPrivileges). The new namespace
		// starts with a full bounding set, so this holds under a
		// unit's CapabilityBoundingSet or a container's defaults too.
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: DynoUID, HostID: os.Getuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: DynoGID, HostID: os.Getgid(), Size: 1}}
		// An unprivileged gid map needs setgroups denied first
		// (user_namespaces(7)).
		attr.GidMappingsEnableSetgroups = false
		caps, err := allCaps()
		if err != nil {
			dir.remove()
			l.dir = nil
			return nil, err
		}
		attr.AmbientCaps = caps
	}
	// Else newuidmap and newgidmap write the maps once init runs
	// (launch): Go can only write maps this process may write itself.
	if sb.Cgroup == nil {
		return nil, nil
	}
	cgroupDir, err := sb.Cgroup.Open()
	if err != nil {
		dir.remove()
		l.dir = nil
		return nil, err
	}
	// Born in its leaf (clone3 CLONE_INTO_CGROUP, Linux 5.7): never
	// accounted anywhere else, and no cgroup.procs write.
	attr.UseCgroupFD = true
	attr.CgroupFD = int(cgroupDir.Fd())
	return cgroupDir, nil
}

// sandboxConfig is the child's part of spec's sandbox, in l's dyno dir.
func sandboxConfig(spec Spec, l *launched) *SandboxConfig {
	sb := spec.Sandbox
	hostname := sb.Hostname
	if hostname == "" {
		hostname = l.id
	}
	cfg := &SandboxConfig{
		Root:      filepath.Join(l.dir.path, "root"),
		Lower:     sb.Lower,
		Binds:     sb.Binds,
		Upper:     filepath.Join(l.dir.path, "upper"),
		Work:      filepath.Join(l.dir.path, "work"),
		ReadOnly:  sb.ReadOnly,
		Hostname:  hostname,
		TmpSize:   sb.TmpSize,
		CopyLower: sb.CopyLower,
		PTY:       spec.TTY,
		Rows:      spec.Rows,
		Cols:      spec.Cols,
		Seccomp:   sb.Seccomp,
	}
	if sb.IDs != nil {
		cfg.IDs = sb.IDs.Size
	}
	if cfg.ReadOnly == nil {
		cfg.ReadOnly = DefaultReadOnly
	}
	if cfg.TmpSize == 0 {
		cfg.TmpSize = defaultTmpSize
	}
	return cfg
}

// handshake sends the config and reads until the app runs or fails. The
// reads go through recvmsg, so a PTY master passed with SCM_RIGHTS is
// received rather than dropped.
func (d *Dyno) handshake(cfg Config, passFDs []int) error {
	r := &controlReader{fd: int(d.ctl.Fd())}
	var err error
	if len(passFDs) == 0 {
		err = d.enc.Encode(cfg)
	} else {
		var msg []byte
		if msg, err = json.Marshal(cfg); err == nil {
			err = unix.Sendmsg(r.fd, append(msg, '\n'), unix.UnixRights(passFDs...), nil, 0)
		}
	}
	dec := json.NewDecoder(r)
	for err == nil {
		var m Message
		if err = dec.Decode(&m); err != nil {
			break
		}
		switch m.Type {
		case msgWarning:
			d.warnings = append(d.warnings, m.Error)
			continue
		case msgPTY:
			fd, ok := r.takeFD()
			if !ok {
				err = errors.New("init sent no pty master")
				break
			}
			d.pty = os.NewFile(uintptr(fd), "pty-master")
			continue
		case msgStarted:
			d.pid = m.Pid
			r.closeFDs()
			return nil
		case msgError:
			err = errors.New(m.Error)
		default:
			err = fmt.Errorf("init answered %q, want %q", m.Type, msgStarted)
		}
	}
	r.closeFDs()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("init exited during set-up")
	}
	d.Kill()
	d.Wait()
	if d.pty != nil {
		d.pty.Close()
	}
	return err
}

// Warnings are what init reported falling back on (overlay refused).
func (d *Dyno) Warnings() []string { return d.warnings }

// PTY is the master of the terminal made inside a sandboxed dyno for a
// TTY spec; nil otherwise.
func (d *Dyno) PTY() *os.File { return d.pty }

// Pid is the app's main process (not init's).
func (d *Dyno) Pid() int { return d.pid }

// Spawner is the spawner that started d.
func (d *Dyno) Spawner() *Spawner { return d.sp }

// InitPid is the dyno's init.
func (d *Dyno) InitPid() int { return d.cmd.Process.Pid }

// Signal sends sig to every process of the dyno, as Heroku's dyno manager
// does on shutdown.
func (d *Dyno) Signal(sig syscall.Signal) error {
	return d.send(signalRecord(sig))
}

// Kill SIGKILLs every process of the dyno. If init cannot be told, it is
// killed itself; its orphans then come to the spawner (a subreaper) and
// SweepOrphans, run by Wait, kills them.
func (d *Dyno) Kill() error {
	if err := d.send(killRecord()); err != nil {
		if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("kill dyno init %d: %w", d.cmd.Process.Pid, err)
		}
	}
	return nil
}

// send writes a record (protocol.go) to init.
func (d *Dyno) send(rec []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctl == nil {
		return os.ErrProcessDone
	}
	_, err := d.ctl.Write(rec)
	return err
}

// Wait waits for the dyno to end and returns the app's status: its exit
// code, or 128+N when signal N killed it.
func (d *Dyno) Wait() (int, error) {
	awaitExit(d.cmd.Process.Pid)
	err := d.cmd.Wait()
	d.sp.mu.Lock()
	delete(d.sp.live, d.cmd.Process.Pid)
	d.sp.mu.Unlock()
	d.mu.Lock()
	if d.ctl != nil {
		d.ctl.Close()
		d.ctl = nil
	}
	d.mu.Unlock()

	// A sandboxed init is PID 1 of its pid namespace: when it dies the
	// kernel kills everything in the namespace (pid_namespaces(7)), so
	// nothing of it can be left to sweep.
	plain := d.dir == nil
	if d.dir != nil {
		// Removing the upper layer costs about a millisecond per dyno;
		// the exit status need not wait for it. WaitCleanup does.
		dir := d.dir
		d.dir = nil
		d.sp.cleanup.Add(1)
		go func() {
			defer d.sp.cleanup.Done()
			dir.remove()
		}()
	}
	status := d.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if status.Signaled() && plain {
		// init itself was killed: what it left behind is ours now.
		d.sp.SweepOrphans(d.pid)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return -1, fmt.Errorf("wait for dyno init %d: %w", d.cmd.Process.Pid, err)
	}
	return exitCode(unix.WaitStatus(status)), nil
}

// SweepOrphans kills and reaps what is left of a plain dyno whose init
// was killed: the processes of session, the session init started the
// app in (setsid; the app's main process leads it, so its id is the
// main pid). When init dies they are re-parented to this process, a
// subreaper, so they are found as its children in that session, and
// killed with everything below them.
//
// Only those: this process has children of its own too (git, buildpack
// commands, the inits of this and of other Spawners), and none of them
// is in that session, since a session id is the pid of a process that
// called setsid and a pid is not reused while its session has members.
// The main process, killed by PDEATHSIG when init died and re-parented
// here as well, is reaped last, so that its pid, the session's id,
// stays taken while the sweep runs. A process that left the session
// (setsid) is not found; a sandboxed dyno has no such gap, as its pid
// namespace dies with its init.
func (sp *Spawner) SweepOrphans(session int) {
	if session <= 0 {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	self := os.Getpid()
	kill := func(pid int) {
		// Its own descendants first, while they are still below it.
		if kids, err := descendants(pid); err == nil {
			for _, k := range kids {
				unix.Kill(k, unix.SIGKILL)
			}
		}
		unix.Kill(pid, unix.SIGKILL)
	}
	leader := false
	if p, ok := readStat(session, make([]byte, 512)); ok && p.ppid == self && p.sid == session {
		leader = true
		kill(session)
		// Wait for it to die without reaping it (WNOWAIT).
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, session, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
	}
	for range 100 {
		procs, err := readProcs()
		if err != nil {
			break
		}
		var strays []int
		for _, p := range procs {
			if p.ppid == self && p.sid == session && p.pid != session {
				strays = append(strays, p.pid)
			}
		}
		if len(strays) == 0 {
			break
		}
		for _, pid := range strays {
			kill(pid)
		}
		for _, pid := range strays {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
		}
	}
	if leader {
		var ws unix.WaitStatus
		unix.Wait4(session, &ws, 0, nil)
	}
}
