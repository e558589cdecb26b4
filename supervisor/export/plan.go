// Package export describes one release of an app as what another engine
// needs to run it the way dyno does: an OCI image (package slug/oci),
// Kubernetes manifests (export/kubernetes) and systemd units
// (export/units). A Plan is read from the app's ledger and dyno.toml
// once, by the CLI, and each format is a pure function of it, so the
// same release always exports the same bytes.
package export

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
)

// DefaultPort is the PORT a web process listens on when nothing sets it,
// as on Heroku and in dyno start.
const DefaultPort = 5000

// A Plan is one release of an app and how dyno runs it.
type Plan struct {
	App     string         // the app's name
	Release ledger.Release // the release exported: slug, process types, config vars, version
	// Formation is the release's formation: every process type of the
	// release but the release phase's, with its quantity (0 for a type
	// scaled down) and size.
	Formation ledger.Formation
	// Sizes are the dyno sizes of dyno.toml, by name; every size the
	// formation names is there.
	Sizes map[string]cgroup.Size
	// StopTimeout is how long a dyno has between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// Restart is the daemon's restart policy for crashed dynos.
	Restart RestartPolicy
	// Hosts are the app's hostnames: its default one, then its custom
	// domains, sorted.
	Hosts []string
}

// A RestartPolicy is the daemon's back-off for crashed dynos (see
// supervisor.RestartPolicy): the first restart at once, then waits
// doubling from Initial up to Max.
type RestartPolicy struct {
	Initial time.Duration
	Max     time.Duration
}

// Types are the plan's process types that form dynos, in the order dyno
// gives them ports (web first, then the others by name).
func (p *Plan) Types() []string { return app.FormationTypes(&p.Release) }

// ReleaseCommand is the release phase's command, or "" when the release
// has none.
func (p *Plan) ReleaseCommand() string { return p.Release.ProcessTypes["release"] }

// Size is the size process type t runs at.
func (p *Plan) Size(t string) cgroup.Size {
	name := p.Formation[t].Size
	if name == "" {
		name = app.DefaultSize
	}
	return p.Sizes[name]
}

// Image is the image reference an export names when the user gives none:
// APP:vN, as `dyno export oci` tags its archive.
func (p *Plan) Image() string { return fmt.Sprintf("%s:v%d", p.App, p.Release.Version) }

// ConfigVarNames returns the release's config vars' names, sorted.
func (p *Plan) ConfigVarNames() []string { return slices.Sorted(maps.Keys(p.Release.ConfigVars)) }

// Check says what makes the plan unusable, in one line naming the fix:
// a release without code, or a formation naming an unknown size.
func (p *Plan) Check() error {
	if p.Release.Slug == "" {
		return fmt.Errorf("%s v%d has no code; deploy a build first (git push dyno main, or dyno build -a %s)", p.App, p.Release.Version, p.App)
	}
	for _, t := range p.Types() {
		name := p.Formation[t].Size
		if name == "" {
			name = app.DefaultSize
		}
		if _, ok := p.Sizes[name]; !ok {
			return fmt.Errorf("%s: process type %s is scaled to size %q, which dyno.toml no longer has; add [sizes.%s] or scale it to another with dyno ps:scale %s=N:standard-1x -a %s", p.App, t, name, name, t, p.App)
		}
	}
	return nil
}
