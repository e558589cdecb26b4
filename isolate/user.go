package isolate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Every dyno and every build runs as one ordinary user inside, as on
// Heroku: uid and gid 12345, called u12345, in the group dyno, with
// /app as its home. Not root: GNU tar run as root restores an archive's
// owners, and servers such as nginx that see root try to drop to
// nobody; as an ordinary user both simply go on. The number is the same
// in every dyno, so that a path a build wrote keeps its owner in the
// app's dynos.
//
// Without the app's own ids (Sandbox.IDs) it is the only uid the dyno's
// user namespace maps, onto this process's uid. With them, a nested
// user namespace maps a whole 16-bit range onto the app's slice, and
// uid 12345 of it is slice start + 12345.
const (
	DynoUID   = 12345
	DynoGID   = 12345
	DynoUser  = "u12345"
	DynoGroup = "dyno"
)

// appID is the dyno user as a mapped init sees it: its user namespace
// maps the app's slice from 1 (mapIDs), and the app's nested one maps
// that slice from 0, so the dyno user is 1 + DynoUID there.
const appID = 1 + DynoUID

// userFiles returns /etc/passwd and /etc/group for a dyno: the host's
// (its system users and groups keep their names) without any entry that
// takes the dyno user's name or ids, and that user and group added.
func userFiles(passwd, group []byte, shell string) (outPasswd, outGroup []byte) {
	uid, gid := strconv.Itoa(DynoUID), strconv.Itoa(DynoGID)
	outPasswd = append(withoutEntries(passwd, DynoUser, uid, 2),
		fmt.Sprintf("%s:x:%d:%d:%s:/app:%s\n", DynoUser, DynoUID, DynoGID, DynoUser, shell)...)
	outGroup = append(withoutEntries(group, DynoGroup, gid, 2),
		fmt.Sprintf("%s:x:%d:\n", DynoGroup, DynoGID)...)
	return outPasswd, outGroup
}

// withoutEntries returns the lines of a passwd(5) or group(5) file but
// those whose name is name or whose field idField is id; the result ends
// with a newline unless it is empty.
func withoutEntries(file []byte, name, id string, idField int) []byte {
	var out []byte
	for _, line := range bytes.Split(file, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f := bytes.Split(line, []byte(":"))
		if string(f[0]) == name || len(f) > idField && string(f[idField]) == id {
			continue
		}
		out = append(append(out, line...), '\n')
	}
	return out
}

// bindUserFiles puts a passwd and a group that know the dyno user over
// the root's /etc/passwd and /etc/group, so that whoami and id name it.
// The host's /etc is bound read-only and shared by every dyno, so the
// files are made in the root's own tmpfs, bound over the host's, and
// unlinked: the binds keep them. Roots without /etc (a ReadOnly list
// that leaves it out) get none, and a passwd or group that is not a
// regular file is left as it is: mount(2) follows a symlink, which
// would lead the bind out of the root.
func bindUserFiles(root string) error {
	etc := filepath.Join(root, "etc")
	regular := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && fi.Mode().IsRegular()
	}
	if !regular(filepath.Join(etc, "passwd")) {
		return nil
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return fmt.Errorf("name the dyno user: %w", err)
	}
	group, _ := os.ReadFile("/etc/group")
	shell := "/bin/sh"
	if _, err := os.Stat("/bin/bash"); err == nil {
		shell = "/bin/bash"
	}
	p, g := userFiles(passwd, group, shell)
	for _, f := range []struct {
		name string
		data []byte
	}{{"passwd", p}, {"group", g}} {
		dst := filepath.Join(etc, f.name)
		if !regular(dst) {
			continue
		}
		src := filepath.Join(root, "."+f.name)
		// Chmod too: the umask must not make them unreadable to the
		// dyno user, whom a mapped init's files do not belong to.
		if err := os.WriteFile(src, f.data, 0o644); err != nil {
			return fmt.Errorf("name the dyno user: %w", err)
		}
		if err := os.Chmod(src, 0o644); err != nil {
			return fmt.Errorf("name the dyno user: %w", err)
		}
		err := unix.Mount(src, dst, "", unix.MS_BIND, "")
		os.Remove(src)
		if err != nil {
			return fmt.Errorf("name the dyno user: bind %s: %w", dst, err)
		}
		if err := readOnly(dst); err != nil {
			return err
		}
	}
	return nil
}
