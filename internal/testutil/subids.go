package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
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
	// This test's own shared lock (NoForeignSubIDs) would keep the
	// exclusive one from it forever: flock(2) locks of two open files
	// conflict even in one process.
	if f, ok := sharedLocks.LoadAndDelete(t); ok {
		f.(*os.File).Close()
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

// subIDsLock keeps one test at a time between an edit of /etc/subuid
// and its removal (exclusive), and ranges out while tests that must not
// see them run (shared).
const subIDsLock = "/tmp/dyno-test-subids.lock"

// subIDBase is where the tests' ranges start: far above any range a
// distribution hands out (100000 upwards).
const subIDBase = 3_000_000_000

// WithoutSubIDs runs fn while no test adds subordinate ids: the test
// binaries of other packages run at the same time, and one of them may
// be between SubIDs and its cleanup.
func WithoutSubIDs(t testing.TB, fn func()) {
	t.Helper()
	if _, held := sharedLocks.Load(t); held || os.Getuid() != 0 {
		fn() // no range can come meanwhile; only root adds them (SubIDs)
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
	lock, err := os.OpenFile(subIDsLock, os.O_CREATE|os.O_RDWR, 0o600)
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

// sharedLocks holds each test's shared lock (NoForeignSubIDs), by test.
var sharedLocks sync.Map

// NoForeignSubIDs keeps other test binaries' ranges out of /etc/subuid
// and /etc/subgid for the rest of the test: dyno reads the files when it
// starts an app's dynos or builds, and a range that another package's
// test adds, and removes at its end, would give this test's apps ids of
// their own that newuidmap may then refuse. It holds the subids lock
// shared; SubIDs in this same test gives it up for the exclusive one.
func NoForeignSubIDs(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		return // only root adds ranges
	}
	lock, err := os.OpenFile(subIDsLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	sharedLocks.Store(t, lock)
	t.Cleanup(func() {
		if f, ok := sharedLocks.LoadAndDelete(t); ok {
			f.(*os.File).Close()
		}
	})
}
