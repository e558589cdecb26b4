// Package release turns an app's release into the dynos that run it:
// the formation's dynos (web.1, worker.2), one-off dynos (run.N) and the
// release phase's dyno (release.N). dyno start -a, dyno run -a, the
// CLI's release phase and the daemon all make their dynos here, so that
// a release runs the same way whoever runs it.
package release

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/logmux"
	"github.com/dyno-run/dyno/supervisor/project"
)

// Dir is where a dyno finds its slug, as on Heroku.
const Dir = "/app"

// Options are what the dynos of a release get from where they run.
type Options struct {
	// Lower is the folder the dynos see as /app: the release's slug,
	// unpacked (app.App.Lower). "" leaves it to the runner.
	Lower string
	// BasePort, when set, gives each formation dyno a fixed port, as
	// Foreman numbers them (project.Port), and a one-off or a release
	// phase BasePort itself. 0 leaves PORT to the supervisor, which gives
	// each process a port of its own when it starts
	// (supervisor.Options.NewPort).
	BasePort int
	// Quota is the memory quota (R14) of a dyno size, in bytes; nil
	// means none.
	Quota func(size string) int64
	// Env is set over the config vars of a one-off (dyno run -e), for
	// that dyno alone.
	Env map[string]string
	// Name, when set, names a one-off instead of a new run.N: dyno run
	// --dyno web.2, which a systemd unit runs in place of the daemon's
	// web.2 (dyno export systemd), so that DYNO says what it would.
	Name string
}

func (o Options) quota(size string) int64 {
	if o.Quota == nil {
		return 0
	}
	return o.Quota(size)
}

// Current is the release st says runs now, or NoCode when the app has
// no code yet.
func Current(appName string, st *ledger.State) (*ledger.Release, error) {
	if st.Current == nil || st.Current.Slug == "" {
		return nil, NoCode(appName)
	}
	return st.Current, nil
}

// Env is the environment of dyno name on rel: the config vars, extra
// over them, then what the dyno manager sets as Heroku's does (PORT,
// DYNO, HOME=/app, a plain PATH unless the config sets one); nothing of
// the host's. Sorted, so that the same dyno of the same release always
// gets the same list.
func Env(rel *ledger.Release, name string, port int, extra map[string]string) []string {
	vars := map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin"}
	maps.Copy(vars, rel.ConfigVars)
	maps.Copy(vars, extra)
	vars["PORT"] = strconv.Itoa(port)
	vars["DYNO"] = name
	vars["HOME"] = Dir
	env := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// NoCode is the error for an app with no release to run: how to make one.
func NoCode(appName string) error {
	return fmt.Errorf("%s has no release with code yet; build one with dyno build -a %s", appName, appName)
}

// Dynos are the formation dynos of rel at f: for each of rel's process
// types that form dynos, in port order (app.FormationTypes), f's
// quantity of them, type.1 to type.N, each with rel's config vars as its
// environment. A type f lacks runs none.
//
// The configs depend on nothing but their arguments, so a dyno whose
// config is the same as the one it runs keeps running
// (supervisor.Supervisor.Reconcile), and every dyno of a new release
// restarts: Release is part of the config.
func Dynos(rel *ledger.Release, f ledger.Formation, o Options) []supervisor.DynoConfig {
	var out []supervisor.DynoConfig
	for i, t := range app.FormationTypes(rel) {
		e := f[t]
		for n := 1; n <= e.Quantity; n++ {
			name := t + "." + strconv.Itoa(n)
			port := 0
			if o.BasePort > 0 {
				port = project.Port(o.BasePort, i, n)
			}
			out = append(out, supervisor.DynoConfig{
				Name: name, Type: t, Command: rel.ProcessTypes[t], Dir: Dir,
				Env: Env(rel, name, port, nil), Port: port, Web: t == "web",
				Lower: o.Lower, Size: e.Size, MemoryQuota: o.quota(e.Size), Release: rel.Version,
			})
		}
	}
	return out
}

// OneOffName is the name of a new one-off dyno: run.N with N four random
// digits, as Heroku names them (the chance that two running one-offs of
// an app draw the same is 1 in 9,000; the supervisor refuses a name in
// use).
func OneOffName() string { return "run." + strconv.Itoa(1000+rand.IntN(9000)) }

// Command is what a one-off of rel runs for the command line given:
// when its first word names a process type of rel, that type's command
// with the rest appended (dyno run worker --verbose); else the line as
// it is.
func Command(rel *ledger.Release, line string) string {
	first, rest, _ := strings.Cut(strings.TrimLeft(line, " \t"), " ")
	if t, ok := rel.ProcessTypes[first]; ok && first != "" {
		return strings.TrimSpace(t + " " + rest)
	}
	return line
}

// OneOff is a new one-off dyno of rel, run.N (or o.Name), that runs command (see
// Command) at size with rel's config vars and o.Env over them; what the
// dyno manager sets (PORT, DYNO, HOME) stays its own.
func OneOff(rel *ledger.Release, command, size string, o Options) supervisor.DynoConfig {
	name := o.Name
	if name == "" {
		name = OneOffName()
	}
	return supervisor.DynoConfig{
		Name: name, Type: "run", Command: Command(rel, command), Dir: Dir,
		Env: Env(rel, name, o.BasePort, o.Env), Port: o.BasePort,
		Lower: o.Lower, Size: size, MemoryQuota: o.quota(size), Release: rel.Version,
	}
}

// Size is the dyno size asked for, as sizes names it: lower case, the
// default size for "", and an error listing the sizes for one that is
// not there.
func Size(sizes map[string]cgroup.Size, size string) (string, error) {
	size = strings.ToLower(size)
	if size == "" {
		size = app.DefaultSize
	}
	if _, ok := sizes[size]; !ok {
		return "", fmt.Errorf("unknown dyno size %q; use one of %s", size, strings.Join(slices.Sorted(maps.Keys(sizes)), ", "))
	}
	return size, nil
}

// PhaseName is the name of rel's release phase dyno: release.N, N its
// version.
func PhaseName(rel ledger.Release) string { return "release." + strconv.Itoa(rel.Version) }

// PhaseLimit is how long a release phase may run, as on Heroku.
const PhaseLimit = time.Hour

// RunPhase runs rel's release command in a one-off dyno of rel,
// release.N, with runner, its output and Heroku's state lines to logs,
// and returns its exit status. It is stopped as any dyno (SIGTERM, then
// SIGKILL after grace) when ctx is done or after PhaseLimit.
func RunPhase(ctx context.Context, runner supervisor.Runner, logs *logmux.Mux, rel ledger.Release, o Options, grace time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, PhaseLimit)
	defer cancel()
	name := PhaseName(rel)
	return supervisor.RunOneOff(ctx, runner, logs, supervisor.DynoSpec{
		Name:    name,
		Command: rel.ProcessTypes["release"],
		Dir:     Dir,
		Env:     Env(&rel, name, o.BasePort, nil),
		Lower:   o.Lower,
	}, grace)
}
