package isolate

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyno-run/dyno/internal/memtrim"
)

// Init is the child side of a dyno: the process `dyno init NAME` that
// Start re-executes. It reads its Config from fd 3, builds the sandbox
// when asked, starts the app, stays resident as the root of the dyno's
// process tree and exits with the app's status. It never returns.
func Init() {
	os.Exit(runInit())
}

// initExitProtocol is init's status when it cannot even read its
// configuration; 125 as in env(1) and container runtimes: "the runner
// failed", not the app.
const initExitProtocol = 125

type initState struct {
	self     int
	pidNS    bool // init is PID 1 of the dyno's own pid namespace
	mainPid  int
	status   int
	mainDone bool
}

func runInit() int {
	if len(os.Args) > 2 {
		switch os.Args[2] {
		case "--mapped":
			return waitMapped()
		case "--exec":
			return execStage(os.Args[3:])
		}
	}
	var fst unix.Stat_t
	if unix.Fstat(controlFD, &fst) != nil {
		fmt.Fprintln(os.Stderr, "dyno init: no control socket on fd 3; init is started by dyno, not by hand")
		return initExitProtocol
	}
	// The app must not inherit the control socket (it could talk to the
	// manager) nor the dyno's lock.
	unix.CloseOnExec(controlFD)
	unix.CloseOnExec(lockFD)
	ctl := os.NewFile(controlFD, "control")
	// recvmsg, not read: the config may carry the app's stdio as
	// SCM_RIGHTS, which read(2) would drop.
	in := &controlReader{fd: controlFD}
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(ctl)
	fail := func(status int, format string, args ...any) int {
		enc.Encode(Message{Type: msgError, Error: fmt.Sprintf(format, args...)})
		return status
	}
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "dyno init: read config from fd %d: %v\n", controlFD, err)
		return initExitProtocol
	}
	if c := cfg.Chown; c != nil {
		for _, p := range c.Paths {
			if err := giveTree(p, c.ToApp); err != nil {
				return fail(1, "%v", err)
			}
		}
		enc.Encode(Message{Type: msgStarted})
		return 0
	}
	if cfg.Remove != "" {
		if err := os.RemoveAll(cfg.Remove); err != nil {
			return fail(1, "remove %s: %v", cfg.Remove, err)
		}
		enc.Encode(Message{Type: msgStarted})
		return 0
	}
	prepared := false
	if cfg.Prepare {
		// A warm init: the common part of the root now, the rest once a
		// dyno takes it. An error waits for that dyno, who reports it.
		var perr error
		if cfg.Sandbox == nil {
			perr = fmt.Errorf("prepare without a sandbox")
		} else {
			perr = prepareRoot(cfg.Sandbox)
		}
		cfg = Config{}
		idleTrim(controlFD)
		if err := dec.Decode(&cfg); err != nil {
			return initExitProtocol
		}
		if perr != nil {
			return fail(initExitProtocol, "set up dyno %s: %v", cfg.Name, perr)
		}
		prepared = true
	}
	if len(cfg.Argv) == 0 {
		return fail(initExitProtocol, "empty command")
	}
	if cfg.Stdio {
		// A warm init: its stdio comes now (Spawner.SetPrewarm).
		for target := range 3 {
			fd, ok := in.takeFD()
			if !ok {
				return fail(initExitProtocol, "config without the stdio it announced")
			}
			if err := unix.Dup3(fd, target, 0); err != nil {
				return fail(initExitProtocol, "dup stdio: %v", err)
			}
			unix.Close(fd)
		}
	}
	in.closeFDs()
	// The dyno's name, for ps inside and out (a warm init was started
	// before it was known, so its command line is only "dyno init").
	os.WriteFile("/proc/self/comm", []byte(cfg.Name), 0)
	// Not dumpable: the app, same uid, cannot ptrace init or open
	// /proc/1/exe, the route back to the host's dyno binary
	// (CVE-2019-5736). execve resets it for the app itself.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// Orphans re-parent to the nearest subreaper ancestor instead of the
	// host's init (PR_SET_CHILD_SUBREAPER), so a daemon that double-forks
	// and calls setsid stays in this tree. As PID 1 of a pid namespace
	// init is their reaper anyway.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(initExitProtocol, "prctl PR_SET_CHILD_SUBREAPER: %v", err)
	}
	st := &initState{self: os.Getpid()}
	st.pidNS = st.self == 1

	// Listen before starting the app so no SIGCHLD is lost. As PID 1,
	// only signals with a handler are delivered at all (pid_namespaces(7)).
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP,
		unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)

	// What init does per thread (capabilities, no_new_privs, seccomp) and
	// the fork of the app happen on one locked thread, so the app
	// inherits exactly that thread's state. It is unlocked once the app
	// runs: a goroutine locked for init's whole life costs a thread
	// hand-off at every wake-up, and Go never retires an unlocked thread,
	// so the app's PR_SET_PDEATHSIG, which fires when the *thread* that
	// forked it exits (prctl(2)), still fires only when init dies.
	runtime.LockOSThread()
	stdio := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	tty := cfg.TTY
	mapped := cfg.Sandbox != nil && cfg.Sandbox.IDs > 0
	upperFD := -1 // the upper dir, for the resident init to empty
	if sb := cfg.Sandbox; sb != nil {
		var warning string
		var err error
		if mapped {
			// The manager's supplementary groups would follow the app
			// into its own ids; newgidmap leaves setgroups allowed.
			if err := syscall.Setgroups([]int{}); err != nil {
				return fail(initExitProtocol, "set up dyno %s: drop supplementary groups: %v", cfg.Name, err)
			}
			upper, err := os.OpenRoot(sb.Upper)
			if err != nil {
				return fail(initExitProtocol, "set up dyno %s: %v", cfg.Name, err)
			}
			// The app's files in the upper layer are its own ids', which
			// the manager cannot remove: init, who can, empties it.
			defer emptyDir(upper)
			upperFD, err = unix.Open(sb.Upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fail(initExitProtocol, "set up dyno %s: open %s: %v", cfg.Name, sb.Upper, err)
			}
		}
		if prepared {
			warning, err = finishRoot(sb)
		} else {
			warning, err = buildRoot(sb)
		}
		if err != nil {
			return fail(initExitProtocol, "set up dyno %s: %v", cfg.Name, err)
		}
		if warning != "" {
			enc.Encode(Message{Type: msgWarning, Error: warning})
		}
		if sb.PTY {
			slave, err := sendPTY(sb, mapped)
			if err != nil {
				return fail(initExitProtocol, "make a terminal for dyno %s: %v", cfg.Name, err)
			}
			stdio = []*os.File{slave, slave, slave}
			tty = true
		}
		// A mapped dyno's exec stage does this, in the app's own user
		// namespace: here init needs its capabilities to map that one.
		if !mapped {
			// Init runs as the dyno user already (prepareSandbox).
			if err := dropPrivileges(); err != nil {
				return fail(initExitProtocol, "drop privileges in dyno %s: %v", cfg.Name, err)
			}
			if sb.Seccomp {
				if err := loadSeccomp(); err != nil {
					return fail(initExitProtocol, "load seccomp filter in dyno %s: %v", cfg.Name, err)
				}
			}
		}
	}

	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		return fail(127, "%v", err)
	}
	execPath, argv := path, cfg.Argv
	sys := &syscall.SysProcAttr{
		// Its own session: no job-control signals from the user's
		// terminal, and no TIOCSTI into it (tty_ioctl(4)).
		Setsid:    true,
		Setctty:   tty,
		Ctty:      0,
		Pdeathsig: syscall.SIGKILL,
	}
	if mapped {
		// The app runs as the dyno user of a nested user namespace that
		// maps 0 to IDs-1 onto 1 to IDs of init's, which newuidmap
		// mapped to the app's slice of host ids: a whole range, so the
		// files of other ids (nobody's, say) show as theirs. Init's own
		// 0 (the manager's uid) is not mapped there. The exec stage
		// starts as that namespace's 0, becomes the dyno user keeping
		// only the capabilities chown and privilege drops need within
		// the range (appCaps), and execs the app.
		seccomp := "0"
		if cfg.Sandbox.Seccomp {
			seccomp = "1"
		}
		execPath = "/proc/self/exe"
		argv = append([]string{"dyno", "init", "--exec", seccomp, path}, cfg.Argv...)
		sys.Cloneflags = unix.CLONE_NEWUSER
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1, Size: cfg.Sandbox.IDs}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1, Size: cfg.Sandbox.IDs}}
		sys.GidMappingsEnableSetgroups = true
		// The child starts as init's uid, which that namespace does not
		// map: it becomes the namespace's 0 before its execve, so the
		// exec stage holds the capabilities it then limits.
		sys.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	resident, herr := prepareHandOver(&cfg, dec)
	// syscall.ForkExec, not os.StartProcess: children are reaped with
	// wait4(-1) below, orphans included, so an os.Process handle would
	// never be waited on (two reapers steal each other's statuses), and
	// os.StartProcess forks a throwaway child first to probe for pidfd
	// support.
	pid, err := syscall.ForkExec(execPath, argv, &syscall.ProcAttr{
		Dir:   cfg.Dir,
		Env:   cfg.Env,
		Files: []uintptr{stdio[0].Fd(), stdio[1].Fd(), stdio[2].Fd()},
		Sys:   sys,
	})
	if err != nil {
		return fail(127, "start %s: %v", cfg.Argv[0], err)
	}
	st.mainPid = pid
	if tty {
		stdio[0].Close()
	}
	// "started" goes out now, as soon as the app is forked, so that the
	// manager says the dyno is up (heroku run's "Running ... up") before
	// the app's first output, as it did before the handover; the
	// manager's records wait in the socket for whichever init reads
	// them next.
	if err := enc.Encode(Message{Type: msgStarted, Pid: st.mainPid}); err != nil {
		st.killAll()
		return 128 + int(unix.SIGKILL)
	}
	// Hand the dyno to the resident init (handover.go). Still on the
	// thread that forked the app. The manager reads no more messages
	// after "started": a failed handover is said on the dyno's own
	// stderr, its log, and the Go init stays.
	if herr == nil {
		herr = handOver(resident, cfg.Name, pid, cfg.Sandbox != nil, upperFD)
		unix.Close(resident)
	}
	if herr != nil && herr != errNoResident {
		fmt.Fprintf(os.Stderr, "dyno init: the Go init stays resident in dyno %s: %v\n", cfg.Name, herr)
	}
	runtime.UnlockOSThread()
	if upperFD >= 0 {
		unix.Close(upperFD)
	}

	// The parent's records (protocol.go), read on, after what the JSON
	// decoder read ahead: at most the end of the config's line.
	ctlMsgs := make(chan ctlRecord)
	go func() {
		defer close(ctlMsgs)
		r := bufio.NewReader(io.MultiReader(dec.Buffered(), in))
		for {
			rec, err := readRecord(r)
			if err != nil {
				return
			}
			ctlMsgs <- rec
		}
	}()

	for {
		select {
		case s := <-sigs:
			if s == unix.SIGCHLD {
				st.reap()
				if st.mainDone {
					// The dyno ends with its main process, as on Heroku:
					// whatever it left running goes with it.
					st.killAll()
					return st.status
				}
				continue
			}
			st.signalAll(s.(syscall.Signal))
		case m, ok := <-ctlMsgs:
			if !ok {
				// The manager is gone (it closed the socket or died):
				// nobody will stop this dyno later, so stop it now.
				st.killAll()
				return st.status
			}
			switch m.op {
			case ctlSignal:
				st.signalAll(m.sig)
			case ctlKill:
				st.killAll()
				return st.status
			}
		}
	}
}

// signalAll sends sig to every process of the dyno but init. As PID 1,
// kill(-1) is exactly that (kill(2)); otherwise init walks its subtree.
func (st *initState) signalAll(sig syscall.Signal) {
	if st.pidNS {
		unix.Kill(-1, sig)
		return
	}
	signalTree(st.self, sig)
}

// reap collects every exited child without blocking, records the main
// process's status, and reports whether any child is left.
func (st *initState) reap() (more bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil: // ECHILD: no child at all
			return false
		case pid == 0: // children, none exited yet
			return true
		}
		if pid == st.mainPid {
			st.mainDone = true
			st.status = exitCode(ws)
		}
	}
}

// killAll SIGKILLs every process of the dyno until none is left and all
// are reaped. It loops because a process may fork between the scan and
// the kill; a SIGKILLed process cannot fork again, so it converges.
// Every descendant re-parents to init (a subreaper, or PID 1) before its
// parent is reaped, so "no child left" means "nothing left".
func (st *initState) killAll() {
	// Reap first: when nothing is left, as after most exits, that spares
	// a walk of /proc.
	for st.reap() {
		st.signalAll(unix.SIGKILL)
		if !st.reap() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !st.mainDone {
		st.mainDone = true
		st.status = 128 + int(unix.SIGKILL)
	}
}

// exitCode is the shell's convention: the exit code, or 128+N for death
// by signal N.
func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}

// sendPTY makes a terminal in the dyno's own devpts, sizes it, sends its
// master to the manager and returns the slave for the app. Made inside,
// the terminal's TIOCSTI can reach only the dyno itself (runc's "new
// terminal" mode, not a host tty passed through).
//
// The terminal belongs to whoever opened /dev/ptmx (devpts(5)): init,
// which is the dyno user unless the dyno is mapped; a mapped init, its
// namespace's 0, gives it to the dyno user, who could otherwise not
// chmod it (mesg) nor would ssh, sudo or script accept it as theirs.
func sendPTY(sb *SandboxConfig, mapped bool) (*os.File, error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("pty number: %w", err)
	}
	if sb.Rows > 0 && sb.Cols > 0 {
		unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, &unix.Winsize{Row: sb.Rows, Col: sb.Cols})
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open pty slave: %w", err)
	}
	if mapped {
		if err := slave.Chown(appID, appID); err != nil {
			slave.Close()
			return nil, fmt.Errorf("give the pty to %s: %w", DynoUser, err)
		}
	}
	msg, _ := json.Marshal(Message{Type: msgPTY})
	if err := unix.Sendmsg(controlFD, append(msg, '\n'), unix.UnixRights(mfd), nil, 0); err != nil {
		slave.Close()
		return nil, fmt.Errorf("send pty master: %w", err)
	}
	return slave, nil
}

// lookPath finds name in the PATH of the app's environment, not init's.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found in PATH %s", name, path)
}

// waitMapped is a mapped dyno's init before its maps exist (protocol.go):
// it waits for the parent's word and re-executes itself, which gives it
// the capabilities of its namespace. It returns only on an error.
func waitMapped() int {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := unix.Read(controlFD, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			// The parent failed to map us and closed the socket.
			return initExitProtocol
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	var m Message
	if err := json.Unmarshal(line, &m); err != nil || m.Type != msgMapped {
		fmt.Fprintf(os.Stderr, "dyno init: got %q, want a %q message\n", line, msgMapped)
		return initExitProtocol
	}
	args := append([]string{os.Args[0], os.Args[1]}, os.Args[3:]...)
	err := unix.Exec("/proc/self/exe", args, os.Environ())
	fmt.Fprintf(os.Stderr, "dyno init: re-execute once mapped: %v\n", err)
	return initExitProtocol
}

// execStage is `dyno init --exec SECCOMP PATH ARGV...`: the first
// process of a mapped dyno's app, uid 0 of its own user namespace. It
// becomes the dyno user (DynoUID) with the few capabilities of that
// namespace an app with a whole uid range needs (appCaps) and drops the
// rest, sets no_new_privs, loads the seccomp filter when SECCOMP is 1,
// and execs the app, all on one locked thread, whose state the app
// inherits.
func execStage(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "dyno init --exec: want SECCOMP PATH ARGV...")
		return initExitProtocol
	}
	runtime.LockOSThread()
	if err := becomeDynoUser(); err != nil {
		fmt.Fprintf(os.Stderr, "dyno: drop privileges: %v\n", err)
		return initExitProtocol
	}
	if args[0] == "1" {
		if err := loadSeccomp(); err != nil {
			fmt.Fprintf(os.Stderr, "dyno: load seccomp filter: %v\n", err)
			return initExitProtocol
		}
	}
	err := unix.Exec(args[1], args[2:], os.Environ())
	fmt.Fprintf(os.Stderr, "dyno: start %s: %v\n", args[2], err)
	return 127
}

// emptyDir removes everything in dir, which init opened before
// pivot_root, once the app and all its processes are gone.
func emptyDir(dir *os.Root) {
	defer dir.Close()
	f, err := dir.Open(".")
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	for _, n := range names {
		dir.RemoveAll(n)
	}
}

// giveTree is GiveTree's helper side: in its namespace the manager's ids
// are 0 and the app's 1 and up, the dyno user appID. The walk and each
// chown are confined to path (os.Root, which resolves every name below
// it with openat and refuses to leave it): were a process of the app
// still alive in the tree (a build killed with SIGKILL, its sandbox not
// yet gone), a directory it swapped for a symlink after the walk listed
// it must not lead the chown to files outside, the manager's ledger
// say, which the helper may chown as well.
func giveTree(path string, toApp bool) error {
	root, err := os.OpenRoot(path)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no owner", filepath.Join(path, p))
		}
		give := func(id uint32) int {
			switch {
			case toApp && id == 0:
				return appID
			case !toApp && id >= 1:
				return 0
			}
			return int(id)
		}
		uid, gid := give(st.Uid), give(st.Gid)
		if uid == int(st.Uid) && gid == int(st.Gid) {
			return nil
		}
		err = root.Lchown(p, uid, gid)
		if errors.Is(err, unix.EPERM) {
			// Owned by ids this namespace does not map (they show as
			// the overflow id): neither the app's nor the manager's.
			return nil
		}
		return err
	})
}

// warmIdle is how long a warm init waits for its dyno before it gives
// back what its start-up mapped.
const warmIdle = time.Second

// idleTrim waits up to warmIdle for the dyno's config on the control
// socket and, if none comes, trims (memtrim.Trim): a warm init kept for
// the next start may wait for hours, and held 5.4 MB of PSS doing so,
// mostly the dyno binary's pages its start-up mapped. One taken at once,
// as in a formation's start, is not slowed.
func idleTrim(controlFD int) {
	fds := []unix.PollFd{{Fd: int32(controlFD), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(warmIdle/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if n == 0 && err == nil {
			memtrim.Trim()
		}
		return
	}
}
