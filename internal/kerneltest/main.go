// Command kerneltest is the host side of make test-kernel and make
// test-systemd: it boots a user-mode Linux kernel (Debian's
// user-mode-linux package, linux.uml) whose root is this machine's
// filesystem, read-only, with init.sh as its PID 1, copies the guest's
// console to stdout, and turns the result lines the guest writes into its
// exit status: 0 when every run passed, 1 when one failed or the guest
// ended without saying it was done. Where linux.uml cannot run at all it
// says why and exits 0: a skip.
//
//	go run ./internal/kerneltest -bin .cache/kernel
//	go run ./internal/kerneltest -systemd -bin .cache/systemd
//
// -bin is the folder of the static test binaries and dyno, which must lie
// outside /tmp: the guest mounts a fresh tmpfs there. With -systemd the
// PID 1 is systemd-init.sh, which boots this machine's systemd into
// kerneltest.service, whose systemd-test.sh follows docs/operations.md
// with the dyno in -bin.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", ".cache/kernel", "folder of the static test binaries and dyno, outside /tmp")
	mem := flag.String("mem", "1G", "the guest's memory")
	timeout := flag.Duration("timeout", 25*time.Minute, "how long the guest may run")
	systemd := flag.Bool("systemd", false, "boot systemd and follow docs/operations.md (make test-systemd)")
	flag.Parse()
	os.Exit(run(*bin, *mem, *timeout, *systemd))
}

func run(bin, mem string, timeout time.Duration, systemd bool) int {
	name, script := "test-kernel", "init.sh"
	if systemd {
		name, script = "test-systemd", "systemd-init.sh"
	}
	uml, err := exec.LookPath("linux.uml")
	if err != nil {
		fmt.Printf("SKIP %s: linux.uml is not installed; apt-get install user-mode-linux kmod\n", name)
		return 0
	}
	if systemd {
		// The guest runs this machine's programs: the guide's commands
		// need these, and a machine that lacks one fails the test,
		// rather than skipping it, since linux.uml could run.
		for _, p := range []string{"/lib/systemd/systemd", "/usr/bin/sudo", "/usr/sbin/useradd", "/usr/bin/newuidmap", "/usr/bin/loginctl", "/usr/bin/dbus-daemon"} {
			if _, err := os.Stat(p); err != nil {
				fmt.Printf("FAIL %s: the guest needs %s, which this machine lacks (apt-get install systemd sudo passwd uidmap dbus)\n", name, p)
				return 1
			}
		}
	}
	src, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kerneltest:", err)
		return 1
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kerneltest:", err)
		return 1
	}
	init := filepath.Join(src, "internal", "kerneltest", script)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// hostfs shows the host's / read-only (ro); the kernel hands the
	// name=value words it does not know to init as its environment.
	cmd := exec.CommandContext(ctx, uml,
		"mem="+mem, "rootfstype=hostfs", "rootflags=/", "ro", "init="+init,
		// Only emergencies from the kernel itself: its OOM reports
		// would otherwise interleave with init's lines.
		"loglevel=1",
		"con=null", "con0=fd:0,fd:1",
		"KT_BIN="+bin, "KT_SRC="+src)
	cmd.Stdin = nil // /dev/null: the console reads nothing
	// The kernel's memory is a file under TMPDIR; a fresh folder keeps
	// it apart from anything else, and goes with it.
	tmp, err := os.MkdirTemp("", "kerneltest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "kerneltest:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	// linux.uml runs as several host processes; its own group lets a
	// timeout kill them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	console, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kerneltest:", err)
		return 1
	}
	cmd.Stderr = cmd.Stdout

	start := time.Now()
	fmt.Printf("kerneltest: booting %s with %s as init (%s, %s)\n", uml, init, runtime.GOARCH, mem)
	if err := cmd.Start(); err != nil {
		fmt.Printf("SKIP %s: %s cannot run here: %v\n", name, uml, err)
		return 0
	}
	res := parse(io.TeeReader(console, os.Stdout))
	werr := cmd.Wait()
	elapsed := time.Since(start).Round(time.Second)

	switch {
	case !res.booted && ctx.Err() == nil:
		// The kernel never ran init: linux.uml cannot run here (no
		// ptrace, a seccomp profile, no memory for its file).
		fmt.Printf("SKIP %s: %s did not boot (%v); the last line was %q\n", name, uml, werr, res.last)
		return 0
	case ctx.Err() != nil:
		fmt.Printf("FAIL %s: the guest ran past %v; runs passed: %q, failed: %q\n", name, timeout, res.passed, res.failed)
		return 1
	case !res.done:
		fmt.Printf("FAIL %s: the guest ended (%v) before it said KERNELTEST DONE; passed: %q, failed: %q\n", name, werr, res.passed, res.failed)
		return 1
	case len(res.failed) > 0:
		fmt.Printf("FAIL %s in %v: %s; passed: %s\n", name, elapsed, strings.Join(res.failed, ", "), strings.Join(res.passed, ", "))
		return 1
	case len(res.passed) == 0:
		fmt.Printf("FAIL %s in %v: %s ran nothing\n", name, elapsed, script)
		return 1
	}
	fmt.Printf("ok %s in %v: %s\n", name, elapsed, strings.Join(res.passed, ", "))
	return 0
}

// result is what the console said.
type result struct {
	booted, done   bool
	passed, failed []string
	last           string // the last line, for a guest that never booted
}

// parse reads the console to its end. A result line may be preceded on
// its line by kernel output, so the marker is looked for anywhere in it.
func parse(r io.Reader) result {
	var res result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) != "" {
			res.last = line
		}
		_, rest, ok := strings.Cut(line, "KERNELTEST ")
		if !ok {
			continue
		}
		verb, arg, _ := strings.Cut(rest, " ")
		name, _, _ := strings.Cut(arg, " ")
		switch verb {
		case "BOOT":
			res.booted = true
		case "PASS":
			res.passed = append(res.passed, name)
		case "FAIL":
			res.failed = append(res.failed, name)
		case "DONE":
			res.done = true
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		res.last = err.Error()
	}
	return res
}
