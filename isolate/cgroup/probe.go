package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Probe is what the host offers dyno in cgroup v2.
type Probe struct {
	// Mountpoint is where the probe looked for cgroup2, normally
	// /sys/fs/cgroup.
	Mountpoint string
	// Path is the directory of this process's cgroup, for example
	// /sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/dyno.scope.
	Path string
	// Controllers are the controllers available at Path (its
	// cgroup.controllers).
	Controllers []string
	// Writable says that this process may create cgroups under Path and
	// move processes into them.
	Writable bool
	// Usable says that dyno can build its Tree at Path with at least the
	// memory and pids controllers.
	Usable bool
	// Reason, when Usable is false, gives the cause and the fix in one
	// sentence, to print once at start-up.
	Reason string
}

// Wording shared by the reasons.
const (
	noLimits     = "so dynos run without memory, pids and CPU limits"
	delegateHint = "run dyno under `systemd-run --user --scope -p Delegate=yes dyno ...` or a systemd unit with Delegate=yes"
	unifiedHint  = "boot with systemd.unified_cgroup_hierarchy=1 to get them"
)

// ProbeSystem probes the cgroup2 mount at mountpoint (normally
// /sys/fs/cgroup) for the cgroup named in procSelfCgroup (normally
// /proc/self/cgroup), which must be this process's own: the probe checks
// that the cgroup holds no other process.
func ProbeSystem(mountpoint, procSelfCgroup string) Probe {
	var st unix.Statfs_t
	if err := unix.Statfs(mountpoint, &st); err != nil {
		return Probe{
			Mountpoint: mountpoint,
			Reason:     fmt.Sprintf("cgroup v2 is not mounted at %s (%v), %s; %s.", mountpoint, err, noLimits, unifiedHint),
		}
	}
	// statfs(2) f_type tells cgroup2 (CGROUP2_SUPER_MAGIC) from the tmpfs
	// that holds v1 hierarchies on a legacy or hybrid host.
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return Probe{
			Mountpoint: mountpoint,
			Reason:     fmt.Sprintf("cgroup v2 is not mounted at %s (this host uses cgroup v1 or a hybrid hierarchy), %s; %s.", mountpoint, noLimits, unifiedHint),
		}
	}
	own, err := ownCgroup(procSelfCgroup)
	if err != nil {
		return Probe{
			Mountpoint: mountpoint,
			Reason:     fmt.Sprintf("this process's cgroup v2 path is unknown (%v), %s; %s.", err, noLimits, unifiedHint),
		}
	}
	return probeCgroup2(mountpoint, own, os.Getpid(), os.Geteuid(), accessWrite)
}

// accessWrite reports whether this process may write path, by its
// effective ids, as faccessat(2) with AT_EACCESS does.
func accessWrite(path string) error {
	return unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS)
}

// ownCgroup returns the cgroup v2 path in a /proc/PID/cgroup file: the
// line "0::PATH" (cgroups(7); on a hybrid host the other lines are v1
// hierarchies).
func ownCgroup(procSelfCgroup string) (string, error) {
	b, err := readFile(procSelfCgroup)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if path, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "0::"); ok {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s has no cgroup v2 line (0::PATH)", procSelfCgroup)
}

// probeCgroup2 probes the cgroup own, relative to the cgroup2 mount at
// mountpoint, for the process self running as uid. access reports whether
// a path is writable; tests replace it, since root may write anything.
func probeCgroup2(mountpoint, own string, self, uid int, access func(path string) error) Probe {
	p := Probe{Mountpoint: mountpoint, Path: filepath.Join(mountpoint, own)}
	// A path that climbs out of the mount ("/../x") names a cgroup outside
	// this process's cgroup namespace: /proc shows cgroup paths relative to
	// the reader's namespace root, the mount may show another root
	// (cgroup_namespaces(7)).
	if rel, err := filepath.Rel(mountpoint, p.Path); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		p.Reason = fmt.Sprintf("this process's cgroup %s lies outside the cgroup2 mount at %s, %s; mount cgroup2 from inside the process's cgroup namespace.", own, mountpoint, noLimits)
		return p
	}

	controllers, err := readList(filepath.Join(p.Path, "cgroup.controllers"))
	if err != nil {
		p.Reason = fmt.Sprintf("this process's cgroup cannot be read (%v), %s; %s.", err, noLimits, delegateHint)
		return p
	}
	p.Controllers = controllers

	// Delegation is ownership of the directory, cgroup.procs and
	// cgroup.subtree_control ("Model of Delegation"); creating cgroups
	// needs the first, moving processes the second (at the common
	// ancestor of source and destination, which for dyno's moves is this
	// cgroup: "Delegation Containment"), enabling controllers the third.
	for _, path := range []string{p.Path, filepath.Join(p.Path, "cgroup.procs"), filepath.Join(p.Path, "cgroup.subtree_control")} {
		err := access(path)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EROFS):
			p.Reason = fmt.Sprintf("%s is mounted read-only, %s; mount cgroup2 read-write (in a container: a private cgroup namespace with a writable /sys/fs/cgroup).", mountpoint, noLimits)
		default:
			p.Reason = fmt.Sprintf("%s is not delegated to uid %d (%s: %v), %s; %s.", p.Path, uid, filepath.Base(path), err, noLimits, delegateHint)
		}
		return p
	}
	p.Writable = true

	// memory and pids bound the two resources whose exhaustion by one
	// dyno hurts every other dyno; without them dyno manages no tree. cpu
	// is welcome but optional: systemd does not delegate it to users by
	// default (systemd docs/CGROUP_DELEGATION.md).
	var missing []string
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(controllers, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		p.Reason = fmt.Sprintf("%s offers no %s controller (its cgroup.controllers lists %q), %s; delegate them with Delegate=memory pids on dyno's systemd unit or scope, or enable them in the parent's cgroup.subtree_control.",
			p.Path, strings.Join(missing, " or "), strings.Join(controllers, " "), noLimits)
		return p
	}

	// Setup moves this process into a child cgroup and then enables
	// controllers here, which the kernel refuses (EBUSY) while any process
	// remains ("No Internal Process Constraint"). Only the root cgroup is
	// exempt; it alone has no cgroup.type file (CFTYPE_NOT_ON_ROOT).
	pids, err := readPids(filepath.Join(p.Path, "cgroup.procs"))
	if err != nil {
		p.Reason = fmt.Sprintf("this process's cgroup cannot be read (%v), %s; %s.", err, noLimits, delegateHint)
		return p
	}
	others := slices.DeleteFunc(pids, func(pid int) bool { return pid == self })
	if len(others) > 0 && !isRootCgroup(p.Path) {
		p.Reason = fmt.Sprintf("%s also holds other processes (pids %s), and a cgroup with processes cannot hand controllers to its children, %s; start dyno in a cgroup of its own: %s.",
			p.Path, joinPids(others, 5), noLimits, delegateHint)
		return p
	}
	p.Usable = true
	return p
}

// isRootCgroup reports whether dir is the root of a cgroup2 hierarchy.
func isRootCgroup(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.type"))
	return errors.Is(err, fs.ErrNotExist)
}

// joinPids lists at most limit pids, then how many more there are.
func joinPids(pids []int, limit int) string {
	var b strings.Builder
	for i, pid := range pids {
		if i == limit {
			fmt.Fprintf(&b, " and %d more", len(pids)-limit)
			break
		}
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.Itoa(pid))
	}
	return b.String()
}
