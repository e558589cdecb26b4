package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of the times in /proc/PID/stat. The kernel reports
// them in USER_HZ, which is 100 on every architecture Go supports on
// Linux, whatever the kernel's own tick rate.
const userHZ = 100

// A proc is what the benchmark needs from /proc/PID/stat.
type proc struct {
	pid   int
	ppid  int
	state byte   // R, S, Z, ...
	comm  string // the executable's name, at most 15 bytes
	start uint64 // start time in ticks after boot: with pid, identifies a process
	cpu   time.Duration
}

// readProc reads /proc/PID/stat.
func readProc(pid int) (proc, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, err
	}
	return parseStat(pid, b)
}

// parseStat parses a stat line: "pid (comm) state ppid ...". The name may
// hold spaces and parentheses, so the fields after it are found from the
// last ')'.
func parseStat(pid int, b []byte) (proc, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return proc{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	// f[0] is field 3 of proc(5), so field n is f[n-3].
	f := bytes.Fields(b[end+1:])
	if len(f) < 20 {
		return proc{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var err error
	num := func(field int) uint64 {
		if err != nil {
			return 0
		}
		var n uint64
		n, err = strconv.ParseUint(string(f[field-3]), 10, 64)
		return n
	}
	p := proc{pid: pid, state: f[0][0], comm: string(b[open+1 : end])}
	p.ppid = int(num(4))
	utime, stime := num(14), num(15)
	p.start = num(22)
	if err != nil {
		return proc{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	p.cpu = time.Duration(utime+stime) * time.Second / userHZ
	return p, nil
}

// allProcs lists the processes visible in /proc. Processes that exit
// while it reads are left out.
func allProcs() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var procs []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil {
			continue
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// descendants returns the processes below root, children first.
func descendants(root int) ([]proc, error) {
	procs, err := allProcs()
	if err != nil {
		return nil, err
	}
	children := make(map[int][]proc)
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out, nil
}

// survivors returns those of procs that still run: same pid and start
// time, so a recycled pid is not mistaken for one of them. Zombies do
// not run and are left out; they only wait for a parent to reap them.
func survivors(procs []proc) []proc {
	var alive []proc
	for _, p := range procs {
		now, err := readProc(p.pid)
		if err == nil && now.start == p.start && now.state != 'Z' {
			alive = append(alive, now)
		}
	}
	return alive
}

// A memory is a process's resident memory.
type memory struct {
	rss  int64 // VmRSS, bytes: counts pages shared with others in full
	anon int64 // RssAnon, bytes: private to the process, in practice
	pss  int64 // Pss, bytes: shared pages divided among their sharers
}

func readMemory(pid int) (memory, error) {
	var m memory
	dir := "/proc/" + strconv.Itoa(pid)
	if err := readKB(dir+"/status", map[string]*int64{"VmRSS:": &m.rss, "RssAnon:": &m.anon}); err != nil {
		return memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	if err := readKB(dir+"/smaps_rollup", map[string]*int64{"Pss:": &m.pss}); err != nil {
		return memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	return m, nil
}

// readKB reads lines like "VmRSS:	    9876 kB" from a /proc file into
// the fields named, in bytes. All must be present.
func readKB(path string, fields map[string]*int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	found := 0
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst, ok := fields[string(f[0])]
		if !ok {
			continue
		}
		if len(f) != 3 || string(f[2]) != "kB" {
			return fmt.Errorf("%s: odd line %q", path, line)
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		*dst = kb << 10
		found++
	}
	if found != len(fields) {
		// A zombie's status has no memory lines.
		return fmt.Errorf("%s: %d of %d memory lines", path, found, len(fields))
	}
	return nil
}

// cmdline returns the arguments a process was started with.
func cmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil
	}
	var args []string
	for arg := range bytes.SplitSeq(bytes.TrimSuffix(b, []byte{0}), []byte{0}) {
		args = append(args, string(arg))
	}
	return args
}

// waitExit waits until the child pid has exited but leaves it unreaped,
// a zombie whose /proc/PID/stat still holds the CPU time it used: the
// final numbers, which a process still running cannot give and a reaped
// one no longer has. The caller reaps it (exec.Cmd.Wait).
func waitExit(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("wait for pid %d: %w", pid, err)
			}
			return nil
		}
	}
}
