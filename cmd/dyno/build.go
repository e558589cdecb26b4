package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dyno-run/dyno/buildpacks"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/spf13/cobra"
)

func newBuildCommand() *cobra.Command {
	var name string
	var refs []string
	var noSandbox bool
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
			shippedDirs, shippedNames, cleanup, err := shippedBuildpacks()
			if err != nil {
				return err
			}
			defer cleanup()
			installed, err := buildpacks.Installed(a.Home().BuildpacksDir())
			if err != nil {
				return err
			}
			installed = append(installed, shippedDirs...)
			var exec buildpacks.Executor
			if !noSandbox {
				if exec, err = buildSandbox(a); err != nil {
					return err
				}
			}
			cwd, _ := os.Getwd()
			out := cmd.OutOrStdout()
			apiLog(a, "Build started")
			rel, err := a.Build(cmd.Context(), app.BuildOptions{
				Source:     src,
				Buildpacks: refs,
				Installed:  installed,
				Shipped:    shippedNames,
				BaseDir:    cwd,
				HostEnv:    os.Environ(),
				User:       userName(),
				Out:        out,
				Exec:       exec,
				RunRelease: releaseRunner(a, out),
			})
			if rel.Version > 0 {
				apiLog(a, rel.Description, fmt.Sprintf("Release v%d created", rel.Version))
				nudge()
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
	return cmd
}

// buildSandbox runs buildpacks in a build sandbox when this host can
// make one; where user namespaces are off, builds run as plain processes
// and say so.
func buildSandbox(a *app.App) (buildpacks.Executor, error) {
	spawner, err := newSpawner()
	if err != nil {
		return nil, err
	}
	if _, err := spawner.Probe(a.Home().DynosDir()); err != nil {
		fmt.Fprintf(os.Stderr, "dyno: buildpacks run without a sandbox: %v\n", err)
		return nil, nil
	}
	return buildpacks.SandboxExecutor{Spawner: spawner, StateDir: filepath.Join(a.DynosDir(), "build")}, nil
}
