package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// SubIDs gives Nobody count subordinate uids and gids in /etc/subuid and
// /etc/subgid for the length of the test, and returns the first of them.
// The files are shared by every test binary running at once: a lock file
// keeps one test at a time between the edit and its removal. It skips
// the test where that cannot be done (not root, no newuidmap).
func SubIDs(t testing.TB, count int) int {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("adding subordinate ids for uid 65534 to /etc/subuid and /etc/subgid needs root")
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing: install the uidmap package", tool)
		}
	}
	lock, err := os.OpenFile("/tmp/dyno-test-subids.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	// Far above any range a distribution hands out (100000 upwards).
	const base = 3_000_000_000
	line := fmt.Sprintf("%d:%d:%d", Nobody, base, count)
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString(line + "\n")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Error(err)
				return
			}
			var keep []string
			for _, l := range strings.SplitAfter(string(b), "\n") {
				if l != "" && strings.TrimSpace(l) != line {
					keep = append(keep, l)
				}
			}
			if err := os.WriteFile(file, []byte(strings.Join(keep, "")), 0o644); err != nil {
				t.Error(err)
			}
		})
	}
	return base
}
