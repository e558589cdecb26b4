// Package seccomp builds and installs the seccomp filter that a dyno's
// app runs under.
//
// The filter is a deny list in the spirit of flatpak's (setup_seccomp in
// common/flatpak-run.c) and Docker's default profile: everything is
// allowed except calls that reach host-global kernel state, make new
// namespaces or mounts, load kernel code, or inject terminal input. It
// is written as classic BPF by a small assembler in this package rather
// than through libseccomp, so dyno stays a pure Go binary.
//
// The program, as the kernel runs it on every system call (see
// Documentation/userspace-api/seccomp_filter.rst):
//
//   - a system call made through any ABI but the native one (i386 via int
//     0x80 on amd64, AArch32 on arm64) kills the process, because the
//     syscall numbers checked below mean other calls there;
//   - on amd64, a system call number with the x32 bit (0x40000000) set
//     fails with EPERM;
//   - the calls named by Denied fail with EPERM, except clone3 and the new
//     mount API (open_tree, move_mount, fsopen, fsconfig, fsmount, fspick,
//     mount_setattr), which fail with ENOSYS so that callers fall back to
//     clone(2) and mount(2), which are checked;
//   - clone(2) with CLONE_NEWUSER in its flags fails with EPERM;
//   - ioctl(2) with TIOCSTI fails with EPERM;
//   - everything else is allowed.
package seccomp
