package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dyno-run/dyno/buildpacks"
	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/slug"
)

// Stack is what builds see as $STACK: the host is the stack, and
// buildpacks that check for a known Heroku stack accept this one.
const Stack = "heroku-24"

// BuildOptions say how to build an app from source.
type BuildOptions struct {
	Source     string   // the source folder or git work tree
	Buildpacks []string // -b refs; empty: the app's list, then .buildpacks, then detection
	Installed  []string // dirs of buildpacks tried in detection
	BaseDir    string   // for relative buildpack refs
	// Shipped maps the names of buildpacks that come with dyno
	// ("heroku/go") to their folders for this build (buildpacks'
	// Aliases): the names, not the folders, are what the app and its
	// releases remember.
	Shipped map[string]string
	HostEnv []string
	User    string
	Out     io.Writer
	Exec    buildpacks.Executor // nil: plain subprocesses
	Pack    slug.PackOptions
	// RunRelease runs the release phase of rel, whose slug is unpacked
	// at lower, and returns its exit status.
	RunRelease func(ctx context.Context, rel ledger.Release, lower string) (int, error)
}

// Build turns source into a slug through buildpacks and makes it a
// release, running the release phase when the process types have one. A
// failed build creates no slug and no release; a failed release phase
// leaves a failed release that never becomes current.
func (a *App) Build(ctx context.Context, o BuildOptions) (ledger.Release, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	state, err := a.Ledger.State()
	if err != nil {
		return ledger.Release{}, err
	}
	work, err := os.MkdirTemp("", "build_")
	if err != nil {
		return ledger.Release{}, fmt.Errorf("build %s: %w", a.Name, err)
	}
	defer fsutil.RemoveAll(work)
	buildDir := filepath.Join(work, "app")
	sourceVersion, err := buildpacks.PrepareSource(o.Source, buildDir)
	if err != nil {
		return ledger.Release{}, fmt.Errorf("build %s: %w", a.Name, err)
	}

	refs := o.Buildpacks
	saved := len(refs) == 0 && len(state.Buildpacks) > 0
	if len(refs) == 0 {
		refs = state.Buildpacks
	}
	var config map[string]string
	if state.Current != nil {
		config = state.Current.ConfigVars
	}
	if err := os.MkdirAll(a.CacheDir(), 0o700); err != nil {
		return ledger.Release{}, fmt.Errorf("build %s: %w", a.Name, err)
	}
	res, err := buildpacks.Run(ctx, buildpacks.Build{
		BuildDir:      buildDir,
		CacheDir:      a.CacheDir(),
		ConfigVars:    config,
		Buildpacks:    refs,
		Aliases:       o.Shipped,
		Installed:     o.Installed,
		BaseDir:       o.BaseDir,
		Stack:         Stack,
		SourceVersion: sourceVersion,
		HostEnv:       o.HostEnv,
		Out:           out,
		Exec:          o.Exec,
	})
	if err != nil {
		return ledger.Release{}, err
	}

	fmt.Fprintln(out, "-----> Compressing...")
	store := a.home.Slugs()
	sl, report, err := store.Pack(buildDir, o.Pack)
	if err != nil {
		return ledger.Release{}, fmt.Errorf("build %s: %w", a.Name, err)
	}
	// Until a release names it, only this hold keeps slugs:gc away.
	hold, err := store.Acquire(sl.Digest)
	if err != nil {
		return ledger.Release{}, fmt.Errorf("build %s: %w", a.Name, err)
	}
	defer hold.Close()
	// Unpacked now, while the build is waited for anyway: a dyno's
	// start (and the daemon's loop) then only mounts it.
	if _, err := store.Unpacked(sl.Digest); err != nil {
		return ledger.Release{}, fmt.Errorf("build %s: %w", a.Name, err)
	}
	fmt.Fprintf(out, "       Done: %s\n", humanSize(sl.Size))
	if report.Warning != "" {
		fmt.Fprintln(out, " !     "+report.Warning)
	}
	// As on Heroku, buildpacks found by detection (or given once with
	// -b) are remembered once a build succeeds, unless the app has a list
	// or the source names them in .buildpacks (edits to it must count).
	if !saved && !res.FromBuildpacksFile && len(state.Buildpacks) == 0 && len(res.Buildpacks) > 0 {
		if _, err := a.EditBuildpacks(o.User, func([]string) ([]string, error) { return res.Buildpacks, nil }); err != nil {
			return ledger.Release{}, err
		}
	}

	fmt.Fprintln(out, "-----> Launching...")
	rel, err := a.Deploy(sl.Digest, sourceVersion, res.ProcessTypes, res.Buildpacks, res.Addons, o.User)
	if err != nil {
		return ledger.Release{}, err
	}
	if err := a.ReleasePhase(ctx, rel, out, o.RunRelease); err != nil {
		return rel, err
	}
	fmt.Fprintf(out, "       Released v%d\n", rel.Version)
	return rel, nil
}

// ErrReleaseFailed is returned when a release phase fails.
var ErrReleaseFailed = errors.New("release command failed")

// ReleasePhase runs rel's release command when rel is pending and records
// the outcome: on success rel becomes current, on failure it never does
// and the current release stays.
func (a *App) ReleasePhase(ctx context.Context, rel ledger.Release, out io.Writer, run func(context.Context, ledger.Release, string) (int, error)) error {
	if rel.Status != ledger.StatusPending {
		return nil
	}
	fmt.Fprintln(out, " !     Release command declared: this new release will not be available until the command succeeds.")
	status := -1
	var err error
	if run == nil {
		err = errors.New("no way to run the release phase")
	} else {
		var lower string
		if lower, err = a.home.Slugs().Unpacked(rel.Slug); err == nil {
			status, err = run(ctx, rel, lower)
		}
	}
	ok := err == nil && status == 0
	if ferr := a.Finish(rel.Version, ok, rel.User); ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("%w: v%d: %v; the current release is unchanged", ErrReleaseFailed, rel.Version, err)
	}
	if status != 0 {
		return fmt.Errorf("%w: v%d: the release command exited with status %d; the current release is unchanged", ErrReleaseFailed, rel.Version, status)
	}
	return nil
}

// humanSize is Heroku's "Done: 12.3M".
func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
}
