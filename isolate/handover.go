package isolate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Once the app runs, a dyno's init has nothing left to do but reap,
// forward signals and obey the parent's records for the dyno's whole
// life, which the Go runtime makes cost about 1.4 MB a dyno. So init
// hands over: it execs the resident init (isolate/resident/resident.c),
// a freestanding program of a few kilobytes embedded in this binary,
// which replaces it in place. The pid, the children, the open files (the
// control socket on fd 3, the dyno's lock on fd 4), the namespaces, the
// credentials of the calling thread, its seccomp filter and no_new_privs
// and the child subreaper attribute are kept across execve (execve(2),
// prctl(2)); the Go runtime's memory is gone. "started" was sent before
// (protocol.go): the parent's records wait in the socket for the
// resident init.
//
// It runs from a sealed memfd, never from a file on disk: dyno stays one
// file, nothing of the host's is exec'd from inside the sandbox, and
// /proc/PID/exe of a dyno's init is that memfd, which nobody can write
// (CVE-2019-5736 is about an init whose exe is the host's binary).

// errNoResident says there is no resident init for this GOARCH: the Go
// init stays resident, as it always did, and nobody is warned.
var errNoResident = errors.New("no resident init for this architecture")

// prepareHandOver returns a memfd holding the resident init, for
// handOver, or why init keeps its Go runtime: the config says so, or the
// JSON decoder read ahead more than the blanks ending the config's line,
// which the resident init would never see. Made before the app starts,
// it leaves handOver only the exec to do once the app runs.
func prepareHandOver(cfg *Config, dec *json.Decoder) (int, error) {
	if cfg.KeepGoInit || len(residentInit) == 0 {
		return -1, errNoResident
	}
	ahead, _ := io.ReadAll(dec.Buffered())
	if len(bytes.TrimSpace(ahead)) > 0 {
		return -1, fmt.Errorf("the parent sent %q before the dyno started", ahead)
	}
	return residentMemfd()
}

// handOver execs the resident init, from the memfd fd, in place of this
// process. It must run
// on the locked thread that forked the app: execve keeps only the
// calling thread, whose credentials, seccomp filter and no_new_privs the
// resident init then has, and the app's PR_SET_PDEATHSIG fires when the
// thread that forked it exits (prctl(2)), which this one, surviving the
// exec, never does. name is the dyno's, main the app's main pid, lock
// says fd 4 is the dyno's lock (a sandboxed dyno's) and upper, or -1,
// is an open directory the resident init empties at the end. It returns
// only if the exec failed, with everything as it was.
func handOver(fd int, name string, main int, lock bool, upper int) error {
	argv, err := syscall.SlicePtrFromStrings([]string{"dyno", "init", name})
	if err != nil {
		return err
	}
	env := []string{"DYNO_MAIN=" + strconv.Itoa(main)}
	if upper >= 0 {
		env = append(env, "DYNO_UPPER="+strconv.Itoa(upper))
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	empty, err := syscall.BytePtrFromString("")
	if err != nil {
		return err
	}

	// The resident init keeps these; the app was forked without them.
	keep := []int{controlFD}
	if lock {
		keep = append(keep, lockFD)
	}
	if upper >= 0 {
		keep = append(keep, upper)
	}
	for _, k := range keep {
		setCloexec(k, false)
	}
	// Signals that come during the exec stay pending for the resident
	// init instead of reaching a Go handler about to vanish: the signal
	// mask and pending signals are kept across execve (signal(7)). This
	// blocks them on this thread only; one that the kernel hands to
	// another of Go's threads meanwhile (microseconds) is lost, but for
	// SIGCHLD, whose child the resident init reaps on its first pass.
	var set, old unix.Sigset_t
	for _, s := range []unix.Signal{unix.SIGCHLD, unix.SIGTERM, unix.SIGINT,
		unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2} {
		set.Val[(s-1)/64] |= 1 << ((s - 1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return fmt.Errorf("block signals: %w", err)
	}

	// execveat(2) with AT_EMPTY_PATH runs the memfd itself, with no
	// path to resolve: no /proc needed.
	_, _, errno := unix.RawSyscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)

	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	for _, k := range keep {
		setCloexec(k, true)
	}
	return fmt.Errorf("exec the resident init: %w", errno)
}

// residentMemfd returns a memfd holding the resident init, sealed so
// that nothing can change it, and executable by this uid alone.
func residentMemfd() (int, error) {
	// MFD_EXEC (Linux 6.3) asks for an executable memfd where the
	// vm.memfd_noexec sysctl would make it non-executable by default;
	// older kernels refuse the flag, and their memfds are executable.
	fd, err := unix.MemfdCreate("dyno-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate("dyno-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	for b := residentInit; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("write the resident init: %w", err)
		}
		b = b[n:]
	}
	// Execute only, for this uid only. Unreadable, it also makes the
	// exec leave the process not dumpable from its first instruction
	// (would_dump in fs/exec.c), before the resident init says so
	// itself; a capable init (a mapped dyno's) reads it anyway, which
	// does no harm: its app runs as other ids and cannot ptrace it.
	if err := unix.Fchmod(fd, 0o100); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("chmod the resident init: %w", err)
	}
	const seals = unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("seal the resident init: %w", err)
	}
	return fd, nil
}

func setCloexec(fd int, on bool) {
	flag := 0
	if on {
		flag = unix.FD_CLOEXEC
	}
	unix.FcntlInt(uintptr(fd), unix.F_SETFD, flag)
}
