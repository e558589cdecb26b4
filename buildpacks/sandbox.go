package buildpacks

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dyno-run/dyno/isolate"
)

// SandboxExecutor runs buildpack commands in a build sandbox (isolate):
// new namespaces, the host's toolchains (/usr, /etc, /bin, /lib) read-only,
// only the command's Writable dirs writable, a private /tmp, the host's
// network for package downloads, no capabilities. A buildpack cannot
// write outside its build.
type SandboxExecutor struct {
	Spawner  *isolate.Spawner
	StateDir string // where the sandboxes' own dirs live while they run
}

// Run implements Executor.
func (e SandboxExecutor) Run(ctx context.Context, c Command) error {
	var binds []isolate.Bind
	for _, w := range c.Writable {
		binds = append(binds, isolate.Bind{Path: w, Writable: true})
	}
	for _, r := range c.Readable {
		if !covered(r, c.Writable) {
			binds = append(binds, isolate.Bind{Path: r})
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	copied := make(chan struct{})
	go func() {
		// Both streams in one pipe keep their order; the runner streams
		// them to the same place anyway.
		io.Copy(c.Stdout, r)
		r.Close()
		close(copied)
	}()
	d, err := e.Spawner.Start(isolate.Spec{
		Name:    "build",
		Argv:    c.Argv,
		Dir:     c.Dir,
		Env:     c.Env,
		Stdout:  w,
		Stderr:  w,
		Sandbox: &isolate.Sandbox{StateDir: e.StateDir, Binds: binds, Seccomp: true},
	})
	w.Close()
	if err != nil {
		<-copied
		return err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			d.Kill()
		case <-done:
		}
	}()
	status, err := d.Wait()
	close(done)
	<-copied
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if status != 0 {
		return sandboxExit(status)
	}
	return nil
}

// sandboxExit is a command's non-zero status, with the ExitCode method
// the runner tells "bin/detect said no" by.
type sandboxExit int

func (e sandboxExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e sandboxExit) ExitCode() int { return int(e) }

// covered reports whether path is one of dirs or below one.
func covered(path string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool {
		rel, err := filepath.Rel(d, path)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	})
}
