// Command dyno is Heroku's runtime model on one Linux machine: a Procfile
// runner for development and a dyno manager for production. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/dyno-run/dyno/isolate"
	"golang.org/x/sys/unix"
)

func main() {
	// A dyno's init is this same binary re-executed (isolate.Start). It
	// is dispatched before cobra so it starts fast and so the process
	// list inside a dyno reads `dyno init web.1`.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		isolate.Init()
	}
	err := newRootCommand().Execute()
	var exit exitStatus
	var died diedOf
	switch {
	case errors.As(err, &died):
		died.raise()
	case errors.As(err, &exit):
		os.Exit(int(exit))
	case err != nil:
		// Every command that needs the daemon names the command that
		// starts it on this machine (a user or a system unit).
		fmt.Fprintf(os.Stderr, "dyno: %v\n", daemonError(err))
		os.Exit(1)
	}
}

// exitStatus is returned by commands whose exit status is another
// process's (start, run): no message, just the status.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// diedOf is returned by commands that a signal stopped and that have
// cleaned up: main then dies of the same signal, so that the parent sees
// a death by signal (WIFSIGNALED), not an exit. A shell stops a loop
// when its command died of SIGINT, not when it exited 130.
type diedOf syscall.Signal

func (d diedOf) Error() string { return "stopped by " + unix.SignalName(syscall.Signal(d)) }

// raise kills the process with the signal, its default action restored
// (signal.Reset gives it back to the runtime, which dies of it as the
// default action does). It is sent to this thread, not to the process:
// a signal sent to the process goes to its main thread (the kernel's
// complete_signal tries the thread group leader first) and could arrive
// after the os.Exit below, while one sent to the calling thread is
// handled before tgkill returns to it. Should the signal not kill the
// process (dyno started with it ignored), it exits with the shell's
// status for it.
func (d diedOf) raise() {
	sig := syscall.Signal(d)
	signal.Reset(sig)
	runtime.LockOSThread()
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
	os.Exit(128 + int(sig))
}
