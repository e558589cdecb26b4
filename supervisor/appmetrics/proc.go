package appmetrics

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Where the dyno's cgroup has no memory controller (a host without
// delegated cgroup v2), its figures come from /proc instead: the
// resident memory and CPU time of its init and every process under it.

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture dyno runs on (the kernel fixes it for
// userspace, whatever HZ it was built with).
const clockTicks = 100

// maxTree bounds how many processes one reading walks: a dyno that
// forks without end (its pids limit is off here too) costs the sampler
// no more than this.
const maxTree = 4096

// Tree reads the memory (proportional set size, else resident) and the CPU time of process pid and
// every process under it. CPU counts the live processes' own time and
// the time of the children each has waited for (cutime, cstime), so
// it only grows while the tree runs: a child that exits moves its time
// to its parent.
func Tree(pid int) (rss int64, cpu time.Duration, err error) {
	page := int64(os.Getpagesize())
	todo := []int{pid}
	for n := 0; len(todo) > 0 && n < maxTree; n++ {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		r, c, err := one(p, page)
		if err != nil {
			if p == pid {
				return 0, 0, err
			}
			continue // gone since its parent listed it
		}
		rss += r
		cpu += c
		todo = appendChildren(todo, p)
	}
	return rss, cpu, nil
}

// one reads process pid's resident bytes (statm) and CPU time (stat).
func one(pid int, page int64) (int64, time.Duration, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	statm, err := os.ReadFile(dir + "/statm")
	if err != nil {
		return 0, 0, err
	}
	f := bytes.Fields(statm)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("%s/statm: %q", dir, statm)
	}
	resident, _ := strconv.ParseInt(string(f[1]), 10, 64)
	size := resident * page
	// Pss shares each page among the processes that map it: a server
	// that forks workers (Puma, gunicorn) is not counted once a worker.
	// smaps_rollup needs ptrace's read access, which the daemon has to
	// its dynos (their user namespaces are its own); RSS where not.
	if pss, ok := readPss(dir + "/smaps_rollup"); ok {
		size = pss
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command in parentheses may hold spaces and parentheses: the
	// fields start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("%s/stat: no ')'", dir)
	}
	fields := bytes.Fields(stat[i+1:])
	// After the ')': state is field 3 of proc(5), so utime (14),
	// stime, cutime and cstime (17) are at 11..14 here.
	if len(fields) < 15 {
		return 0, 0, fmt.Errorf("%s/stat: %d fields", dir, len(fields))
	}
	var ticks int64
	for _, x := range fields[11:15] {
		v, _ := strconv.ParseInt(string(x), 10, 64)
		ticks += v
	}
	return size, time.Duration(ticks) * time.Second / clockTicks, nil
}

// readPss is the Pss line of a smaps_rollup file, in bytes.
func readPss(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("Pss:")); ok {
			f := bytes.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// appendChildren adds the children of every thread of pid
// (/proc/PID/task/TID/children, since Linux 4.2).
func appendChildren(todo []int, pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return todo
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				todo = append(todo, c)
			}
		}
	}
	return todo
}
