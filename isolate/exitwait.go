package isolate

import (
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit returns once the child pid has exited, without reaping it,
// waiting through the runtime's poller instead of in a system call.
//
// os.Process.Wait blocks its thread in waitid(2), and the Go runtime
// keeps every thread it ever made for a blocking call: a supervisor of
// 50 dynos ran 50 threads, each with a signal stack and a g0 stack from
// the heap (2.4 MB of dyno start's 4.5 MB of anonymous memory), and the
// daemon 200. A pidfd opened with PIDFD_NONBLOCK polls readable once its
// process has exited (pidfd_open(2)), so it can be waited on as a pipe
// is; waitid(P_PIDFD, WNOWAIT|WNOHANG) then says it is done while
// leaving the zombie for Wait to reap. Where pidfds are missing (before
// Linux 5.10 for PIDFD_NONBLOCK) it returns at once and Wait blocks a
// thread as before.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	// Non-blocking, so os.NewFile registers it with the poller.
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		// With WNOHANG and nothing to report, the kernel writes a
		// zero si_signo; an exited child's is SIGCHLD.
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		return err != nil || info.Signo != 0
	})
}
