package isolate

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// appCaps are the capabilities the app of a dyno with the app's own ids
// keeps (Sandbox.IDs), as a mask of capability numbers: enough for what
// a program does with a whole uid range, chown (tar restoring owners,
// nginx giving its temp folders to nobody), privilege drops (setuid,
// setgid, setgroups) and a master signalling the workers it dropped to
// another uid. They are capabilities of the app's own user namespace,
// not of the host, and the kernel confines them to it:
//
//   - a capability held in a user namespace applies only to objects
//     whose owners map into it (capabilities(7), user_namespaces(7)):
//     CAP_CHOWN and CAP_FOWNER act only on files whose uid and gid are
//     mapped, and chown only to mapped ids, CAP_SETUID and CAP_SETGID
//     switch only to mapped ids. What that namespace maps is the app's
//     own slice of host ids and nothing else: the host's files in the
//     read-only binds are owned by unmapped ids (host root, the daemon's
//     user), which stat shows as the overflow id, 65534, and which stay
//     out of reach all the same: the kernel compares the host ids, and
//     the app's own nobody is its slice's start + 65534. Read-only mounts
//     refuse every write besides;
//   - CAP_KILL is checked against the target's user namespace (kill(2)
//     needs it in the namespace that owns the target's credentials), so
//     it reaches only processes of the app's namespace; init belongs to
//     the one above, and the dyno's pid namespace hides every other
//     process;
//   - the bounding set holds these five only, and no_new_privs and
//     seccomp stay, so no execve, not even as uid 0 of that namespace,
//     and no file capability or setuid bit gives any other (mount,
//     CAP_DAC_OVERRIDE, CAP_SYS_ADMIN...).
//
// A process that drops to another uid keeps them: the kernel clears
// capabilities on a uid change only when it leaves uid 0
// (capabilities(7), "Effect of user ID changes on capabilities"), which
// the dyno user is not. To make a drop final, a program clears its
// inheritable and ambient sets as well (setpriv --inh-caps=-all); its
// next execve then leaves it none.
const appCaps = 1<<unix.CAP_CHOWN | 1<<unix.CAP_FOWNER | 1<<unix.CAP_KILL |
	1<<unix.CAP_SETGID | 1<<unix.CAP_SETUID

// dropPrivileges leaves the calling thread, and so every process forked
// from it, with no capability at all and no way to gain one: the bounding
// set emptied (an execve as uid 0 would otherwise refill the permitted
// set from it, capabilities(7)), ambient cleared, effective, permitted and
// inheritable emptied, and no_new_privs set (setuid bits and file
// capabilities then grant nothing, prctl(2)). It is what a dyno without
// the app's own ids gets: its namespace maps one uid, so no capability
// would have anything to act on.
//
// Capabilities and no_new_privs are per thread: init calls this on its
// main thread, locked by Init, right before it forks the app from that
// same thread.
func dropPrivileges() error {
	if err := limitBounding(0); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if err := setCaps(0); err != nil {
		return err
	}
	return setNoNewPrivs()
}

// becomeDynoUser is a mapped dyno's exec stage, uid 0 of the app's own
// user namespace with all its capabilities: it leaves the calling thread
// as the dyno user (DynoUID and DynoGID, no supplementary groups) with
// appCaps alone in its bounding, permitted, effective, inheritable and
// ambient sets, and no_new_privs. Ambient, because the app is an execve
// away and holds no file capabilities: an execve as a uid other than 0
// keeps only the ambient ones (capabilities(7)).
//
// The bounding set shrinks first, as PR_CAPBSET_DROP needs CAP_SETPCAP,
// which is not kept. PR_SET_KEEPCAPS keeps the permitted set across the
// switch from uid 0 to the dyno user, which would otherwise empty it;
// the switch still empties the effective and ambient sets, refilled
// after it. The raw system calls change this thread alone, the one that
// execs the app; Go's own would change every thread of the process.
func becomeDynoUser() error {
	if err := limitBounding(appCaps); err != nil {
		return err
	}
	// setgroups(2) works here: newgidmap mapped init's namespace from
	// the user's subordinate gids and so left /proc/PID/setgroups
	// "allow", which the app's namespace, made by init without writing
	// "deny", inherits (user_namespaces(7)).
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("drop supplementary groups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, DynoGID, DynoGID, DynoGID); e != 0 {
		return fmt.Errorf("become group %d: %w", DynoGID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities across setuid: %w", err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, DynoUID, DynoUID, DynoUID); e != 0 {
		return fmt.Errorf("become %s (uid %d): %w", DynoUser, DynoUID, e)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keep-capabilities: %w", err)
	}
	if err := setCaps(appCaps); err != nil {
		return err
	}
	for c := 0; c < 64; c++ {
		if appCaps&(1<<c) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %d: %w", c, err)
		}
	}
	return setNoNewPrivs()
}

// limitBounding drops from the calling thread's bounding set every
// capability not in keep, a mask of capability numbers.
func limitBounding(keep uint64) error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if c < 64 && keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// setCaps makes the calling thread's effective, permitted and
// inheritable sets exactly caps, a mask of capability numbers.
func setCaps(caps uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	lo, hi := uint32(caps), uint32(caps>>32)
	data := [2]unix.CapUserData{
		{Effective: lo, Permitted: lo, Inheritable: lo},
		{Effective: hi, Permitted: hi, Inheritable: hi},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset to %#x: %w", caps, err)
	}
	return nil
}

func setNoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// lastCap is the highest capability number this kernel knows.
func lastCap() (int, error) {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		// Read before pivot_root or after: /proc is there either way; 40
		// is CAP_CHECKPOINT_RESTORE, the last one as of Linux 6.x, and
		// PR_CAPBSET_DROP of an unknown one is only EINVAL.
		return 63, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("parse /proc/sys/kernel/cap_last_cap: %w", err)
	}
	return n, nil
}

// allCaps lists every capability this kernel knows. A child cloned into
// a new user namespace holds all of them there, in a full bounding set
// whatever its parent's was (the kernel's set_cred_user_ns), so init
// may keep each as an ambient one: they are the namespace's, not the
// host's, and init clears them before the app runs.
func allCaps() ([]uintptr, error) {
	last, err := lastCap()
	if err != nil {
		return nil, err
	}
	caps := make([]uintptr, 0, last+1)
	for c := 0; c <= last; c++ {
		caps = append(caps, uintptr(c))
	}
	return caps, nil
}
