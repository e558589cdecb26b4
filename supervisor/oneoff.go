package supervisor

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/dyno-run/dyno/supervisor/logmux"
)

// RunOneOff runs a one-off dyno (release.N for a release phase, run.N
// detached) to its end, with Heroku's lines: the command, starting to
// up, the exit status, up to complete. Its output goes through logs. When
// ctx is done the dyno is stopped as any other: SIGTERM to all its
// processes, SIGKILL after grace. It returns the exit status.
func RunOneOff(ctx context.Context, r Runner, logs *logmux.Mux, spec DynoSpec, grace time.Duration) (int, error) {
	name := spec.Name
	src, err := logs.Source(name)
	if err != nil {
		return -1, err
	}
	logs.System(name, fmt.Sprintf("Starting process with command `%s`", expandEnv(spec.Command, spec.Env)))
	spec.Output = src.Writer()
	p, err := r.Start(spec)
	src.CloseWriter()
	if err != nil {
		src.Close()
		<-src.Done()
		return -1, err
	}
	logs.System(name, "State changed from starting to up")
	exited := make(chan int, 1)
	go func() {
		st, _ := p.Wait()
		exited <- st
	}()
	var status int
	select {
	case status = <-exited:
	case <-ctx.Done():
		logs.System(name, "Stopping all processes with SIGTERM")
		p.Signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case status = <-exited:
		case <-t.C:
			logs.System(name, fmt.Sprintf("Error R12 (Exit timeout) -> Process failed to exit within %s of SIGTERM", seconds(grace)))
			logs.System(name, "Stopping process with SIGKILL")
			p.Kill()
			status = <-exited
		}
		t.Stop()
	}
	select {
	case <-src.Done():
	case <-time.After(2 * time.Second):
		src.Close()
	}
	logs.System(name, fmt.Sprintf("Process exited with status %d", status))
	logs.System(name, "State changed from up to complete")
	return status, nil
}
