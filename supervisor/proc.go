package supervisor

import (
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/dyno-run/dyno/internal/uuid"
	"github.com/dyno-run/dyno/supervisor/logmux"
)

// proc is one process of a dyno, from Heroku's line saying it starts to
// the line saying it exited. A dyno has one at a time, except while a
// replacement starts and its predecessor is still stopping; then each
// proc carries out its own stop sequence.
type proc struct {
	name    string
	id      string     // a UUID of this process, as Heroku's dyno ids in runtime metrics
	cfg     DynoConfig // what it was started with
	logs    *logmux.Mux
	grace   time.Duration // SIGTERM to SIGKILL
	p       Process
	src     *logmux.Source
	started time.Time
	exited  chan int // receives the exit status once

	mu     sync.Mutex
	ended  bool // Wait has returned: signals would reach nothing
	termed bool
	killed bool
	timer  *time.Timer // the end of the grace period
}

// startProc logs the command and starts the dyno spec describes, its
// output through logs. grace is the time its stop sequence allows
// between SIGTERM and SIGKILL.
func startProc(r Runner, logs *logmux.Mux, spec DynoSpec, grace time.Duration) (*proc, error) {
	announce(logs, spec)
	return launchProc(r, logs, spec, grace)
}

// announce logs Heroku's first line of a process: its command, with the
// environment's variables expanded.
func announce(logs *logmux.Mux, spec DynoSpec) {
	logs.System(spec.Name, fmt.Sprintf("Starting process with command `%s`", expandEnv(spec.Command, spec.Env)))
}

// launchProc is startProc after its first line: it starts the process
// with its output through logs.
func launchProc(r Runner, logs *logmux.Mux, spec DynoSpec, grace time.Duration) (*proc, error) {
	src, err := logs.Source(spec.Name)
	if err != nil {
		return nil, err
	}
	spec.Output = src.Writer()
	p, err := r.Start(spec)
	src.CloseWriter()
	if err != nil {
		src.Close()
		<-src.Done()
		return nil, err
	}
	pr := &proc{
		name:    spec.Name,
		id:      uuid.New(),
		logs:    logs,
		grace:   grace,
		p:       p,
		src:     src,
		started: time.Now(),
		exited:  make(chan int, 1),
	}
	go func() {
		st, err := p.Wait()
		if err != nil {
			pr.log("Error waiting for process: %v", err)
		}
		pr.mu.Lock()
		pr.ended = true
		if pr.timer != nil {
			pr.timer.Stop()
		}
		pr.mu.Unlock()
		pr.exited <- st
	}()
	return pr, nil
}

func (p *proc) log(format string, args ...any) {
	p.logs.System(p.name, fmt.Sprintf(format, args...))
}

// term begins Heroku's stop sequence: SIGTERM to every process of the
// dyno now, SIGKILL with R12 if they have not exited when the grace
// period ends. Asking again changes nothing: the grace period runs from
// the first SIGTERM.
func (p *proc) term() {
	p.mu.Lock()
	if p.ended || p.termed || p.killed {
		p.mu.Unlock()
		return
	}
	p.termed = true
	p.mu.Unlock()
	p.log("Stopping all processes with SIGTERM")
	p.p.Signal(syscall.SIGTERM)
	p.mu.Lock()
	if !p.ended && !p.killed {
		p.timer = time.AfterFunc(p.grace, p.graceOver)
	}
	p.mu.Unlock()
}

func (p *proc) graceOver() {
	p.mu.Lock()
	if p.ended || p.killed {
		p.mu.Unlock()
		return
	}
	p.killed = true
	p.mu.Unlock()
	p.log("Error R12 (Exit timeout) -> Process failed to exit within %s of SIGTERM", seconds(p.grace))
	p.log("Stopping process with SIGKILL")
	p.p.Kill()
}

// kill SIGKILLs every process of the dyno now, ending a stop sequence
// under way.
func (p *proc) kill() {
	p.mu.Lock()
	if p.ended || p.killed {
		p.mu.Unlock()
		return
	}
	p.killed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	p.log("Stopping process with SIGKILL")
	p.p.Kill()
}

// report logs the end of the process once it has exited with status.
func (p *proc) report(status int) {
	// The last lines a process wrote come before the line that says it
	// exited. Every process of the dyno is gone once init has exited, so
	// end of file follows at once; the timer only guards against a
	// writer that escaped.
	t := time.NewTimer(2 * time.Second)
	select {
	case <-p.src.Done():
	case <-t.C:
		p.src.Close()
	}
	t.Stop()
	if m, ok := p.p.(Metered); ok && m.OOMKilled() {
		p.log("Error R15 (Memory quota vastly exceeded)")
		p.log("Stopping process with SIGKILL")
	}
	p.log("Process exited with status %d", status)
}
