package isolate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
	initArgs []string

	mu   sync.Mutex
	live map[int]bool // pids of inits started and not yet waited for
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
	}, nil
}

// Dyno is a running dyno seen from the manager.
type Dyno struct {
	sp  *Spawner
	cmd *exec.Cmd
	pid int // the app's main process

	dir      *dynoDir // sandboxed dynos only
	pty      *os.File
	warnings []string

	mu  sync.Mutex
	ctl *os.File // nil after Wait
	enc *json.Encoder
}

// Start starts the dyno's init, hands it the spec and waits until the app
// is running or has failed to start.
func (sp *Spawner) Start(spec Spec) (*Dyno, error) {
	if len(spec.Argv) == 0 {
		return nil, fmt.Errorf("start dyno %s: empty command", spec.Name)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start dyno %s: socketpair: %w", spec.Name, err)
	}
	parent := os.NewFile(uintptr(fds[0]), "dyno-control")
	child := os.NewFile(uintptr(fds[1]), "dyno-control")
	defer child.Close()

	cfg := Config{Name: spec.Name, Argv: spec.Argv, Dir: spec.Dir, Env: spec.Env, TTY: spec.TTY}
	cmd := &exec.Cmd{
		Path:       sp.initPath,
		Args:       []string{"dyno", "init", spec.Name},
		Env:        []string{},
		ExtraFiles: []*os.File{child},
		// init leads its own session, so a Ctrl-C at the user's terminal
		// reaches the manager only, which stops dynos its own way.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	// Leave cmd.Stdin etc. nil when the spec's are nil: os/exec then
	// opens /dev/null. Assigning a nil *os.File would be a non-nil
	// io.Reader.
	if spec.Stdin != nil {
		cmd.Stdin = spec.Stdin
	}
	if spec.Stdout != nil {
		cmd.Stdout = spec.Stdout
	}
	if spec.Stderr != nil {
		cmd.Stderr = spec.Stderr
	}

	d := &Dyno{sp: sp, cmd: cmd, ctl: parent, enc: json.NewEncoder(parent)}
	var cgroupDir *os.File
	if sb := spec.Sandbox; sb != nil {
		if cfg.Sandbox, cgroupDir, err = d.prepareSandbox(spec, cmd); err != nil {
			parent.Close()
			return nil, fmt.Errorf("start dyno %s: %w", spec.Name, err)
		}
		if cgroupDir != nil {
			defer cgroupDir.Close()
		}
	}

	// Hold the lock across fork and registration so SweepOrphans never
	// mistakes a new init for an orphan.
	sp.mu.Lock()
	err = cmd.Start()
	if err != nil && cgroupDir != nil {
		// clone3 refused (ENOSYS on old kernels, EPERM under some
		// container seccomp profiles): Go has no fallback, so start
		// without CLONE_INTO_CGROUP and move init in below, before it
		// gets its config and starts anything.
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = false, 0
		cmd.Process, cmd.ProcessState = nil, nil
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
		if d.dir != nil {
			d.dir.remove()
		}
		if spec.Sandbox != nil {
			err = diagnoseNamespaces(err)
		}
		return nil, fmt.Errorf("start dyno %s: %w", spec.Name, err)
	}
	if err := d.handshake(cfg); err != nil {
		return nil, fmt.Errorf("start dyno %s: %w", spec.Name, err)
	}
	return d, nil
}

// prepareSandbox makes the dyno's state dir and sets the clone flags.
func (d *Dyno) prepareSandbox(spec Spec, cmd *exec.Cmd) (*SandboxConfig, *os.File, error) {
	sb := spec.Sandbox
	id := newID()
	dir, err := makeDynoDir(sb.StateDir, spec.Name+"-"+id[:8])
	if err != nil {
		return nil, nil, err
	}
	d.dir = dir
	hostname := sb.Hostname
	if hostname == "" {
		hostname = id
	}
	cfg := &SandboxConfig{
		Root:      filepath.Join(dir.path, "root"),
		Lower:     sb.Lower,
		Upper:     filepath.Join(dir.path, "upper"),
		Work:      filepath.Join(dir.path, "work"),
		ReadOnly:  sb.ReadOnly,
		Hostname:  hostname,
		TmpSize:   sb.TmpSize,
		CopyLower: sb.CopyLower,
		PTY:       spec.TTY,
		Rows:      spec.Rows,
		Cols:      spec.Cols,
		Seccomp:   sb.Seccomp,
	}
	if cfg.ReadOnly == nil {
		cfg.ReadOnly = DefaultReadOnly
	}
	if cfg.TmpSize == 0 {
		cfg.TmpSize = defaultTmpSize
	}
	if spec.TTY {
		// The app's terminal is made inside; init's own stdin is
		// /dev/null.
		cmd.Stdin = nil
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, dir.lock) // lockFD
	attr := cmd.SysProcAttr
	// All namespaces at clone time, never unshare from Go: namespace
	// entry is per thread and the Go runtime moves goroutines between
	// threads; a freshly exec'd init starts with every thread inside.
	attr.Cloneflags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	// uid 0 inside: execve as uid 0 keeps the namespace's capabilities,
	// which init needs to mount; it drops them all before the app runs.
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}}
	// An unprivileged gid map needs setgroups denied first
	// (user_namespaces(7)).
	attr.GidMappingsEnableSetgroups = false
	var cgroupDir *os.File
	if sb.Cgroup != nil {
		if cgroupDir, err = sb.Cgroup.Open(); err != nil {
			dir.remove()
			d.dir = nil
			return nil, nil, err
		}
		// Born in its leaf (clone3 CLONE_INTO_CGROUP, Linux 5.7): never
		// accounted anywhere else, and no cgroup.procs write.
		attr.UseCgroupFD = true
		attr.CgroupFD = int(cgroupDir.Fd())
	}
	return cfg, cgroupDir, nil
}

// handshake sends the config and reads until the app runs or fails. The
// reads go through recvmsg, so a PTY master passed with SCM_RIGHTS is
// received rather than dropped.
func (d *Dyno) handshake(cfg Config) error {
	r := &controlReader{fd: int(d.ctl.Fd())}
	err := d.enc.Encode(cfg)
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

// InitPid is the dyno's init.
func (d *Dyno) InitPid() int { return d.cmd.Process.Pid }

// Signal sends sig to every process of the dyno, as Heroku's dyno manager
// does on shutdown.
func (d *Dyno) Signal(sig syscall.Signal) error {
	return d.send(Message{Type: msgSignal, Signal: int(sig)})
}

// Kill SIGKILLs every process of the dyno. If init cannot be told, it is
// killed itself; its orphans then come to the spawner (a subreaper) and
// SweepOrphans, run by Wait, kills them.
func (d *Dyno) Kill() error {
	if err := d.send(Message{Type: msgKill}); err != nil {
		if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("kill dyno init %d: %w", d.cmd.Process.Pid, err)
		}
	}
	return nil
}

func (d *Dyno) send(m Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctl == nil {
		return os.ErrProcessDone
	}
	return d.enc.Encode(m)
}

// Wait waits for the dyno to end and returns the app's status: its exit
// code, or 128+N when signal N killed it.
func (d *Dyno) Wait() (int, error) {
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

	if d.dir != nil {
		d.dir.remove()
	}
	status := d.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if status.Signaled() {
		// init itself was killed: anything it left behind is ours now.
		d.sp.SweepOrphans()
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return -1, fmt.Errorf("wait for dyno init %d: %w", d.cmd.Process.Pid, err)
	}
	return exitCode(unix.WaitStatus(status)), nil
}

// SweepOrphans kills and reaps every child of this process that is not a
// live init: processes re-parented here because their dyno's init died
// without cleaning up (someone SIGKILLed it).
func (sp *Spawner) SweepOrphans() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	self := os.Getpid()
	for range 100 {
		procs, err := readProcs()
		if err != nil {
			return
		}
		var strays []int
		for _, p := range procs {
			if p.ppid == self && !sp.live[p.pid] {
				strays = append(strays, p.pid)
			}
		}
		if len(strays) == 0 {
			return
		}
		for _, pid := range strays {
			// Its own descendants first, while they are still below it.
			if kids, err := descendants(pid); err == nil {
				for _, k := range kids {
					unix.Kill(k, unix.SIGKILL)
				}
			}
			unix.Kill(pid, unix.SIGKILL)
		}
		for _, pid := range strays {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil)
		}
	}
}
