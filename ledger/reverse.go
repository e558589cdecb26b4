package ledger

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Reading from the end: the records readers need are nearly always the
// last few, so a read fetches firstRead bytes with one pread(2), enough
// for a few dozen records, and reads further back only as far as needed,
// in reads that double up to maxRead.
const (
	firstRead = 64 << 10
	maxRead   = 1 << 20
)

// A lineReader returns the complete lines of a file, newest first.
type lineReader struct {
	f    *os.File
	buf  []byte
	data []byte  // the file's bytes from off on, in buf; those before end are unread
	off  int64   // file offset of data[0]
	end  int64   // end of the unread bytes: just after the '\n' of the newest unread line
	nls  []int64 // offsets of the '\n's in [off, end-1), ascending
	step int     // how much the next read fetches
}

// newLineReader returns a lineReader for f, whose size is size. A torn
// tail, the bytes after the last '\n', is left out: a line is complete
// only with its '\n'.
func newLineReader(f *os.File, size int64) (*lineReader, error) {
	r := &lineReader{f: f, off: size, end: size, step: firstRead}
	for {
		if k := len(r.nls); k > 0 {
			r.end = r.nls[k-1] + 1
			r.nls = r.nls[:k-1]
			return r, nil
		}
		if r.off == 0 {
			r.end = 0
			return r, nil
		}
		if err := r.readMore(); err != nil {
			return nil, err
		}
	}
}

// prev returns the newest unread line, without its '\n', and its offset
// in the file; ok is false when no line is left. The line is valid until
// the next call.
func (r *lineReader) prev() (line []byte, at int64, ok bool, err error) {
	for r.end > 0 {
		if k := len(r.nls); k > 0 {
			at = r.nls[k-1] + 1
			r.nls = r.nls[:k-1]
		} else if r.off > 0 {
			// The line starts before the bytes read so far.
			if err := r.readMore(); err != nil {
				return nil, 0, false, err
			}
			continue
		} else {
			at = 0
		}
		line = r.data[at-r.off : r.end-1-r.off]
		r.end = at
		return line, at, true, nil
	}
	return nil, 0, false, nil
}

// readMore reads the bytes before those read so far. It is called only
// when no '\n' is known before the last unread byte: the unread bytes are
// the end of a line that starts further back, or a torn tail.
func (r *lineReader) readMore() error {
	keep := int(r.end - r.off)
	n := int(min(int64(r.step), r.off))
	r.step = min(2*r.step, maxRead)
	if n+keep > cap(r.buf) {
		buf := make([]byte, max(n+keep, 2*cap(r.buf)))
		copy(buf[n:], r.data[:keep])
		r.buf = buf[:n+keep]
	} else {
		r.buf = r.buf[:n+keep]
		copy(r.buf[n:], r.data[:keep]) // copy is memmove: the ranges may overlap
	}
	r.off -= int64(n)
	if _, err := r.f.ReadAt(r.buf[:n], r.off); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // the file shrank: someone wrote it without the lock
		}
		return err
	}
	r.data = r.buf
	// Index the new bytes' line ends with a forward IndexByte, which is
	// vectorised, rather than searching backwards byte by byte.
	for i := 0; i < n; {
		j := bytes.IndexByte(r.buf[i:n], '\n')
		if j < 0 {
			break
		}
		r.nls = append(r.nls, r.off+int64(i+j))
		i += j + 1
	}
	return nil
}

// A walker visits the committed records of a ledger, newest first,
// decoding only those its caller asks for, and checks on the way that
// their seqs count down to 1.
type walker struct {
	path  string
	f     *os.File
	size  int64 // the file's size
	end   int64 // the end of the committed records: size less a torn tail
	lines *lineReader

	newest   *Record // the newest committed record, decoded; nil for an empty ledger
	newestAt int64
	started  bool // whether next returned newest
	want     int  // the seq the next record must have
}

// newWalker returns a walker over the ledger f, which must be locked,
// having found where its committed records end.
func newWalker(f *os.File, path string) (*walker, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	lines, err := newLineReader(f, fi.Size())
	if err != nil {
		return nil, err
	}
	w := &walker{path: path, f: f, size: fi.Size(), end: lines.end, lines: lines}
	// The newest complete lines are uncommitted if they are the start of
	// a batch whose last record, the one with More == 0, is missing.
	for {
		line, at, ok, err := lines.prev()
		if err != nil {
			return nil, err
		}
		if !ok {
			return w, nil
		}
		rec, err := decodeRecord(line)
		if err != nil {
			seq := 0
			if rec != nil {
				seq = rec.Seq
			}
			return nil, w.corrupt(at, seq, err.Error())
		}
		if rec.More > 0 {
			w.end = at
			continue
		}
		w.newest, w.newestAt = rec, at
		w.want = rec.Seq
		return w, nil
	}
}

// checkHead compares the ledger with its head file, if it has one (see
// the package comment). It must be called before the walk starts.
func (w *walker) checkHead() error {
	h, ok, err := readHead(w.path)
	if err != nil || !ok {
		return err
	}
	seq, hash := 0, ""
	if w.newest != nil {
		seq, hash = w.newest.Seq, w.newest.Hash
	}
	return checkHead(w.path, h, seq, hash, w.hashAt)
}

// hashAt returns the hash of committed record seq, reading back from the
// newest with a lineReader of its own, so that the walk is not
// disturbed. It decodes only record seq.
func (w *walker) hashAt(seq int) (string, error) {
	lines, err := newLineReader(w.f, w.end)
	if err != nil {
		return "", err
	}
	for want := w.newest.Seq; ; want-- {
		line, at, ok, err := lines.prev()
		if err != nil {
			return "", err
		}
		if !ok {
			return "", w.corrupt(0, 0, fmt.Sprintf("out of sequence: record %d is missing", want))
		}
		got, _, sniffed := sniff(line)
		var rec *Record
		if !sniffed || got == seq {
			if rec, err = decodeRecord(line); err != nil {
				return "", w.corrupt(at, got, err.Error())
			}
			got = rec.Seq
		}
		if got != want || at == 0 && got != 1 {
			return "", w.corrupt(at, got, fmt.Sprintf("out of sequence: record %d should be here (a record was removed, or lines were moved)", want))
		}
		if got == seq {
			return rec.Hash, nil
		}
	}
}

// An entry is a record met by a walker: its line, and the record decoded
// when asked for. The line is valid until the walker's next call.
type entry struct {
	w    *walker
	line []byte
	at   int64 // offset of the line in the file
	seq  int
	typ  string
	rec  *Record
}

// next returns the next older committed record; ok is false after the
// oldest.
func (w *walker) next() (e entry, ok bool, err error) {
	if !w.started {
		w.started = true
		if w.newest == nil {
			return entry{}, false, nil
		}
		e = entry{w: w, at: w.newestAt, seq: w.newest.Seq, typ: w.newest.Type, rec: w.newest}
		return e, true, w.checkSeq(&e)
	}
	line, at, ok, err := w.lines.prev()
	if err != nil || !ok {
		return entry{}, false, err
	}
	e = entry{w: w, line: line, at: at}
	var sniffed bool
	e.seq, e.typ, sniffed = sniff(line)
	if !sniffed {
		// Not in the form Append writes: decode it to learn what it is.
		rec, err := decodeRecord(line)
		if err != nil {
			seq := 0
			if rec != nil {
				seq = rec.Seq
			}
			return entry{}, false, w.corrupt(at, seq, err.Error())
		}
		e.seq, e.typ, e.rec = rec.Seq, rec.Type, rec
	}
	return e, true, w.checkSeq(&e)
}

// checkSeq reports whether e is where its seq says it should be.
func (w *walker) checkSeq(e *entry) error {
	if e.seq != w.want {
		return w.corrupt(e.at, e.seq, fmt.Sprintf("out of sequence: the next line holds record %d (a record was removed, or lines were moved)", w.want+1))
	}
	if e.at == 0 && e.seq != 1 {
		return w.corrupt(e.at, e.seq, "out of sequence: the first line must be record 1")
	}
	w.want--
	return nil
}

// record returns e's record, decoding it if need be.
func (e *entry) record() (*Record, error) {
	if e.rec != nil {
		return e.rec, nil
	}
	rec, err := decodeRecord(e.line)
	if err != nil {
		return nil, e.w.corrupt(e.at, e.seq, err.Error())
	}
	if rec.Seq != e.seq || rec.Type != e.typ {
		return nil, e.w.corrupt(e.at, e.seq, "the start of the line disagrees with the record (it was edited)")
	}
	e.rec = rec
	return rec, nil
}

// corrupt returns the error for a bad line at offset at, naming its line
// number, which it counts: this is the rare path, and reading backwards
// does not know it.
func (w *walker) corrupt(at int64, seq int, reason string) error {
	line := 0
	if n, err := countLines(w.f, at); err == nil {
		line = n + 1
	}
	return &VerifyError{Path: w.path, Line: line, Seq: seq, Reason: reason}
}

// countLines counts the '\n's in the first n bytes of f.
func countLines(f *os.File, n int64) (int, error) {
	buf := make([]byte, 64<<10)
	count := 0
	for off := int64(0); off < n; {
		m, err := f.ReadAt(buf[:min(int64(len(buf)), n-off)], off)
		count += bytes.Count(buf[:m], []byte{'\n'})
		off += int64(m)
		if err != nil && off < n {
			return 0, err
		}
	}
	return count, nil
}

// foldState computes the state from the newest records back, stopping
// as soon as it has everything: the newest release, the newest succeeded
// release (with the status records newer than it), and the newest
// formation, buildpacks, domains, certs, features, maintenance, drains
// and attachments records.
func foldState(w *walker) (*State, error) {
	s := &State{}
	statuses := make(map[int]string) // status records seen so far, newest first
	var haveRelease, haveFormation, haveBuildpacks, haveDomains, haveCerts, haveFeatures, haveMaintenance, haveDrains, haveAttachments bool
	for !(s.Current != nil && haveFormation && haveBuildpacks && haveDomains && haveCerts && haveFeatures && haveMaintenance && haveDrains && haveAttachments) {
		e, ok, err := w.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if s.Seq == 0 {
			s.Seq, s.Hash = e.rec.Seq, e.rec.Hash
		}
		switch {
		case e.typ == TypeRelease && s.Current == nil:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			if !haveRelease {
				s.LastVersion, haveRelease = rec.Release.Version, true
			}
			if rel := releaseOf(rec, statuses); rel.Status == StatusSucceeded {
				s.Current = &rel
			}
		case e.typ == TypeStatus && s.Current == nil:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			if _, seen := statuses[rec.Status.Version]; !seen {
				statuses[rec.Status.Version] = rec.Status.Status
			}
		case e.typ == TypeFormation && !haveFormation:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			s.Formation, haveFormation = rec.Formation, true
			if s.Formation == nil {
				s.Formation = Formation{}
			}
		case e.typ == TypeBuildpacks && !haveBuildpacks:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			s.Buildpacks, haveBuildpacks = rec.Buildpacks, true
			if s.Buildpacks == nil {
				s.Buildpacks = []string{}
			}
		case e.typ == TypeDomains && !haveDomains:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			s.Domains, haveDomains = rec.Domains, true
			if s.Domains == nil {
				s.Domains = []string{}
			}
		case e.typ == TypeCerts && !haveCerts:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			s.Certs, haveCerts = rec.Certs, true
			if s.Certs == nil {
				s.Certs = []Cert{}
			}
		case e.typ == TypeFeatures && !haveFeatures:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			s.Features, haveFeatures = rec.Features, true
			if s.Features == nil {
				s.Features = []string{}
			}
		case e.typ == TypeMaintenance && !haveMaintenance:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			s.Maintenance, haveMaintenance = *rec.Maintenance, true
		case e.typ == TypeDrains && !haveDrains:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			s.Drains, haveDrains = rec.Drains, true
			if s.Drains == nil {
				s.Drains = []Drain{}
			}
		case e.typ == TypeAttachments && !haveAttachments:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			s.Attachments, haveAttachments = rec.Attachments, true
			if s.Attachments == nil {
				s.Attachments = []Attachment{}
			}
		}
	}
	return s, nil
}

// foldReleases returns up to n releases, newest first; n <= 0 means all.
func foldReleases(w *walker, n int) ([]Release, error) {
	var rels []Release
	statuses := make(map[int]string)
	for n <= 0 || len(rels) < n {
		e, ok, err := w.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if e.typ != TypeRelease && e.typ != TypeStatus {
			continue
		}
		rec, err := e.record()
		if err != nil {
			return nil, err
		}
		if rec.Type == TypeStatus {
			if _, seen := statuses[rec.Status.Version]; !seen {
				statuses[rec.Status.Version] = rec.Status.Status
			}
			continue
		}
		rels = append(rels, releaseOf(rec, statuses))
	}
	return rels, nil
}

// findRelease returns release v, or nil if there is none. It decodes
// only the status records and release v itself.
func findRelease(w *walker, v int) (*Release, error) {
	statuses := make(map[int]string)
	for {
		e, ok, err := w.next()
		if err != nil || !ok {
			return nil, err
		}
		switch e.typ {
		case TypeStatus:
			rec, err := e.record()
			if err != nil {
				return nil, err
			}
			if _, seen := statuses[rec.Status.Version]; !seen && rec.Status.Version == v {
				statuses[v] = rec.Status.Status
			}
		case TypeRelease:
			version, sniffed := 0, false
			if e.rec == nil {
				version, sniffed = sniffVersion(e.line)
			}
			if !sniffed || version == v {
				rec, err := e.record()
				if err != nil {
					return nil, err
				}
				version = rec.Release.Version
			}
			switch {
			case version == v:
				rel := releaseOf(e.rec, statuses)
				return &rel, nil
			case version < v:
				// Versions grow by one with each release: v is not
				// further back.
				return nil, nil
			}
		}
	}
}

// releaseOf returns rec's release as readers see it: with the time and
// user of its record, and the status of the newest status record about
// it, if there is one.
func releaseOf(rec *Record, statuses map[int]string) Release {
	rel := *rec.Release
	rel.Time, rel.User = rec.Time, rec.User
	if st, ok := statuses[rel.Version]; ok {
		rel.Status = st
	}
	return rel
}
