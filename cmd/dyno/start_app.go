package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
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
// vars as the environment, commands run after .profile.d.
func appPlan(o startOptions, only []string, spawner *isolate.Spawner) (*startPlan, error) {
	a, s, err := openAppState(o.app)
	if err != nil {
		return nil, err
	}
	rel, err := release.Current(a.Name, s)
	if err != nil {
		return nil, err
	}
	// Held while dynos run: slugs:gc leaves this slug alone.
	hold, err := a.Home().Slugs().Acquire(rel.Slug)
	if err != nil {
		return nil, err
	}
	types := app.FormationTypes(rel)
	if len(types) == 0 {
		hold.Close()
		return nil, fmt.Errorf("%s v%d declares no process types; add a Procfile and build again", a.Name, rel.Version)
	}
	// The recorded formation, checked against the limit: a ledger may
	// hold any number (an older dyno, a hand).
	recorded, over, err := a.Formation(s)
	if err != nil {
		hold.Close()
		return nil, err
	}
	if s.Formation == nil {
		recorded = nil // never scaled: one of each, as Foreman does
	}
	if over != "" {
		fmt.Fprintf(os.Stderr, "dyno: %s\n", over)
	}
	counts, err := appFormation(o.formation, recorded, types, only)
	if err != nil {
		hold.Close()
		return nil, err
	}
	if max, _ := a.Home().MaxQuantity(); o.formation != "" {
		for _, t := range types {
			if counts[t] > max {
				hold.Close()
				return nil, fmt.Errorf("-m %s: %d dynos of %s, over the limit of %d of a type; ask for %d or fewer, or raise formation.max_quantity in %s",
					o.formation, counts[t], t, max, max, a.Home().SizesFile())
			}
		}
	}
	base, err := basePort(o.port)
	if err != nil {
		hold.Close()
		return nil, err
	}
	r, err := appRunner(spawner, a, rel.Slug, o.isolate, true, true)
	if err != nil {
		hold.Close()
		return nil, err
	}
	r.Profile = true
	spawner.SetPrewarm(true)
	spawner.WarmUp(r.StateDir, r.IDs)
	var quota int64
	if r.Cgroups != nil {
		quota = r.Size.Memory
	}
	plan := &startPlan{types: types, runner: r, spawner: spawner, cleanup: func() {
		spawner.Close()
		hold.Close()
	}}
	f := ledger.Formation{}
	for t, n := range counts {
		f[t] = ledger.FormationEntry{Quantity: n}
	}
	plan.formation = release.Dynos(rel, f, release.Options{BasePort: base, Quota: func(string) int64 { return quota }})
	if len(plan.formation) == 0 {
		plan.cleanup()
		hint := ""
		if len(only) == 0 {
			hint = project.NotNamedHint(o.formation)
		}
		return nil, fmt.Errorf("the formation runs no dynos of %s; give one a count, as in -m %s=1%s", a.Name, types[0], hint)
	}
	return plan, nil
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
