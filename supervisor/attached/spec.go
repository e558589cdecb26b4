package attached

import (
	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/supervisor"
)

// Spec is how the one-off c runs attached, in dyno run -a's terminal or
// on the daemon's rendezvous: in a sandbox of runner's over c's slug
// (c.Lower, else runner's) at c's size (one of runner.Sizes, else
// runner's), its command run as a release's are, through bash after
// .profile.d (isolate.ProfileArgv), so that a command line with ";" or
// "$?" (heroku run --exit-code's) means what it means in a shell. The
// caller gives the spec its terminal or stdio, and calls cleanup once
// the dyno has ended (its cgroup leaf goes then).
func Spec(runner supervisor.IsolatedRunner, c supervisor.DynoConfig) (spec isolate.Spec, cleanup func(), err error) {
	if c.Lower != "" {
		runner.Lower = c.Lower
	}
	if size, ok := runner.Sizes[c.Size]; ok {
		runner.Size = size
	}
	sb, leaf, err := runner.NewSandbox(c.Name)
	if err != nil {
		return isolate.Spec{}, func() {}, err
	}
	spec = isolate.Spec{Name: c.Name, Argv: isolate.ProfileArgv(c.Command), Dir: c.Dir, Env: c.Env, Sandbox: sb}
	return spec, func() { supervisor.RemoveLeaf(leaf) }, nil
}
