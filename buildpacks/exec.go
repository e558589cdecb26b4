package buildpacks

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// An Executor runs one buildpack command. It is the seam where dyno
// plugs in a sandbox: namespaces, the host's toolchains read-only, only
// the Writable directories writable, the network allowed.
//
// Run returns nil when the command exited 0. A command that ran and
// exited non-zero must be reported with an error that has an
// ExitCode() int method, as *exec.ExitError has: that is bin/detect's
// "does not apply", where any other error means it could not run. When
// ctx is done, Run must kill the command and everything it started.
type Executor interface {
	Run(ctx context.Context, c Command) error
}

// A Handover is an Executor whose commands run as ids other than this
// process's: a build sandbox with the app's own ids (SandboxExecutor with
// IDs). The folders a build makes for its commands (BUILD_DIR, HOME,
// TMPDIR, ENV_DIR, each buildpack's copy; CACHE_DIR is the caller's to
// hand over, see Build.CacheDir) are handed over before
// they run, and handed back before this process reads the Procfile,
// packs the slug or removes what they left: files the commands made
// belong to their ids, which this process may neither read nor remove.
type Handover interface {
	Executor
	// HandOver hands the trees at dirs, which this process made, to
	// the commands' ids, and says whether it did: false means they are
	// this process's own, and there is nothing to hand over.
	HandOver(dirs ...string) (bool, error)
	// HandBack hands every tree HandOver handed over back to this
	// process's ids, what the commands made in them included. It may be
	// called more than once.
	HandBack() error
}

// A Command is one run of a buildpack's bin/detect, bin/compile or
// bin/release.
type Command struct {
	Argv []string
	Dir  string   // working directory: the buildpack's own directory (some buildpacks untar vendored files by relative path)
	Env  []string // the whole environment; nothing else is inherited
	// Stdout and Stderr may be the same writer, for output interleaved
	// as it was written.
	Stdout, Stderr io.Writer
	// Writable lists the directories the command may write: for
	// compile, BUILD_DIR, CACHE_DIR, the buildpack's directory, its HOME
	// and its TMPDIR; for detect and release, HOME and TMPDIR.
	Writable []string
	// Readable lists directories outside Writable that the command must
	// be able to read, which a sandbox with a private /tmp would
	// otherwise hide: the buildpack's directory for detect and release,
	// BUILD_DIR for detect and release, ENV_DIR for compile, and the
	// directories of earlier buildpacks, whose export files are sourced.
	Readable []string
}

// PlainExecutor runs commands as ordinary subprocesses, each in its own
// process group. When ctx is done the whole group is killed, and so is
// whatever the command left running in it when it exited: a build must
// leave no processes behind.
type PlainExecutor struct{}

// waitDelay is how long Wait waits for output after the command exited:
// a process that left the group (setsid) can hold the output pipe open.
const waitDelay = 5 * time.Second

// groupGuard is the script of the bash that leads each command's process
// group: on SIGHUP (its Pdeathsig) it kills the group, itself included;
// otherwise it waits for the command and exits with its status (128+n
// for a command killed by signal n, as a shell says it). The command
// runs in the background so that the trap can run while it does; bash
// ignores SIGINT and SIGQUIT in background commands, which trap - undoes
// (a signal ignored when dyno started stays ignored).
const groupGuard = `trap 'kill -KILL 0' HUP
(trap - INT QUIT; exec "$@") &
wait $!`

// Run runs c and waits for it. A command that exits non-zero returns an
// *exec.ExitError.
func (PlainExecutor) Run(ctx context.Context, c Command) error {
	if len(c.Argv) == 0 {
		return errors.New("run buildpack command: empty argv")
	}
	// The command runs under a guard, a bash that leads its process
	// group: when dyno dies, even of SIGKILL, the kernel sends the guard
	// SIGHUP (Pdeathsig, below) and the guard kills the whole group
	// (kill 0), which no process can do for itself once it is dead.
	// Otherwise what the command started would go on writing into a
	// scratch folder that the next build's sweep removes from under it.
	// The trap is set before the command starts, so a dyno that dies
	// earlier leaves nothing: SIGHUP's default action ends the guard.
	argv := append([]string{"bash", "-c", groupGuard, "dyno-build-guard"}, c.Argv...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	// A nil Env would inherit dyno's whole environment.
	cmd.Env = append([]string{}, c.Env...)
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGHUP}
	cmd.WaitDelay = waitDelay

	// The group id is the leader's pid, which can be reused once the
	// leader is reaped. So the group is killed only while the leader is
	// unreaped: exited tells Cancel when that is no longer sure.
	var mu sync.Mutex
	exited := false
	cmd.Cancel = func() error {
		mu.Lock()
		defer mu.Unlock()
		if exited {
			return os.ErrProcessDone
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// The kernel sends Pdeathsig when the thread that forked the child
	// exits, not the process (prctl(2): "the parent thread"). Go ends a
	// thread when a goroutine locked to it exits, which code that
	// changes a thread's namespaces does on purpose; so the forking
	// thread stays this goroutine's, which does not exit, until the
	// command has been waited for.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	// Learn that the leader exited without reaping it (WNOWAIT), kill
	// what it left in its group, then let Wait reap it.
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	mu.Lock()
	exited = true
	syscall.Kill(-pid, syscall.SIGKILL)
	mu.Unlock()

	err := cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command itself succeeded; only a process that escaped
		// its group still held the output open.
		return nil
	}
	return err
}
