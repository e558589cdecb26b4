package isolate

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// procEntry is what /proc/PID/stat says about a process that matters for
// finding a dyno's processes.
type procEntry struct {
	pid, ppid int
	sid       int // session id
	zombie    bool
}

// readProcs lists every process on the host (or in the pid namespace of
// the /proc mount) with its parent. Processes that vanish while being read
// are skipped: they are gone, which is what a caller killing them wants.
func readProcs() ([]procEntry, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	procs := make([]procEntry, 0, len(names))
	buf := make([]byte, 512)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		e, ok := readStat(pid, buf)
		if ok {
			procs = append(procs, e)
		}
	}
	return procs, nil
}

// readStat parses /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself contain spaces and ')', so fields are counted
// from the last ')' (proc(5)).
func readStat(pid int, buf []byte) (procEntry, bool) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return procEntry{}, false
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil || n <= 0 {
		return procEntry{}, false
	}
	b := buf[:n]
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+4 > len(b) {
		return procEntry{}, false
	}
	rest := bytes.Fields(b[i+1:]) // state ppid pgrp session ...
	if len(rest) < 4 {
		return procEntry{}, false
	}
	ppid, err := strconv.Atoi(string(rest[1]))
	if err != nil {
		return procEntry{}, false
	}
	sid, err := strconv.Atoi(string(rest[3]))
	if err != nil {
		return procEntry{}, false
	}
	return procEntry{pid: pid, ppid: ppid, sid: sid, zombie: rest[0][0] == 'Z'}, true
}

// descendants returns the live (non-zombie) processes below root. Because
// the dyno's init is a child subreaper, orphans are re-parented to it, not
// to the host's init, so "below root" is exactly "started by the dyno".
func descendants(root int) ([]int, error) {
	procs, err := readProcs()
	if err != nil {
		return nil, err
	}
	children := make(map[int][]procEntry, len(procs))
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if !c.zombie {
				out = append(out, c.pid)
			}
			queue = append(queue, c.pid)
		}
	}
	return out, nil
}

// signalTree sends sig once to every process below root.
func signalTree(root int, sig unix.Signal) error {
	pids, err := descendants(root)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		// ESRCH: it exited meanwhile; nothing else can fail for our own
		// descendants, which run as our uid.
		_ = unix.Kill(pid, sig)
	}
	return nil
}
