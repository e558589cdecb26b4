package rrd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Fold says how samples that fall into one slot combine.
type Fold uint8

const (
	Sum  Fold = iota // counters: requests, CPU seconds, histogram buckets; read as the sum
	Mean             // gauges: memory; read as the mean of the samples folded in
	Max              // gauges' peaks; read as the largest
	Last             // gauges where the latest wins: a quota, a dyno count
)

func (f Fold) String() string {
	switch f {
	case Sum:
		return "sum"
	case Mean:
		return "mean"
	case Max:
		return "max"
	case Last:
		return "last"
	}
	return fmt.Sprintf("Fold(%d)", uint8(f))
}

// Schema names a kind of series and its fields, in order. The name is
// written in the header, so that a file of another kind is refused.
type Schema struct {
	Name   string // "dyno", "type", "app": 1 to 16 bytes
	Fields []Fold // 1 to 64
}

// Archive is one ring: Slots slots of Step each.
type Archive struct {
	Step  time.Duration
	Slots int
}

// Archives returns every file's rings, finest first: an hour at 10 s, a
// day at 1 minute, a week at 10 minutes.
func Archives() []Archive {
	return []Archive{{10 * time.Second, 360}, {time.Minute, 1440}, {10 * time.Minute, 1008}}
}

const (
	magic      = "DYNORRD1"
	version    = 1
	headerSize = 128
	maxName    = 16
	maxFields  = 64
	slotHead   = 12 // period start and N
)

// Size is the size in bytes of a file of schema s.
func Size(s Schema) int64 {
	n := int64(headerSize)
	for _, a := range Archives() {
		n += int64(a.Slots) * slotSize(len(s.Fields))
	}
	return n
}

func slotSize(fields int) int64 { return slotHead + 4*int64(fields) }

func (s Schema) check() error {
	switch {
	case s.Name == "" || len(s.Name) > maxName || strings.IndexByte(s.Name, 0) >= 0:
		return fmt.Errorf("schema name %q: want 1 to %d bytes, no NUL", s.Name, maxName)
	case len(s.Fields) == 0 || len(s.Fields) > maxFields:
		return fmt.Errorf("schema %s: %d fields, want 1 to %d", s.Name, len(s.Fields), maxFields)
	}
	for i, f := range s.Fields {
		if f > Last {
			return fmt.Errorf("schema %s: field %d: unknown %v", s.Name, i, f)
		}
	}
	return nil
}

// header returns the header of a file of schema s.
func header(s Schema) []byte {
	h := make([]byte, headerSize)
	le := binary.LittleEndian
	copy(h, magic)
	le.PutUint16(h[8:], version)
	le.PutUint16(h[10:], uint16(len(s.Fields)))
	archives := Archives()
	le.PutUint16(h[12:], uint16(len(archives)))
	le.PutUint16(h[14:], uint16(slotSize(len(s.Fields))))
	copy(h[16:32], s.Name)
	for i, a := range archives {
		le.PutUint32(h[32+8*i:], uint32(a.Step/time.Second))
		le.PutUint32(h[36+8*i:], uint32(a.Slots))
	}
	for i, f := range s.Fields {
		h[64+i] = byte(f)
	}
	return h
}

// A FormatError is Open's error for a file that is there but is not a
// metrics file of the schema asked for. Nothing in it can be read with
// the schema's meaning, so the fix is to remove it.
type FormatError struct {
	Path    string
	Problem string
}

func (e *FormatError) Error() string {
	return "open metrics " + e.Path + ": " + e.Problem + "; remove it and the daemon makes a new one"
}

// A File is one series' round-robin file. Add and Read may be called
// from any goroutines at once.
type File struct {
	path     string
	fields   []Fold
	slotSize int64
	rings    []ring

	// mu guards file, which is nil once closed, and buf: Add holds the
	// write lock for a whole sample, so a reader never sees one archive
	// folded and the next not, nor half a slot.
	mu   sync.RWMutex
	file *os.File
	buf  []byte // Add's one slot, reused so that a sample allocates nothing
}

type ring struct {
	step  time.Duration
	sec   int64 // step in seconds
	slots int64
	off   int64 // of slot 0
}

// Open opens the file at path, made at its full size with mode 0600 if
// there is none. A file that is not one of schema s is refused with a
// *FormatError and left as it is.
func Open(path string, s Schema) (*File, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("open metrics %s: %w", path, err)
	}
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		file, err = create(path, s)
	}
	if err != nil {
		return nil, fmt.Errorf("open metrics %s: %w", path, err)
	}
	if err := check(file, path, s); err != nil {
		file.Close()
		return nil, err
	}
	f := &File{
		path:     path,
		fields:   slices.Clone(s.Fields),
		slotSize: slotSize(len(s.Fields)),
		file:     file,
		buf:      make([]byte, slotSize(len(s.Fields))),
	}
	off := int64(headerSize)
	for _, a := range Archives() {
		f.rings = append(f.rings, ring{a.Step, int64(a.Step / time.Second), int64(a.Slots), off})
		off += int64(a.Slots) * f.slotSize
	}
	return f, nil
}

// create makes the file at path under a temporary name in its folder
// and renames it into place once whole, so that no reader sees a
// header without its slots or a file cut short. Should a file appear at
// path meanwhile, that one is opened instead: it is never replaced.
func create(path string, s Schema) (*os.File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".new-*") // mode 0600
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	size := Size(s)
	// The whole file is allocated now so that a full disk fails here and
	// not at some sample later; tmpfs and ext4 allocate, some file
	// systems refuse and get a sparse file.
	err = unix.Fallocate(int(tmp.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		err = tmp.Truncate(size)
	}
	if err != nil {
		return nil, fmt.Errorf("allocate %d bytes: %w", size, err)
	}
	if _, err := tmp.WriteAt(header(s), 0); err != nil {
		return nil, err
	}
	// The one sync of the file's life: a crash after the rename then
	// leaves a whole file, not an empty one that Open would refuse.
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	err = renameNoReplace(tmp.Name(), path)
	if errors.Is(err, fs.ErrExist) {
		// Made by another Open since ours found nothing: use that one.
		return os.OpenFile(path, os.O_RDWR, 0)
	}
	if err != nil {
		return nil, err
	}
	// The open descriptor follows the rename: it is the file at path.
	ok = true
	return tmp, nil
}

// renameNoReplace renames oldpath to newpath, failing with fs.ErrExist
// when newpath exists, where rename(2) would replace it.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		// A file system without RENAME_NOREPLACE: check, then rename.
		if _, err := os.Lstat(newpath); err == nil {
			return fs.ErrExist
		}
		return os.Rename(oldpath, newpath)
	}
	if err == unix.EEXIST {
		return fs.ErrExist
	}
	return err
}

// check returns a *FormatError when file is not a metrics file of
// schema s, saying what differs.
func check(file *os.File, path string, s Schema) error {
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("open metrics %s: %w", path, err)
	}
	bad := func(format string, args ...any) error {
		return &FormatError{Path: path, Problem: fmt.Sprintf(format, args...)}
	}
	if !fi.Mode().IsRegular() {
		return bad("not a regular file")
	}
	want := header(s)
	got := make([]byte, headerSize)
	n, err := file.ReadAt(got, 0)
	if err != nil && err != io.EOF {
		return fmt.Errorf("open metrics %s: %w", path, err)
	}
	if n < len(magic) || string(got[:len(magic)]) != magic {
		return bad("not a metrics file (no %s header)", magic)
	}
	if n < headerSize {
		return bad("cut short: %d bytes, a header alone is %d", fi.Size(), headerSize)
	}
	le := binary.LittleEndian
	if v := le.Uint16(got[8:]); v != version {
		return bad("format version %d, this dyno reads %d", v, version)
	}
	if name := string(bytes.TrimRight(got[16:32], "\x00")); name != s.Name {
		return bad("holds %q series, not %q", name, s.Name)
	}
	if !bytes.Equal(got[10:12], want[10:12]) || !bytes.Equal(got[64:], want[64:]) {
		k := min(int(le.Uint16(got[10:])), maxFields)
		folds := make([]Fold, k)
		for i := range folds {
			folds[i] = Fold(got[64+i])
		}
		return bad("fields %v, not %v", folds, s.Fields)
	}
	if !bytes.Equal(got[12:14], want[12:14]) || !bytes.Equal(got[32:64], want[32:64]) {
		return bad("archives other than %v", Archives())
	}
	if !bytes.Equal(got, want) {
		return bad("header differs from the schema's")
	}
	if size := Size(s); fi.Size() != size {
		return bad("%d bytes, where its schema makes %d", fi.Size(), size)
	}
	return nil
}

// Add folds the sample values, taken at t, into the slot of t in every
// archive: values holds one value per field of the schema, finite and
// within float32's range. An archive whose slot holds a newer period
// than t's (the clock went back) drops the sample.
func (f *File) Add(t time.Time, values []float64) error {
	if len(values) != len(f.fields) {
		return fmt.Errorf("add metrics %s: %d values for %d fields", f.path, len(values), len(f.fields))
	}
	for i, v := range values {
		// One NaN would spoil every slot it went into for their whole
		// period, and float32 turns what is past its range into Inf.
		if w := float64(float32(v)); math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("add metrics %s: field %d: %v cannot be stored", f.path, i, v)
		}
	}
	sec := t.Unix()
	// A period starting at 0 would read as never written.
	if first := f.rings[len(f.rings)-1].sec; sec < first {
		return fmt.Errorf("add metrics %s: time %v is before the first period", f.path, t)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return fmt.Errorf("add metrics %s: %w", f.path, os.ErrClosed)
	}
	le := binary.LittleEndian
	buf := f.buf
	for _, r := range f.rings {
		period := sec / r.sec
		start := period * r.sec
		off := r.off + period%r.slots*f.slotSize
		if _, err := f.file.ReadAt(buf, off); err != nil {
			return fmt.Errorf("add metrics %s: %w", f.path, err)
		}
		stored := int64(le.Uint64(buf))
		n := le.Uint32(buf[8:])
		if stored > start {
			continue
		}
		if stored != start || n == 0 {
			clear(buf)
			n = 0
		}
		for i, fold := range f.fields {
			p := buf[slotHead+4*i:]
			v := float32(values[i])
			old := math.Float32frombits(le.Uint32(p))
			switch fold {
			case Sum, Mean:
				v += old
			case Max:
				if n > 0 && old > v {
					v = old
				}
			}
			le.PutUint32(p, math.Float32bits(v))
		}
		le.PutUint64(buf, uint64(start))
		le.PutUint32(buf[8:], n+1)
		if _, err := f.file.WriteAt(buf, off); err != nil {
			return fmt.Errorf("add metrics %s: %w", f.path, err)
		}
	}
	return nil
}

// Point is one slot read: the period starting at T, the number of
// samples folded into it and the folded values, one per field.
type Point struct {
	T time.Time
	N int
	V []float64
}

// Read returns the points of the archive of step step whose periods
// start in [from, to), oldest first. A period without samples, or whose
// slot has since been reused, has no point: gaps show as missing points.
func (f *File) Read(step time.Duration, from, to time.Time) ([]Point, error) {
	i := slices.IndexFunc(f.rings, func(r ring) bool { return r.step == step })
	if i < 0 {
		return nil, fmt.Errorf("read metrics %s: no archive of step %v", f.path, step)
	}
	r := f.rings[i]
	// Whole seconds: a period starting at p is in the window when
	// lo <= p < hi.
	lo, hi := from.Unix(), to.Unix()
	if from.Nanosecond() > 0 {
		lo++
	}
	if to.Nanosecond() > 0 {
		hi++
	}
	if lo >= hi {
		return nil, nil
	}
	// The whole ring in one read: the dashboard's windows are about a
	// ring long, and a reused slot can be anywhere.
	buf := make([]byte, r.slots*f.slotSize)
	f.mu.RLock()
	if f.file == nil {
		f.mu.RUnlock()
		return nil, fmt.Errorf("read metrics %s: %w", f.path, os.ErrClosed)
	}
	_, err := f.file.ReadAt(buf, r.off)
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("read metrics %s: %w", f.path, err)
	}

	le := binary.LittleEndian
	// in returns the period start of the slot if it holds one in the
	// window. A slot out of place (holding a period that is not its
	// own) is damage, not data.
	in := func(slot int64) (start int64, ok bool) {
		b := buf[slot*f.slotSize:]
		start = int64(le.Uint64(b))
		return start, le.Uint32(b[8:]) > 0 && lo <= start && start < hi &&
			start%r.sec == 0 && start/r.sec%r.slots == slot
	}
	// Count the points, and find the newest: the slots after it hold the
	// oldest periods, so a walk from there round the ring finds them in
	// order, unless some are left from an earlier lap.
	count, newest, newestStart := 0, int64(0), int64(0)
	for slot := range r.slots {
		if start, ok := in(slot); ok {
			count++
			if start > newestStart {
				newest, newestStart = slot, start
			}
		}
	}
	if count == 0 {
		return nil, nil
	}
	k := len(f.fields)
	points := make([]Point, 0, count)
	values := make([]float64, count*k) // one allocation for all the points' V
	for i := range r.slots {
		slot := (newest + 1 + i) % r.slots
		start, ok := in(slot)
		if !ok {
			continue
		}
		b := buf[slot*f.slotSize:]
		n := le.Uint32(b[8:])
		p := Point{T: time.Unix(start, 0), N: int(n), V: values[:k:k]}
		values = values[k:]
		for j, fold := range f.fields {
			v := float64(math.Float32frombits(le.Uint32(b[slotHead+4*j:])))
			if fold == Mean {
				v /= float64(n)
			}
			p.V[j] = v
		}
		points = append(points, p)
	}
	byTime := func(a, b Point) int { return a.T.Compare(b.T) }
	if !slices.IsSortedFunc(points, byTime) {
		slices.SortFunc(points, byTime)
	}
	return points, nil
}

// Close closes the file. Add and Read fail after it.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == nil {
		return fmt.Errorf("close metrics %s: %w", f.path, os.ErrClosed)
	}
	err := f.file.Close()
	f.file = nil
	if err != nil {
		return fmt.Errorf("close metrics %s: %w", f.path, err)
	}
	return nil
}
