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
	lock := lockSubIDs(t)
	t.Cleanup(func() { lock.Close() })
	base := subIDBase
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

// subIDBase is where the tests' ranges start: far above any range a
// distribution hands out (100000 upwards).
const subIDBase = 3_000_000_000

// WithoutSubIDs runs fn while no test adds subordinate ids: the test
// binaries of other packages run at the same time, and one of them may
// be between SubIDs and its cleanup.
func WithoutSubIDs(t testing.TB, fn func()) {
	t.Helper()
	if os.Getuid() != 0 {
		fn() // only root adds ranges (SubIDs)
		return
	}
	lock := lockSubIDs(t)
	defer lock.Close()
	fn()
}

// lockSubIDs takes the lock that keeps one test at a time between an
// edit of /etc/subuid and /etc/subgid and its removal.
func lockSubIDs(t testing.TB) *os.File {
	t.Helper()
	lock, err := os.OpenFile("/tmp/dyno-test-subids.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	// Under the lock no other test has a range in the files: a line of
	// ours there was left by a test binary killed before its cleanup.
	prefix := fmt.Sprintf("%d:%d:", Nobody, subIDBase)
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		var keep []string
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if l != "" && !strings.HasPrefix(l, prefix) {
				keep = append(keep, l)
			}
		}
		if kept := strings.Join(keep, ""); kept != string(b) {
			if err := os.WriteFile(file, []byte(kept), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return lock
}
