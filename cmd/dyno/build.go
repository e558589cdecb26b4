package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/dyno-run/dyno/buildpacks"
	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newBuildCommand() *cobra.Command {
	var name string
	var refs []string
	var noSandbox bool
	var sourceVersion, user string
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build source into a slug with buildpacks and release it",
		Long: `Build takes the source in DIR (default: the current folder; the git HEAD
when it is a git work tree), runs classic buildpacks on it (-b, else the app's
list, else a .buildpacks file, else detection over $DYNO_HOME/buildpacks and
the shipped ones), packs the result into a slug and makes it a new release.
When the process types include "release", its command runs first in a
one-off dyno, and the release becomes current only if it succeeds.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Whoever stops reading the output does not stop the build,
			// as a Heroku build goes on when git push is interrupted:
			// with SIGPIPE caught (not ignored, which buildpacks would
			// inherit across exec), a write to a closed stdout fails
			// with EPIPE instead of killing dyno, and output is best
			// effort from there on (os/signal: "If the program is
			// calling Notify for SIGPIPE ... the write fails with an
			// EPIPE error").
			pipe := make(chan os.Signal, 1)
			signal.Notify(pipe, syscall.SIGPIPE)
			defer signal.Stop(pipe)
			// SIGINT, SIGTERM and SIGHUP (the terminal or the ssh
			// session closed) stop the build: the buildpack command
			// running is killed with everything it started, the scratch
			// folder is removed, nothing is released; then dyno dies of
			// the signal (main re-raises it), so that a shell's loop
			// stops too. A second one during that cleanup kills dyno at
			// once.
			ctx, stopSignal, stoppedBy := stopOnSignal(cmd.Context())
			defer stopSignal()

			a, err := openApp(name)
			if err != nil {
				return err
			}
			src := "."
			if len(args) == 1 {
				src = args[0]
			}
			if src, err = filepath.Abs(src); err != nil {
				return err
			}
			if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
				return fmt.Errorf("%s is not a folder; give the app's source folder", src)
			}
			// A git work tree's HEAD is built: what that leaves out is
			// said first. A tree git refuses ends here, in git's words.
			// A pushed commit's tree (--source-version) is no work tree.
			if sourceVersion == "" {
				source, err := buildpacks.InspectSource(ctx, src)
				if sig := stoppedBy(); sig != 0 && err != nil {
					return diedOf(sig)
				}
				if err != nil {
					return err
				}
				for _, w := range source.Warnings() {
					fmt.Fprintf(cmd.OutOrStdout(), " !     %s\n", w)
				}
			}
			if user == "" {
				user = userName()
			}
			// What builds killed with SIGKILL left; a running build's
			// folder is locked and stays.
			if _, err := a.Home().SweepBuilds(); err != nil {
				// One line per folder, each with its fix.
				for _, line := range strings.Split(err.Error(), "\n") {
					fmt.Fprintf(os.Stderr, "dyno: warning: %s\n", line)
				}
			}
			scratch, err := a.NewScratch()
			if err != nil {
				return err
			}
			defer func() {
				// What stays, the next build's sweep tries again.
				if err := scratch.Remove(); err != nil {
					fmt.Fprintf(os.Stderr, "dyno: warning: %v; the next build removes it, or remove it as its owner or as root\n", err)
				}
			}()
			shippedDirs, shippedNames, err := shippedBuildpacks(filepath.Join(scratch.Dir, "shipped"))
			if err != nil {
				return fmt.Errorf("build %s: extracting the shipped buildpacks: %w", a.Name, err)
			}
			installed, err := buildpacks.Installed(a.Home().BuildpacksDir())
			if err != nil {
				return err
			}
			installed = append(installed, shippedDirs...)
			var exec buildpacks.Executor
			if !noSandbox {
				var closeSandbox func()
				var ids *isolate.IDRange
				if exec, ids, closeSandbox, err = buildSandbox(a, filepath.Join(scratch.Dir, "sandbox")); err != nil {
					return err
				}
				// Waits for the sandboxes' own folders to be removed.
				defer closeSandbox()
				if ids != nil {
					if err := scratch.RunAs(*ids); err != nil {
						return err
					}
				}
			}
			cwd, _ := os.Getwd()
			out := cmd.OutOrStdout()
			apiLog(a, "Build started")
			rel, err := a.Build(ctx, app.BuildOptions{
				Source:        src,
				SourceVersion: sourceVersion,
				Buildpacks:    refs,
				Installed:     installed,
				Shipped:       shippedNames,
				BaseDir:       cwd,
				HostEnv:       os.Environ(),
				Private:       daemon.PrivatePaths(a.Home().Dir, daemon.SocketPath(a.Home().Dir, os.Environ())),
				User:          user,
				Out:           out,
				Exec:          exec,
				RunRelease:    releaseRunner(a, out),
				Scratch:       scratch,
			})
			if rel.Version > 0 {
				apiLog(a, rel.Description, fmt.Sprintf("Release v%d created", rel.Version))
				nudge()
			}
			if sig := stoppedBy(); sig != 0 && err != nil {
				apiLog(a, "Build failed")
				if rel.Version == 0 {
					fmt.Fprintf(os.Stderr, "dyno: build of %s stopped by %s; nothing was released\n", a.Name, unix.SignalName(sig))
				} else {
					fmt.Fprintf(os.Stderr, "dyno: build of %s stopped by %s: %v\n", a.Name, unix.SignalName(sig), err)
				}
				// Re-raised once the deferred cleanup has run: a shell
				// tells a command that died of SIGINT from one that
				// exited 130, and stops its loop only for the first.
				return diedOf(sig)
			}
			var be *buildpacks.BuildError
			if errors.As(err, &be) {
				apiLog(a, "Build failed")
				// The buildpack's own lines already said what failed.
				return exitStatus(1)
			}
			return err
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringArrayVarP(&refs, "buildpack", "b", nil, "buildpack to use (a folder, a git URL with #ref, a .tgz, or a shipped one: go, nodejs); repeat for several, in order")
	cmd.Flags().BoolVar(&noSandbox, "no-sandbox", false, "run buildpacks as plain processes, not in a build sandbox")
	// What a push's hook says of the tree it unpacked: its commit, and
	// who pushed it.
	cmd.Flags().StringVar(&sourceVersion, "source-version", "", "DIR is this commit's tree: build it as a plain folder with this SOURCE_VERSION")
	cmd.Flags().StringVar(&user, "user", "", "who the release says made it (default: this user)")
	cmd.Flags().MarkHidden("source-version")
	cmd.Flags().MarkHidden("user")
	return cmd
}

// buildSandbox runs buildpacks in a build sandbox when this host can
// make one; where user namespaces are off, builds run as plain processes
// and say so. Where this user has subordinate ids, the buildpacks run as
// the app's own slice of them (ids), as its dynos do, so a build never
// runs as a uid another app's dynos or builds run as; else as this
// user's uid, as the app's dynos do then (dyno start and run say so).
// The sandboxes keep their folders in stateDir, in the build's scratch
// folder: what a killed build leaves of them goes with the rest of its
// scratch, and the daemon's sweep of its apps' dyno folders never meets
// them. closeSandbox waits until they are removed.
func buildSandbox(a *app.App, stateDir string) (exec buildpacks.Executor, ids *isolate.IDRange, closeSandbox func(), err error) {
	spawner, err := newSpawner()
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := spawner.Probe(a.Home().DynosDir()); err != nil {
		fmt.Fprintf(os.Stderr, "dyno: buildpacks run without a sandbox: %v\n", err)
		return nil, nil, func() {}, nil
	}
	if ids, _, err = supervisor.AppIDs(a.Home().Dir, a.Name, a.Home().Holds); err != nil {
		spawner.Close()
		return nil, nil, nil, fmt.Errorf("build %s: %w", a.Name, err)
	}
	return &buildpacks.SandboxExecutor{Spawner: spawner, StateDir: stateDir, IDs: ids}, ids, spawner.Close, nil
}

// stopOnSignal returns a context canceled by the first SIGINT, SIGTERM
// or SIGHUP, a function that stops listening, and one that says which
// signal came (0: none). SIGHUP is among them: closing the terminal or
// the ssh session must not leave an orphaned compile and a scratch
// folder behind.
//
// A signal that dyno inherited ignored stays ignored: `dyno build &` from
// a script runs with SIGINT ignored (the shell does that for background
// jobs), and the script's Ctrl-C must not stop it; nohup ignores SIGHUP.
// After the first signal the others get their default action back, so
// that a second Ctrl-C while the build cleans up ends dyno at once.
func stopOnSignal(parent context.Context) (ctx context.Context, stop func(), stoppedBy func() syscall.Signal) {
	ctx, cancel := context.WithCancel(parent)
	var caught []os.Signal
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(sig) {
			caught = append(caught, sig)
		}
	}
	sigs := make(chan os.Signal, 1)
	if len(caught) > 0 {
		signal.Notify(sigs, caught...)
	}
	var got atomic.Int32
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			got.Store(int32(s.(syscall.Signal)))
			signal.Reset(caught...)
			cancel()
		case <-done:
		}
	}()
	stop = func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
	return ctx, stop, func() syscall.Signal { return syscall.Signal(got.Load()) }
}
