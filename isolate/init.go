package isolate

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Init is the child side of a dyno: the process `dyno init NAME` that
// Start re-executes. It reads its Config from fd 3, starts the app, stays
// resident as the root of the dyno's process tree and exits with the
// app's status. It never returns.
func Init() {
	// The app is started with PR_SET_PDEATHSIG, which fires when the
	// *thread* that forked it exits, not the process (prctl(2)). Pinning
	// the main goroutine keeps that thread alive as long as init is.
	runtime.LockOSThread()
	os.Exit(runInit())
}

// initExitProtocol is init's status when it cannot even read its
// configuration; 125 as in env(1) and container runtimes: "the runner
// failed", not the app.
const initExitProtocol = 125

type initState struct {
	self     int
	mainPid  int
	status   int
	mainDone bool
}

func runInit() int {
	ctl := os.NewFile(controlFD, "control")
	if ctl == nil {
		fmt.Fprintln(os.Stderr, "dyno init: no control socket on fd 3; init is started by dyno, not by hand")
		return initExitProtocol
	}
	dec := json.NewDecoder(ctl)
	enc := json.NewEncoder(ctl)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "dyno init: read config from fd %d: %v\n", controlFD, err)
		return initExitProtocol
	}
	if len(cfg.Argv) == 0 {
		enc.Encode(Message{Type: msgError, Error: "empty command"})
		return initExitProtocol
	}

	// Orphans re-parent to the nearest subreaper ancestor instead of the
	// host's init (prctl(2) PR_SET_CHILD_SUBREAPER), so a daemon that
	// double-forks and calls setsid stays in this tree.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		enc.Encode(Message{Type: msgError, Error: fmt.Sprintf("prctl PR_SET_CHILD_SUBREAPER: %v", err)})
		return initExitProtocol
	}

	// Listen before starting the app so no SIGCHLD is lost.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP,
		unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)

	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		enc.Encode(Message{Type: msgError, Error: err.Error()})
		return 127
	}
	proc, err := os.StartProcess(path, cfg.Argv, &os.ProcAttr{
		Dir:   cfg.Dir,
		Env:   cfg.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys: &syscall.SysProcAttr{
			// Its own session: no job-control signals from the user's
			// terminal, and no TIOCSTI into it (tty_ioctl(4)).
			Setsid:    true,
			Setctty:   cfg.TTY,
			Ctty:      0,
			Pdeathsig: syscall.SIGKILL,
		},
	})
	if err != nil {
		enc.Encode(Message{Type: msgError, Error: fmt.Sprintf("start %s: %v", cfg.Argv[0], err)})
		return 127
	}
	st := &initState{self: os.Getpid(), mainPid: proc.Pid}
	// Children are reaped with wait4(-1) below, orphans included; the
	// os.Process handle is never waited on.
	proc.Release()
	if err := enc.Encode(Message{Type: msgStarted, Pid: st.mainPid}); err != nil {
		st.killAll()
		return 137
	}

	ctlMsgs := make(chan Message)
	go func() {
		defer close(ctlMsgs)
		for {
			var m Message
			if err := dec.Decode(&m); err != nil {
				return
			}
			ctlMsgs <- m
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
			signalTree(st.self, s.(syscall.Signal))
		case m, ok := <-ctlMsgs:
			if !ok {
				// The manager is gone (it closed the socket or died):
				// nobody will stop this dyno later, so stop it now.
				st.killAll()
				if st.mainDone {
					return st.status
				}
				return 128 + int(unix.SIGKILL)
			}
			switch m.Type {
			case msgSignal:
				signalTree(st.self, unix.Signal(m.Signal))
			case msgKill:
				st.killAll()
				return st.status
			}
		}
	}
}

// reap collects every exited child without blocking and records the main
// process's status.
func (st *initState) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if pid == st.mainPid {
			st.mainDone = true
			st.status = exitCode(ws)
		}
	}
}

// killAll SIGKILLs every process below init until none is left, then
// reaps them. It loops because a process may fork between the scan and
// the kill; a SIGKILLed process cannot fork again, so it converges.
func (st *initState) killAll() {
	for {
		pids, err := descendants(st.self)
		if err != nil || len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
		st.reap()
		time.Sleep(time.Millisecond)
	}
	st.reap()
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
