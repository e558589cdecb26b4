package daemon

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/supervisor/drain"
)

// drainCloseGrace is how long an app's drains may go on sending what
// they hold when the app stops: a drain that is down does not hold up
// the daemon's shutdown for longer.
const drainCloseGrace = 2 * time.Second

// newDrains is the app's drain manager, reporting in the daemon's log.
func (d *Daemon) newDrains(name string) *drain.Manager {
	return drain.NewManager(drain.Options{Logf: func(format string, args ...any) {
		d.logf("%s: "+format, append([]any{name}, args...)...)
	}})
}

// closeDrains flushes and stops the app's drains within drainCloseGrace.
func (r *appRun) closeDrains() {
	ctx, cancel := context.WithTimeout(context.Background(), drainCloseGrace)
	defer cancel()
	r.drains.Close(ctx)
}

// DrainJSON is the Platform API's log-drain.
func DrainJSON(d ledger.Drain) map[string]any {
	t := d.Created.UTC().Format(time.RFC3339)
	return map[string]any{"id": d.ID, "url": d.URL, "token": d.Token, "created_at": t, "updated_at": t, "addon": nil}
}

// DrainsJSON is the Platform API's log-drain list.
func DrainsJSON(ds []ledger.Drain) []map[string]any {
	out := []map[string]any{}
	for _, d := range ds {
		out = append(out, DrainJSON(d))
	}
	return out
}

func (d *Daemon) listDrains(w http.ResponseWriter, r *http.Request, a *appRun) {
	ds, err := a.app.Drains()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, DrainsJSON(ds))
}

func (d *Daemon) getDrain(w http.ResponseWriter, r *http.Request, a *appRun) {
	ds, err := a.app.Drains()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	which := r.PathValue("drain")
	i := slices.IndexFunc(ds, func(x ledger.Drain) bool { return x.URL == which || x.Token == which || x.ID == which })
	if i < 0 {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that drain: ⬢ %s has no drain %q", a.name, which)
		return
	}
	writeJSON(w, http.StatusOK, DrainJSON(ds[i]))
}

// createDrain is drains:add: {"url": "syslog://logs.example.com:514"}.
// A URL that is not a drain's, or one the app has, is refused with 422
// and nothing recorded.
func (d *Daemon) createDrain(w http.ResponseWriter, r *http.Request, a *appRun) {
	var req struct {
		URL string `json:"url"`
	}
	user, ok, err := readRequest(w, r, &req, false)
	if !ok {
		return
	}
	if err != nil || req.URL == "" {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", `give the drain's URL: {"url": "syslog://logs.example.com:514"}`)
		return
	}
	dr, err := a.app.AddDrain(req.URL, user)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
		return
	}
	d.Nudge()
	writeJSON(w, http.StatusCreated, DrainJSON(dr))
}

// deleteDrain is drains:remove, by URL or token; it answers with the
// drain removed.
func (d *Daemon) deleteDrain(w http.ResponseWriter, r *http.Request, a *appRun) {
	user, ok := apiUser(w, r)
	if !ok {
		return
	}
	dr, err := a.app.RemoveDrain(r.PathValue("drain"), user)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "%v", err)
		return
	}
	d.Nudge()
	writeJSON(w, http.StatusOK, DrainJSON(dr))
}
