package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/attached"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"golang.org/x/sys/unix"
)

// The API's resources, paths and JSON follow Heroku's Platform API
// (the Platform API reference), so that a later step can open it
// to the official Heroku CLI; dyno's own CLI is a client of it. Errors
// are {"id","message"}.
func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /account", d.getAccount)
	mux.HandleFunc("GET /apps", d.listApps)
	// heroku apps lists the user's apps: the account's, every one.
	mux.HandleFunc("GET /users/{user}/apps", d.listUserApps)
	mux.HandleFunc("POST /apps", d.createApp)
	mux.HandleFunc("GET /apps/{app}", d.withApp(d.getApp))
	mux.HandleFunc("PATCH /apps/{app}", d.withApp(d.patchApp))
	mux.HandleFunc("GET /apps/{app}/features", d.withApp(d.listFeatures))
	mux.HandleFunc("GET /apps/{app}/features/{feature}", d.withApp(d.getFeature))
	mux.HandleFunc("PATCH /apps/{app}/features/{feature}", d.withApp(d.patchFeature))
	mux.HandleFunc("GET /apps/{app}/releases", d.withApp(d.listReleases))
	mux.HandleFunc("GET /apps/{app}/releases/{release}", d.withApp(d.getRelease))
	mux.HandleFunc("GET /apps/{app}/releases/{release}/config-vars", d.withApp(d.getReleaseConfig))
	mux.HandleFunc("POST /apps/{app}/releases", d.withApp(d.createRelease))
	mux.HandleFunc("GET /apps/{app}/addons", d.withApp(d.listAddons))
	mux.HandleFunc("GET /apps/{app}/addon-attachments", d.withApp(d.listAttachments))
	mux.HandleFunc("GET /addons", d.listAllAddons)
	mux.HandleFunc("GET /addon-attachments", d.listAllAttachments)
	mux.HandleFunc("GET /apps/{app}/collaborators", d.withApp(d.listCollaborators))
	mux.HandleFunc("GET /apps/{app}/sni-endpoints", d.withApp(d.listSNIEndpoints))
	mux.HandleFunc("GET /apps/{app}/config-vars", d.withApp(d.getConfig))
	mux.HandleFunc("PATCH /apps/{app}/config-vars", d.withApp(d.patchConfig))
	mux.HandleFunc("GET /apps/{app}/domains", d.withApp(d.listDomains))
	mux.HandleFunc("POST /apps/{app}/domains", d.withApp(d.createDomain))
	mux.HandleFunc("DELETE /apps/{app}/domains/{hostname}", d.withApp(d.deleteDomain))
	mux.HandleFunc("GET /apps/{app}/log-drains", d.withApp(d.listDrains))
	mux.HandleFunc("POST /apps/{app}/log-drains", d.withApp(d.createDrain))
	mux.HandleFunc("GET /apps/{app}/log-drains/{drain...}", d.withApp(d.getDrain))
	mux.HandleFunc("DELETE /apps/{app}/log-drains/{drain...}", d.withApp(d.deleteDrain))
	mux.HandleFunc("GET /apps/{app}/formation", d.withApp(d.getFormation))
	mux.HandleFunc("PATCH /apps/{app}/formation", d.withApp(d.patchFormation))
	mux.HandleFunc("GET /apps/{app}/dynos", d.withApp(d.listDynos))
	mux.HandleFunc("POST /apps/{app}/dynos", d.withApp(d.createDyno))
	mux.HandleFunc("DELETE /apps/{app}/dynos", d.withApp(d.restartDynos))
	mux.HandleFunc("DELETE /apps/{app}/dynos/{dyno}", d.withApp(d.restartDynos))
	// A process type's dynos: Heroku's path is formations, plural.
	mux.HandleFunc("DELETE /apps/{app}/formations/{dyno}", d.withApp(d.restartDynos))
	mux.HandleFunc("POST /apps/{app}/formations/{dyno}/actions/stop", d.withApp(d.stopDyno))
	mux.HandleFunc("POST /apps/{app}/dynos/{dyno}/actions/stop", d.withApp(d.stopDyno))
	mux.HandleFunc("POST /apps/{app}/dynos/{dyno}/actions/kill", d.withApp(d.stopDyno))
	mux.HandleFunc("POST /apps/{app}/log-sessions", d.withApp(d.logSession))
	mux.HandleFunc("GET /apps/{app}/log-stream", d.withApp(d.logStream))
	// dyno's own: the CLI changed a ledger and asks for it to take
	// effect now rather than at the next poll.
	mux.HandleFunc("POST /dyno/reconcile", func(w http.ResponseWriter, r *http.Request) {
		d.Nudge()
		w.WriteHeader(http.StatusAccepted)
	})
	return limitBodies(etags(mux))
}

func writeError(w http.ResponseWriter, status int, id, format string, args ...any) {
	writeJSON(w, status, APIError{ID: id, Message: fmt.Sprintf(format, args...)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// withApp resolves {app} to a running app. One created since the main
// loop's last turn is waited for (awaitApp), never taken up here.
func (d *Daemon) withApp(h func(http.ResponseWriter, *http.Request, *appRun)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("app")
		a, err := d.awaitApp(r.Context(), name)
		var notYet notTakenUp
		switch {
		case errors.Is(err, errShuttingDown), errors.As(err, &notYet):
			writeError(w, http.StatusServiceUnavailable, "unavailable", "%v", err)
			return
		case err != nil:
			writeError(w, http.StatusNotFound, "not_found", "Couldn't find that app: %s", strings.ToValidUTF8(name, "?"))
			return
		}
		h(w, r, a)
	}
}

// maxUserBytes bounds a user name from X-Dyno-User.
const maxUserBytes = 256

// apiUser is who the request says it is for the ledger (X-Dyno-User);
// text that is not UTF-8 is refused, as in a body. A request that says
// nothing (the Heroku CLI's) is the account's, whose email the Heroku
// CLI prints as the user of a release.
func apiUser(w http.ResponseWriter, r *http.Request) (string, bool) {
	user := r.Header.Get("X-Dyno-User")
	if user == "" {
		return AccountEmail, true
	}
	if !utf8.ValidString(user) {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "the X-Dyno-User header is not valid UTF-8; send text as UTF-8")
		return "", false
	}
	// It goes into every record the request appends.
	if len(user) > maxUserBytes {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "the X-Dyno-User header is %d bytes, over the %d a user name may take", len(user), maxUserBytes)
		return "", false
	}
	return user, true
}

func (d *Daemon) listApps(w http.ResponseWriter, r *http.Request) {
	names, err := d.cfg.Home.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	out := make([]map[string]any, 0, len(names))
	for _, n := range names {
		a, err := d.cfg.Home.Open(n)
		if err != nil {
			continue // destroyed since the list
		}
		j, err := d.appJSONOf(r, a)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
			return
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// listUserApps is GET /users/{user}/apps: the apps of the one account,
// named by ~ (the Heroku CLI's), its email or its id.
func (d *Daemon) listUserApps(w http.ResponseWriter, r *http.Request) {
	acct, err := d.account()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	if u := r.PathValue("user"); u != "~" && u != acct.Email && u != acct.ID {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that user: this daemon has one account, %s (or ~)", acct.Email)
		return
	}
	d.listApps(w, r)
}

func (d *Daemon) getApp(w http.ResponseWriter, r *http.Request, a *appRun) {
	out, err := d.appJSONOf(r, a.app)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// patchApp is maintenance:on and :off, as the Platform API's app
// update: {"maintenance": true}. It answers with the app.
func (d *Daemon) patchApp(w http.ResponseWriter, r *http.Request, a *appRun) {
	on, user, ok := readSwitch(w, r, "maintenance", `give maintenance mode as a boolean: {"maintenance": true}; it is the one attribute of an app that can be changed`)
	if !ok {
		return
	}
	if _, err := a.setMaintenance(on, user); err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	d.getApp(w, r, a)
}

// readRequest reads the JSON body of a request that changes an app into
// v, and who asks (X-Dyno-User). A body too large, a user or text that
// is not UTF-8 has been answered when ok is false; a body that is not
// v's JSON comes back as err, for the caller to answer with its own
// usage line. An empty body is allowed when emptyOK, and leaves v as
// it is.
func readRequest(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) (user string, ok bool, err error) {
	body, ok := readBody(w, r)
	if !ok {
		return "", false, nil
	}
	if user, ok = apiUser(w, r); !ok {
		return "", false, nil
	}
	if len(body) == 0 && emptyOK {
		return user, true, nil
	}
	if err := checkText(body); err != nil {
		decodeError(w, err)
		return "", false, nil
	}
	return user, true, decodeJSON(body, v)
}

// readSwitch reads a PATCH body that turns one thing on or off,
// {"KEY": bool}, and who asks; on bad input it has answered.
func readSwitch(w http.ResponseWriter, r *http.Request, key, usage string) (on bool, user string, ok bool) {
	var req map[string]json.RawMessage
	user, ok, err := readRequest(w, r, &req, false)
	if !ok {
		return false, "", false
	}
	if err != nil || string(req[key]) == "null" || json.Unmarshal(req[key], &on) != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%s", usage)
		return false, "", false
	}
	return on, user, true
}

// switched finishes a PATCH that turned something on or off: an error
// answered, or the API line logged and the main loop nudged when it
// changed anything. It reports whether the handler goes on to answer.
func (d *Daemon) switched(w http.ResponseWriter, a *appRun, changed bool, err error, event, user string) bool {
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return false
	}
	if changed {
		a.logs.Line("api", []byte(event+" by user "+user))
		d.Nudge()
	}
	return true
}

// FeatureJSON is the Platform API's app-feature.
func FeatureJSON(f app.Feature, enabled bool) map[string]any {
	return map[string]any{
		"id": f.Name, "name": f.Name, "display_name": f.Name, "description": f.Description,
		"doc_url": f.Doc, "enabled": enabled, "state": f.State, "feedback_email": "",
	}
}

func (d *Daemon) listFeatures(w http.ResponseWriter, r *http.Request, a *appRun) {
	on, err := a.app.EnabledFeatures()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	out := []map[string]any{}
	for _, f := range app.Features() {
		out = append(out, FeatureJSON(f, slices.Contains(on, f.Name)))
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) getFeature(w http.ResponseWriter, r *http.Request, a *appRun) {
	f, err := app.FindFeature(r.PathValue("feature"))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "%v", err)
		return
	}
	on, err := a.app.EnabledFeatures()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, FeatureJSON(f, slices.Contains(on, f.Name)))
}

// patchFeature is features:enable and :disable: {"enabled": true}.
func (d *Daemon) patchFeature(w http.ResponseWriter, r *http.Request, a *appRun) {
	f, err := app.FindFeature(r.PathValue("feature"))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "%v", err)
		return
	}
	on, user, ok := readSwitch(w, r, "enabled", `give the feature's state as a boolean: {"enabled": true}`)
	if !ok {
		return
	}
	changed, err := a.app.SetFeature(f.Name, on, user)
	if !d.switched(w, a, changed, err, app.FeatureEvent(f.Name, on), user) {
		return
	}
	writeJSON(w, http.StatusOK, FeatureJSON(f, on))
}

// ReleaseJSON is the Platform API's release.
func ReleaseJSON(r ledger.Release, current int) map[string]any {
	return map[string]any{
		"id": strconv.Itoa(r.Version), "version": r.Version, "description": r.Description, "status": r.Status,
		"current": r.Version == current, "eligible_for_rollback": app.Eligible(r), "addon_plan_names": []string{},
		"created_at": r.Time.UTC().Format(time.RFC3339), "user": map[string]string{"email": r.User},
	}
}

// listReleases is the app's releases, oldest first; with a Range
// header, the page it asks for (Heroku's "version ..; max=15,
// order=desc"), answered 206 with the Next-Range of the next page when
// more follow, 200 when none does (the Heroku CLI's paging goes on
// while it gets 206).
func (d *Daemon) listReleases(w http.ResponseWriter, r *http.Request, a *appRun) {
	var rg releaseRange
	ranged := r.Header.Get("Range") != ""
	if ranged {
		var err error
		if rg, err = parseReleaseRange(r.Header.Get("Range")); err != nil {
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "invalid_range", "%v", err)
			return
		}
	}
	rels, err := a.app.Ledger.Releases(0)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	cur, err := currentVersion(a.app)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	slices.SortFunc(rels, func(x, y ledger.Release) int { return x.Version - y.Version })
	status, more := http.StatusOK, false
	if ranged {
		rels, more = rg.page(rels)
		if len(rels) > 0 {
			first, last := rels[0].Version, rels[len(rels)-1].Version
			w.Header().Set("Content-Range", fmt.Sprintf("version %d..%d%s", first, last, rg.params()))
			if more {
				w.Header().Set("Next-Range", fmt.Sprintf("version ]%d..%s", last, rg.params()))
				status = http.StatusPartialContent
			}
		}
	}
	out := make([]map[string]any, 0, len(rels))
	for _, rel := range rels {
		out = append(out, ReleaseJSON(rel, cur))
	}
	writeJSON(w, status, out)
}

func (d *Daemon) getConfig(w http.ResponseWriter, r *http.Request, a *appRun) {
	st, err := a.app.Ledger.State()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	vars := map[string]string{}
	if st.Current != nil {
		maps.Copy(vars, st.Current.ConfigVars)
	}
	writeJSON(w, http.StatusOK, vars)
}

// patchConfig sets and unsets config vars ({"A": "1", "B": null}) in a
// new release, as the Platform API does, and answers with the whole set.
// When the app has a release phase, the new release is pending and the
// daemon runs its phase in the background, as Heroku does: the answer
// comes at once, and the release's status (GET releases) turns
// succeeded or failed when the phase ends.
func (d *Daemon) patchConfig(w http.ResponseWriter, r *http.Request, a *appRun) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	user, ok := apiUser(w, r)
	if !ok {
		return
	}
	set, unset, err := DecodeConfigPatch(body)
	if err != nil {
		decodeError(w, err)
		return
	}
	rel, err := a.app.ChangeConfig(set, unset, user)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
		return
	}
	a.logs.Line("api", []byte(fmt.Sprintf("%s by user %s", rel.Description, user)))
	a.logs.Line("api", []byte(fmt.Sprintf("Release v%d created by user %s", rel.Version, user)))
	if rel.Status == ledger.StatusPending {
		a.startPhase(rel)
	}
	d.Nudge()
	d.getConfig(w, r, a)
}

// DomainJSON is the Platform API's domain: kind "heroku" for the app's
// default hostname (APP.DOMAIN, under the router's domain), "custom" for
// a custom domain, whose DNS target (cname) is the default hostname.
// There is no DNS check here, so every domain has succeeded; its
// sni_endpoint is the certificate the app serves for it, if any.
func DomainJSON(appName, hostname, routerDomain string, certs []ledger.Cert, created time.Time) map[string]any {
	def := app.DefaultHost(appName, routerDomain)
	kind, cname := "custom", any(def)
	if hostname == def {
		kind, cname = "heroku", nil
	}
	var sni any
	for _, c := range certs {
		if c.Domain == hostname {
			sni = map[string]string{"id": c.Fingerprint, "name": c.Fingerprint}
		}
	}
	at := created.UTC().Format(time.RFC3339)
	return map[string]any{
		"id": hostname, "hostname": hostname, "kind": kind, "cname": cname, "status": "succeeded",
		"app": map[string]string{"id": appName, "name": appName}, "acm_status": nil, "acm_status_reason": nil,
		"sni_endpoint": sni, "created_at": at, "updated_at": at,
	}
}

// DomainsJSON lists the app's domains as the Platform API does: its
// default hostname first, then its custom domains.
func DomainsJSON(a *app.App, routerDomain string) ([]map[string]any, error) {
	st, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	created, added, err := a.DomainTimes()
	if err != nil {
		return nil, err
	}
	out := []map[string]any{DomainJSON(a.Name, app.DefaultHost(a.Name, routerDomain), routerDomain, st.Certs, created)}
	for _, d := range st.Domains {
		out = append(out, DomainJSON(a.Name, d, routerDomain, st.Certs, added[d]))
	}
	return out, nil
}

func (d *Daemon) listDomains(w http.ResponseWriter, r *http.Request, a *appRun) {
	// The domain the router serves by: the API says what it routes.
	domain := d.cfg.Router.Domain
	out, err := DomainsJSON(a.app, domain)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// createDomain is domains:add: {"hostname": "www.example.com"}. A host
// another app holds, or this one, is refused with 422 and nothing
// recorded.
func (d *Daemon) createDomain(w http.ResponseWriter, r *http.Request, a *appRun) {
	var req struct {
		Hostname string `json:"hostname"`
	}
	user, ok, err := readRequest(w, r, &req, false)
	if !ok {
		return
	}
	if err != nil || req.Hostname == "" {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", `give the domain: {"hostname": "www.example.com"}`)
		return
	}
	// The domain the router serves by: the API says what it routes.
	domain := d.cfg.Router.Domain
	host, err := a.app.AddDomain(req.Hostname, domain, user)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
		return
	}
	d.Nudge()
	st, _ := a.app.Ledger.State()
	var certs []ledger.Cert
	if st != nil {
		certs = st.Certs
	}
	writeJSON(w, http.StatusCreated, DomainJSON(a.name, host, domain, certs, time.Now()))
}

// deleteDomain is domains:remove; it answers with the domain removed.
func (d *Daemon) deleteDomain(w http.ResponseWriter, r *http.Request, a *appRun) {
	user, ok := apiUser(w, r)
	if !ok {
		return
	}
	// The domain the router serves by: the API says what it routes.
	domain := d.cfg.Router.Domain
	host := r.PathValue("hostname")
	created, added, err := a.app.DomainTimes()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	host, err = a.app.RemoveDomain(host, user)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "%v", err)
		return
	}
	d.Nudge()
	if t, ok := added[host]; ok {
		created = t
	}
	writeJSON(w, http.StatusOK, DomainJSON(a.name, host, domain, nil, created))
}

// patchFormation is ps:scale over the API: {"updates": [{"type": "web",
// "quantity": 2, "size": "standard-2x"}]}. A quantity over the limit is
// refused by ApplyScale (app.ErrFormationLimit) with nothing recorded.
func (d *Daemon) patchFormation(w http.ResponseWriter, r *http.Request, a *appRun) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	user, ok := apiUser(w, r)
	if !ok {
		return
	}
	changes, err := DecodeFormationPatch(body)
	if err != nil {
		decodeError(w, err)
		return
	}
	f, err := a.scale(changes, user)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
		return
	}
	st, _ := a.app.Ledger.State()
	writeJSON(w, http.StatusOK, FormationJSON(f, st.Current))
}

// FormationJSON is the Platform API's formation list.
func FormationJSON(f ledger.Formation, rel *ledger.Release) []map[string]any {
	out := []map[string]any{}
	for _, t := range slices.Sorted(maps.Keys(f)) {
		e := f[t]
		out = append(out, map[string]any{"type": t, "quantity": e.Quantity, "size": app.SizeName(e.Size), "command": rel.ProcessTypes[t]})
	}
	return out
}

func (d *Daemon) getFormation(w http.ResponseWriter, r *http.Request, a *appRun) {
	st, err := a.app.Ledger.State()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	if st.Current == nil {
		writeJSON(w, http.StatusOK, []any{})
		return
	}
	writeJSON(w, http.StatusOK, FormationJSON(app.FormationOf(st.Formation, st.Current), st.Current))
}

func (d *Daemon) listDynos(w http.ResponseWriter, r *http.Request, a *appRun) {
	out := []Dyno{}
	for _, s := range a.sup.Status() {
		out = append(out, NewDyno(s, a.name))
	}
	// Attached one-offs run in their users' terminals, under dyno run
	// rather than here; each registers itself in the app's folder.
	runs, err := attached.List(attached.Dir(a.app.Dir))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	for _, s := range runs {
		out = append(out, NewDyno(s, a.name))
	}
	writeJSON(w, http.StatusOK, out)
}

// createDyno is a one-off: detached (dyno run --detached, heroku
// run:detached), its output in the app's logs; or, over TCP, attached
// (heroku run), joined to its client through a rendezvous on the same
// port (attach.go). Over the socket, attached runs are dyno run's own,
// in the caller's terminal.
func (d *Daemon) createDyno(w http.ResponseWriter, r *http.Request, a *appRun) {
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	body, err := DecodeDynoCreate(raw)
	if err != nil {
		decodeError(w, err)
		return
	}
	user, ok := apiUser(w, r)
	if !ok {
		return
	}
	if user == "" {
		user = AccountEmail
	}
	if body.Attach {
		d.createAttached(w, r, a, body, user)
		return
	}
	c, err := a.runDetached(body, user)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
		return
	}
	writeJSON(w, http.StatusCreated, NewDyno(supervisor.DynoStatus{Name: c.Name, Type: c.Type, Command: c.Command, State: supervisor.Starting, Since: time.Now(), Size: c.Size}, a.name))
}

// AttachedDyno is the Platform API's dyno for heroku run: the dyno, and
// where its client attaches.
type AttachedDyno struct {
	Dyno
	AttachURL string `json:"attach_url"`
}

// createAttached answers heroku run's POST: run.N, starting, and its
// attach_url, rendezvous://HOST:PORT/SECRET. HOST:PORT is the request's
// Host, the address the client reached: through a tunnel, the tunnel's
// end, never this daemon's bind address.
func (d *Daemon) createAttached(w http.ResponseWriter, r *http.Request, a *appRun, body DynoRequest, user string) {
	if !overTCP(r) || d.tcp == nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "attached runs are made by the dyno run command itself; ask for a detached one here, or attach over the API's TCP port ([api] listen) as heroku run does")
		return
	}
	host := r.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		// No port in Host: the client reached the default one for its
		// scheme, which is not this; say the one this listens on.
		_, port, _ := net.SplitHostPort(d.tcp.listenAddr().String())
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	ad, err := a.newAttached(body, user)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
		return
	}
	secret, err := d.tcp.rdv.Add(ad.attach, ad.expire)
	if err != nil {
		ad.finish(ad.run.Failed)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "%v", err)
		return
	}
	ad.setSecret(secret)
	st := supervisor.DynoStatus{Name: ad.cfg.Name, Type: ad.run.Type(), Command: body.Command, State: supervisor.Starting, Since: time.Now(), Size: ad.cfg.Size}
	writeJSON(w, http.StatusCreated, AttachedDyno{Dyno: NewDyno(st, a.name), AttachURL: "rendezvous://" + host + "/" + secret})
}

func (d *Daemon) restartDynos(w http.ResponseWriter, r *http.Request, a *appRun) {
	user, ok := apiUser(w, r)
	if !ok {
		return
	}
	if err := a.restart(r.PathValue("dyno"), user); err != nil {
		writeError(w, http.StatusNotFound, "not_found", "%v", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

func (d *Daemon) stopDyno(w http.ResponseWriter, r *http.Request, a *appRun) {
	stop, sig := a.sup.Stop, unix.SIGTERM
	if r.URL.Path[len(r.URL.Path)-len("/kill"):] == "/kill" {
		stop, sig = a.sup.Kill, unix.SIGKILL
	}
	name := r.PathValue("dyno")
	err := stop(name)
	if errors.Is(err, supervisor.ErrNoDyno) && a.stopAttached(name, sig) {
		// heroku run's run.N, which this daemon runs.
		err = nil
	}
	if errors.Is(err, supervisor.ErrNoDyno) {
		// An attached run.N runs under the dyno run that registered it;
		// stopping it ends it for good, as stopping a one-off does.
		if aerr := attached.Signal(attached.Dir(a.app.Dir), name, sig); aerr == nil {
			err = nil
		} else if !errors.Is(aerr, attached.ErrNoRun) {
			err = aerr
		}
	}
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "%v", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

// logSession answers with where to read the stream, as the Platform API
// does. On the socket the URL is a path on it, the app's log-stream;
// over TCP it is an absolute URL on the host the client used, with a
// capability in its path (logsession.go), read as Server-Sent Events.
func (d *Daemon) logSession(w http.ResponseWriter, r *http.Request, a *appRun) {
	var body struct {
		Dyno     string `json:"dyno"`
		DynoName string `json:"dyno_name"`
		Type     string `json:"type"`
		Source   string `json:"source"`
		Tail     bool   `json:"tail"`
		Lines    int    `json:"lines"`
	}
	raw, ok := readBody(w, r)
	if !ok {
		return
	}
	if len(raw) > 0 {
		if err := checkText(raw); err != nil {
			decodeError(w, err)
			return
		}
		json.Unmarshal(raw, &body)
	}
	if overTCP(r) {
		s := &logSession{app: a.name, tail: body.Tail, lines: logLines(body.Lines),
			filter: logstore.Filter{Dyno: firstNonEmpty(body.DynoName, body.Dyno, body.Type), Source: body.Source}}
		if body.Lines == 0 {
			s.lines = 100
		}
		id, err := d.logSessions.add(s)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "%v", err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"logplex_url": "https://" + r.Host + "/log-stream/" + id})
		return
	}
	q := url.Values{}
	for k, v := range map[string]string{"dyno": firstNonEmpty(body.DynoName, body.Dyno, body.Type), "source": body.Source} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if body.Tail {
		q.Set("tail", "true")
	}
	if body.Lines > 0 {
		q.Set("lines", strconv.Itoa(body.Lines))
	}
	writeJSON(w, http.StatusCreated, map[string]string{"logplex_url": "/apps/" + a.name + "/log-stream?" + q.Encode()})
}

// logLines is how many stored lines a stream starts with, for a request
// of n: Heroku's most is 1,500; 0 or less is none, a tail alone.
func logLines(n int) int {
	return min(max(n, 0), 1500)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// logStream writes the last lines stored, then, with tail, every line
// stored after them, read from the store's files with a cursor: the
// lines of the dynos, which this daemon writes, and those other
// processes append (the CLI's API events, attached one-offs' state
// lines), each once. A reader too slow falls behind in the files, never
// stalls the dynos.
func (d *Daemon) logStream(w http.ResponseWriter, r *http.Request, a *appRun) {
	q := r.URL.Query()
	f := logstore.Filter{Dyno: q.Get("dyno"), Source: q.Get("source")}
	n := 100
	if v, err := strconv.Atoi(q.Get("lines")); err == nil && v >= 0 {
		n = logLines(v)
	}
	tail := q.Get("tail") == "true"
	var wake *logstore.Tail
	if tail {
		// The hub wakes the stream when this daemon writes a line, and
		// ends it when the app is closed; lines other processes append
		// are found at the next poll.
		wake = a.hub.Subscribe(f, 1)
		defer wake.Close()
	}
	lines, cur, err := logstore.Follow(a.app.LogsDir(), f, n)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	defer cur.Close()
	// The stream outlives the server's WriteTimeout: each write gets a
	// deadline of its own, so a tail runs as long as its reader reads,
	// and a reader that stops reading is let go. (net/http lifts the
	// read deadline itself once a request without a body is read.)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(lines []logstore.Line) bool {
		if len(lines) == 0 {
			return true
		}
		rc.SetWriteDeadline(time.Now().Add(d.cfg.WriteTimeout))
		for _, l := range lines {
			if _, err := w.Write(append(l.Raw, '\n')); err != nil {
				return false
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !send(lines) || !tail {
		return
	}
	if flusher != nil {
		// The status and headers, even with no history.
		rc.SetWriteDeadline(time.Now().Add(d.cfg.WriteTimeout))
		flusher.Flush()
	}
	followLogs(r.Context(), wake, cur, 0, send)
}

// logPoll is how often a log stream looks for lines that other
// processes appended to the store.
const logPoll = 250 * time.Millisecond

// followLogs gives send the lines stored after cur's position as they
// come, until ctx ends, the app's hub closes (wake, its subscription),
// send returns false or the store fails. The hub wakes it when this
// daemon writes a line; lines other processes append are found at the
// next poll. With keepAlive > 0, send gets no lines when none have
// come for that long, so that a stream can show it is alive.
func followLogs(ctx context.Context, wake *logstore.Tail, cur *logstore.Cursor, keepAlive time.Duration, send func([]logstore.Line) bool) error {
	poll := time.NewTicker(logPoll)
	defer poll.Stop()
	var quiet time.Duration
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-wake.Lines():
			if !ok {
				return nil
			}
		case <-poll.C:
		}
		lines, err := cur.Next()
		if len(lines) == 0 && err == nil {
			if quiet += logPoll; keepAlive <= 0 || quiet < keepAlive {
				continue
			}
		}
		quiet = 0
		if !send(lines) || err != nil {
			return err
		}
	}
}
