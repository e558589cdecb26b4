package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/isolate/cgroup"
)

// IsolatedRunner runs each dyno in its own sandbox (isolate.Sandbox): new
// namespaces, /app an overlay of Lower with a fresh upper layer, no
// capabilities, and, where the host delegates cgroup v2, its own cgroup
// leaf with the limits of its size.
type IsolatedRunner struct {
	Spawner   *isolate.Spawner
	Lower     string // the folder every dyno sees as /app
	StateDir  string // where dynos' directories live while they run
	CopyLower bool   // the host refuses overlay (isolate.Spawner.Probe)
	Seccomp   bool
	// Cgroups is nil in degraded mode: no limits.
	Cgroups *cgroup.Tree
	Size    cgroup.Size
	// Sizes are all known sizes, for dynos whose DynoSpec names one.
	Sizes map[string]cgroup.Size
	// Profile runs commands as a release's are run: through bash, after
	// /app/.profile.d/*.sh and /app/.profile (isolate.ProfileArgv).
	Profile bool
	// IDs, when set, is the app's own slice of host ids, which its
	// dynos run as (isolate.Sandbox.IDs); nil runs them as this user.
	IDs *isolate.IDRange
}

// Start implements Runner.
func (r IsolatedRunner) Start(spec DynoSpec) (Process, error) {
	if spec.Lower != "" {
		r.Lower = spec.Lower
	}
	if spec.Size != "" {
		size, ok := r.Sizes[spec.Size]
		if !ok {
			return nil, fmt.Errorf("start %s: unknown dyno size %q", spec.Name, spec.Size)
		}
		r.Size = size
	}
	sb, leaf, err := r.NewSandbox(spec.Name)
	if err != nil {
		return nil, err
	}
	p := &isolatedProcess{leaf: leaf}
	argv := isolate.ShellArgv(spec.Command)
	if r.Profile {
		argv = isolate.ProfileArgv(spec.Command)
	}
	d, err := r.Spawner.Start(isolate.Spec{
		Name:    spec.Name,
		Argv:    argv,
		Dir:     "/app",
		Env:     spec.Env,
		Stdout:  spec.Output,
		Stderr:  spec.Output,
		Sandbox: sb,
	})
	if err != nil {
		p.removeLeaf()
		return nil, err
	}
	p.Dyno = d
	return p, nil
}

// NewSandbox returns the sandbox for a dyno called name, with its cgroup
// leaf (nil in degraded mode), which the caller removes once the dyno has
// ended (RemoveLeaf).
func (r IsolatedRunner) NewSandbox(name string) (*isolate.Sandbox, *cgroup.Leaf, error) {
	sb := &isolate.Sandbox{
		Lower:     r.Lower,
		StateDir:  r.StateDir,
		CopyLower: r.CopyLower,
		Seccomp:   r.Seccomp,
		TmpSize:   r.Size.Memory,
		IDs:       r.IDs,
	}
	if r.Cgroups == nil {
		return sb, nil, nil
	}
	leaf, err := r.Cgroups.NewLeaf(name+"-"+leafSuffix(), r.Size.Limits())
	if err != nil {
		return nil, nil, err
	}
	sb.Cgroup = leaf
	return sb, leaf, nil
}

// RemoveLeaf removes a dyno's cgroup leaf once its processes are gone.
func RemoveLeaf(leaf *cgroup.Leaf) {
	if leaf == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	leaf.Remove(ctx)
}

// leafSuffix keeps a restarted dyno's leaf apart from the one its
// predecessor may still be leaving, and two apps' web.1 apart.
func leafSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// isolatedProcess is a sandboxed dyno, with its cgroup leaf when limits
// are on.
type isolatedProcess struct {
	*isolate.Dyno
	leaf *cgroup.Leaf
	oom  atomic.Bool
}

// Kill uses cgroup.kill when there is a leaf: it takes the whole subtree
// at once, racing forks included (Linux 5.14).
func (p *isolatedProcess) Kill() error {
	if p.leaf != nil && p.leaf.Kill() == nil {
		return nil
	}
	return p.Dyno.Kill()
}

// Wait waits for the dyno, notes whether the kernel OOM-killed it, and
// removes its leaf.
func (p *isolatedProcess) Wait() (int, error) {
	st, err := p.Dyno.Wait()
	if p.leaf != nil {
		if n, _ := p.leaf.OOMKills(); n > 0 {
			p.oom.Store(true)
		}
		p.removeLeaf()
	}
	return st, err
}

func (p *isolatedProcess) removeLeaf() { RemoveLeaf(p.leaf) }

// Stats implements Metered.
func (p *isolatedProcess) Stats() (cgroup.Stats, error) {
	if p.leaf == nil {
		return cgroup.Stats{}, errNoLimits
	}
	return p.leaf.Stats()
}

// Runtime implements Metered.
func (p *isolatedProcess) Runtime() (cgroup.Runtime, error) {
	if p.leaf == nil {
		return cgroup.Runtime{}, errNoLimits
	}
	return p.leaf.Runtime()
}

// OOMKilled implements Metered.
func (p *isolatedProcess) OOMKilled() bool { return p.oom.Load() }

// SandboxEnv is env as an isolated dyno sees it: HOME is /app, as on
// Heroku.
func SandboxEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "HOME=/app")
}
