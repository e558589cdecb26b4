// Package memtrim gives back what a long-running dyno process holds but
// no longer uses once a burst of work is over: the pages of its own
// executable that start-up mapped, and the heap the Go runtime keeps
// free.
//
// Most of a Go program's resident set at rest is its executable's text
// and read-only data, mapped by start-up and by the kernel's fault-around
// (on a read fault of a file page, the kernel maps up to
// fault_around_bytes, 64 KiB by default, of neighbouring pages already in
// the page cache: mm/memory.c do_fault_around). `dyno start` with 50 idle
// dynos held 10 MB of its 14 MB binary so. MADV_DONTNEED on a private,
// never-written file mapping only drops this process's page-table
// entries (madvise(2)): the pages stay in the page cache, and code run
// later faults them back in as minor faults, without I/O. What stays
// mapped is the working set of the idle loop.
package memtrim

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Trim drops this process's mappings of its executable's read-only
// pages and returns the free heap to the kernel. It is safe at any time:
// running code faults back in what it needs.
func Trim() error {
	// The heap first: a collection runs much of the runtime and reads
	// the stack maps of every goroutine, pages the trim then drops.
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	ranges, err := readOnlyMappings("/proc/self/maps", exe)
	if err != nil {
		return fmt.Errorf("trim: %w", err)
	}
	for _, r := range ranges {
		// Addresses from the maps file, not Go pointers: the raw call
		// takes them as they are.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("trim %x-%x of %s: %w", r[0], r[1], exe, errno)
		}
	}
	return nil
}

// readOnlyMappings returns the start and end of each mapping in the
// maps file (proc(5) /proc/pid/maps) of path that is not writable: text
// and read-only data, whose pages are the file's own. Writable mappings
// hold the data segment, whose pages may be private copies.
func readOnlyMappings(maps, path string) ([][2]uintptr, error) {
	f, err := os.Open(maps)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ranges [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode pathname: the path is the rest
		// of the line, spaces and a " (deleted)" of a replaced binary
		// included, as readlink of /proc/self/exe gives it.
		line := sc.Text()
		var fields [5]string
		for i := range fields {
			line = strings.TrimLeft(line, " ")
			fields[i], line, _ = strings.Cut(line, " ")
		}
		if strings.TrimLeft(line, " ") != path || strings.ContainsRune(fields[1], 'w') {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		ranges = append(ranges, [2]uintptr{uintptr(start), uintptr(end)})
	}
	return ranges, sc.Err()
}

// A Trimmer trims once things have been quiet for a while after they
// happened: after the burst of a formation starting, a deploy or a
// scale, not during it, and never while nothing happens.
type Trimmer struct {
	quiet time.Duration
	kick  chan struct{}
}

// QuietPeriod is how long after the last event a Trimmer trims.
const QuietPeriod = 5 * time.Second

// NewTrimmer returns a Trimmer that trims quiet after the last Kick.
func NewTrimmer(quiet time.Duration) *Trimmer {
	return &Trimmer{quiet: quiet, kick: make(chan struct{}, 1)}
}

// Kick says something happened. It never blocks.
func (t *Trimmer) Kick() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Run trims each time the Kicks stop for the quiet period, until ctx is
// done. trimmed, if not nil, hears each trim's error (nil when it
// worked).
func (t *Trimmer) Run(ctx context.Context, trimmed func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		}
		timer := time.NewTimer(t.quiet)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-t.kick:
				timer.Reset(t.quiet)
			case <-timer.C:
				break wait
			}
		}
		err := Trim()
		if trimmed != nil {
			trimmed(err)
		}
	}
}
