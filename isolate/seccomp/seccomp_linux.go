//go:build linux

package seccomp

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Offsets into struct seccomp_data (include/uapi/linux/seccomp.h), the
// input every filter runs on:
//
//	struct seccomp_data {
//		int   nr;
//		__u32 arch;
//		__u64 instruction_pointer;
//		__u64 args[6];
//	};
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// argLow returns the offset of the low 32 bits of args[i]. Classic BPF
// loads 32 bits at a time, and both supported architectures are
// little-endian, so the low word comes first.
func argLow(i int) uint32 {
	return offArgs + 8*uint32(i)
}

// x32SyscallBit is __X32_SYSCALL_BIT (arch/x86/include/uapi/asm/unistd.h).
// seccomp(2): "The x86-64 ABI and the x32 ABI both use AUDIT_ARCH_X86_64
// as arch [...] the mask __X32_SYSCALL_BIT is used on the system call
// number to tell the two ABIs apart." Without this check, mount(2) called
// as 0x40000000|165 would pass every number comparison below.
const x32SyscallBit = 0x40000000

// A rule denies every call of one system call with an errno.
type rule struct {
	name  string
	errno unix.Errno
}

// rules is the deny list. Names a GOARCH lacks are marked absent in its
// syscallNumbers table and skipped.
var rules = [...]rule{
	// Host-global or legacy kernel interfaces that no app needs: the
	// kernel log, process accounting, a.out libraries, the x86 LDT and
	// disk quotas (flatpak's list).
	{"syslog", unix.EPERM},
	{"uselib", unix.EPERM},
	{"acct", unix.EPERM},
	{"modify_ldt", unix.EPERM},
	{"quotactl", unix.EPERM},

	// Kernel keyrings were not namespaced for most of their history
	// (Docker's profile); nothing a dyno runs needs them, so keep them
	// out at no cost.
	{"add_key", unix.EPERM},
	{"keyctl", unix.EPERM},
	{"request_key", unix.EPERM},

	// NUMA memory policy and page migration can move other processes'
	// memory and expose host topology (flatpak's list).
	{"move_pages", unix.EPERM},
	{"mbind", unix.EPERM},
	{"get_mempolicy", unix.EPERM},
	{"set_mempolicy", unix.EPERM},
	{"migrate_pages", unix.EPERM},

	// The dyno's namespaces and mount tree are final. A new user
	// namespace would give the app a full capability set inside it and
	// with it kernel code written for root; clone(2) with CLONE_NEWUSER
	// is checked separately, since plain clone(2) is how fork works.
	{"unshare", unix.EPERM},
	{"setns", unix.EPERM},
	{"mount", unix.EPERM},
	{"umount", unix.EPERM},
	{"umount2", unix.EPERM},
	{"pivot_root", unix.EPERM},
	{"chroot", unix.EPERM},

	// Kernel-wide facilities that Docker's default profile denies: eBPF,
	// perf events, kexec, kernel modules, file handles (which bypass
	// path-based confinement, the "shocker" escape) and userfaultfd
	// (used to win kernel races).
	{"bpf", unix.EPERM},
	{"perf_event_open", unix.EPERM},
	{"kexec_load", unix.EPERM},
	{"kexec_file_load", unix.EPERM},
	{"init_module", unix.EPERM},
	{"finit_module", unix.EPERM},
	{"delete_module", unix.EPERM},
	{"open_by_handle_at", unix.EPERM},
	{"userfaultfd", unix.EPERM},

	// io_uring performs its operations in the kernel without a system
	// call each, so seccomp never sees them; Docker denies it since 2023
	// (moby/moby#46762).
	{"io_uring_setup", unix.EPERM},
	{"io_uring_enter", unix.EPERM},
	{"io_uring_register", unix.EPERM},

	// clone3 passes its flags in a struct in user memory, and
	// seccomp_filter.rst: "BPF programs may not dereference pointers", so
	// CLONE_NEWUSER cannot be checked there. ENOSYS rather than EPERM
	// because glibc, like other libcs, falls back to clone(2) only on
	// ENOSYS; EPERM would break every pthread_create and posix_spawn.
	{"clone3", unix.ENOSYS},

	// The new mount API (Linux 5.2 and later). ENOSYS, as on an older
	// kernel, so that tools fall back to mount(2), which is denied above.
	{"open_tree", unix.ENOSYS},
	{"move_mount", unix.ENOSYS},
	{"fsopen", unix.ENOSYS},
	{"fsconfig", unix.ENOSYS},
	{"fsmount", unix.ENOSYS},
	{"fspick", unix.ENOSYS},
	{"mount_setattr", unix.ENOSYS},
}

// absent marks, in a syscallNumbers table, a system call that the
// architecture does not have.
const absent = -1

// Program returns the classic BPF program for the running architecture,
// as the package documentation describes it. Only amd64 and arm64 are
// supported; elsewhere it returns an error.
func Program() ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, fmt.Errorf("seccomp: not supported on %s", runtime.GOARCH)
	}
	prog, err := build()
	if err != nil {
		return nil, fmt.Errorf("seccomp: build program for %s: %w", runtime.GOARCH, err)
	}
	return prog, nil
}

// Actions, as seccomp(2) defines them.
const (
	retAllow = unix.SECCOMP_RET_ALLOW
	// SECCOMP_RET_KILL_PROCESS needs Linux 4.14. Older kernels mask the
	// action with SECCOMP_RET_ACTION (0x7fff0000), which turns it into
	// SECCOMP_RET_KILL_THREAD: the calling thread still dies.
	retKill = unix.SECCOMP_RET_KILL_PROCESS
)

func retErrno(errno unix.Errno) uint32 {
	return unix.SECCOMP_RET_ERRNO | uint32(errno)&unix.SECCOMP_RET_DATA
}

func errnoLabel(errno unix.Errno) string {
	return "errno " + strconv.Itoa(int(errno))
}

// build assembles the program from rules and this architecture's table.
//
// The deny checks are a linear list of comparisons, about fifty
// instructions for an allowed call. Since Linux 5.11 even that is mostly
// skipped: where the architecture supports the action cache, the kernel
// emulates the filter for each system call number at load time and, for
// numbers whose verdict does not depend on the arguments, records
// "allow" in a bitmap it checks instead (seccomp_cache_prepare in
// kernel/seccomp.c).
func build() ([]unix.SockFilter, error) {
	var a assembler

	// A foreign ABI numbers its calls differently, so none of the
	// comparisons below would mean anything there: a process that can
	// execute int 0x80 on amd64 would otherwise reach i386 mount(2) as
	// number 21. seccomp(2): "it is usually necessary to verify the value
	// of the arch field." Kill rather than guess.
	a.load(offArch)
	a.jeq(auditArch, "", "kill")

	a.load(offNr)
	if hasX32 {
		// EPERM, not a kill. The range also holds the numbers no ABI
		// defines, such as -1, which a tracer writes to skip a call and
		// which fuzzers and feature probes make; the kernel answers those
		// with ENOSYS, and an invalid number should stay a harmless
		// error rather than become a death. An x32 binary gets EPERM from
		// its very first call either way.
		a.jge(x32SyscallBit, errnoLabel(unix.EPERM), "")
	}

	clone, err := number("clone")
	if err != nil {
		return nil, err
	}
	ioctl, err := number("ioctl")
	if err != nil {
		return nil, err
	}
	a.jeq(uint32(clone), "clone", "")
	a.jeq(uint32(ioctl), "ioctl", "")

	var errnos []unix.Errno // distinct, in order of first use
	for _, r := range rules {
		nr, err := number(r.name)
		if err != nil {
			return nil, err
		}
		if nr == absent {
			continue
		}
		a.jeq(uint32(nr), errnoLabel(r.errno), "")
		if !slices.Contains(errnos, r.errno) {
			errnos = append(errnos, r.errno)
		}
	}
	a.ret(retAllow)

	// clone(2): flags are the first argument on both amd64,
	// clone(flags, stack, parent_tid, child_tid, tls), and arm64,
	// clone(flags, stack, parent_tid, tls, child_tid)
	// (CONFIG_CLONE_BACKWARDS, kernel/fork.c). The kernel uses only their
	// low 32 bits (lower_32_bits in sys_clone), so the low word is all
	// there is to check.
	a.label("clone")
	a.load(argLow(0))
	a.jset(unix.CLONE_NEWUSER, errnoLabel(unix.EPERM), "allow")

	// ioctl(2) TIOCSTI pushes bytes into a terminal's input queue, so a
	// sandboxed process sharing the caller's terminal could type commands
	// into the shell outside it (CVE-2017-5226). The request argument is
	// an unsigned int to the kernel (fs/ioctl.c), which drops the high 32
	// bits; flatpak compared all 64 and was bypassed by setting high bits
	// (CVE-2019-10063). Comparing exactly the low word matches what the
	// kernel acts on.
	a.label("ioctl")
	a.load(argLow(1))
	a.jeq(unix.TIOCSTI, errnoLabel(unix.EPERM), "allow")

	a.label("allow")
	a.ret(retAllow)
	if !slices.Contains(errnos, unix.EPERM) {
		errnos = append(errnos, unix.EPERM)
	}
	for _, e := range errnos {
		a.label(errnoLabel(e))
		a.ret(retErrno(e))
	}
	a.label("kill")
	a.ret(retKill)

	return a.assemble()
}

// number returns the system call number of name on this architecture,
// or absent. A name missing from the table is a bug in it, not a call to
// skip: it would silently drop a rule.
func number(name string) (int, error) {
	nr, ok := syscallNumbers[name]
	if !ok {
		return 0, fmt.Errorf("no entry for %s in the %s syscall table", name, runtime.GOARCH)
	}
	return nr, nil
}

// Denied lists the system calls the program refuses outright, with EPERM
// or ENOSYS, on this architecture, in the program's order. clone(2) with
// CLONE_NEWUSER and ioctl(2) with TIOCSTI are refused too, but not named:
// both calls are otherwise allowed. It returns nil where Program is not
// supported.
func Denied() []string {
	var names []string
	for _, r := range rules {
		if nr, ok := syscallNumbers[r.name]; ok && nr != absent {
			names = append(names, r.name)
		}
	}
	return names
}

// Load installs the filter on the calling thread.
//
// It installs without SECCOMP_FILTER_FLAG_TSYNC, so only the calling
// thread is filtered (seccomp(2)); the process's other threads, which the
// Go runtime shares among goroutines, are not. Children inherit it:
// "If fork(2) or clone(2) is allowed by the filter, any child processes
// will be constrained by the same system call filters as the parent. If
// execve(2) is allowed, the existing filters will be preserved across a
// call to execve(2)." The caller must therefore call runtime.LockOSThread
// first, start the app from the same goroutine (syscall.ForkExec and
// os/exec clone from the calling thread), and never unlock it: an
// unlocked thread would go back to the scheduler filtered, and other
// goroutines would then run under the filter at random.
//
// Installing a filter needs either CAP_SYS_ADMIN or no_new_privs
// (seccomp(2)). Load sets no_new_privs on the calling thread if it is not
// set already, so that a setuid binary cannot gain privileges the filter
// was not written for; like the filter, the bit is per thread and
// inherited across fork and execve.
func Load() error {
	prog, err := Program()
	if err != nil {
		return err
	}
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("seccomp: get no_new_privs: %w", err)
	}
	if nnp != 1 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("seccomp: set no_new_privs: %w", err)
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if errno == unix.ENOSYS {
		// seccomp(2) arrived in Linux 3.17; before it the same filter
		// mode is reached through prctl(2).
		_, _, errno = unix.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)))
	}
	if errno != 0 {
		// EINVAL here means a kernel without CONFIG_SECCOMP_FILTER or a
		// program the kernel's checker rejected.
		return fmt.Errorf("seccomp: install filter: %w", errno)
	}
	return nil
}
