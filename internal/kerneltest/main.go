// Command kerneltest is the host side of make test-kernel: it boots a
// user-mode Linux kernel (Debian's user-mode-linux package, linux.uml)
// whose root is this machine's filesystem, read-only, with init.sh as its
// PID 1, copies the guest's console to stdout, and turns the result lines
// init.sh writes into its exit status: 0 when every run passed, 1 when one
// failed or the guest ended without saying it was done. Where linux.uml
// cannot run at all it says why and exits 0: a skip.
//
//	go run ./internal/kerneltest -bin .cache/kernel
//
// -bin is the folder of the static test binaries and dyno, which must lie
// outside /tmp: the guest mounts a fresh tmpfs there.
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
	flag.Parse()
	os.Exit(run(*bin, *mem, *timeout))
}

func run(bin, mem string, timeout time.Duration) int {
	uml, err := exec.LookPath("linux.uml")
	if err != nil {
		fmt.Println("SKIP test-kernel: linux.uml is not installed; apt-get install user-mode-linux kmod")
		return 0
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
	init := filepath.Join(src, "internal", "kerneltest", "init.sh")

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
		fmt.Printf("SKIP test-kernel: %s cannot run here: %v\n", uml, err)
		return 0
	}
	res := parse(io.TeeReader(console, os.Stdout))
	werr := cmd.Wait()
	elapsed := time.Since(start).Round(time.Second)

	switch {
	case !res.booted && ctx.Err() == nil:
		// The kernel never ran init: linux.uml cannot run here (no
		// ptrace, a seccomp profile, no memory for its file).
		fmt.Printf("SKIP test-kernel: %s did not boot (%v); the last line was %q\n", uml, werr, res.last)
		return 0
	case ctx.Err() != nil:
		fmt.Printf("FAIL test-kernel: the guest ran past %v; runs passed: %q, failed: %q\n", timeout, res.passed, res.failed)
		return 1
	case !res.done:
		fmt.Printf("FAIL test-kernel: the guest ended (%v) before init.sh said KERNELTEST DONE; passed: %q, failed: %q\n", werr, res.passed, res.failed)
		return 1
	case len(res.failed) > 0:
		fmt.Printf("FAIL test-kernel in %v: %s; passed: %s\n", elapsed, strings.Join(res.failed, ", "), strings.Join(res.passed, ", "))
		return 1
	case len(res.passed) == 0:
		fmt.Printf("FAIL test-kernel in %v: init.sh ran nothing\n", elapsed)
		return 1
	}
	fmt.Printf("ok test-kernel in %v: %s\n", elapsed, strings.Join(res.passed, ", "))
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
