package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProbeNotCgroup2(t *testing.T) {
	dir := t.TempDir()
	p := ProbeSystem(dir, "/proc/self/cgroup")
	want := "cgroup v2 is not mounted at " + dir + " (this host uses cgroup v1 or a hybrid hierarchy), so dynos run without memory, pids and CPU limits; boot with systemd.unified_cgroup_hierarchy=1 to get them."
	if p.Usable || p.Reason != want {
		t.Errorf("ProbeSystem(tempdir) = %+v\nwant Reason %q", p, want)
	}
}

func TestProbeNoMount(t *testing.T) {
	p := ProbeSystem(filepath.Join(t.TempDir(), "missing"), "/proc/self/cgroup")
	if p.Usable || !strings.HasPrefix(p.Reason, "cgroup v2 is not mounted at ") {
		t.Errorf("ProbeSystem(missing dir) = %+v", p)
	}
}

// TestProbeThisHost shows what this machine offers; it checks only that
// the probe is consistent.
func TestProbeThisHost(t *testing.T) {
	p := ProbeSystem("/sys/fs/cgroup", "/proc/self/cgroup")
	t.Logf("%+v", p)
	if p.Usable != (p.Reason == "") {
		t.Errorf("Usable %v with Reason %q", p.Usable, p.Reason)
	}
}

func TestOwnCgroup(t *testing.T) {
	for _, tt := range []struct {
		name, content, want string
	}{
		{"unified", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/dyno.scope\n", "/user.slice/user-1000.slice/user@1000.service/app.slice/dyno.scope"},
		{"root", "0::/\n", "/"},
		{"hybrid", "12:pids:/user.slice\n4:memory:/user.slice\n1:name=systemd:/user.slice/session-2.scope\n0::/user.slice/session-2.scope\n", "/user.slice/session-2.scope"},
		{"no newline", "0::/a", "/a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cgroup")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ownCgroup(path)
			if err != nil || got != tt.want {
				t.Errorf("ownCgroup = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	path := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(path, []byte("4:memory:/x\n1:name=systemd:/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ownCgroup(path); err == nil {
		t.Errorf("ownCgroup of a v1-only file = %q, want an error", got)
	}
}

func TestProbeCgroup2(t *testing.T) {
	const self, uid = 1234, 1000
	const own = "/user.slice/user-1000.slice/user@1000.service/app.slice/dyno.scope"
	writable := func(string) error { return nil }
	denied := func(file string) func(string) error {
		return func(path string) error {
			if filepath.Base(path) == file {
				return unix.EACCES
			}
			return nil
		}
	}
	for _, tt := range []struct {
		name        string
		controllers string
		procs       string
		rootCgroup  bool
		own         string
		access      func(string) error
		writable    bool
		usable      bool
		reason      []string // substrings of Reason
	}{
		{name: "usable", controllers: "cpu memory pids", procs: "1234\n", access: writable, writable: true, usable: true},
		{name: "usable without cpu", controllers: "memory pids", procs: "1234\n", access: writable, writable: true, usable: true},
		{name: "no memory", controllers: "cpu pids", procs: "1234\n", access: writable, writable: true,
			reason: []string{"offers no memory controller", `lists "cpu pids"`, "Delegate=memory pids"}},
		{name: "no memory or pids", controllers: "cpu", procs: "1234\n", access: writable, writable: true,
			reason: []string{"offers no memory or pids controller"}},
		{name: "not delegated", controllers: "cpu memory pids", procs: "1234\n", access: denied("cgroup.subtree_control"),
			reason: []string{"is not delegated to uid 1000", "cgroup.subtree_control", "systemd-run --user --scope -p Delegate=yes"}},
		{name: "directory not delegated", controllers: "memory pids", procs: "1234\n", access: denied("dyno.scope"),
			reason: []string{"is not delegated to uid 1000", "dyno.scope: permission denied"}},
		{name: "read-only", controllers: "memory pids", procs: "1234\n", access: func(string) error { return unix.EROFS },
			reason: []string{"is mounted read-only", "writable /sys/fs/cgroup"}},
		{name: "other processes", controllers: "memory pids", procs: "1\n1234\n99\n", access: writable, writable: true,
			reason: []string{"also holds other processes (pids 1 99)", "cgroup of its own"}},
		{name: "root cgroup with other processes", controllers: "memory pids", procs: "1\n1234\n99\n", rootCgroup: true, access: writable, writable: true, usable: true},
		{name: "missing", own: "/gone", access: writable,
			reason: []string{"cannot be read", "no such file or directory"}},
		{name: "outside the mount", own: "/../../elsewhere", access: writable,
			reason: []string{"lies outside the cgroup2 mount", "cgroup namespace"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mount := t.TempDir()
			dir := filepath.Join(mount, own)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			files := map[string]string{
				"cgroup.controllers":     tt.controllers + "\n",
				"cgroup.subtree_control": "\n",
				"cgroup.procs":           tt.procs,
				"cgroup.type":            "domain\n",
			}
			if tt.rootCgroup {
				delete(files, "cgroup.type")
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := own
			if tt.own != "" {
				path = tt.own
			}

			p := probeCgroup2(mount, path, self, uid, tt.access)
			if p.Usable != tt.usable || p.Writable != tt.writable {
				t.Errorf("Usable %v, Writable %v; want %v, %v (Reason %q)", p.Usable, p.Writable, tt.usable, tt.writable, p.Reason)
			}
			if p.Mountpoint != mount || p.Path != filepath.Join(mount, path) {
				t.Errorf("Mountpoint %q, Path %q", p.Mountpoint, p.Path)
			}
			if tt.usable {
				if p.Reason != "" {
					t.Errorf("Reason %q for a usable cgroup", p.Reason)
				}
				if want := strings.Fields(tt.controllers); !slices.Equal(p.Controllers, want) {
					t.Errorf("Controllers %q, want %q", p.Controllers, want)
				}
				return
			}
			// One sentence: the cause, "so" what it means, "; " the fix.
			if !strings.Contains(p.Reason, ", so dynos run without memory, pids and CPU limits; ") || !strings.HasSuffix(p.Reason, ".") {
				t.Errorf("Reason %q is not one sentence of cause and fix", p.Reason)
			}
			for _, want := range tt.reason {
				if !strings.Contains(p.Reason, want) {
					t.Errorf("Reason %q\ndoes not contain %q", p.Reason, want)
				}
			}
		})
	}
}
