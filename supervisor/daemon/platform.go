package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dyno-run/dyno/buildpacks/gitpush"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/logstore"
)

// The parts of the Platform API that the Heroku CLI's commands need
// beyond what dyno's own CLI uses: creating apps, one release and
// rollback, release ranges, and the lists apps:info and domains:add ask
// for (add-ons, collaborators, SNI endpoints), which a dyno box answers
// with what it has.

// overTCP says whether r came over the API's TCP listener (TLS), not the
// unix socket: URLs handed to the client (logplex_url, git_url) are then
// absolute, built from the Host the client used to reach the daemon
// (through a tunnel, it is the client's end of it).
func overTCP(r *http.Request) bool {
	_, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return ok
}

// gitURL is where the app's repository is pushed to: over TCP, Heroku's
// https://HOST/APP.git on the API's own host and port; on the socket,
// its path on this machine, as dyno git:remote sets it.
func gitURL(r *http.Request, a *app.App) string {
	if overTCP(r) {
		return "https://" + r.Host + "/" + a.Name + ".git"
	}
	return a.RepoDir()
}

// appJSON is the Platform API's app. The owner is the daemon's one
// account: the Heroku CLI lists an app as the user's own only when
// owner.email is /account's email.
func (d *Daemon) appJSON(r *http.Request, a *app.App, st *ledger.State) map[string]any {
	acct, _ := d.account()
	var slugSize int64
	if st.Current != nil && st.Current.Slug != "" {
		if p, err := a.Home().Slugs().Path(st.Current.Slug); err == nil {
			if fi, err := os.Stat(p); err == nil {
				slugSize = fi.Size()
			}
		}
	}
	stack := map[string]string{"id": app.Stack, "name": app.Stack}
	return map[string]any{
		"id": a.Name, "name": a.Name, "owner": map[string]string{"id": acct.ID, "email": AccountEmail},
		"stack": stack, "build_stack": stack, "maintenance": st.Maintenance,
		"web_url": d.cfg.Router.URL(a.Name), "git_url": gitURL(r, a),
		"region":     map[string]string{"id": "us", "name": "us"},
		"generation": map[string]string{"name": "cedar"},
		// Heroku's create_status; another value is printed by apps:info.
		"create_status": "complete", "acm": false,
		"repo_size": nil, "slug_size": slugSize,
	}
}

// appJSONOf is appJSON for an app read afresh.
func (d *Daemon) appJSONOf(r *http.Request, a *app.App) (map[string]any, error) {
	st, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	return d.appJSON(r, a, st), nil
}

// createApp is apps:create: {"name": "demo"}, or {} for a made-up name,
// with the app's v1 and its git repository, as dyno apps:create makes
// them. A name that is taken is Heroku's 422 "Name X is already taken",
// and nothing is made.
func (d *Daemon) createApp(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name   *string `json:"name"`
		Region *string `json:"region"`
		Stack  *string `json:"stack"`
	}
	user, ok, err := readRequest(w, r, &req, true)
	if !ok {
		return
	}
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", `give the app: {"name": "demo"}, or {} for a made-up name`)
		return
	}
	// A dyno box is one region and one stack: another is refused
	// rather than ignored, so that nobody believes the app runs there.
	if req.Region != nil && *req.Region != "" && *req.Region != "us" {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Region %s is not available here: a dyno box runs its apps on itself, in region us", *req.Region)
		return
	}
	if req.Stack != nil && *req.Stack != "" && *req.Stack != app.Stack {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Stack %s is not available here; apps run on %s", *req.Stack, app.Stack)
		return
	}
	h := d.cfg.Home
	var a *app.App
	if req.Name == nil || *req.Name == "" {
		rnd := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		a, err = h.CreateUnnamed(func() string { return app.MadeUpName(rnd) }, user)
	} else {
		name := *req.Name
		if err = app.ValidName(name); err == nil {
			err = h.CheckDefaultHost(name, d.cfg.Router.Domain)
		}
		if err == nil {
			a, err = h.Create(name, user)
		}
		if errors.Is(err, app.ErrExists) {
			writeError(w, http.StatusUnprocessableEntity, "invalid_params", "Name %s is already taken", name)
			return
		}
	}
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
		return
	}
	logstore.AppendLines(a.LogsDir(), "app", "api", time.Now(), "Initial release by user "+user, "Release v1 created by user "+user)
	// The repository is made before the answer: the CLI adds a remote
	// that a push may use at once.
	if err := gitpush.EnsureApp(r.Context(), a); err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	d.Nudge()
	out, err := d.appJSONOf(r, a)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// currentVersion is the version of the app's current release, 0 if none.
func currentVersion(a *app.App) (int, error) {
	st, err := a.Ledger.State()
	if err != nil {
		return 0, err
	}
	if st.Current == nil {
		return 0, nil
	}
	return st.Current.Version, nil
}

// releaseVersion reads {id_or_version}: a release's id is its version,
// and "v3" is taken as the Heroku CLI's users write it.
func releaseVersion(s string) (int, bool) {
	v, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	return v, err == nil && v > 0
}

// getRelease is releases:info and rollback vN's look-up.
func (d *Daemon) getRelease(w http.ResponseWriter, r *http.Request, a *appRun) {
	rel, ok := findRelease(w, r, a)
	if !ok {
		return
	}
	cur, err := currentVersion(a.app)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, ReleaseJSON(*rel, cur))
}

// getReleaseConfig is the config vars a release ran with (releases:info
// prints them with --shell).
func (d *Daemon) getReleaseConfig(w http.ResponseWriter, r *http.Request, a *appRun) {
	rel, ok := findRelease(w, r, a)
	if !ok {
		return
	}
	vars := map[string]string{}
	maps.Copy(vars, rel.ConfigVars)
	writeJSON(w, http.StatusOK, vars)
}

// findRelease is the release {release} names; when there is none it has
// answered.
func findRelease(w http.ResponseWriter, r *http.Request, a *appRun) (*ledger.Release, bool) {
	v, ok := releaseVersion(r.PathValue("release"))
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that release: give its version, like 3 or v3")
		return nil, false
	}
	rel, err := a.app.Ledger.Release(v)
	if errors.Is(err, ledger.ErrNoRelease) {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that release: %s has no v%d", a.name, v)
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return nil, false
	}
	return rel, true
}

// createRelease is releases:rollback: {"release": "<id or version>"}
// makes a new release with that one's code and config vars, as dyno
// rollback does.
func (d *Daemon) createRelease(w http.ResponseWriter, r *http.Request, a *appRun) {
	var req struct {
		Release json.RawMessage `json:"release"`
	}
	user, ok, err := readRequest(w, r, &req, false)
	if !ok {
		return
	}
	var target string
	if err != nil || json.Unmarshal(req.Release, &target) != nil {
		// The id may come as a number too.
		var n int
		if err != nil || json.Unmarshal(req.Release, &n) != nil {
			writeError(w, http.StatusUnprocessableEntity, "invalid_params", `give the release to roll back to: {"release": "3"}`)
			return
		}
		target = strconv.Itoa(n)
	}
	v, ok := releaseVersion(target)
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that release: give its version, like 3 or v3")
		return
	}
	if _, err := a.app.Ledger.Release(v); errors.Is(err, ledger.ErrNoRelease) {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that release: %s has no v%d", a.name, v)
		return
	}
	rel, err := a.rollback(v, user)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
		return
	}
	cur, err := currentVersion(a.app)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusCreated, ReleaseJSON(rel, cur))
}

// releaseRange is a Range header on the releases, in Heroku's grammar:
// "version ..; max=15, order=desc", "version ..; order=desc,max=1",
// "version ]12..; max=10, order=desc" (the Next-Range of a page, the
// bracket leaving 12 out). In order=desc, the first bound is the
// highest version.
type releaseRange struct {
	first, last int  // 0: open
	exclusive   bool // first is left out
	max         int
	desc        bool
}

// maxRange is the most releases one page holds, and defaultRange the
// page without a max: Heroku's.
const (
	maxRange     = 1000
	defaultRange = 200
)

func parseReleaseRange(h string) (releaseRange, error) {
	rg := releaseRange{max: defaultRange}
	bad := func() (releaseRange, error) {
		return releaseRange{}, fmt.Errorf("Range %q is not a range of releases; write it as Heroku's: version ..; max=15, order=desc", h)
	}
	field, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if field != "version" && field != "id" {
		return bad()
	}
	bounds, params, _ := strings.Cut(rest, ";")
	bounds = strings.TrimSpace(bounds)
	if strings.HasPrefix(bounds, "]") {
		rg.exclusive, bounds = true, bounds[1:]
	}
	lo, hi, ok := strings.Cut(bounds, "..")
	if !ok {
		return bad()
	}
	for _, b := range []struct {
		s string
		v *int
	}{{lo, &rg.first}, {hi, &rg.last}} {
		if b.s == "" {
			continue
		}
		n, ok := releaseVersion(b.s)
		if !ok {
			return bad()
		}
		*b.v = n
	}
	for p := range strings.SplitSeq(params, ",") {
		p = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p), ";"))
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "max":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return bad()
			}
			rg.max = min(n, maxRange)
		case "order":
			if v != "asc" && v != "desc" {
				return bad()
			}
			rg.desc = v == "desc"
		default:
			return bad()
		}
	}
	return rg, nil
}

// page is rels (sorted by version, oldest first) within the range, in
// its order, at most max of them, and whether more follow.
func (rg releaseRange) page(rels []ledger.Release) ([]ledger.Release, bool) {
	in := func(v int) bool {
		lo, hi := rg.first, rg.last
		if rg.desc {
			lo, hi = rg.last, rg.first
		}
		if rg.exclusive && v == rg.first {
			return false
		}
		return (lo == 0 || v >= lo) && (hi == 0 || v <= hi)
	}
	var out []ledger.Release
	for i := range rels {
		if in(rels[i].Version) {
			out = append(out, rels[i])
		}
	}
	if rg.desc {
		slices.Reverse(out)
	}
	if len(out) > rg.max {
		return out[:rg.max], true
	}
	return out, false
}

// params is the range's "; max=N, order=desc" part.
func (rg releaseRange) params() string {
	s := "; max=" + strconv.Itoa(rg.max)
	if rg.desc {
		s += ", order=desc"
	}
	return s
}

// listCollaborators is the app's collaborators: the one account owns
// every app, and has no other.
func (d *Daemon) listCollaborators(w http.ResponseWriter, r *http.Request, a *appRun) {
	writeJSON(w, http.StatusOK, []any{})
}

// listSNIEndpoints is the certificates the app serves (certs:add), as
// the Platform API's SNI endpoints: domains:add asks for them.
func (d *Daemon) listSNIEndpoints(w http.ResponseWriter, r *http.Request, a *appRun) {
	st, err := a.app.Ledger.State()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	out := []map[string]any{}
	for _, c := range st.Certs {
		out = append(out, map[string]any{
			"id": c.Fingerprint, "name": c.Fingerprint, "domains": []string{c.Domain},
			"app": map[string]string{"id": a.name, "name": a.name},
		})
	}
	writeJSON(w, http.StatusOK, out)
}
