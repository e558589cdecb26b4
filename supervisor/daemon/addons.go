package daemon

import (
	"net/http"
	"slices"
	"time"

	"github.com/dyno-run/dyno/ledger"
)

// The app's add-ons and attachments, as the Platform API's add-on and
// add-on-attachment: what `heroku addons -a APP` lists. The ledger's
// attachments are the truth: an add-on is listed for each app it is
// attached to, owned by the app that created it. Ids are names, as the
// apps' are.

// serviceNames are the services' human names, as Heroku's marketplace
// shows them.
var serviceNames = map[string]string{
	"heroku-postgresql": "Heroku Postgres",
	"heroku-redis":      "Heroku Key-Value Store",
}

// AddonJSON is the Platform API's add-on of the attachments ats, all of
// one add-on, as the app appName sees it.
func AddonJSON(appName string, ats []ledger.Attachment) map[string]any {
	at := ats[0]
	created := at.Created.UTC().Format(time.RFC3339)
	vars := []string{}
	attachments := []map[string]any{}
	for _, x := range ats {
		vars = append(vars, x.Name+"_URL")
		attachments = append(attachments, AttachmentJSON(appName, x))
	}
	owner := map[string]string{"id": at.Owner, "name": at.Owner}
	plan := at.Service + ":" + at.Plan
	return map[string]any{
		"id": at.Addon, "name": at.Addon, "provider_id": at.Addon,
		"addon_service": map[string]any{"id": at.Service, "name": at.Service, "human_name": serviceNames[at.Service]},
		// Nothing is billed on one's own machine.
		"plan":           map[string]any{"id": plan, "name": plan, "price": map[string]any{"cents": 0, "unit": "month"}},
		"billed_price":   map[string]any{"cents": 0, "contract": false, "unit": "month"},
		"app":            owner,
		"billing_entity": map[string]any{"id": at.Owner, "name": at.Owner, "type": "app"},
		"config_vars":    vars,
		"attachments":    attachments,
		"state":          "provisioned",
		"actions":        []any{},
		"web_url":        nil,
		"created_at":     created, "updated_at": created,
	}
}

// AttachmentJSON is the Platform API's add-on-attachment of at, an
// attachment to the app appName.
func AttachmentJSON(appName string, at ledger.Attachment) map[string]any {
	created := at.Created.UTC().Format(time.RFC3339)
	return map[string]any{
		"id": appName + ":" + at.Name, "name": at.Name, "namespace": nil,
		"addon": map[string]any{
			"id": at.Addon, "name": at.Addon,
			"app": map[string]string{"id": at.Owner, "name": at.Owner},
		},
		"app":        map[string]string{"id": appName, "name": appName},
		"web_url":    nil,
		"created_at": created, "updated_at": created,
	}
}

// allAttachments is every app's attachments, by app name, in the
// apps' order.
func (d *Daemon) allAttachments() ([]string, map[string][]ledger.Attachment, error) {
	names, err := d.cfg.Home.List()
	if err != nil {
		return nil, nil, err
	}
	var apps []string
	out := map[string][]ledger.Attachment{}
	for _, n := range names {
		a, err := d.cfg.Home.Open(n)
		if err != nil {
			continue // destroyed since the list
		}
		ats, err := a.Attachments()
		if err != nil {
			return nil, nil, err
		}
		apps = append(apps, n)
		out[n] = ats
	}
	return apps, out, nil
}

// addonsJSON is the add-ons of the attachments ats of the app appName,
// each once, with its attachments to that app.
func addonsJSON(appName string, ats []ledger.Attachment) []map[string]any {
	out := []map[string]any{}
	var seen []string
	for _, at := range ats {
		if slices.Contains(seen, at.Addon) {
			continue
		}
		seen = append(seen, at.Addon)
		var same []ledger.Attachment
		for _, x := range ats {
			if x.Addon == at.Addon {
				same = append(same, x)
			}
		}
		out = append(out, AddonJSON(appName, same))
	}
	return out
}

// listAddons is GET /apps/{app}/addons: the add-ons attached to the
// app, its own and others'.
func (d *Daemon) listAddons(w http.ResponseWriter, r *http.Request, a *appRun) {
	ats, err := a.app.Attachments()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, addonsJSON(a.name, ats))
}

// listAllAddons is GET /addons: every add-on on the machine, once, as
// its owner has it attached.
func (d *Daemon) listAllAddons(w http.ResponseWriter, r *http.Request) {
	apps, ats, err := d.allAttachments()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	out := []map[string]any{}
	for _, n := range apps {
		var own []ledger.Attachment
		for _, at := range ats[n] {
			if at.Owner == n {
				own = append(own, at)
			}
		}
		out = append(out, addonsJSON(n, own)...)
	}
	writeJSON(w, http.StatusOK, out)
}

// listAttachments is GET /apps/{app}/addon-attachments.
func (d *Daemon) listAttachments(w http.ResponseWriter, r *http.Request, a *appRun) {
	ats, err := a.app.Attachments()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	out := []map[string]any{}
	for _, at := range ats {
		out = append(out, AttachmentJSON(a.name, at))
	}
	writeJSON(w, http.StatusOK, out)
}

// listAllAttachments is GET /addon-attachments: every app's, which
// `heroku addons -a APP` reads to show where an add-on is shared.
func (d *Daemon) listAllAttachments(w http.ResponseWriter, r *http.Request) {
	apps, ats, err := d.allAttachments()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	out := []map[string]any{}
	for _, n := range apps {
		for _, at := range ats[n] {
			out = append(out, AttachmentJSON(n, at))
		}
	}
	writeJSON(w, http.StatusOK, out)
}
