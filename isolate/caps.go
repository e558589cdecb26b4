package isolate

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dropPrivileges leaves the calling thread, and so every process forked
// from it, with no capability at all and no way to gain one: the bounding
// set emptied (an execve as uid 0 would otherwise refill the permitted
// set from it, capabilities(7)), ambient cleared, effective, permitted and
// inheritable emptied, and no_new_privs set (setuid bits and file
// capabilities then grant nothing, prctl(2)).
//
// Capabilities and no_new_privs are per thread: init calls this on its
// main thread, locked by Init, right before it forks the app from that
// same thread; a mapped dyno's exec stage before it execs the app.
//
// With becomeUser, the thread also becomes the dyno user (DynoUID and
// DynoGID, no supplementary groups) once the bounding set is empty:
// PR_CAPBSET_DROP needs CAP_SETPCAP, which the switch from uid 0 to
// another takes away with every other capability (capabilities(7)). The
// raw system calls change this thread alone, the one that execs the
// app; Go's own would change every thread of the process.
func dropPrivileges(becomeUser bool) error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if becomeUser {
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return fmt.Errorf("drop supplementary groups: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, DynoGID, DynoGID, DynoGID); e != 0 {
			return fmt.Errorf("become group %d: %w", DynoGID, e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, DynoUID, DynoUID, DynoUID); e != 0 {
			return fmt.Errorf("become %s (uid %d): %w", DynoUser, DynoUID, e)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset to nothing: %w", err)
	}
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

// boundingCaps lists the capabilities in the calling thread's bounding
// set: what a new user namespace's init may hold as ambient ones.
func boundingCaps() ([]uintptr, error) {
	last, err := lastCap()
	if err != nil {
		return nil, err
	}
	caps := make([]uintptr, 0, last+1)
	for c := 0; c <= last; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			return nil, fmt.Errorf("read capability %d of the bounding set: %w", c, err)
		}
		if in == 1 {
			caps = append(caps, uintptr(c))
		}
	}
	return caps, nil
}
