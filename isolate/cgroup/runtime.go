package cgroup

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// Runtime is what Heroku's log-runtime-metrics reports of a dyno, read
// from its leaf.
type Runtime struct {
	Stats
	// Anon and File are memory.stat's anon (the processes' resident,
	// anonymous memory: Heroku's memory_rss) and file (page cache:
	// memory_cache), in bytes.
	Anon, File int64
	// ReadBytes and WriteBytes are io.stat's rbytes and wbytes summed
	// over devices: what the leaf read from and wrote to disk. cgroup v2
	// has no pgpgin and pgpgout (v1's memory.stat had), so these, in
	// pages, stand for them. 0 where the io controller is off.
	ReadBytes, WriteBytes int64
	// Runnable counts the leaf's threads that are running or waiting
	// to (R) or in uninterruptible sleep (D): what the kernel's load
	// average counts, for the leaf's own.
	Runnable int
}

// Runtime reads the leaf's runtime figures. A figure whose file is
// missing, because its controller is off, reads as 0.
func (l *Leaf) Runtime() (Runtime, error) {
	var r Runtime
	var err error
	if r.Stats, err = l.Stats(); err != nil {
		return Runtime{}, err
	}
	if r.Anon, err = optional(readKey(l.file("memory.stat"), "anon")); err != nil {
		return Runtime{}, err
	}
	if r.File, err = optional(readKey(l.file("memory.stat"), "file")); err != nil {
		return Runtime{}, err
	}
	if r.ReadBytes, r.WriteBytes, err = l.ioBytes(); err != nil {
		return Runtime{}, err
	}
	r.Runnable = l.runnable()
	return r, nil
}

// ioBytes sums io.stat's rbytes and wbytes: one line per device,
// "MAJ:MIN rbytes=N wbytes=N rios=N ..." ("IO Interface Files").
func (l *Leaf) ioBytes() (read, written int64, err error) {
	b, err := readFile(l.file("io.stat"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		for _, kv := range fields[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				read += n
			case "wbytes":
				written += n
			}
		}
	}
	return read, written, nil
}

// runnable counts the leaf's threads in state R or D, from
// cgroup.threads and each thread's /proc/TID/stat. A thread gone
// between the two reads is not counted.
func (l *Leaf) runnable() int {
	b, err := readFile(l.file("cgroup.threads"))
	if err != nil {
		return 0
	}
	n := 0
	for _, tid := range strings.Fields(string(b)) {
		st, err := readFile(filepath.Join(l.procRoot(), tid, "stat"))
		if err != nil {
			continue
		}
		// "PID (COMM) S ...": COMM may hold spaces and parentheses,
		// so the state follows the last ')' (proc(5)).
		i := bytes.LastIndexByte(st, ')')
		if i < 0 || i+2 >= len(st) {
			continue
		}
		if s := st[i+2]; s == 'R' || s == 'D' {
			n++
		}
	}
	return n
}

// procRoot is where the leaf's threads are looked up: /proc, the
// host's, whose thread ids cgroup.threads lists (it shows ids in the
// reader's pid namespace); tests point it elsewhere.
func (l *Leaf) procRoot() string {
	if l.proc != "" {
		return l.proc
	}
	return "/proc"
}
