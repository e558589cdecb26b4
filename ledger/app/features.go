package app

import (
	"fmt"
	"slices"

	"github.com/dyno-run/dyno/ledger"
)

// A Feature is an app feature, as Heroku's features:* commands list
// them: one a user turns on or off per app, outside releases.
type Feature struct {
	Name        string
	Description string
	Doc         string // Heroku's article about it
	// State is Heroku's availability: "general" for a feature any app
	// may enable, "beta" for one still being tried.
	State string
}

// Features is every feature dyno has, by name. Each is one the daemon
// acts on; a name Heroku has that dyno does not implement is unknown
// rather than recorded and ignored.
func Features() []Feature {
	return []Feature{
		{Name: "preboot", Description: "Provide seamless web dyno deploys", Doc: "https://devcenter.heroku.com/articles/preboot", State: "general"},
		{Name: "log-runtime-metrics", Description: "Emit dyno resource usage information into app logs", Doc: "https://devcenter.heroku.com/articles/log-runtime-metrics", State: "beta"},
	}
}

// FindFeature returns the feature called name.
func FindFeature(name string) (Feature, error) {
	for _, f := range Features() {
		if f.Name == name {
			return f, nil
		}
	}
	names := make([]string, 0, len(Features()))
	for _, f := range Features() {
		names = append(names, f.Name)
	}
	return Feature{}, fmt.Errorf("Couldn't find that feature: %q is not a feature dyno has; use one of %v (dyno features lists them)", name, names)
}

// EnabledFeatures returns the names of the app's enabled features,
// sorted.
func (a *App) EnabledFeatures() ([]string, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	return s.Features, nil
}

// SetFeature enables or disables the feature name for the app, and
// reports whether that changed anything: enabling an enabled feature
// writes nothing, as Heroku's does nothing.
func (a *App) SetFeature(name string, enabled bool, user string) (changed bool, err error) {
	if _, err := FindFeature(name); err != nil {
		return false, err
	}
	_, err = a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		if slices.Contains(s.Features, name) == enabled {
			return nil, nil
		}
		next := slices.DeleteFunc(slices.Clone(s.Features), func(f string) bool { return f == name })
		if enabled {
			next = append(next, name)
			slices.Sort(next)
		}
		if next == nil {
			next = []string{}
		}
		changed = true
		return []ledger.Record{{Type: ledger.TypeFeatures, User: user, Features: next}}, nil
	})
	if err != nil {
		return false, fmt.Errorf("%s %s for ⬢ %s: %w", featureVerb(enabled), name, a.Name, err)
	}
	return changed, nil
}

// Maintenance reports whether the app is in maintenance mode.
func (a *App) Maintenance() (bool, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return false, err
	}
	return s.Maintenance, nil
}

// SetMaintenance turns maintenance mode on or off for the app, and
// reports whether that changed anything: turning it on when it is on
// writes nothing.
func (a *App) SetMaintenance(on bool, user string) (changed bool, err error) {
	_, err = a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		if s.Maintenance == on {
			return nil, nil
		}
		changed = true
		return []ledger.Record{{Type: ledger.TypeMaintenance, User: user, Maintenance: &on}}, nil
	})
	if err != nil {
		return false, fmt.Errorf("%s maintenance mode for ⬢ %s: %w", featureVerb(on), a.Name, err)
	}
	return changed, nil
}

// MaintenanceEvent is the API event Heroku logs when maintenance mode
// changes, "Enable Maintenance mode", to which the log line adds " by
// user ann".
func MaintenanceEvent(on bool) string {
	return featureVerb(on) + " Maintenance mode"
}

// FeatureEvent is the API event for a feature's change, in the same
// form: "Enable preboot".
func FeatureEvent(name string, enabled bool) string {
	return featureVerb(enabled) + " " + name
}

func featureVerb(on bool) string {
	if on {
		return "Enable"
	}
	return "Disable"
}
