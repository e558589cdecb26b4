package daemon

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/appmetrics"
)

// The actions the API and the dashboard share: each records what the
// CLI records (the ledger, with the user) and says it in the app's
// logs as Heroku's API does, so the two can never differ.

// scale records a new formation and says so in the app's logs.
func (r *appRun) scale(changes []app.Scale, user string) (ledger.Formation, error) {
	f, err := r.app.ApplyScale(changes, slices.Sorted(maps.Keys(r.sizes)), user)
	if err != nil {
		return nil, err
	}
	_, scaled := app.FormationText(f)
	r.logs.Line("api", []byte("Scaled to "+scaled+" by user "+user))
	r.d.Nudge()
	return f, nil
}

// rollback makes release "Rollback to vN" and starts its phase if it
// has one.
func (r *appRun) rollback(v int, user string) (ledger.Release, error) {
	rel, err := r.app.Rollback(v, user)
	if err != nil {
		return ledger.Release{}, err
	}
	r.logs.Line("api", []byte(rel.Description+" by user "+user))
	r.logs.Line("api", []byte(fmt.Sprintf("Release v%d created by user %s", rel.Version, user)))
	if rel.Status == ledger.StatusPending {
		r.startPhase(rel)
	}
	r.d.Nudge()
	return rel, nil
}

// setMaintenance turns maintenance mode on or off; changed is false
// when it already was so.
func (r *appRun) setMaintenance(on bool, user string) (changed bool, err error) {
	changed, err = r.app.SetMaintenance(on, user)
	if err != nil || !changed {
		return changed, err
	}
	r.logs.Line("api", []byte(app.MaintenanceEvent(on)+" by user "+user))
	r.d.Nudge()
	return true, nil
}

// restart restarts the app's dynos that match (all when ""), says who
// asked in its logs, and marks it on the dashboard's charts. A restart
// makes no ledger record, on Heroku as here: it changes no release.
func (r *appRun) restart(match, user string) error {
	if err := r.sup.Restart(match); err != nil {
		return err
	}
	what := "all dynos"
	if match != "" {
		what = match
	}
	r.logs.Line("api", []byte("Restart "+what+" by user "+user))
	r.event(appmetrics.Event{Time: time.Now(), Kind: "restart", Text: "Restart " + what + " by " + user})
	return nil
}
