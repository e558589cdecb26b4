// Package testutil holds what dyno's tests of real processes share:
// running as an unprivileged user, directories that user can reach, and
// waiting for processes to be gone.
package testutil

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// Nobody is the uid and gid tests of rootless operation run as when the
// tests themselves run as root: being root proves nothing about rootless
// operation.
const Nobody = 65534

// SharedDir is a temp dir Nobody can enter (t.TempDir's parent is 0700).
// It is removed at the end of the test even if it holds mode-000
// directories.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dyno-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { fsutil.RemoveAll(dir) })
	return dir
}

// GiveToNobody chowns each tree to Nobody when the tests run as root.
func GiveToNobody(t testing.TB, dirs ...string) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, Nobody, Nobody)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// AsNobody makes cmd run as Nobody when the tests run as root, keeping
// its other SysProcAttr settings.
func AsNobody(cmd *exec.Cmd) {
	if os.Getuid() != 0 {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: Nobody, Gid: Nobody}
}

// UserNSOff says why unprivileged user namespaces are unusable here, or
// returns "".
func UserNSOff() string {
	for file, off := range map[string]string{
		"/proc/sys/kernel/unprivileged_userns_clone": "0",
		"/proc/sys/user/max_user_namespaces":         "0",
	} {
		if b, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(b)) == off {
			return "user namespaces are off: " + file + " is " + off
		}
	}
	return ""
}

// Alive reports whether pid is a live, non-zombie process.
func Alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and
	// may itself hold ')' (proc(5)).
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && len(data) > i+2 && data[i+2] != 'Z'
}

// WaitGone waits until none of pids is alive. The kernel finishes a
// killed process's exit asynchronously, so this polls /proc with a
// deadline instead of sleeping a fixed time.
func WaitGone(t testing.TB, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for Alive(p) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d is still alive", p)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// Names lists the names in dir; a missing dir holds none.
func Names(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
