package supervisor

import (
	"context"
	"time"

	"github.com/dyno-run/dyno/supervisor/logmux"
)

// RunOneOff runs a one-off dyno (release.N for a release phase, run.N
// detached) to its end, with Heroku's lines: the command, starting to
// up, the exit status, up to complete. Its output goes through logs. When
// ctx is done the dyno is stopped as any other: SIGTERM to all its
// processes, SIGKILL after grace. It returns the exit status.
func RunOneOff(ctx context.Context, r Runner, logs *logmux.Mux, spec DynoSpec, grace time.Duration) (int, error) {
	p, err := startProc(r, logs, spec, grace)
	if err != nil {
		return -1, err
	}
	logs.System(spec.Name, "State changed from starting to up")
	var status int
	select {
	case status = <-p.exited:
	case <-ctx.Done():
		p.term()
		status = <-p.exited
	}
	p.report(status)
	logs.System(spec.Name, "State changed from up to complete")
	return status, nil
}
