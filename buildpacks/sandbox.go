package buildpacks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/dyno-run/dyno/isolate"
)

// SandboxExecutor runs buildpack commands in a build sandbox (isolate):
// as the ordinary user u12345 (isolate.DynoUser), as Heroku compiles, so
// GNU tar restores no archive's owners; new namespaces, the host's
// toolchains (/usr, /etc, /bin, /lib) read-only,
// only the command's Writable dirs writable, a private /tmp, the host's
// network for package downloads, no capabilities (with IDs, a dyno's
// few in the app's own namespace, so chown works within its range). A
// buildpack cannot write outside its build.
type SandboxExecutor struct {
	Spawner  *isolate.Spawner
	StateDir string // where the sandboxes' own dirs live while they run
	// IDs, when set, is the app's own slice of host ids (isolate.IDRange):
	// the commands run as its dyno user (u12345, IDRange.DynoUser), which
	// no other app shares, instead of as this process's uid, and the build's folders
	// are handed to them (Handover) with isolate.GiveTrees. Nil runs
	// them as this process's uid, with nothing handed over.
	IDs *isolate.IDRange

	mu    sync.Mutex
	given []string // handed over, in order, until HandBack
}

// HandOver implements Handover: it gives the trees at dirs to e.IDs
// (when set), but for those a tree already handed over holds.
func (e *SandboxExecutor) HandOver(dirs ...string) (bool, error) {
	if e.IDs == nil {
		return false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var give []string
	for _, d := range dirs {
		if !covered(d, e.given) && !covered(d, give) {
			give = append(give, d)
		}
	}
	// Recorded first: a GiveTrees that fails halfway may have handed
	// some of them over, and HandBack must look at all of them.
	e.given = append(e.given, give...)
	return true, isolate.GiveTrees(give, *e.IDs, true)
}

// HandBack implements Handover. Trees removed meanwhile (a fetch that
// failed) are skipped.
func (e *SandboxExecutor) HandBack() error {
	if e.IDs == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var back []string
	for _, dir := range e.given {
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			back = append(back, dir)
		}
	}
	if err := isolate.GiveTrees(back, *e.IDs, false); err != nil {
		return err
	}
	e.given = nil
	return nil
}

// Run implements Executor.
func (e *SandboxExecutor) Run(ctx context.Context, c Command) error {
	var binds []isolate.Bind
	for _, w := range c.Writable {
		binds = append(binds, isolate.Bind{Path: w, Writable: true})
	}
	for _, r := range c.Readable {
		if !covered(r, c.Writable) {
			binds = append(binds, isolate.Bind{Path: r})
		}
	}
	// Both streams in one pipe keep their order where they go to the
	// same place; where they do not (detect's and release's stdout is
	// parsed), stderr must not end up in what is parsed.
	stdout, copiedOut, err := copyPipe(c.Stdout)
	if err != nil {
		return err
	}
	stderr, copiedErr := stdout, copiedOut
	if !sameWriter(c.Stdout, c.Stderr) {
		if stderr, copiedErr, err = copyPipe(c.Stderr); err != nil {
			stdout.Close()
			<-copiedOut
			return err
		}
	}
	d, err := e.Spawner.Start(isolate.Spec{
		Name:    "build",
		Argv:    c.Argv,
		Dir:     c.Dir,
		Env:     c.Env,
		Stdout:  stdout,
		Stderr:  stderr,
		Sandbox: &isolate.Sandbox{StateDir: e.StateDir, Binds: binds, Seccomp: true, IDs: e.IDs},
	})
	stdout.Close()
	stderr.Close()
	copied := func() {
		<-copiedOut
		<-copiedErr
	}
	if err != nil {
		copied()
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
	copied()
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

// copyPipe returns the write end of a pipe whose output goes to dst,
// and a channel closed once all of it has.
func copyPipe(dst io.Writer) (*os.File, chan struct{}, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(dst, r)
		r.Close()
		close(copied)
	}()
	return w, copied, nil
}

// sameWriter reports whether a and b are the same writer, without the
// panic == gives for two values of one uncomparable type.
func sameWriter(a, b io.Writer) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta != nil && ta.Comparable() && a == b
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
