package isolate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// sysctls that decide whether an unprivileged user may make a user
// namespace; sysctlDir is a parameter of the functions that read them so
// tests can point it at a fake.
const sysctlDir = "/proc/sys"

// diagnoseNamespaces turns a failed clone of a sandboxed init into an
// error that says what the host withholds and how to give it.
func diagnoseNamespaces(err error) error {
	if reason := userNSBlocker(sysctlDir); reason != "" {
		return fmt.Errorf("%w: %s", err, reason)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w: the kernel refused new user namespaces (are they disabled, or is dyno inside a container that forbids them?); run `unshare --user --map-root-user true` to check, and allow them with the host's sysctls or container settings", err)
	}
	return err
}

// userNSBlocker names the sysctl that forbids unprivileged user
// namespaces, with the fix, or returns "".
func userNSBlocker(dir string) string {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if read("kernel/unprivileged_userns_clone") == "0" {
		return "unprivileged user namespaces are disabled by kernel.unprivileged_userns_clone=0; enable them with `sudo sysctl -w kernel.unprivileged_userns_clone=1` (and in /etc/sysctl.d to keep it)"
	}
	if read("user/max_user_namespaces") == "0" {
		return "user namespaces are disabled by user.max_user_namespaces=0; allow them with `sudo sysctl -w user.max_user_namespaces=15000` (and in /etc/sysctl.d to keep it)"
	}
	if os.Getuid() != 0 && read("kernel/apparmor_restrict_unprivileged_userns") == "1" {
		return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, Ubuntu 23.10 and later); either install an AppArmor profile for the dyno binary that allows `userns,` (like Ubuntu's bwrap-userns-restrict), or set `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`"
	}
	return ""
}

// ProbeResult is what the host allows a sandboxed dyno.
type ProbeResult struct {
	// Overlay is false when the kernel refuses overlay in a user
	// namespace: dynos then get a copy of their lower dir, which costs
	// time in proportion to its size.
	Overlay bool
	// Warning says so, in one line, when Overlay is false.
	Warning string
}

// Probe starts one throwaway sandboxed dyno running /bin/true over a tiny
// lower dir, to find out once, at start-up, whether dynos can be isolated
// here and whether overlay works. Its error says what failed, why and
// the fix.
func (sp *Spawner) Probe(stateDir string) (ProbeResult, error) {
	// Leftovers of a probe killed with its manager go first.
	SweepDynoDirs(filepath.Join(stateDir, ".probe"))
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return ProbeResult{}, fmt.Errorf("probe isolation: %w", err)
	}
	lower, err := os.MkdirTemp(stateDir, ".probe-lower-")
	if err != nil {
		return ProbeResult{}, fmt.Errorf("probe isolation: %w", err)
	}
	defer os.RemoveAll(lower)
	d, err := sp.Start(Spec{
		Name: "probe",
		Argv: []string{"/bin/true"},
		Dir:  "/app",
		Env:  []string{"PATH=/usr/bin:/bin"},
		Sandbox: &Sandbox{
			Lower: lower,
			// ".probe": no app can be called that (names start with a
			// letter), so no app's dynos share it.
			StateDir: filepath.Join(stateDir, ".probe"),
			TmpSize:  1 << 20,
		},
	})
	if err != nil {
		return ProbeResult{}, fmt.Errorf("isolation is not available: %w", err)
	}
	st, err := d.Wait()
	sp.cleanup.Wait()
	if err != nil {
		return ProbeResult{}, fmt.Errorf("isolation probe: %w", err)
	}
	if st != 0 {
		return ProbeResult{}, fmt.Errorf("isolation probe: /bin/true in a dyno exited with status %d", st)
	}
	res := ProbeResult{Overlay: len(d.Warnings()) == 0}
	if !res.Overlay {
		res.Warning = "overlay is refused in a user namespace here (" + d.Warnings()[0] + "); each dyno gets a copy of its /app instead. Linux 5.11 or later allows overlay"
	}
	return res, nil
}
