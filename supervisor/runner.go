package supervisor

import (
	"os"
	"syscall"

	"github.com/dyno-run/dyno/isolate"
)

// DynoSpec is what a Runner needs to start one dyno.
type DynoSpec struct {
	Name    string   // "web.1"
	Command string   // the Procfile command, run through a shell
	Dir     string   // working directory
	Env     []string // the whole environment
	Output  *os.File // stdout and stderr; nil means /dev/null
	Size    string   // the dyno size; "" means the Runner's default
	Lower   string   // the folder seen as /app; "" means the Runner's
}

// Runner starts dynos. The manager depends on nothing else about how a
// dyno runs, so tests fake it and `--isolate` swaps it.
type Runner interface {
	Start(spec DynoSpec) (Process, error)
}

// Process is a started dyno.
type Process interface {
	Pid() int
	// Signal sends sig to every process of the dyno.
	Signal(sig syscall.Signal) error
	// Kill SIGKILLs every process of the dyno.
	Kill() error
	// Wait returns the exit status: the code, or 128+N for signal N.
	Wait() (int, error)
}

// PlainRunner runs each dyno as a process tree under its own init,
// without namespaces (isolate.Spawner).
type PlainRunner struct {
	Spawner *isolate.Spawner
}

// Start implements Runner.
func (r PlainRunner) Start(spec DynoSpec) (Process, error) {
	return r.Spawner.Start(isolate.Spec{
		Name:   spec.Name,
		Argv:   isolate.ShellArgv(spec.Command),
		Dir:    spec.Dir,
		Env:    spec.Env,
		Stdout: spec.Output,
		Stderr: spec.Output,
	})
}
