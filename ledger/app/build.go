package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dyno-run/dyno/buildpacks"
	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/slug"
	"golang.org/x/sys/unix"
)

// Stack is what builds see as $STACK: the host is the stack, and
// buildpacks that check for a known Heroku stack accept this one.
const Stack = "heroku-24"

// BuildOptions say how to build an app from source.
type BuildOptions struct {
	Source string // the source folder or git work tree
	// SourceVersion, when set, says Source is that commit's tree (a
	// pushed commit): it is built as a plain folder, with this version.
	SourceVersion string
	Buildpacks    []string // -b refs; empty: the app's list, then .buildpacks, then detection
	Installed     []string // dirs of buildpacks tried in detection
	BaseDir       string   // for relative buildpack refs
	// Shipped maps the names of buildpacks that come with dyno
	// ("heroku/go") to their folders for this build (buildpacks'
	// Aliases): the names, not the folders, are what the app and its
	// releases remember.
	Shipped map[string]string
	HostEnv []string
	// Private are host paths of dyno's own, beside DYNO_HOME (which is
	// always one), never copied from a source folder that holds them:
	// the daemon's socket folder, say.
	Private []string
	User    string
	Out     io.Writer
	Exec    buildpacks.Executor // nil: plain subprocesses
	Pack    slug.PackOptions
	// Scratch is the build's folder (NewScratch), for a caller that puts
	// things of its own there first; nil makes one. Either way its
	// removal is the caller's: Build removes only what it made.
	Scratch *Scratch
	// RunRelease runs the release phase of rel, whose slug is unpacked
	// at lower, and returns its exit status.
	RunRelease func(ctx context.Context, rel ledger.Release, lower string) (int, error)
}

// Build turns source into a slug through buildpacks and makes it a
// release, running the release phase when the process types have one. A
// failed build creates no slug and no release; a failed release phase
// leaves a failed release that never becomes current. A build canceled
// (ctx) before its release is recorded records nothing; one canceled in
// its release phase leaves that release failed. Its work is done in a
// scratch folder under BuildsDir, never in TMPDIR.
func (a *App) Build(ctx context.Context, o BuildOptions) (ledger.Release, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	state, err := a.Ledger.State()
	if err != nil {
		return ledger.Release{}, err
	}
	scratch := o.Scratch
	if scratch == nil {
		if _, err := a.home.SweepBuilds(); err != nil {
			// A folder that cannot be removed (a file a buildpack made
			// that is not this user's to remove) must not stop builds.
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(out, " !     %s\n", line)
			}
		}
		if scratch, err = a.NewScratch(); err != nil {
			return ledger.Release{}, err
		}
		defer scratch.Remove()
	}
	buildDir := filepath.Join(scratch.Dir, "app")
	private := append([]string{a.home.Dir}, o.Private...)
	for _, rel := range buildpacks.Within(o.Source, private) {
		fmt.Fprintf(out, " !     Left out of the source: %s, dyno's own state\n", rel)
	}
	sourceVersion := o.SourceVersion
	if sourceVersion != "" {
		err = buildpacks.PrepareTree(ctx, o.Source, buildDir, private...)
	} else {
		sourceVersion, err = buildpacks.PrepareSource(ctx, o.Source, buildDir, private...)
	}
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
	doneWithCache := func() {}
	if scratch.ids != nil {
		if doneWithCache, err = a.shareCache(*scratch.ids); err != nil {
			return ledger.Release{}, fmt.Errorf("build %s: %w", a.Name, err)
		}
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
		WorkDir:       scratch.Dir,
	})
	doneWithCache()
	if err != nil {
		return ledger.Release{}, err
	}

	fmt.Fprintln(out, "-----> Compressing...")
	store := a.home.Slugs()
	// The .tgz is written in the scratch folder, so that what a build
	// killed while packing leaves is swept with the rest of its scratch
	// (in the store, nothing removed it). Both are under DYNO_HOME, on
	// one filesystem, for the rename into the store.
	packOpts := o.Pack
	if packOpts.TempDir == "" {
		packOpts.TempDir = scratch.Dir
	}
	sl, report, err := store.Pack(buildDir, packOpts)
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

	// Packing does not watch ctx; a build stopped meanwhile must still
	// record nothing.
	if err := ctx.Err(); err != nil {
		return ledger.Release{}, fmt.Errorf("build %s canceled: %w", a.Name, err)
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

// BuildsDir holds each running build's scratch folder: its copy of the
// source, the buildpacks' HOME, TMPDIR and ENV_DIR and their copies of
// the buildpacks. It is under DYNO_HOME rather than in /tmp: a caller
// started with env -i has no TMPDIR, /tmp is often a small tmpfs, and
// what a killed build leaves is found again here by the next one.
func (h Home) BuildsDir() string { return filepath.Join(h.Dir, "builds") }

// A Scratch is one build's folder in BuildsDir. The build holds a lock
// on it (flock(2) on the folder itself) for as long as it runs; the
// kernel drops the lock when the process ends however it ends, so a
// folder whose lock can be taken is a dead build's, and SweepBuilds
// removes it.
type Scratch struct {
	Dir   string
	lock  *os.File
	cache string           // the app's cache folder
	ids   *isolate.IDRange // RunAs
}

// LockFile is the open file that holds the scratch folder's lock. A
// child process handed it (exec.Cmd.ExtraFiles) holds the lock too, for
// as long as it runs: flock(2) locks belong to the open file
// description, which the child shares.
func (s *Scratch) LockFile() *os.File { return s.lock }

// scratchIDsFile, in a scratch folder, records the app's own ids its
// buildpacks run as, and the app's cache, which is handed to them too
// (RunAs). It is written before anything is handed over, by this user,
// in a folder only this user may write (the scratch folder itself is
// never handed over): what a killed build left belongs to those ids,
// which this user may neither read nor remove, and the ids are what a
// sweep needs to hand it back. The app's current ids from subids.json
// would not do: the app may be gone and its slice another app's.
const scratchIDsFile = "ids.json"

type scratchIDs struct {
	IDs   isolate.IDRange `json:"ids"`
	Cache string          `json:"cache"`
}

// RunAs records that this build's buildpacks run as ids, the app's own
// slice of host ids: Build then hands the app's cache to them
// (shareCache), and Remove and a later SweepBuilds hand back what the
// buildpacks left should the build not do so itself (killed with
// SIGKILL). Call it before anything is handed to ids.
func (s *Scratch) RunAs(ids isolate.IDRange) error {
	b, err := json.Marshal(scratchIDs{IDs: ids, Cache: s.cache})
	if err != nil {
		return err
	}
	// Synced: a build killed after handing its folders over must leave
	// the record behind it, power loss included.
	if err := writeSynced(filepath.Join(s.Dir, scratchIDsFile), b); err != nil {
		return fmt.Errorf("build folder %s: %w", s.Dir, err)
	}
	s.ids = &ids
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeScratch removes a build's scratch folder. Where its record says
// the buildpacks ran as the app's own ids, what they left is handed back
// first when a plain removal fails (their folders, made 0700 or holding
// files, are not this user's to empty); with handBackCache, so is the
// app's cache, unless a live build of the app holds its lock (that build
// hands it back itself).
func removeScratch(dir string, handBackCache bool) error {
	// Read before anything is removed: a failed RemoveAll still removes
	// what it can, the record perhaps.
	var rec scratchIDs
	b, rerr := os.ReadFile(filepath.Join(dir, scratchIDsFile))
	if rerr == nil {
		rerr = json.Unmarshal(b, &rec)
	}
	// A record cut short was being written when the build died, before
	// anything was handed over.
	haveIDs := rerr == nil && rec.IDs.Size > 0
	if haveIDs && handBackCache && rec.Cache != "" {
		handBackCacheIfFree(rec)
	}
	err := fsutil.RemoveAll(dir)
	if err == nil || !haveIDs {
		return err
	}
	if gerr := isolate.GiveTree(dir, rec.IDs, false); gerr != nil {
		return fmt.Errorf("%w; handing it back from the app's ids: %v", err, gerr)
	}
	return fsutil.RemoveAll(dir)
}

// handBackCacheIfFree hands the cache a dead build had handed to the
// app's ids back, unless a live build of the app holds cache.lock
// (shareCache): the last of those hands it back. A failure is left for
// the next build of the app, which hands the cache over and back anyway.
func handBackCacheIfFree(rec scratchIDs) {
	// A build takes the lock, creating its file, before it hands the
	// cache over: without the file (the app is gone, say) there is
	// nothing to hand back.
	lock, err := os.OpenFile(rec.Cache+".lock", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer lock.Close()
	if fsutil.Flock(lock, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return
	}
	if _, err := os.Lstat(rec.Cache); err == nil {
		isolate.GiveTree(rec.Cache, rec.IDs, false)
	}
}

// shareCache hands the app's cache to ids, the app's own, for a build
// whose buildpacks run as them; done hands it back once no other build
// of the app still uses it. Builds of one app may run side by side and
// share the cache, as they do without ids: each holds a shared flock on
// cache.lock beside the cache (the cache itself may be the app's ids',
// which this user cannot open) while its buildpacks may write it. At the
// end a build asks for the lock exclusively without waiting: only the
// last build out gets it (flock(2) converts a lock by dropping it first,
// under the inode's lock, so of two builds ending at once the second
// always finds the first gone) and hands the cache back. A sweep of a
// killed build's cache asks the same way (handBackCacheIfFree).
func (a *App) shareCache(ids isolate.IDRange) (done func(), err error) {
	lock, err := os.OpenFile(a.CacheDir()+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	// Waits only while a build or a sweep hands the cache back.
	if err := fsutil.Flock(lock, unix.LOCK_SH); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if err := isolate.GiveTree(a.CacheDir(), ids, true); err != nil {
		// Some of it may be the app's now: hand that back, if last.
		if fsutil.Flock(lock, unix.LOCK_EX|unix.LOCK_NB) == nil {
			isolate.GiveTree(a.CacheDir(), ids, false)
		}
		lock.Close()
		return nil, err
	}
	return func() {
		defer lock.Close()
		if fsutil.Flock(lock, unix.LOCK_EX|unix.LOCK_NB) != nil {
			return // another build still uses it, and hands it back
		}
		// A failure leaves the cache to the next build of the app,
		// which hands it over and back anyway, or to a sweep.
		isolate.GiveTree(a.CacheDir(), ids, false)
	}, nil
}

// NewScratch makes and locks a scratch folder for a build of a. Call
// SweepBuilds first, so that what dead builds left does not pile up.
func (a *App) NewScratch() (*Scratch, error) {
	parent := a.home.BuildsDir()
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("build %s: %w", a.Name, err)
	}
	// Between its mkdir and its flock a folder looks dead; the shared
	// lock on the parent keeps a sweep (which takes it exclusively)
	// from looking at that moment.
	guard, err := lockDir(parent, unix.LOCK_SH)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", a.Name, err)
	}
	defer guard.Close()
	dir, err := os.MkdirTemp(parent, a.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", a.Name, err)
	}
	lock, err := lockDir(dir, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("build %s: %w", a.Name, err)
	}
	return &Scratch{Dir: dir, lock: lock, cache: a.CacheDir()}, nil
}

// Remove removes the folder, then drops its lock. What the buildpacks
// left as the app's ids (RunAs) they handed back already, unless that
// failed: then it is handed back here. The cache stays as it is: its
// lock is still this build's, and the build hands it back itself.
func (s *Scratch) Remove() error {
	err := removeScratch(s.Dir, false)
	s.lock.Close()
	if err != nil {
		return fmt.Errorf("remove build folder %s: %w", s.Dir, err)
	}
	return nil
}

// SweepBuilds removes the scratch folders of builds that no longer run
// (killed with SIGKILL, or on a machine that lost power), and says how
// many. A running build's folder is left alone: its lock is held. A
// folder it can neither open nor remove is reported, each in the error,
// with what to do; the others are swept all the same.
func (h Home) SweepBuilds() (int, error) {
	parent := h.BuildsDir()
	guard, err := lockDir(parent, unix.LOCK_EX)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep builds: %w", err)
	}
	entries, err := os.ReadDir(parent)
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("sweep builds: %w", err))
	}
	var dead []*os.File
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		// Held until the folder is gone, so that a second sweep skips it.
		dir := filepath.Join(parent, e.Name())
		lock, err := lockDir(dir, unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			dead = append(dead, lock)
		case errors.Is(err, unix.EWOULDBLOCK), errors.Is(err, fs.ErrNotExist):
			// A running build's, or one gone since the listing.
		default:
			// Not this user's to open (EACCES): it stays, and every
			// build says so until someone removes it.
			errs = append(errs, sweepError(dir, err, false))
		}
	}
	// The removals, which may take a while, need not keep new builds
	// waiting.
	guard.Close()
	removed := 0
	for _, lock := range dead {
		if err := removeScratch(lock.Name(), true); err != nil {
			errs = append(errs, sweepError(lock.Name(), err, true))
		} else {
			removed++
		}
		lock.Close()
	}
	return removed, errors.Join(errs...)
}

// sweepError is a build folder that the sweep could not open (to learn
// whether its build still runs) or, its build dead, remove: it holds
// what this user may not touch (a folder made by another user, a file
// a buildpack gave away), which its owner or root can remove.
func sweepError(dir string, err error, opened bool) error {
	if !opened {
		return fmt.Errorf("sweep builds: cannot open %s to see whether its build runs (%w); when none runs, remove it as its owner or as root: rm -rf %s", dir, err, dir)
	}
	return fmt.Errorf("sweep builds: cannot remove %s, a dead build's folder (%w); remove it as its owner or as root: rm -rf %s", dir, err, dir)
}

// lockDir opens dir and flocks it with how (unix.LOCK_SH, LOCK_EX, maybe
// with LOCK_NB). The lock lasts until the file is closed, or the process
// ends; the descriptor is close-on-exec, so no child inherits it.
func lockDir(dir string, how int) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := fsutil.Flock(f, how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
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
