package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/ledger"
	"golang.org/x/sys/unix"
)

// MaxConfigBytes is Heroku's limit on all config keys and values of an
// app together.
const MaxConfigBytes = 32 * 1024

var keyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidateConfig checks config vars as Heroku does: every key a shell
// variable name, all keys and values together at most 32 KB. The error
// names the key.
func ValidateConfig(vars map[string]string) error {
	total := 0
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if !keyPattern.MatchString(k) {
			return fmt.Errorf("invalid config var name %q: use letters, digits and _, not starting with a digit", k)
		}
		if strings.IndexByte(vars[k], 0) >= 0 {
			// execve cannot pass it: no dyno of the app could start.
			return fmt.Errorf("config var %s holds a NUL byte, which no process environment can carry; remove it", k)
		}
		total += len(k) + len(vars[k])
	}
	if total > MaxConfigBytes {
		return fmt.Errorf("config vars take %d bytes, over the limit of %d (32 KB) for all keys and values together; store large values elsewhere", total, MaxConfigBytes)
	}
	return nil
}

// releaseStatus is pending when the release has a release phase to run
// before it may become current.
func releaseStatus(types map[string]string) string {
	if _, ok := types["release"]; ok {
		return ledger.StatusPending
	}
	return ledger.StatusSucceeded
}

// releasePhaseLimit is how long a release phase may run on Heroku; a
// release left pending longer (its phase was killed with its machine)
// counts as expired and no longer holds the app.
const releasePhaseLimit = time.Hour

// ErrReleasePending is returned while a release phase runs: a release
// made meanwhile would be based on the release before it, and the new
// code would silently never run.
var ErrReleasePending = errors.New("a release phase is running")

// checkPending refuses a new release while the newest one is pending.
// It reads before the ledger is locked for the append: readers must not
// run under the writer's lock.
func (a *App) checkPending() error {
	s, err := a.Ledger.State()
	if err != nil {
		return err
	}
	if s.Current != nil && s.LastVersion == s.Current.Version {
		return nil
	}
	last, err := a.Ledger.Release(s.LastVersion)
	if err != nil || last.Status != ledger.StatusPending || time.Since(last.Time) > releasePhaseLimit {
		return nil
	}
	return fmt.Errorf("%w: v%d of %s is running its release command (since %s); try again when it has ended",
		ErrReleasePending, last.Version, a.Name, last.Time.Local().Format("15:04:05"))
}

// newRelease appends the release make returns, numbered after the last
// one, under the ledger's lock. It holds the app's phase lock from
// before the pending check to after the append, and keeps it for a
// pending release (see RunReleasePhase).
func (a *App) newRelease(user string, make func(s *ledger.State) (ledger.Release, error)) (ledger.Release, error) {
	return a.newReleaseWith(user, func(s *ledger.State) (ledger.Release, []ledger.Record, error) {
		rel, err := make(s)
		return rel, nil, err
	})
}

// newReleaseWith is newRelease for a release that goes with other
// records (an attachments record, say): make returns them too, and they
// are appended before the release in the same batch, so that the
// ledger holds both or neither.
func (a *App) newReleaseWith(user string, make func(s *ledger.State) (ledger.Release, []ledger.Record, error)) (ledger.Release, error) {
	lock, err := a.lockPhase()
	if err != nil {
		return ledger.Release{}, err
	}
	keep := false
	defer func() {
		if !keep {
			lock.Close()
		}
	}()
	if err := a.checkPending(); err != nil {
		return ledger.Release{}, err
	}
	recs, err := a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		rel, extra, err := make(s)
		if err != nil {
			return nil, err
		}
		rel.Version = s.LastVersion + 1
		rel.Status = releaseStatus(rel.ProcessTypes)
		return append(extra, ledger.Record{Type: ledger.TypeRelease, User: user, Release: &rel}), nil
	})
	if err != nil {
		return ledger.Release{}, err
	}
	last := recs[len(recs)-1]
	rel := *last.Release
	rel.Time, rel.User = last.Time, last.User
	if rel.Status == ledger.StatusPending {
		a.held.put(rel.Version, lock)
		keep = true
	}
	return rel, nil
}

// Who runs a release phase. A pending release's phase must run once,
// whether a CLI command, the daemon's API or some process that died
// made it. The rule: the app's phase lock (flock(2) on
// apps/APP/release.lock) is held by whoever makes a pending release,
// from before the append until Finish has recorded its outcome, and by
// whoever runs a phase. A pending release whose lock is free has no
// one running it: its maker died (flock locks go with their last
// descriptor, so a killed process frees it) or never runs phases, and
// RunReleasePhase takes it up. flock(2) locks belong to open file
// descriptions, so two goroutines of one process exclude each other
// too.

// heldPhases are the phase locks an App holds for pending releases it
// made, by version.
type heldPhases struct {
	mu sync.Mutex
	m  map[int]*os.File
}

func (h *heldPhases) put(version int, f *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[int]*os.File{}
	}
	h.m[version] = f
}

func (h *heldPhases) take(version int) *os.File {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.m[version]
	delete(h.m, version)
	return f
}

func (a *App) phaseLockPath() string { return filepath.Join(a.Dir, "release.lock") }

// tryLockPhase takes the phase lock if it is free; nil, nil when another
// holds it.
func (a *App) tryLockPhase() (*os.File, error) {
	f, err := os.OpenFile(a.phaseLockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("release phase lock of %s: %w", a.Name, err)
	}
	if err = fsutil.Flock(f, unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return f, nil
	}
	f.Close()
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, nil
	}
	return nil, fmt.Errorf("release phase lock %s: %w", a.phaseLockPath(), err)
}

// phaseLockWait bounds how long a new release waits for the phase lock
// while no release is pending: its holder is only looking (or is about
// to append a pending release, which the next look sees).
const phaseLockWait = 5 * time.Second

// lockPhase takes the phase lock for a new release. A release pending
// meanwhile refuses it (ErrReleasePending), as checkPending does.
func (a *App) lockPhase() (*os.File, error) {
	deadline := time.Now().Add(phaseLockWait)
	for {
		f, err := a.tryLockPhase()
		if err != nil || f != nil {
			return f, err
		}
		if err := a.checkPending(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: another process holds %s; try again when it has ended", ErrReleasePending, a.phaseLockPath())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// RunReleasePhase runs rel's release phase (ReleasePhase) when rel is
// pending and no one else runs it, and says whether it ran it. The
// phase lock is this App's own when it made rel, else it is taken if
// free (the maker is gone) and rel read again under it, since the phase
// may have ended in between; a held lock means another process runs the
// phase, and nothing is done.
func (a *App) RunReleasePhase(ctx context.Context, rel ledger.Release, out io.Writer, run func(context.Context, ledger.Release, string) (int, error)) (bool, error) {
	if rel.Status != ledger.StatusPending {
		return false, nil
	}
	lock := a.held.take(rel.Version)
	if lock == nil {
		var err error
		if lock, err = a.tryLockPhase(); err != nil || lock == nil {
			return false, err
		}
		now, err := a.Ledger.Release(rel.Version)
		if err != nil {
			lock.Close()
			return false, err
		}
		if now.Status != ledger.StatusPending {
			lock.Close()
			return false, nil
		}
	}
	defer lock.Close()
	return true, a.ReleasePhase(ctx, rel, out, run)
}

// ChangeConfig sets and unsets config vars in one new release, as the
// Platform API's PATCH config-vars does: "Set A config vars", "Remove B
// config vars", or "Set A; remove B config vars" for both.
func (a *App) ChangeConfig(set map[string]string, unset []string, user string) (ledger.Release, error) {
	switch {
	case len(unset) == 0:
		return a.SetConfig(set, user)
	case len(set) == 0:
		return a.UnsetConfig(unset, user)
	}
	unset = slices.Clone(unset)
	sort.Strings(unset)
	for _, k := range unset {
		if _, ok := set[k]; ok {
			return ledger.Release{}, fmt.Errorf("%s is both set and unset; give it once", k)
		}
	}
	keys := slices.Sorted(maps.Keys(set))
	return a.newRelease(user, func(s *ledger.State) (ledger.Release, error) {
		rel := base(s)
		if rel.ConfigVars == nil {
			rel.ConfigVars = map[string]string{}
		}
		maps.Copy(rel.ConfigVars, set)
		for _, k := range unset {
			delete(rel.ConfigVars, k)
		}
		if err := ValidateConfig(rel.ConfigVars); err != nil {
			return rel, err
		}
		rel.Description = fmt.Sprintf("Set %s; remove %s config vars", strings.Join(keys, ", "), strings.Join(unset, ", "))
		return rel, nil
	})
}

// Finish records the outcome of a pending release's release phase: a
// succeeded release becomes current, a failed one never does.
func (a *App) Finish(version int, ok bool, user string) error {
	status := ledger.StatusFailed
	if ok {
		status = ledger.StatusSucceeded
	}
	_, err := a.Ledger.Append(func(*ledger.State) ([]ledger.Record, error) {
		return []ledger.Record{{Type: ledger.TypeStatus, User: user, Status: &ledger.Status{Version: version, Status: status}}}, nil
	})
	if err == nil {
		// The outcome is recorded: the phase lock this App kept since
		// it made the release is let go.
		if lock := a.held.take(version); lock != nil {
			lock.Close()
		}
	}
	return err
}

// base is what a new release inherits from the current one.
func base(s *ledger.State) ledger.Release {
	if s.Current == nil {
		return ledger.Release{}
	}
	c := *s.Current
	return ledger.Release{
		Slug: c.Slug, ProcessTypes: c.ProcessTypes, ConfigVars: maps.Clone(c.ConfigVars),
		Buildpacks: c.Buildpacks, SourceVersion: c.SourceVersion, Addons: c.Addons,
	}
}

// SetConfig sets config vars in a new release "Set A, B config vars".
func (a *App) SetConfig(set map[string]string, user string) (ledger.Release, error) {
	if len(set) == 0 {
		return ledger.Release{}, errors.New("no config vars given; write them as KEY=value")
	}
	keys := slices.Sorted(maps.Keys(set))
	return a.newRelease(user, func(s *ledger.State) (ledger.Release, error) {
		rel := base(s)
		if rel.ConfigVars == nil {
			rel.ConfigVars = map[string]string{}
		}
		maps.Copy(rel.ConfigVars, set)
		if err := ValidateConfig(rel.ConfigVars); err != nil {
			return rel, err
		}
		rel.Description = fmt.Sprintf("Set %s config vars", strings.Join(keys, ", "))
		return rel, nil
	})
}

// UnsetConfig removes config vars in a new release "Remove A config vars".
func (a *App) UnsetConfig(keys []string, user string) (ledger.Release, error) {
	if len(keys) == 0 {
		return ledger.Release{}, errors.New("no config var names given")
	}
	sort.Strings(keys)
	return a.newRelease(user, func(s *ledger.State) (ledger.Release, error) {
		rel := base(s)
		var missing []string
		for _, k := range keys {
			if _, ok := rel.ConfigVars[k]; !ok {
				missing = append(missing, k)
			}
			delete(rel.ConfigVars, k)
		}
		if len(missing) == len(keys) {
			return rel, fmt.Errorf("%s: no such config var on %s; dyno config lists them", strings.Join(missing, ", "), a.Name)
		}
		rel.Description = fmt.Sprintf("Remove %s config vars", strings.Join(keys, ", "))
		return rel, nil
	})
}

// Deploy makes the release of a new slug: "Deploy <8 hex>" of the commit
// it was built from, or of the slug's digest.
func (a *App) Deploy(slugDigest, sourceVersion string, types map[string]string, buildpacks, addons []string, user string) (ledger.Release, error) {
	return a.newRelease(user, func(s *ledger.State) (ledger.Release, error) {
		rel := base(s)
		rel.Slug, rel.ProcessTypes, rel.Buildpacks, rel.SourceVersion = slugDigest, types, buildpacks, sourceVersion
		if s.Current == nil || s.Current.Slug == "" {
			// Add-ons from bin/release apply on an app's first deploy only.
			rel.Addons = addons
		}
		id := sourceVersion
		if id == "" {
			id = slugDigest
		}
		rel.Description = "Deploy " + shortDigest(id)
		return rel, nil
	})
}

// Rollback makes a new release "Rollback to vN" with vN's slug, process
// types and config vars. target 0 means the succeeded release before the
// current one.
func (a *App) Rollback(target int, user string) (ledger.Release, error) {
	// The target is read before the ledger is locked for the append:
	// readers must not run under the writer's lock.
	t, err := a.rollbackTarget(target)
	if err != nil {
		return ledger.Release{}, err
	}
	detached, last, err := a.detachedSince(t.Version)
	if err != nil {
		return ledger.Release{}, err
	}
	return a.newRelease(user, func(s *ledger.State) (ledger.Release, error) {
		if s.LastVersion != last {
			return ledger.Release{}, fmt.Errorf("⬢ %s got release v%d while rolling back; run the rollback again", a.Name, s.LastVersion)
		}
		return ledger.Release{
			Description: fmt.Sprintf("Rollback to v%d", t.Version),
			Slug:        t.Slug, ProcessTypes: t.ProcessTypes, ConfigVars: rollbackConfig(t, s, detached),
			Buildpacks: t.Buildpacks, SourceVersion: t.SourceVersion,
		}, nil
	})
}

// rollbackConfig is the config of a rollback to t: t's, except that
// add-ons stay as they are now, as on Heroku ("Rollback affects code
// and config vars; it doesn't add or remove addons"). The var of an
// attachment detached since t is dropped, so that a rollback past
// addons:destroy does not hand the app a dead add-on's URL, and every
// attachment's var keeps its current value.
func rollbackConfig(t *ledger.Release, s *ledger.State, detached map[string]bool) map[string]string {
	cfg := maps.Clone(t.ConfigVars)
	for name := range detached {
		delete(cfg, name+"_URL")
	}
	if s.Current == nil {
		return cfg
	}
	for _, at := range s.Attachments {
		if v, ok := s.Current.ConfigVars[at.Name+"_URL"]; ok {
			if cfg == nil {
				cfg = map[string]string{}
			}
			cfg[at.Name+"_URL"] = v
		}
	}
	return cfg
}

// detachedSince returns the names of the attachments detached by
// releases after version v ("Detach DATABASE (@ref:...)", App.Detach's
// description), and the last version there is, which the rollback
// checks again under the ledger's lock.
func (a *App) detachedSince(v int) (map[string]bool, int, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return nil, 0, err
	}
	names := map[string]bool{}
	if s.LastVersion <= v {
		return names, s.LastVersion, nil
	}
	// Versions are consecutive: the releases after v are the newest
	// LastVersion-v, and only they are read.
	rels, err := a.Ledger.Releases(s.LastVersion - v)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range rels {
		if r.Version <= v {
			continue
		}
		if name, ok := detachedName(r.Description); ok {
			names[name] = true
		}
	}
	return names, s.LastVersion, nil
}

// detachedName is the attachment a "Detach NAME (@ref:ADDON)" release
// detached.
func detachedName(description string) (string, bool) {
	rest, ok := strings.CutPrefix(description, "Detach ")
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, " (@ref:")
	return name, ok && name != ""
}

func (a *App) rollbackTarget(target int) (*ledger.Release, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	if s.Current == nil {
		return nil, fmt.Errorf("%s has no current release to roll back from", a.Name)
	}
	if target == 0 {
		// Usually a few records back: look there first, then everywhere.
		for _, n := range []int{50, 0} {
			rels, err := a.Ledger.Releases(n)
			if err != nil {
				return nil, err
			}
			for i := range rels {
				if rels[i].Version < s.Current.Version && Eligible(rels[i]) {
					return &rels[i], nil
				}
			}
			if len(rels) < n {
				break
			}
		}
		return nil, fmt.Errorf("%s has no release with code before v%d to roll back to", a.Name, s.Current.Version)
	}
	r, err := a.Ledger.Release(target)
	if err != nil {
		if errors.Is(err, ledger.ErrNoRelease) {
			return nil, fmt.Errorf("v%d: no such release on %s; dyno releases lists them", target, a.Name)
		}
		return nil, err
	}
	if r.Status != ledger.StatusSucceeded {
		return nil, fmt.Errorf("v%d %s and is not eligible for rollback; dyno releases lists the others", target, r.Status)
	}
	if r.Slug == "" {
		return nil, fmt.Errorf("v%d has no code (%s); rolling back to it would stop the app; pick a release with a build", target, r.Description)
	}
	return r, nil
}

// Eligible says whether a release can be rolled back to: it succeeded
// and has code (v1 "Initial release" has none).
func Eligible(r ledger.Release) bool {
	return r.Status == ledger.StatusSucceeded && r.Slug != ""
}

// Buildpacks returns the app's buildpack list (nil when none is set).
func (a *App) Buildpacks() ([]string, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	return s.Buildpacks, nil
}

// EditBuildpacks replaces the app's buildpack list with what edit returns
// from the current one.
func (a *App) EditBuildpacks(user string, edit func(cur []string) ([]string, error)) ([]string, error) {
	var out []string
	_, err := a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		next, err := edit(slices.Clone(s.Buildpacks))
		if err != nil {
			return nil, err
		}
		if next == nil {
			next = []string{}
		}
		out = next
		return []ledger.Record{{Type: ledger.TypeBuildpacks, User: user, Buildpacks: next}}, nil
	})
	return out, err
}
