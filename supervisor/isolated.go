package supervisor

import (
	"strings"

	"github.com/dyno-run/dyno/isolate"
)

// IsolatedRunner runs each dyno in its own sandbox (isolate.Sandbox): new
// namespaces, /app an overlay of Lower with a fresh upper layer, no
// capabilities.
type IsolatedRunner struct {
	Spawner   *isolate.Spawner
	Lower     string // the folder every dyno sees as /app
	StateDir  string // where dynos' directories live while they run
	CopyLower bool   // the host refuses overlay (isolate.Spawner.Probe)
	Seccomp   bool
}

// Start implements Runner.
func (r IsolatedRunner) Start(spec DynoSpec) (Process, error) {
	return r.Spawner.Start(isolate.Spec{
		Name:   spec.Name,
		Argv:   isolate.ShellArgv(spec.Command),
		Dir:    "/app",
		Env:    spec.Env,
		Stdout: spec.Output,
		Stderr: spec.Output,
		Sandbox: &isolate.Sandbox{
			Lower:     r.Lower,
			StateDir:  r.StateDir,
			CopyLower: r.CopyLower,
			Seccomp:   r.Seccomp,
		},
	})
}

// SandboxEnv is env as an isolated dyno sees it: HOME is /app, as on
// Heroku.
func SandboxEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "HOME=/app")
}
