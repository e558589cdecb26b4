package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A dyno starts under an empty capability bounding set (a systemd unit's
// CapabilityBoundingSet=, a container's defaults): its init gets what it
// mounts with from its own new user namespace, and the app still ends
// with no capabilities.
func TestIsolatedUnderEmptyBoundingSet(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("emptying the bounding set for dyno needs root (CAP_SETPCAP)")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	e := newIsolatedEnv(t, nil)
	cmd := e.command("run", "--isolate", "--", "sh", "-c", "id -un; grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status")
	cmd.SysProcAttr = nil // setpriv drops the bounding set, then becomes nobody
	cmd.Args = append([]string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--bounding-set", "-all", dynoBin}, cmd.Args[1:]...)
	cmd.Path = setpriv
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dyno run --isolate under an empty bounding set: %v\n%s", err, out)
	}
	want := "u12345\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n"
	if got := string(out); !strings.HasSuffix(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
