package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A VerifyError reports a damaged ledger: the first line that is not
// what was written there. Verify returns one for any damage; readers
// return one, wrapped, for a line they cannot use.
type VerifyError struct {
	Path   string // the ledger file; "" for ReadAll
	Line   int    // 1-based; 0 if unknown
	Seq    int    // the seq the record on the line claims; 0 if it has none
	Reason string
}

// Error returns the error in the form
// "ledger.jsonl:42: record 42: hash mismatch (the record was changed after it was written)".
func (e *VerifyError) Error() string {
	var b strings.Builder
	switch {
	case e.Path != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", filepath.Base(e.Path), e.Line)
	case e.Path != "":
		fmt.Fprintf(&b, "%s: ", filepath.Base(e.Path))
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Seq > 0 {
		fmt.Fprintf(&b, "record %d: ", e.Seq)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Verify reads the whole ledger and checks every committed record: that
// its line is a well-formed record, that seqs count from 1 on line 1,
// that each Prev is the previous record's Hash and each Hash the
// record's by the rule of its format, that formats never go back, that
// release versions count up from 1 and status records name existing
// releases, and that the records of each Append are all there. Then it
// compares the ledger with its head file, if there is one. It returns
// nil, a *VerifyError naming the first bad line, or a *HeadError for a
// ledger shorter than its head. A torn tail (see the package comment) is
// not damage: it was never committed.
//
// A record of a type this binary does not know, in a format it knows, is
// checked like any other except for its contents: its hash covers them.
func (l *Ledger) Verify() error {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", l.path, err)
	}
	defer f.Close()
	if err := lock(f, unix.LOCK_SH); err != nil {
		return fmt.Errorf("verify %s: lock: %w", l.path, err)
	}
	// Read under the lock, which Append holds while it replaces the
	// head, so that the two agree.
	h, haveHead, err := readHead(l.path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", l.path, err)
	}
	var (
		prev        string // the previous record's hash
		lastVersion int
		format      int // the previous record's
		more        int // how many records of the current batch are still to come
		committed   int // the seq of the last record with more == 0
		lastHash    string
		headHash    string // the hash of record h.Seq
	)
	err = forEachLine(f, func(n int, line []byte) error {
		bad := func(seq int, format string, args ...any) error {
			return &VerifyError{Path: l.path, Line: n, Seq: seq, Reason: fmt.Sprintf(format, args...)}
		}
		rec, err := parseRecord(line)
		if err != nil {
			return bad(0, "malformed record: %v", err)
		}
		if rec.Seq != n {
			return bad(rec.Seq, "out of sequence: record %d should be here (a record was removed, or lines were moved)", n)
		}
		if rec.Prev != prev {
			return bad(rec.Seq, "prev is not the hash of record %d (a record before it was removed, replaced or moved)", n-1)
		}
		if rec.V < format {
			return bad(rec.Seq, "format %d after a record of format %d (formats never go back)", rec.V, format)
		}
		hash, err := hashLine(line, rec)
		if err != nil {
			return bad(rec.Seq, "%v", err)
		}
		if rec.Hash != hash {
			return bad(rec.Seq, "hash mismatch (the record was changed after it was written)")
		}
		if err := checkShape(rec); err != nil {
			return bad(rec.Seq, "%v", err)
		}
		if err := checkNext(rec, &lastVersion); err != nil {
			return bad(rec.Seq, "%v", err)
		}
		if more > 0 && rec.More != more-1 {
			return bad(rec.Seq, "more is %d, want %d: records of one append are missing", rec.More, more-1)
		}
		prev, format, more = rec.Hash, rec.V, rec.More
		if more == 0 {
			committed, lastHash = rec.Seq, rec.Hash
		}
		if rec.Seq == h.Seq {
			headHash = rec.Hash
		}
		return nil
	})
	if err != nil {
		var verr *VerifyError
		if errors.As(err, &verr) {
			return verr
		}
		return fmt.Errorf("verify %s: %w", l.path, err)
	}
	// A last batch without its last records (more > 0 here) was cut
	// short by a crash and never committed: readers ignore it, and the
	// next Append removes it.
	if haveHead {
		return checkHead(l.path, h, committed, lastHash, func(int) (string, error) { return headHash, nil })
	}
	return nil
}
