package ledger

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// tornCase is a ledger whose last append, the bytes from cut on, can be
// cut short anywhere.
type tornCase struct {
	data []byte // the whole file
	cut  int    // where the last append starts
	kept []Record
}

// buildTorn makes a ledger of four records and then appends recs, and
// returns the file and where the last append starts.
func buildTorn(t *testing.T, recs ...Record) tornCase {
	t.Helper()
	path := ledgerPath(t)
	l, err := Create(path,
		releaseRecord(1, StatusSucceeded, configVars(1, 3)),
		Record{Type: TypeFormation, Formation: Formation{"web": {1, "standard-1x"}}},
		Record{Type: TypeBuildpacks, Buildpacks: []string{"heroku/go"}})
	if err != nil {
		t.Fatal(err)
	}
	w := mustAppend(t, l, releaseRecord(2, StatusPending, configVars(2, 3)))
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, recs...)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := ReadAll(bytes.NewReader(before))
	if err != nil || len(kept) != 4 || kept[3].Hash != w[0].Hash {
		t.Fatalf("ReadAll of the first four records: %d, %v", len(kept), err)
	}
	return tornCase{data: data, cut: len(before), kept: kept}
}

// writeCrashed writes data to the ledger at path, with the head a crash
// during the append after last leaves: the one naming last.
func writeCrashed(t *testing.T, path string, data []byte, last Record) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	writeHead(t, path, last.Seq, last.Hash)
}

// checkTorn truncates a copy of the ledger at every offset inside its
// last append and checks that readers see the records before it, that it
// verifies, and that the next append removes the fragment.
func checkTorn(t *testing.T, tc tornCase) {
	dir := t.TempDir()
	last := tc.kept[len(tc.kept)-1]
	for off := tc.cut + 1; off < len(tc.data); off++ {
		path := filepath.Join(dir, "ledger.jsonl")
		writeCrashed(t, path, tc.data[:off], last)
		l := Open(path)
		s, err := l.State()
		if err != nil {
			t.Fatalf("cut at %d: State: %v", off, err)
		}
		if s.Seq != last.Seq || s.Hash != last.Hash || s.LastVersion != 2 || s.Current == nil || s.Current.Version != 1 {
			t.Fatalf("cut at %d: state seq %d last v%d current %+v, want the state before the last append", off, s.Seq, s.LastVersion, s.Current)
		}
		rels, err := l.Releases(0)
		if err != nil || len(rels) != 2 || rels[0].Version != 2 || rels[0].Status != StatusPending {
			t.Fatalf("cut at %d: Releases = %v, %v; want v2 (pending), v1", off, versions(rels), err)
		}
		if _, err := l.Release(3); err == nil {
			t.Fatalf("cut at %d: Release(3) found an uncommitted release", off)
		}
		if err := l.Verify(); err != nil {
			t.Fatalf("cut at %d: Verify: %v", off, err)
		}
		recs, err := ReadAll(bytes.NewReader(tc.data[:off]))
		if err != nil || len(recs) != len(tc.kept) {
			t.Fatalf("cut at %d: ReadAll read %d records, %v; want %d", off, len(recs), err, len(tc.kept))
		}

		w, err := l.Append(func(s *State) ([]Record, error) {
			return []Record{releaseRecord(s.LastVersion+1, StatusSucceeded, nil)}, nil
		})
		if err != nil {
			t.Fatalf("cut at %d: Append: %v", off, err)
		}
		if w[0].Seq != last.Seq+1 || w[0].Prev != last.Hash {
			t.Fatalf("cut at %d: appended seq %d prev %s, want %d %s", off, w[0].Seq, w[0].Prev, last.Seq+1, last.Hash)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(got, tc.data[:tc.cut]) || bytes.Count(got[tc.cut:], []byte("\n")) != 1 {
			t.Fatalf("cut at %d: the fragment was not removed:\n%s", off, got[tc.cut:])
		}
		if err := l.Verify(); err != nil {
			t.Fatalf("cut at %d: Verify after Append: %v", off, err)
		}
		if s := mustState(t, l); s.Current == nil || s.Current.Version != 3 {
			t.Fatalf("cut at %d: current after Append = %+v, want v3", off, s.Current)
		}
	}
}

func TestTornRecord(t *testing.T) {
	t.Parallel()
	checkTorn(t, buildTorn(t, releaseRecord(3, StatusSucceeded, configVars(3, 20))))
}

// TestTornBatch cuts a three-record append anywhere, including just after
// the '\n' of its first or second record: none of the batch may count.
func TestTornBatch(t *testing.T) {
	t.Parallel()
	checkTorn(t, buildTorn(t,
		releaseRecord(3, StatusPending, configVars(3, 5)),
		Record{Type: TypeStatus, Status: &Status{Version: 3, Status: StatusSucceeded}},
		Record{Type: TypeFormation, Formation: Formation{"web": {2, "standard-1x"}}}))
}

// TestTornLongLine cuts a record longer than a backward read's first
// chunk, so that finding the last '\n' takes several reads.
func TestTornLongLine(t *testing.T) {
	t.Parallel()
	tc := buildTorn(t, releaseRecord(3, StatusSucceeded, configVars(3, 5000)))
	if len(tc.data)-tc.cut < 2*firstRead {
		t.Fatalf("last record is %d bytes, want more than %d", len(tc.data)-tc.cut, 2*firstRead)
	}
	// Every offset would take minutes; a spread of them, and both ends.
	n := len(tc.data)
	for _, off := range []int{tc.cut + 1, tc.cut + 1000, tc.cut + firstRead - 1, tc.cut + firstRead + 7, n - firstRead, n - 2, n - 1} {
		checkTornOnce(t, tc, off)
	}
}

func checkTornOnce(t *testing.T, tc tornCase, off int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	last := tc.kept[len(tc.kept)-1]
	writeCrashed(t, path, tc.data[:off], last)
	l := Open(path)
	if s, err := l.State(); err != nil || s.Seq != last.Seq {
		t.Fatalf("cut at %d: State = %+v, %v", off, s, err)
	}
	mustVerify(t, l)
	w := mustAppend(t, l, releaseRecord(3, StatusSucceeded, nil))
	if w[0].Seq != last.Seq+1 {
		t.Fatalf("cut at %d: appended seq %d", off, w[0].Seq)
	}
	mustVerify(t, l)
}
