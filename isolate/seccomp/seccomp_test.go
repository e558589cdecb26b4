//go:build linux

package seccomp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// childEnv names the case a re-executed test binary runs instead of the
// tests: "filtered" loads the filter first, "unfiltered" is the control,
// and "foreign" loads the filter and runs the program named by
// foreignEnv.
const (
	childEnv   = "DYNO_SECCOMP_CHILD"
	foreignEnv = "DYNO_SECCOMP_FOREIGN"
)

func TestMain(m *testing.M) {
	if c := os.Getenv(childEnv); c != "" {
		if c == "foreign" {
			os.Exit(foreignChild(os.Getenv(foreignEnv)))
		}
		os.Exit(child(c))
	}
	os.Exit(m.Run())
}

// foreignChild loads the filter and runs prog, a binary for the
// architecture's compat ABI, reporting how it ended.
func foreignChild(prog string) int {
	runtime.LockOSThread()
	if err := Load(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	err := exec.Command(prog).Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		fmt.Println("ran")
	case errors.As(err, &exit):
		ws := exit.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			fmt.Println("killed", unix.SignalName(ws.Signal()))
		} else {
			fmt.Println("exit", ws.ExitStatus())
		}
	default:
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// probeArgs are the arguments each denied call is probed with. They
// must make the kernel fail harmlessly should the filter let the call
// through, since the tests may run as root: all bits set gives -1 for a
// file descriptor, an address the kernel refuses (EFAULT) for a pointer,
// and unknown bits (EINVAL) for flags. The exceptions are listed here.
func probeArgs(name string) [6]uintptr {
	a := [6]uintptr{^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0), ^uintptr(0)}
	switch name {
	case "init_module":
		// A zero length fails with ENOEXEC before the kernel tries to
		// allocate a buffer for the image.
		a[1] = 0
	}
	return a
}

func result(errno syscall.Errno) string {
	if errno == 0 {
		return "ok"
	}
	if s := unix.ErrnoName(errno); s != "" {
		return s
	}
	return fmt.Sprintf("errno%d", int(errno))
}

// child runs in the re-executed test binary. It prints one line per
// probe, "probe result", and returns the exit code.
func child(c string) int {
	// The filter is per thread: everything below must run on the thread
	// Load filtered.
	runtime.LockOSThread()
	switch c {
	case "filtered":
		if err := Load(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	case "unfiltered":
	default:
		fmt.Fprintf(os.Stderr, "unknown case %q\n", c)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	report := func(probe, res string) { fmt.Fprintf(out, "%s %s\n", probe, res) }

	for _, name := range Denied() {
		a := probeArgs(name)
		_, _, errno := unix.Syscall6(uintptr(syscallNumbers[name]), a[0], a[1], a[2], a[3], a[4], a[5])
		report(name, result(errno))
	}

	// CLONE_FS with CLONE_NEWUSER is EINVAL to the kernel (copy_process
	// in kernel/fork.c), so without the filter no process is made.
	_, _, errno := unix.RawSyscall6(unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_FS, 0, 0, 0, 0, 0)
	report("clone(CLONE_NEWUSER)", result(errno))
	// Bits above 32 reach seccomp_data on 64-bit architectures, the only
	// ones Program supports; the kernel ignores them.
	high := uint64(1) << 32
	_, _, errno = unix.RawSyscall6(unix.SYS_CLONE, uintptr(high|unix.CLONE_NEWUSER|unix.CLONE_FS), 0, 0, 0, 0, 0)
	report("clone(high|CLONE_NEWUSER)", result(errno))
	// unshare(2) refuses CLONE_NEWUSER in a multithreaded process with
	// EINVAL, and a Go process always is one.
	err := unix.Unshare(unix.CLONE_NEWUSER)
	report("unshare(CLONE_NEWUSER)", errString(err))

	// TIOCSTI on /dev/null is ENOTTY to the kernel, so nothing is typed
	// anywhere should the filter let it through.
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open /dev/null:", err)
		return 2
	}
	c0 := byte('x')
	_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCSTI, uintptr(unsafe.Pointer(&c0)))
	report("ioctl(TIOCSTI)", result(errno))
	_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(high|unix.TIOCSTI), uintptr(unsafe.Pointer(&c0)))
	report("ioctl(high|TIOCSTI)", result(errno))
	_, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	report("ioctl(TIOCGWINSZ)", errString(err))
	unix.Close(fd)

	if hasX32 {
		_, _, errno = unix.RawSyscall(x32SyscallBit|unix.SYS_GETPID, 0, 0, 0)
		report("x32(getpid)", result(errno))
	}

	// Ordinary calls must still work.
	if unix.Getpid() == os.Getpid() && unix.Getpid() > 0 {
		report("getpid", "ok")
	}
	report("read", errString(readFile("/proc/self/stat")))
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		report("no_new_privs", errString(err))
	} else {
		report("no_new_privs", fmt.Sprint(nnp))
	}
	report("forkexec(/bin/true)", errString(forkExecTrue()))

	// The filter and no_new_privs survive fork and execve into the app:
	// let a grandchild report its own status.
	status, err := exec.Command("/bin/sh", "-c", "cat /proc/self/status").Output()
	if err != nil {
		report("status", errString(err))
		return 0
	}
	for line := range strings.Lines(string(status)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "Seccomp" || k == "NoNewPrivs") {
			report("status."+k, strings.TrimSpace(v))
		}
	}
	return 0
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return result(errno)
	}
	return strings.ReplaceAll(err.Error(), " ", "_")
}

func readFile(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 512)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("empty read")
	}
	return nil
}

// forkExecTrue starts /bin/true as the dyno init will start the app:
// syscall.ForkExec from the locked thread, which clones with
// CLONE_VFORK|CLONE_VM (and CLONE_PIDFD when asked) but not
// CLONE_NEWUSER.
func forkExecTrue() error {
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		return err
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("status %v", ws)
	}
	return nil
}

func runChild(t *testing.T, c string) map[string]string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+c)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s child: %v\n%s", c, err, stderr.Bytes())
	}
	got := make(map[string]string)
	for line := range strings.Lines(string(out)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			t.Fatalf("%s child: bad line %q", c, line)
		}
		got[k] = v
	}
	return got
}

// needSupport skips tests of the program where Program refuses the
// architecture; TestUnsupported covers that case.
func needSupport(t *testing.T) {
	t.Helper()
	if auditArch == 0 {
		t.Skipf("seccomp filter not supported on %s", runtime.GOARCH)
	}
}

func TestUnsupported(t *testing.T) {
	if auditArch != 0 {
		t.Skipf("%s is supported", runtime.GOARCH)
	}
	if _, err := Program(); err == nil || !strings.Contains(err.Error(), runtime.GOARCH) {
		t.Errorf("Program: got %v, want an error naming %s", err, runtime.GOARCH)
	}
	if err := Load(); err == nil {
		t.Error("Load succeeded on an unsupported architecture")
	}
	if d := Denied(); len(d) != 0 {
		t.Errorf("Denied = %q, want none", d)
	}
}

func TestLoad(t *testing.T) {
	needSupport(t)
	for _, p := range []string{"/bin/true", "/bin/sh"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("need %s: %v", p, err)
		}
	}
	got := runChild(t, "filtered")
	control := runChild(t, "unfiltered")

	want := map[string]string{
		"clone(CLONE_NEWUSER)":      "EPERM",
		"clone(high|CLONE_NEWUSER)": "EPERM",
		"unshare(CLONE_NEWUSER)":    "EPERM",
		"ioctl(TIOCSTI)":            "EPERM",
		"ioctl(high|TIOCSTI)":       "EPERM",
		"ioctl(TIOCGWINSZ)":         "ENOTTY",
		"getpid":                    "ok",
		"read":                      "ok",
		"no_new_privs":              "1",
		"forkexec(/bin/true)":       "ok",
		"status.Seccomp":            "2",
		"status.NoNewPrivs":         "1",
	}
	if hasX32 {
		want["x32(getpid)"] = "EPERM"
	}
	for _, r := range rules {
		if nr := syscallNumbers[r.name]; nr != absent {
			want[r.name] = unix.ErrnoName(r.errno)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("%s: got %q, want %q", k, got[k], want[k])
			continue
		}
		// A filtered answer proves the filter only where the kernel
		// would have answered differently: unprivileged, mount(2) is
		// EPERM anyway.
		if control[k] == want[k] && k != "getpid" && k != "read" && k != "forkexec(/bin/true)" && k != "ioctl(TIOCGWINSZ)" {
			t.Logf("%s: %s without the filter too; not proof of the filter", k, want[k])
		}
	}
	if control["status.Seccomp"] != "0" {
		t.Logf("control child already runs under seccomp mode %q", control["status.Seccomp"])
	}
}

// TestForeignArch runs a binary for the compat ABI (i386 on amd64,
// AArch32 on arm64) under the filter. execve(2) itself is a native call,
// but the binary's first system call reports the foreign arch and must
// kill it with SIGSYS (seccomp(2), SECCOMP_RET_KILL_PROCESS).
func TestForeignArch(t *testing.T) {
	needSupport(t)
	if testing.Short() {
		t.Skip("builds a program for another GOARCH")
	}
	goarch := map[string]string{"amd64": "386", "arm64": "arm"}[runtime.GOARCH]
	// go test puts its own GOROOT/bin first in PATH.
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"alive\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "foreign")
	build := exec.Command(gocmd, "build", "-o", prog, src)
	build.Dir = dir
	build.Env = append(os.Environ(), "GOARCH="+goarch, "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s program: %v\n%s", goarch, err, out)
	}
	// The kernel may lack the compat ABI (CONFIG_IA32_EMULATION,
	// CONFIG_COMPAT, or a CPU without AArch32).
	if out, err := exec.Command(prog).CombinedOutput(); err != nil || !strings.Contains(string(out), "alive") {
		t.Skipf("cannot run %s binaries here: %v %s", goarch, err, out)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=foreign", foreignEnv+"="+prog)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("foreign child: %v\n%s", err, stderr.Bytes())
	}
	if got := strings.TrimSpace(string(out)); got != "killed SIGSYS" {
		t.Errorf("%s program under the filter: %s, want killed SIGSYS", goarch, got)
	}
}

func TestProgramWellFormed(t *testing.T) {
	needSupport(t)
	prog, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) >= unix.BPF_MAXINSNS {
		t.Fatalf("program has %d instructions, want fewer than %d", len(prog), unix.BPF_MAXINSNS)
	}
	for i, f := range prog {
		switch f.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			// seccomp_data is 64 bytes; loads must be aligned words in it.
			if f.K%4 != 0 || f.K >= 64 {
				t.Errorf("%d: load at offset %d", i, f.K)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			for _, off := range []uint8{f.Jt, f.Jf} {
				if to := i + 1 + int(off); to >= len(prog) {
					t.Errorf("%d: jump to %d, past the end", i, to)
				}
			}
		case unix.BPF_RET | unix.BPF_K:
		default:
			t.Errorf("%d: unexpected opcode %#x", i, f.Code)
		}
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		t.Errorf("program ends in opcode %#x, not a return", last.Code)
	}
}

func TestDenied(t *testing.T) {
	needSupport(t)
	denied := Denied()
	if len(denied) == 0 {
		t.Fatal("Denied is empty")
	}
	seen := make(map[string]bool)
	for _, name := range denied {
		if seen[name] {
			t.Errorf("%s listed twice", name)
		}
		seen[name] = true
		if nr, ok := syscallNumbers[name]; !ok || nr == absent {
			t.Errorf("%s: not in the %s table", name, runtime.GOARCH)
		}
	}
	// Every rule must be in the table, present or marked absent: a
	// misspelt name would otherwise drop out silently.
	for _, r := range rules {
		if _, ok := syscallNumbers[r.name]; !ok {
			t.Errorf("rule %s: no entry in the %s table", r.name, runtime.GOARCH)
		}
	}
	for _, name := range []string{"mount", "unshare", "clone3", "io_uring_setup", "fsopen"} {
		if !seen[name] {
			t.Errorf("%s not denied", name)
		}
	}
}

// seccompData encodes struct seccomp_data as the kernel lays it out.
func seccompData(arch, nr uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[offNr:], nr)
	binary.NativeEndian.PutUint32(b[offArch:], arch)
	for i, a := range args {
		binary.NativeEndian.PutUint64(b[offArgs+8*i:], a)
	}
	return b
}

// interpret runs prog on data as the kernel would, for the opcodes the
// assembler emits.
func interpret(prog []unix.SockFilter, data []byte) (uint32, error) {
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		f := prog[pc]
		switch f.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if int(f.K)+4 > len(data) {
				return 0, fmt.Errorf("%d: load past seccomp_data", pc)
			}
			acc = binary.NativeEndian.Uint32(data[f.K:])
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			pc += jump(acc == f.K, f)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			pc += jump(acc >= f.K, f)
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			pc += jump(acc&f.K != 0, f)
		case unix.BPF_RET | unix.BPF_K:
			return f.K, nil
		default:
			return 0, fmt.Errorf("%d: unexpected opcode %#x", pc, f.Code)
		}
	}
	return 0, errors.New("ran off the end")
}

func jump(cond bool, f unix.SockFilter) int {
	if cond {
		return int(f.Jt)
	}
	return int(f.Jf)
}

func TestProgramDecisions(t *testing.T) {
	needSupport(t)
	prog, err := Program()
	if err != nil {
		t.Fatal(err)
	}
	eperm := retErrno(unix.EPERM)
	type tc struct {
		name string
		data []byte
		want uint32
	}
	native := func(nr int, args ...uint64) []byte { return seccompData(auditArch, uint32(nr), args...) }
	cases := []tc{
		{"getpid", native(unix.SYS_GETPID), retAllow},
		{"read", native(unix.SYS_READ, 0, 0, 0), retAllow},
		{"clone(SIGCHLD)", native(unix.SYS_CLONE, uint64(unix.SIGCHLD)), retAllow},
		{"clone(thread)", native(unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD), retAllow},
		{"clone(CLONE_NEWUSER)", native(unix.SYS_CLONE, unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), eperm},
		{"clone(high|CLONE_NEWUSER)", native(unix.SYS_CLONE, 1<<40|unix.CLONE_NEWUSER), eperm},
		{"clone(CLONE_NEWUSER<<32)", native(unix.SYS_CLONE, unix.CLONE_NEWUSER<<32), retAllow},
		{"clone(CLONE_NEWNS)", native(unix.SYS_CLONE, unix.CLONE_NEWNS), retAllow},
		{"ioctl(TIOCSTI)", native(unix.SYS_IOCTL, 0, unix.TIOCSTI), eperm},
		{"ioctl(fd, TIOCSTI)", native(unix.SYS_IOCTL, 7, unix.TIOCSTI), eperm},
		{"ioctl(high|TIOCSTI)", native(unix.SYS_IOCTL, 0, 1<<32|unix.TIOCSTI), eperm},
		{"ioctl(^0<<32|TIOCSTI)", native(unix.SYS_IOCTL, 0, 0xffffffff<<32|unix.TIOCSTI), eperm},
		{"ioctl(TIOCGWINSZ)", native(unix.SYS_IOCTL, 0, unix.TIOCGWINSZ), retAllow},
		{"ioctl(TIOCSTI as arg 2)", native(unix.SYS_IOCTL, 0, unix.TIOCGWINSZ, unix.TIOCSTI), retAllow},
		{"unknown number", native(1000), retAllow},
	}
	for _, arch := range []uint32{0, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM, unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_AARCH64} {
		if arch != auditArch {
			cases = append(cases, tc{fmt.Sprintf("arch %#x getpid", arch), seccompData(arch, unix.SYS_GETPID), retKill})
		}
	}
	if hasX32 {
		cases = append(cases,
			tc{"x32 getpid", native(x32SyscallBit | unix.SYS_GETPID), eperm},
			tc{"x32 mount", native(x32SyscallBit | unix.SYS_MOUNT), eperm},
			tc{"nr -1", seccompData(auditArch, 0xffffffff), eperm},
		)
	}
	for _, r := range rules {
		if nr := syscallNumbers[r.name]; nr != absent {
			cases = append(cases, tc{r.name, native(nr, 0, 0, 0, 0, 0, 0), retErrno(r.errno)})
		}
	}
	for _, c := range cases {
		got, err := interpret(prog, c.data)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
}

func TestAssemblerErrors(t *testing.T) {
	tests := []struct {
		name string
		prog func(a *assembler)
		want string
	}{
		{"undefined", func(a *assembler) { a.jeq(1, "nowhere", ""); a.ret(0) }, "undefined label"},
		{"backward", func(a *assembler) { a.label("x"); a.ret(0); a.jeq(1, "x", ""); a.ret(0) }, "behind"},
		{"dangling", func(a *assembler) { a.jeq(1, "end", ""); a.ret(0); a.label("end") }, "marks no instruction"},
		{"twice", func(a *assembler) { a.label("x"); a.label("x"); a.ret(0) }, "defined twice"},
		{"no return", func(a *assembler) { a.load(offNr) }, "not a return"},
		{"empty", func(a *assembler) {}, "instructions"},
		{"far", func(a *assembler) {
			a.jeq(1, "far", "")
			for range 256 {
				a.load(offNr)
			}
			a.label("far")
			a.ret(0)
		}, "more than 255"},
	}
	for _, tt := range tests {
		var a assembler
		tt.prog(&a)
		_, err := a.assemble()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want error containing %q", tt.name, err, tt.want)
		}
	}

	// 255 is the farthest a jump reaches.
	var a assembler
	a.jeq(1, "far", "")
	for range 255 {
		a.load(offNr)
	}
	a.label("far")
	a.ret(0)
	prog, err := a.assemble()
	if err != nil {
		t.Fatal(err)
	}
	if prog[0].Jt != 255 {
		t.Errorf("jt = %d, want 255", prog[0].Jt)
	}
}
