package seccomp

import "golang.org/x/sys/unix"

// auditArch is the arch the kernel reports in seccomp_data for native
// 64-bit system calls (syscall_get_arch in arch/x86/include/asm/syscall.h).
// int 0x80 from the same process reports AUDIT_ARCH_I386 instead.
const auditArch = unix.AUDIT_ARCH_X86_64

// hasX32 reports that x32 calls share auditArch and differ only by
// x32SyscallBit in the number.
const hasX32 = true

// syscallNumbers maps every system call the program names to its number
// on amd64, or to absent. x86_64 never had umount(2): its umount is
// umount2 with no flags.
var syscallNumbers = map[string]int{
	"clone": unix.SYS_CLONE,
	"ioctl": unix.SYS_IOCTL,

	"syslog":            unix.SYS_SYSLOG,
	"uselib":            unix.SYS_USELIB,
	"acct":              unix.SYS_ACCT,
	"modify_ldt":        unix.SYS_MODIFY_LDT,
	"quotactl":          unix.SYS_QUOTACTL,
	"add_key":           unix.SYS_ADD_KEY,
	"keyctl":            unix.SYS_KEYCTL,
	"request_key":       unix.SYS_REQUEST_KEY,
	"move_pages":        unix.SYS_MOVE_PAGES,
	"mbind":             unix.SYS_MBIND,
	"get_mempolicy":     unix.SYS_GET_MEMPOLICY,
	"set_mempolicy":     unix.SYS_SET_MEMPOLICY,
	"migrate_pages":     unix.SYS_MIGRATE_PAGES,
	"unshare":           unix.SYS_UNSHARE,
	"setns":             unix.SYS_SETNS,
	"mount":             unix.SYS_MOUNT,
	"umount":            absent,
	"umount2":           unix.SYS_UMOUNT2,
	"pivot_root":        unix.SYS_PIVOT_ROOT,
	"chroot":            unix.SYS_CHROOT,
	"bpf":               unix.SYS_BPF,
	"perf_event_open":   unix.SYS_PERF_EVENT_OPEN,
	"kexec_load":        unix.SYS_KEXEC_LOAD,
	"kexec_file_load":   unix.SYS_KEXEC_FILE_LOAD,
	"init_module":       unix.SYS_INIT_MODULE,
	"finit_module":      unix.SYS_FINIT_MODULE,
	"delete_module":     unix.SYS_DELETE_MODULE,
	"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT,
	"userfaultfd":       unix.SYS_USERFAULTFD,
	"io_uring_setup":    unix.SYS_IO_URING_SETUP,
	"io_uring_enter":    unix.SYS_IO_URING_ENTER,
	"io_uring_register": unix.SYS_IO_URING_REGISTER,
	"clone3":            unix.SYS_CLONE3,
	"open_tree":         unix.SYS_OPEN_TREE,
	"move_mount":        unix.SYS_MOVE_MOUNT,
	"fsopen":            unix.SYS_FSOPEN,
	"fsconfig":          unix.SYS_FSCONFIG,
	"fsmount":           unix.SYS_FSMOUNT,
	"fspick":            unix.SYS_FSPICK,
	"mount_setattr":     unix.SYS_MOUNT_SETATTR,
}
