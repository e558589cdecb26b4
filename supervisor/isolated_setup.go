package supervisor

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/isolate/cgroup"
)

// IsolationConfig says how to set up isolated dynos on this host.
type IsolationConfig struct {
	Lower     string // the folder dynos see as /app ("" when each dyno names its own)
	StateDir  string // the dynos' directories; stale ones are swept here
	ProbeDir  string // where the probe dyno runs ($DYNO_HOME/dynos)
	SizesFile string // dyno.toml
	Size      string // the dyno size whose limits apply
	// Probe runs a throwaway dyno first to learn what the host allows, so
	// a formation's dynos do not each find out; a one-off skips it.
	Probe bool
	// RequireLimits turns missing cgroup v2 limits into an error.
	RequireLimits bool
	// Warn gets one line per thing the host withholds; nil discards.
	Warn io.Writer
	// Cgroups, when set, is a tree already set up (the daemon's); else
	// the host's is probed and set up here.
	Cgroups *cgroup.Tree
}

// NewIsolatedRunner probes this host once and returns a runner of
// isolated dynos: what the host lacks is said in one line to Warn, what
// cannot work at all is an error naming the fix.
func NewIsolatedRunner(spawner *isolate.Spawner, c IsolationConfig) (IsolatedRunner, error) {
	var none IsolatedRunner
	warn := func(format string, args ...any) {
		if c.Warn != nil {
			fmt.Fprintf(c.Warn, "dyno: "+format+"\n", args...)
		}
	}
	sizes, err := cgroup.LoadSizes(c.SizesFile)
	if err != nil {
		return none, err
	}
	size, ok := sizes[strings.ToLower(c.Size)]
	if !ok {
		return none, fmt.Errorf("unknown dyno size %q; use one of %s, or add it to %s", c.Size, strings.Join(slices.Sorted(maps.Keys(sizes)), ", "), c.SizesFile)
	}
	// Directories of dynos whose init died with a crash of the host or
	// of dyno; live ones are locked and kept.
	if _, err := isolate.SweepDynoDirs(c.StateDir); err != nil {
		return none, err
	}
	r := IsolatedRunner{Spawner: spawner, Lower: c.Lower, StateDir: c.StateDir, Seccomp: true, Size: size, Sizes: sizes}
	if c.Probe {
		res, err := spawner.Probe(c.ProbeDir)
		if err != nil {
			return none, err
		}
		if res.Warning != "" {
			warn("%s", res.Warning)
		}
		r.CopyLower = !res.Overlay
	}
	if c.Cgroups != nil {
		r.Cgroups = c.Cgroups
		return r, nil
	}
	tree, reason, err := SetupCgroups()
	switch {
	case reason != "" && c.RequireLimits:
		return none, fmt.Errorf("--require-limits: %s", reason)
	case reason != "":
		// Said once per formation; a one-off's output is the command's
		// own, often captured by a script.
		if c.Probe {
			warn("%s", reason)
		}
	case err != nil && c.RequireLimits:
		return none, fmt.Errorf("--require-limits: %w", err)
	case err != nil:
		warn("cgroup v2 limits are off: %v", err)
	default:
		if err := tree.Refused(); err != nil {
			// --require-limits asks for limits, and only memory.max
			// and pids.max are: cpu.weight divides contended CPU
			// between dynos and caps none of them, so a tree without
			// the cpu controller (systemd delegates it to users only
			// when asked) still bounds every dyno.
			if c.RequireLimits && !hasLimits(tree) {
				return none, fmt.Errorf("--require-limits: %w", err)
			}
			warn("some cgroup v2 limits are off: %v", err)
		}
		r.Cgroups = tree
	}
	return r, nil
}

// hasLimits says whether tree enforces the limits --require-limits
// requires: memory and pids.
func hasLimits(tree *cgroup.Tree) bool {
	on := tree.Controllers()
	return slices.Contains(on, "memory") && slices.Contains(on, "pids")
}

// SetupCgroups probes the host's cgroup v2 tree and sets dyno's part of
// it up. reason says, in one line, why limits are unavailable (degraded
// mode); err is a failure to set up a tree that looked usable.
func SetupCgroups() (tree *cgroup.Tree, reason string, err error) {
	cg := cgroup.ProbeSystem("/sys/fs/cgroup", "/proc/self/cgroup")
	if !cg.Usable {
		return nil, cg.Reason, nil
	}
	tree, err = cgroup.Setup(cg.Path, os.Getpid())
	if err != nil {
		return nil, "", err
	}
	tree.Sweep()
	return tree, "", nil
}

// AppIDs returns app's own slice of host ids from the user's subordinate
// ids, allocated in home's subids.json; where the user has none
// (or newuidmap is missing) it returns nil and the one line that says so
// and names the fix. holds says whether an app still holds its slice
// (app.Home.Holds): a slice is given to another app only once nothing of
// its app is left.
func AppIDs(home, app string, holds func(string) bool) (*isolate.IDRange, string, error) {
	ids, err := isolate.NewIDAllocator(filepath.Join(home, "subids.json"))
	if err != nil {
		return nil, "", err
	}
	if ids == nil {
		return nil, isolate.NoRangesWarning(), nil
	}
	r, err := ids.Alloc(app, holds)
	if err != nil {
		return nil, "", err
	}
	return &r, "", nil
}

// NoAppIDs says, in one line naming the fix, why apps' dynos would all
// run as this user's own uid here; "" when each app gets its own ids.
func NoAppIDs(home string) string {
	ids, err := isolate.NewIDAllocator(filepath.Join(home, "subids.json"))
	switch {
	case err != nil:
		return err.Error()
	case ids == nil:
		return isolate.NoRangesWarning()
	}
	return ""
}
