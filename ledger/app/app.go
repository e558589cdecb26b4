// Package app is dyno's model of a Heroku app on one machine: a directory
// under $DYNO_HOME/apps holding the app's ledger (the truth about its
// releases, config vars, formation and buildpacks), its build cache and
// its logs. Every change is a record appended to the ledger; nothing
// here keeps state of its own.
package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/slug"
)

// Home is $DYNO_HOME, laid out as docs/design.md says.
type Home struct{ Dir string }

func (h Home) appsDir() string { return filepath.Join(h.Dir, "apps") }

// SlugsDir is where slugs are stored and unpacked.
func (h Home) SlugsDir() string { return filepath.Join(h.Dir, "slugs") }

// BuildpacksDir holds installed buildpacks, tried in detection.
func (h Home) BuildpacksDir() string { return filepath.Join(h.Dir, "buildpacks") }

// DynosDir holds running dynos' directories.
func (h Home) DynosDir() string { return filepath.Join(h.Dir, "dynos") }

// SizesFile is dyno.toml.
func (h Home) SizesFile() string { return filepath.Join(h.Dir, "dyno.toml") }

// Slugs is the slug store.
func (h Home) Slugs() *slug.Store { return &slug.Store{Dir: h.SlugsDir()} }

// ValidName checks an app name against Heroku's rule.
func ValidName(name string) error {
	if !validName(name) {
		return fmt.Errorf("invalid app name %q: use 3 to 30 lowercase letters, digits and dashes, starting with a letter and not ending with a dash", name)
	}
	return nil
}

// validName is Heroku's app name rule, ^[a-z][a-z0-9-]{1,28}[a-z0-9]$,
// checked by hand: the daemon lists the apps every poll, and a regexp
// match allocates.
func validName(name string) bool {
	if len(name) < 3 || len(name) > 30 || name[0] < 'a' || name[0] > 'z' || name[len(name)-1] == '-' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ErrNotFound is returned for an app that does not exist.
var ErrNotFound = errors.New("app not found")

// App is one app.
type App struct {
	Name   string
	Dir    string
	Ledger *ledger.Ledger
	home   Home
	held   heldPhases // phase locks of pending releases this App made
}

func (a *App) ledgerPath() string { return filepath.Join(a.Dir, "ledger.jsonl") }

// CacheDir is the build cache kept between builds; an operator may seed
// it (a toolchain a buildpack would otherwise download).
func (a *App) CacheDir() string { return filepath.Join(a.Dir, "cache") }

// ReservedName is the one name no app may take: dashboard.DOMAIN is
// the dashboard's address on the router (supervisor/dashboard.Host).
const ReservedName = "dashboard"

// MetricsDir is where the daemon keeps the app's metrics for the
// dashboard: fixed-size files (supervisor/appmetrics).
func (a *App) MetricsDir() string { return filepath.Join(a.Dir, "metrics") }

// LogsDir holds the app's stored logs.
func (a *App) LogsDir() string { return filepath.Join(a.Dir, "logs") }

// RepoDir is the app's bare git repository, where git push delivers.
func (a *App) RepoDir() string { return filepath.Join(a.Dir, "repo.git") }

// DynosDir is where the app's running dynos keep their directories.
func (a *App) DynosDir() string { return filepath.Join(a.home.DynosDir(), a.Name) }

// Home is the app's home.
func (a *App) Home() Home { return a.home }

func (h Home) app(name string) *App {
	dir := filepath.Join(h.appsDir(), name)
	return &App{Name: name, Dir: dir, Ledger: ledger.Open(filepath.Join(dir, "ledger.jsonl")), home: h}
}

// ErrExists is Create's error for a name an app has: the API answers it
// as Heroku does ("Name X is already taken"), and CreateUnnamed tries
// another name.
var ErrExists = errors.New("already exists")

// Create makes a new app with its first release, v1 "Initial release".
func (h Home) Create(name, user string) (*App, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if name == ReservedName {
		return nil, fmt.Errorf("the name %s is the dashboard's: the router serves it at %s.DOMAIN; pick another name", name, name)
	}
	a := h.app(name)
	if err := os.MkdirAll(h.appsDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create app %s: %w", name, err)
	}
	if err := os.Mkdir(a.Dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("app %s %w; pick another name or use it with -a %s", name, ErrExists, name)
		}
		return nil, fmt.Errorf("create app %s: %w", name, err)
	}
	first := ledger.Record{Type: ledger.TypeRelease, User: user, Release: &ledger.Release{
		Version: 1, Description: "Initial release", Status: ledger.StatusSucceeded,
	}}
	l, err := ledger.Create(a.ledgerPath(), first)
	if err != nil {
		os.RemoveAll(a.Dir)
		return nil, fmt.Errorf("create app %s: %w", name, err)
	}
	a.Ledger = l
	return a, nil
}

// Open returns an existing app. Every way an app name comes in (-a,
// DYNO_APP, positional names, API paths, the daemon's scan of apps/)
// ends here, so this is where a name is checked: an app name becomes a
// path under apps/, and "../x" would name a folder outside it.
func (h Home) Open(name string) (*App, error) {
	if name == "" {
		return nil, errors.New("no app given: use -a APP or set DYNO_APP (dyno apps lists them)")
	}
	if err := ValidName(name); err != nil {
		return nil, err
	}
	a := h.app(name)
	if _, err := os.Stat(a.ledgerPath()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s; create it with dyno apps:create %s", ErrNotFound, name, name)
		}
		return nil, fmt.Errorf("open app %s: %w", name, err)
	}
	return a, nil
}

// List returns the names of all apps, sorted.
func (h Home) List() ([]string, error) {
	names, _, err := h.list()
	return names, err
}

// list is List, and whether it skipped no folder with an app's name:
// such a folder (one Create has made but not yet given its ledger) may
// become an app without apps/ itself changing.
func (h Home) list() (names []string, whole bool, err error) {
	entries, err := os.ReadDir(h.appsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("list apps: %w", err)
	}
	whole = true
	for _, e := range entries {
		if !validName(e.Name()) {
			continue // not an app: a name no app can have
		}
		if _, err := os.Stat(filepath.Join(h.appsDir(), e.Name(), "ledger.jsonl")); err == nil {
			names = append(names, e.Name())
		} else {
			whole = false
		}
	}
	sort.Strings(names)
	return names, whole, nil
}

// A Lister lists a home's apps as List does, for a poller: it reads
// apps/ again only when its stamp has changed (an app created, renamed
// or destroyed changes the folder's entries, so its times) or is too
// recent to trust, and the names it returns are shared between calls,
// not to be changed. Not safe for concurrent use.
type Lister struct {
	Home  Home
	stamp ledger.Stamp
	names []string
	fresh bool             // stamp and names are from one reading
	now   func() time.Time // time.Now; tests move it
}

// List returns the home's apps, sorted.
func (l *Lister) List() ([]string, error) {
	stamp, err := ledger.StampFile(l.Home.appsDir())
	if errors.Is(err, fs.ErrNotExist) {
		l.fresh = false
		return nil, nil
	}
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	if err == nil && l.fresh && stamp == l.stamp && stamp.Settled(now()) {
		return l.names, nil
	}
	names, whole, lerr := l.Home.list()
	if lerr != nil {
		l.fresh = false
		return nil, lerr
	}
	// Stamped before the reading: a change during it shows as a new
	// stamp at the next call.
	l.stamp, l.names, l.fresh = stamp, names, err == nil && whole
	return names, nil
}

// Destroy removes an app: its ledger, cache, logs and its own copies of
// its slugs (Lower). Its slugs stay in the store until slugs:gc finds no
// app using them.
func (h Home) Destroy(name string) error {
	a, err := h.Open(name)
	if err != nil {
		return err
	}
	// Move it out of apps/ first (one rename), so no half app that looks
	// whole is ever listed, even after a crash halfway; then remove.
	trashDir := filepath.Join(h.Dir, "trash")
	if err := os.MkdirAll(trashDir, 0o700); err != nil {
		return fmt.Errorf("destroy app %s: %w", name, err)
	}
	trash, err := os.MkdirTemp(trashDir, name+"-")
	if err != nil {
		return fmt.Errorf("destroy app %s: %w", name, err)
	}
	if err := os.Rename(a.Dir, filepath.Join(trash, name)); err != nil {
		os.Remove(trash)
		return fmt.Errorf("destroy app %s: %w", name, err)
	}
	// Its own copies of its slugs belong to its ids: removed as them.
	if err := h.removeOwned(name, filepath.Join(trash, name)); err != nil {
		return fmt.Errorf("destroy app %s: %w", name, err)
	}
	if err := fsutil.RemoveAll(trash); err != nil {
		return fmt.Errorf("destroy app %s: %w", name, err)
	}
	return nil
}

// ProcessTypeNames returns a release's process types in the order dyno
// numbers their ports: web first, then by name.
func ProcessTypeNames(types map[string]string) []string {
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "web") != (names[j] == "web") {
			return names[i] == "web"
		}
		return names[i] < names[j]
	})
	return names
}

// shortDigest is the first 8 hex digits of a "sha256:<hex>" digest or a
// commit, as Heroku's "Deploy 1a2b3c4d".
func shortDigest(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 8 {
		s = s[:8]
	}
	return s
}
