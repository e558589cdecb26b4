package logstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for Options.
const (
	DefaultMaxFileBytes = 10 << 20
	DefaultKeepBytes    = 100 << 20
	DefaultKeepLines    = 1500 // Logplex's history: log_history 1500
)

const (
	currentName = "current.log"
	lockName    = "store.lock"
	rotatedExt  = ".log"
)

// Options configure a Store. Zero fields take the defaults.
type Options struct {
	// MaxFileBytes is the size at which current.log is rotated.
	MaxFileBytes int64
	// KeepBytes and KeepLines are what retention keeps: the oldest files
	// are deleted only while the newer ones hold at least KeepBytes bytes
	// and KeepLines lines.
	KeepBytes int64
	KeepLines int
}

func (o Options) withDefaults() Options {
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.KeepBytes <= 0 {
		o.KeepBytes = DefaultKeepBytes
	}
	if o.KeepLines <= 0 {
		o.KeepLines = DefaultKeepLines
	}
	return o
}

// A Store appends an app's log lines to current.log in its directory and
// rotates it into numbered files, 000001.log, 000002.log, ..., higher
// numbers newer. It is safe for concurrent use, and other processes may
// Append to the same directory meanwhile; only one Store may be open on a
// directory at a time, which a lock file ensures.
type Store struct {
	dir  string
	opts Options
	lock *os.File // flocked for the Store's life

	mu       sync.Mutex
	f        *os.File // current.log, or nil once closed
	size     int64    // of f, as of our last write
	rotateAt int64    // size at which to rotate next
	seq      uint64   // number of the newest rotated file
	torn     bool     // a short write left a partial line at the end of f
	err      error    // first failure to rotate or to delete old files
}

// Open opens the store in dir, creating dir if needed, and applies
// retention to what an earlier Store left.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{dir: dir, opts: opts.withDefaults()}
	s.rotateAt = s.opts.MaxFileBytes
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("logstore: open: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	seqs, err := rotated(dir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	if len(seqs) > 0 {
		s.seq = seqs[len(seqs)-1]
	}
	f, size, err := openAppend(filepath.Join(dir, currentName))
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.lock, s.f, s.size = lock, f, size
	if s.size >= s.rotateAt {
		s.rotate()
	} else {
		s.retain()
	}
	return s, nil
}

// lockDir takes the directory's lock without waiting: a second Store
// would rotate under the first one's feet and lose its files.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("logstore: open: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("logstore: open %s: another store has it open", dir)
		}
		return nil, fmt.Errorf("logstore: lock %s: %w", path, err)
	}
	return f, nil
}

// openAppend opens path for appending, creating it if needed, and returns
// its size. Never O_EXCL or O_TRUNC: an appender may have created the file
// a moment before, and its lines must stay.
func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("logstore: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("logstore: %w", err)
	}
	return f, fi.Size(), nil
}

// Write appends p, which should be whole lines, to current.log in a
// single write(2), and rotates the file once it has reached MaxFileBytes.
// A missing final newline is added, so that the next line cannot be glued
// to the last one. An error means the line could not be stored; failures
// to rotate or to delete old files are not returned here, where they would
// stop a logmux.Mux for good, but by Err and Close.
func (s *Store) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, fmt.Errorf("logstore: write %s: %w", s.path(currentName), os.ErrClosed)
	}
	b, lead := p, 0
	if s.torn || p[len(p)-1] != '\n' {
		// Rare: copying here keeps the common case free of copies.
		b = make([]byte, 0, len(p)+2)
		if s.torn {
			// End the partial line that a failed write left, so it
			// stands alone as a line that does not parse.
			b, lead = append(b, '\n'), 1
		}
		b = append(b, p...)
		if p[len(p)-1] != '\n' {
			b = append(b, '\n')
		}
	}
	n, end, err := appendOnce(s.f, b)
	if err != nil {
		if n > 0 {
			s.torn = b[n-1] != '\n'
		}
		return min(max(n-lead, 0), len(p)), fmt.Errorf("logstore: write %s: %w", s.path(currentName), err)
	}
	s.torn = false
	s.size = end
	if s.size >= s.rotateAt {
		s.rotate()
	}
	return len(p), nil
}

// appendOnce writes b to f with exactly one write(2) and returns how much
// it wrote and where the file then ended. os.File.Write would follow a
// short write with a second write(2), between which another process's
// append could land in the middle of a line; a short write is reported
// instead. With O_APPEND the offset after the write is the end of the
// file, other writers' lines included: that is what rotation needs.
func appendOnce(f *os.File, b []byte) (n int, end int64, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	cerr := rc.Write(func(fd uintptr) bool {
		for {
			n, err = unix.Write(int(fd), b)
			if err != unix.EINTR {
				break
			}
		}
		if err == nil {
			end, err = unix.Seek(int(fd), 0, io.SeekCurrent)
		}
		return true
	})
	if cerr != nil {
		return 0, 0, cerr
	}
	n = max(n, 0)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return n, end, err
}

// rotate renames current.log to the next number and opens a new
// current.log, then deletes old files beyond retention. Renaming rather
// than copying lets an appender that opened current.log a moment before
// finish its write into the renamed file, where Read finds it. If
// rotation fails, writing goes on into the file at hand, which grows, and
// rotation is tried again after another MaxFileBytes.
func (s *Store) rotate() {
	s.rotateAt = s.size + s.opts.MaxFileBytes
	cur := s.path(currentName)
	next := s.seq + 1
	// current.log is missing when an earlier rotation renamed it and then
	// failed to open the new one: then there is nothing to rename.
	if err := os.Rename(cur, s.path(rotatedName(next))); err == nil {
		s.seq = next
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.fail(fmt.Errorf("logstore: rotate: %w", err))
		return
	}
	f, size, err := openAppend(cur)
	if err != nil {
		s.fail(err)
		return
	}
	s.f.Close() // written with write(2) only: nothing is buffered
	s.f, s.size, s.torn = f, size, false
	s.rotateAt = s.opts.MaxFileBytes
	s.retain()
}

// retain deletes the oldest rotated files that are not needed to keep
// KeepBytes and KeepLines, counting current.log first and then the newest
// files. Lines are counted from the end of each file and only as far as
// needed, so this reads little more than KeepLines lines.
func (s *Store) retain() {
	seqs, err := rotated(s.dir)
	if err != nil {
		s.fail(err)
		return
	}
	// Newest first: current.log, then the rotated files downwards.
	names := make([]string, 0, len(seqs)+1)
	names = append(names, currentName)
	for _, q := range slices.Backward(seqs) {
		names = append(names, rotatedName(q))
	}
	var size int64
	lines := 0
	for k, name := range names {
		// KeepBytes > 0, so current.log (k == 0) is never removed.
		if size >= s.opts.KeepBytes && lines >= s.opts.KeepLines {
			for _, old := range names[k:] {
				if err := os.Remove(s.path(old)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					s.fail(fmt.Errorf("logstore: retention: %w", err))
					return
				}
			}
			return
		}
		n, c, err := countLines(s.path(name), s.opts.KeepLines-lines)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			// Without a count nothing older may go.
			s.fail(fmt.Errorf("logstore: retention: %w", err))
			return
		}
		size += n
		lines += c
	}
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// fail records the first maintenance failure for Err and Close.
func (s *Store) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// Err returns the first failure to rotate current.log or to delete old
// files, or nil. Lines are still stored after such a failure.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close closes current.log and releases the directory, and returns the
// first error of closing or of the Store's maintenance. Writes after
// Close fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("logstore: close %s: %w", s.dir, os.ErrClosed)
	}
	err := s.f.Close()
	s.f = nil
	s.lock.Close() // releases the flock
	if s.err != nil {
		return s.err
	}
	if err != nil {
		return fmt.Errorf("logstore: %w", err)
	}
	return nil
}

// rotatedName returns the name of the rotated file numbered seq.
func rotatedName(seq uint64) string {
	return fmt.Sprintf("%06d%s", seq, rotatedExt)
}

// rotated returns the numbers of dir's rotated files, oldest first.
// Numbers are compared as numbers: past 999999 the names grow a digit.
func rotated(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("logstore: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), rotatedExt)
		if !ok || num == "" || num[0] == '+' || num[0] == '-' {
			continue
		}
		if q, err := strconv.ParseUint(num, 10, 64); err == nil {
			seqs = append(seqs, q)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// Append appends lines, which should be whole lines, to dir's current.log
// for a process other than the one with the Store: it opens the file with
// O_APPEND, writes in a single write(2) and closes it, so its lines never
// mix with the Store's inside a line and survive a rotation that happens
// meanwhile. dir is created if needed; no Store needs to be open.
func Append(dir string, lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	if lines[len(lines)-1] != '\n' {
		lines = append(lines[:len(lines):len(lines)], '\n')
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("logstore: append: %w", err)
	}
	path := filepath.Join(dir, currentName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("logstore: append: %w", err)
	}
	_, _, err = appendOnce(f, lines)
	if cerr := f.Close(); err == nil && cerr != nil {
		return fmt.Errorf("logstore: append: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("logstore: append to %s: %w", path, err)
	}
	return nil
}

// AppendLines appends one Logplex line per text, from source[dyno] at
// now ("app", "api": "2026-11-26T10:00:00.123456+00:00 app[api]: text"),
// to dir's current.log in one Append, so that they stay together and
// in order. It is how processes other than the daemon, the CLI's
// commands, put their lines in an app's logs.
func AppendLines(dir, source, dyno string, now time.Time, texts ...string) error {
	stamp := now.Format(stampLayout)
	var b []byte
	for _, t := range texts {
		b = fmt.Appendf(b, "%s %s[%s]: %s\n", stamp, source, dyno, t)
	}
	return Append(dir, b)
}
