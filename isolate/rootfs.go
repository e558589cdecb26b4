package isolate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dyno-run/dyno/internal/fsutil"
	"golang.org/x/sys/unix"
)

// This file is the child side of a sandboxed dyno: init, with every
// capability of its own user namespace (as its uid 0 with the app's own
// ids, else as the dyno user with ambient capabilities: spawn.go) and
// PID 1 of its own pid namespace, builds the dyno's root and pivots
// into it. The order follows the kernel's rules:
// / is made a recursive slave before anything is mounted, so no mount
// made here propagates to the host (mount_namespaces(7)); Go does that
// only for Unshareflags, not Cloneflags. Then
// /proc is mounted by a process inside the new pid namespace, and
// pivot_root(2) needs the new root to be a mount point.

// DefaultReadOnly are the host paths a dyno sees, read-only. Paths that
// are symlinks on the host (merged /usr: /bin -> usr/bin) become the same
// symlinks; paths that do not exist are skipped.
var DefaultReadOnly = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}

// devices are bound from the host's /dev: mknod is impossible in a user
// namespace, but a bind of a device node keeps working on a nodev tmpfs
// because the bind carries the host mount's flags.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// buildRoot makes the dyno's filesystem and pivots into it. It returns a
// warning when it had to fall back (overlay refused: /app is a copy).
func buildRoot(c *SandboxConfig) (warning string, err error) {
	if err := prepareRoot(c); err != nil {
		return "", err
	}
	return finishRoot(c)
}

// prepareRoot builds what every dyno's root has, whatever its app: the
// tmpfs root, the read-only host binds, /proc and /dev. A warm init does
// this before it knows its dyno (Spawner.SetPrewarm), off the critical path
// of a start.
func prepareRoot(c *SandboxConfig) error {
	// Mounts made from here must not propagate to the host, and host
	// unmounts should still reach us (MS_SLAVE, not MS_PRIVATE, so
	// nothing stays pinned busy). Go only does this for Unshareflags,
	// not for Cloneflags.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	root := c.Root
	// Mount points, symlinks and the dyno's passwd and group
	// (bindUserFiles), as large as the host's: a size is only a cap,
	// and the root is read-only once the dyno runs.
	size := int64(1 << 20)
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size() + 4096
		}
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("mode=0755,size=%d", size)); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", root, err)
	}
	for _, p := range c.ReadOnly {
		if err := bindReadOnly(p, filepath.Join(root, p)); err != nil {
			return err
		}
	}
	if err := bindResolvConf(root); err != nil {
		return err
	}
	if err := bindUserFiles(root); err != nil {
		return err
	}
	proc := filepath.Join(root, "proc")
	if err := os.Mkdir(proc, 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mount a new /proc: %w: the kernel refuses it when this host's /proc is partly masked, as inside a Docker or Kubernetes container; run dyno on the host, or give its container an unmasked /proc (e.g. --security-opt systempaths=unconfined)", err)
		}
		return fmt.Errorf("mount a new /proc: %w", err)
	}
	return buildDev(filepath.Join(root, "dev"))
}

// finishRoot adds what is the dyno's own (/app over its lower dir, /tmp
// of its size, its hostname) and pivots into the root.
func finishRoot(c *SandboxConfig) (warning string, err error) {
	root := c.Root
	app := filepath.Join(root, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		return "", err
	}
	if c.IDs > 0 && c.Lower != "" {
		// The upper dir is /app's root: the dyno user's, DynoUID of the
		// app's own namespace, which is appID of init's (user.go).
		if err := os.Chown(c.Upper, appID, appID); err != nil {
			return "", fmt.Errorf("give the upper dir to the app's ids: %w", err)
		}
	}
	// With the app's own ids, Lower is the app's (Sandbox.IDs): the
	// overlay shows its files as theirs and copy-up keeps them so, so
	// nothing is copied per start. Only a copy, made by init, needs
	// handing to the app.
	copied := false
	if c.Lower == "" {
		// A build sandbox: no app yet, its work is in the binds.
	} else if c.CopyLower {
		if err := mountCopy(c, app); err != nil {
			return "", err
		}
		copied = true
	} else if err := mountOverlay(c, app); err != nil {
		// The probe said overlay works; a refusal now (a lower dir on a
		// filesystem overlay cannot use, say) still leaves the copy.
		if cerr := mountCopy(c, app); cerr != nil {
			return "", fmt.Errorf("%w; copying it instead failed too: %v", err, cerr)
		}
		copied = true
		warning = fmt.Sprintf("%v; /app is a copy of %s instead, which is slower to start", err, c.Lower)
	}
	if copied && c.IDs > 0 {
		if err := chownTree(c.Upper, appID, appID); err != nil {
			return "", fmt.Errorf("give /app to the app's ids: %w", err)
		}
	}

	tmp := filepath.Join(root, "tmp")
	if err := os.Mkdir(tmp, 0o1777); err != nil {
		return "", err
	}
	// A size cap: tmpfs pages are charged to the dyno's memory cgroup,
	// and an unbounded /tmp could take the whole host without one.
	if err := unix.Mount("tmpfs", tmp, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("mode=1777,size=%d", c.TmpSize)); err != nil {
		return "", fmt.Errorf("mount tmpfs on /tmp: %w", err)
	}
	for _, b := range c.Binds {
		if err := bindAt(b, filepath.Join(root, b.Path)); err != nil {
			return "", err
		}
	}
	// Last, so nothing mounted later uncovers them.
	if err := hideAll(root, c.Hidden); err != nil {
		return "", err
	}
	if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
		return "", fmt.Errorf("set hostname %q: %w", c.Hostname, err)
	}
	if err := pivot(root); err != nil {
		return "", err
	}
	// The root tmpfs holds only mount points and symlinks: nothing in the
	// dyno needs to write there.
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return "", fmt.Errorf("remount / read-only: %w", err)
	}
	if err := os.Chdir("/app"); err != nil {
		return "", err
	}
	return warning, nil
}

// bindAt binds the host directory b.Path at dst, read-only unless
// b.Writable.
func bindAt(b Bind, dst string) error {
	if !filepath.IsAbs(b.Path) {
		return fmt.Errorf("bind %q: not an absolute path", b.Path)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("bind %s: %w", b.Path, err)
	}
	if err := unix.Mount(b.Path, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", b.Path, err)
	}
	if b.Writable {
		return nil
	}
	return readOnly(dst)
}

// bindReadOnly binds host path src at dst, recursively, and makes the
// whole subtree read-only, nosuid and nodev.
func bindReadOnly(src, dst string) error {
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	if fi.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else {
		err = touch(dst)
	}
	if err != nil {
		return err
	}
	// Always recursive: a plain bind would uncover what host submounts
	// hide.
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	return readOnly(dst)
}

// readOnly sets ro, nosuid and nodev on the mount at path and every mount
// below it. mount_setattr(2) (Linux 5.12) does the subtree at once and
// only touches the named attributes, so it cannot trip over the flags the
// kernel locked when the mounts were copied into this less privileged
// namespace; before 5.12, remount the top with those flags OR-ed in.
func readOnly(path string) error {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	err := unix.MountSetattr(-1, path, unix.AT_RECURSIVE, attr)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("make %s read-only: %w", path, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", path, err)
	}
	locked := uintptr(st.Flags) & (unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | locked
	if err := unix.Mount("", path, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", path, err)
	}
	return nil
}

// bindResolvConf makes DNS work where /etc/resolv.conf is a symlink out
// of /etc (systemd-resolved points it into /run/systemd/resolve): the
// directory it points into is bound too. A bind of the file alone would
// go stale when the host replaces it.
func bindResolvConf(root string) error {
	target, err := os.Readlink("/etc/resolv.conf")
	if err != nil || !filepath.IsAbs(target) {
		return nil
	}
	dir := filepath.Dir(target)
	if strings.HasPrefix(dir, "/etc") || strings.HasPrefix(dir, "/usr") {
		return nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	return bindReadOnly(dir, filepath.Join(root, dir))
}

// mountOverlay puts the overlay of Lower (read-only, never modified) and
// the dyno's fresh upper dir on app.
func mountOverlay(c *SandboxConfig, app string) error {
	for _, p := range []string{c.Lower, c.Upper, c.Work} {
		if strings.ContainsAny(p, ",:") {
			return fmt.Errorf("overlay on /app: path %q has a ',' or ':', which overlay options cannot carry; move it", p)
		}
	}
	base := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", c.Lower, c.Upper, c.Work)
	// In a user namespace overlay must keep its metadata in user.*
	// xattrs (userxattr, Linux 5.11); without it renames can fail later
	// with EXDEV. volatile (5.10) skips the sync of the upper layer's
	// filesystem at unmount: the upper layer dies with the dyno, and that
	// sync would flush every dirty page of the host's disk at each exit.
	// Older distribution kernels that allowed userns overlay by a patch
	// know neither option: try plain options last.
	var first error
	for _, opts := range []string{",userxattr,volatile", ",userxattr", ""} {
		err := unix.Mount("overlay", app, "overlay", 0, base+opts)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("mount overlay on /app (lower %s): %w", c.Lower, first)
}

// chownTree gives every file under dir to uid and gid, links
// themselves rather than their targets.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// mountCopy copies Lower into Upper and binds that on app.
func mountCopy(c *SandboxConfig, app string) error {
	if err := fsutil.CopyTree(c.Lower, c.Upper, nil); err != nil {
		return fmt.Errorf("copy %s for /app: %w", c.Lower, err)
	}
	if err := unix.Mount(c.Upper, app, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind copy of %s on /app: %w", c.Lower, err)
	}
	return nil
}

// buildDev makes a minimal /dev: a tmpfs with the host's harmless device
// nodes bound in, the usual symlinks, a devpts of the dyno's own
// (newinstance: its PTYs are invisible outside) and /dev/shm.
func buildDev(dev string) error {
	if err := os.Mkdir(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("mount tmpfs on /dev: %w", err)
	}
	for _, d := range devices {
		dst := filepath.Join(dev, d)
		if err := touch(dst); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+d, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", d, err)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return err
	}
	// No gid=5: the tty group is not mapped in the user namespace and
	// the mount would fail.
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"); err != nil {
		return fmt.Errorf("mount devpts on /dev/pts: %w", err)
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=64m"); err != nil {
		return fmt.Errorf("mount tmpfs on /dev/shm: %w", err)
	}
	return nil
}

// pivot makes root the root of the mount namespace and detaches the host
// tree, so nothing of it stays reachable (chroot would leave it mounted
// and escapable). pivot_root(".", ".") stacks the old root on the new
// one; unmounting "." then takes the old root away (pivot_root(2)).
func pivot(root string) error {
	if err := os.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", root, err)
	}
	// Slave first, so the detach does not propagate to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return os.Chdir("/")
}

func touch(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
