package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/logmux"
	"github.com/dyno-run/dyno/supervisor/project"
	"github.com/dyno-run/dyno/supervisor/release"
)

// useApp says whether a command runs an app's release rather than the
// folder's Procfile: with -a, or with DYNO_APP when no Procfile was named
// and the folder has none.
func useApp(flag, procfile string, procfileSet bool) bool {
	if flag != "" {
		return true
	}
	if os.Getenv("DYNO_APP") == "" || procfileSet {
		return false
	}
	_, err := os.Stat(procfile)
	return err != nil
}

// appPlan runs an app's current release: its slug unpacked once as the
// read-only lower layer of every dyno, a fresh upper per dyno, the config
// vars as the environment, commands run after .profile.d. It follows the
// app's ledger as the daemon does: a new release restarts the dynos on
// it, a new formation scales them (unless -m or PROCESS names what runs).
func appPlan(o startOptions, only []string, spawner *isolate.Spawner) (*startPlan, error) {
	base, err := basePort(o.port)
	if err != nil {
		return nil, err
	}
	a, err := openApp(o.app)
	if err != nil {
		return nil, err
	}
	// Marked before the ledger is read: a change appended from here on
	// says "restarting", and is followed (it is in the state read
	// next, or Follow sees it).
	fg, err := a.HoldForeground()
	if err != nil {
		return nil, err
	}
	st, err := a.Ledger.State()
	if err != nil {
		fg.Close()
		return nil, err
	}
	rel, err := release.Current(a.Name, st)
	if err != nil {
		fg.Close()
		return nil, err
	}
	types := app.FormationTypes(rel)
	if len(types) == 0 {
		fg.Close()
		return nil, fmt.Errorf("%s v%d declares no process types; add a Procfile and build again", a.Name, rel.Version)
	}
	// Held from before appRunner unpacks it until as.slug holds it for
	// the dynos: slugs:gc leaves a held slug alone.
	hold, err := a.Home().Slugs().Acquire(rel.Slug)
	if err != nil {
		fg.Close()
		return nil, err
	}
	defer hold.Close()
	r, err := appRunner(spawner, a, rel.Slug, o.isolate, true, true)
	if err != nil {
		fg.Close()
		return nil, err
	}
	r.Profile = true
	spawner.SetPrewarm(true)
	spawner.WarmUp(r.StateDir, r.IDs)
	as := &appStart{a: a, o: o, only: only, base: base,
		slug: &release.Slug{App: a, IDs: r.IDs, Grace: time.Duration(o.stopTimeout) + 10*time.Second}}
	if r.Cgroups != nil {
		as.quota = r.Size.Memory
	}
	plan := &startPlan{types: types, runner: r, spawner: spawner, follow: as.follow, cleanup: func() {
		spawner.Close()
		as.slug.Close()
		fg.Close()
	}}
	if plan.formation, err = as.dynos(st); err != nil {
		plan.cleanup()
		return nil, err
	}
	return plan, nil
}

// appStart is the app dyno start -a runs: what it runs now, and what it
// needs to follow the app's ledger.
type appStart struct {
	a     *app.App
	o     startOptions
	only  []string
	base  int
	quota int64
	slug  *release.Slug // the running release's, held against slugs:gc

	seq int             // the ledger record last acted on
	rel *ledger.Release // the release the dynos run
}

// dynos are the dynos of st's current release at the formation that
// runs: -m when given, else the app's (ps:scale), else one of each
// type, narrowed to the types named on the command line. A release on
// another slug is unpacked (and held) here.
func (s *appStart) dynos(st *ledger.State) ([]supervisor.DynoConfig, error) {
	a, o := s.a, s.o
	rel, err := release.Current(a.Name, st)
	if err != nil {
		return nil, err
	}
	types := app.FormationTypes(rel)
	if len(types) == 0 {
		return nil, fmt.Errorf("%s v%d declares no process types; add a Procfile and build again", a.Name, rel.Version)
	}
	// The recorded formation, checked against the limit: a ledger may
	// hold any number (an older dyno, a hand).
	recorded, over, err := a.Formation(st)
	if err != nil {
		return nil, err
	}
	if st.Formation == nil {
		recorded = nil // never scaled: one of each, as Foreman does
	}
	if over != "" {
		fmt.Fprintf(os.Stderr, "dyno: %s\n", over)
	}
	counts, err := appFormation(o.formation, recorded, types, s.only)
	if err != nil {
		return nil, err
	}
	if max, _ := a.Home().MaxQuantity(); o.formation != "" {
		for _, t := range types {
			if counts[t] > max {
				return nil, fmt.Errorf("-m %s: %d dynos of %s, over the limit of %d of a type; ask for %d or fewer, or raise formation.max_quantity in %s",
					o.formation, counts[t], t, max, max, a.Home().SizesFile())
			}
		}
	}
	f := ledger.Formation{}
	for t, n := range counts {
		f[t] = ledger.FormationEntry{Quantity: n}
	}
	lower, err := s.slug.Use(rel.Slug)
	if err != nil {
		return nil, err
	}
	dynos := release.Dynos(rel, f, release.Options{Lower: lower, BasePort: s.base, Quota: func(string) int64 { return s.quota }})
	if len(dynos) == 0 {
		hint := ""
		if len(s.only) == 0 {
			hint = project.NotNamedHint(o.formation)
		}
		return nil, fmt.Errorf("the formation runs no dynos of %s; give one a count, as in -m %s=1%s", a.Name, types[0], hint)
	}
	s.seq, s.rel = st.Seq, rel
	return dynos, nil
}

// follow brings the dynos to each change of the app's ledger
// (release.Follow) until ctx is done: Heroku's lines for a new release,
// then every dyno restarts on it. A change it cannot run (a rollback to
// a release without the type named on the command line) is said, and
// the dynos run on as they are. When the app is destroyed, they stop.
func (s *appStart) follow(ctx context.Context, m *supervisor.Manager, logs *logmux.Mux) {
	err := release.Follow(ctx, s.a.Ledger, s.seq, func(st *ledger.State) {
		prev := s.rel
		dynos, err := s.dynos(st)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dyno: %v; the dynos run on as they are\n", err)
			return
		}
		if rel := s.rel; rel.Version != prev.Version {
			logs.Line("api", []byte(fmt.Sprintf("%s by user %s", rel.Description, rel.User)))
			logs.Line("api", []byte(fmt.Sprintf("Release v%d created by user %s", rel.Version, rel.User)))
		}
		m.Reconcile(dynos)
	})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "dyno: %v; stopping the dynos of %s\n", err, s.a.Name)
		m.Stop()
	}
}

// appFormation is how many dynos of each type run: -m when given, read
// as for a folder (types it does not name run none unless all=N), else
// the app's formation from its ledger (ps:scale), else one of each type.
// Types named on the command line (only) narrow any of them.
func appFormation(flag string, recorded ledger.Formation, types, only []string) (map[string]int, error) {
	for _, t := range only {
		if !slices.Contains(types, t) {
			return nil, fmt.Errorf("unknown process type %q; the release declares %v", t, types)
		}
	}
	if flag != "" || len(recorded) == 0 {
		return project.ParseFormation(flag, types, only)
	}
	counts := map[string]int{}
	for _, t := range types {
		if len(only) == 0 || slices.Contains(only, t) {
			counts[t] = recorded[t].Quantity
		} else {
			counts[t] = 0
		}
	}
	return counts, nil
}

// basePort is -p, else $PORT, else 5000, as for a folder.
func basePort(flag int) (int, error) {
	if flag > 0 {
		return flag, nil
	}
	if v := os.Getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return 0, fmt.Errorf("PORT=%q in the environment is not a port; unset it or pass -p", v)
		}
		return p, nil
	}
	return 5000, nil
}
