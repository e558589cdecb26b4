package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// headLedger makes a ledger of seven records in four appends, the last
// two of them batches, and returns its bytes and records.
func headLedger(t *testing.T) ([]byte, []Record) {
	t.Helper()
	path := ledgerPath(t)
	l, err := Create(path, releaseRecord(1, StatusSucceeded, configVars(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, Record{Type: TypeFormation, Formation: Formation{"web": {1, "standard-1x"}}})
	mustAppend(t, l, releaseRecord(2, StatusPending, nil), Record{Type: TypeStatus, Status: &Status{Version: 2, Status: StatusSucceeded}})
	mustAppend(t, l, releaseRecord(3, StatusSucceeded, nil), Record{Type: TypeBuildpacks, Buildpacks: []string{"heroku/go"}},
		Record{Type: TypeFormation, Formation: Formation{"web": {2, "standard-1x"}}})
	data := mustRead(t, path)
	recs, err := ReadAll(bytes.NewReader(data))
	if err != nil || len(recs) != 7 {
		t.Fatalf("ReadAll = %d records, %v", len(recs), err)
	}
	if h, ok, err := readHead(path); err != nil || !ok || h.Seq != 7 || h.Hash != recs[6].Hash {
		t.Fatalf("head after the appends = %+v, %v, %v; want record 7's", h, ok, err)
	}
	return data, recs
}

// TestHeadCut cuts the ledger at every record boundary, the empty file
// included, and inside its last line, keeping the head the appends
// wrote: every reader reports the records missing, naming both files,
// and Append refuses without changing either file.
func TestHeadCut(t *testing.T) {
	t.Parallel()
	data, recs := headLedger(t)
	var cuts []int
	for i := range len(data) {
		if i == 0 || data[i-1] == '\n' {
			cuts = append(cuts, i)
		}
	}
	cuts = append(cuts, len(data)-1, len(data)-40) // a torn last line
	dir := t.TempDir()
	path := filepath.Join(dir, "ledger.jsonl")
	for _, cut := range cuts {
		if err := os.WriteFile(path, data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		writeHead(t, path, 7, recs[6].Hash)
		// A cut inside a batch leaves none of it committed.
		kept, err := ReadAll(bytes.NewReader(data[:cut]))
		if err != nil {
			t.Fatal(err)
		}
		n := len(kept)
		missing := fmt.Sprintf("%d records missing", 7-n)
		if n == 6 {
			missing = "1 record missing"
		}
		want := fmt.Sprintf("ledger %s has %d record", path, n)
		hp := filepath.Join(dir, "ledger.head")
		want2 := fmt.Sprintf("but %s says 7: %s; restore the file from a backup, or remove %s to go on without", hp, missing, hp)
		check := func(what string, err error) {
			t.Helper()
			var herr *HeadError
			if !errors.As(err, &herr) || herr.Records != n || herr.HeadSeq != 7 || herr.Mismatch ||
				!strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), want2) {
				t.Errorf("cut at %d (%d records): %s = %v; want a *HeadError %q ... %q", cut, n, what, err, want, want2)
			}
		}
		check("Verify", Open(path).Verify())
		_, err = Open(path).State()
		check("State", err)
		_, err = Open(path).Releases(1)
		check("Releases", err)
		_, err = Open(path).Release(1)
		check("Release", err)
		called := false
		_, err = Open(path).Append(func(s *State) ([]Record, error) {
			called = true
			return []Record{releaseRecord(s.LastVersion+1, StatusSucceeded, nil)}, nil
		})
		check("Append", err)
		if called {
			t.Errorf("cut at %d: Append called build", cut)
		}
		if got := mustRead(t, path); !bytes.Equal(got, data[:cut]) {
			t.Errorf("cut at %d: a refused Append changed the ledger", cut)
		}
		if h, _, err := readHead(path); err != nil || h.Seq != 7 || h.Hash != recs[6].Hash {
			t.Errorf("cut at %d: a refused Append changed the head: %+v, %v", cut, h, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Errorf("cut at %d: %d files left in the directory, want the ledger and its head", cut, len(entries))
		}
	}
}

// TestHeadAnotherLedger: a ledger as long as its head, or longer, whose
// record at the head's seq is not the one the head names was replaced.
func TestHeadAnotherLedger(t *testing.T) {
	t.Parallel()
	data, recs := headLedger(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	os.WriteFile(path, data, 0o600)
	for _, seq := range []int{7, 4} {
		writeHead(t, path, seq, recs[0].Hash)
		err := Open(path).Verify()
		var herr *HeadError
		want := fmt.Sprintf("record %d is not the one %s names (its hash differs)", seq, headPath(path))
		if !errors.As(err, &herr) || !herr.Mismatch || !strings.Contains(err.Error(), want) {
			t.Errorf("head at %d: Verify = %v, want %q", seq, err, want)
		}
		if _, err := Open(path).State(); !errors.As(err, &herr) || !herr.Mismatch {
			t.Errorf("head at %d: State = %v", seq, err)
		}
	}
}

// TestHeadCrashBeforeUpdate: a crash between an append's fsync and the
// head's rename leaves the ledger longer than its head. That reads as a
// whole ledger, and the next Append brings the head up to date.
func TestHeadCrashBeforeUpdate(t *testing.T) {
	t.Parallel()
	data, recs := headLedger(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	os.WriteFile(path, data, 0o600)
	l := Open(path)
	// The head the appends before the last (3 records) and the one
	// before that (1 record) left; a head of an empty ledger.
	for _, seq := range []int{4, 2, 0} {
		hash := ""
		if seq > 0 {
			hash = recs[seq-1].Hash
		}
		writeHead(t, path, seq, hash)
		mustVerify(t, l)
		if s := mustState(t, l); s.Seq != 7 || s.Current == nil || s.Current.Version != 3 {
			t.Errorf("head at %d: state = seq %d, current %+v", seq, s.Seq, s.Current)
		}
		if rels, err := l.Releases(0); err != nil || len(rels) != 3 {
			t.Errorf("head at %d: Releases = %v, %v", seq, versions(rels), err)
		}
		if _, err := l.Release(2); err != nil {
			t.Errorf("head at %d: Release(2) = %v", seq, err)
		}
	}
	w := mustAppend(t, l, releaseRecord(4, StatusSucceeded, nil))
	if h, ok, err := readHead(path); err != nil || !ok || h.Seq != 8 || h.Hash != w[0].Hash {
		t.Errorf("head after Append = %+v, %v, %v; want record 8's", h, ok, err)
	}
	mustVerify(t, l)
}

// TestHeadMissing: a ledger written before heads existed has none. It is
// read as it is, and its next Append writes the head.
func TestHeadMissing(t *testing.T) {
	t.Parallel()
	data, recs := headLedger(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	os.WriteFile(path, data[:len(data)-1], 0o600) // and a torn tail
	l := Open(path)
	mustVerify(t, l)
	if s := mustState(t, l); s.Seq != 4 {
		t.Errorf("state seq %d, want 4", s.Seq)
	}
	w := mustAppend(t, l, releaseRecord(3, StatusSucceeded, nil))
	if w[0].Prev != recs[3].Hash {
		t.Errorf("appended after %s, want record 4", w[0].Prev)
	}
	if h, ok, err := readHead(path); err != nil || !ok || h.Seq != 5 || h.Hash != w[0].Hash {
		t.Errorf("head after Append = %+v, %v, %v; want record 5's", h, ok, err)
	}
	fi, err := os.Stat(headPath(path))
	if err != nil || fi.Mode() != 0o600 {
		t.Errorf("head mode %v, %v; want -rw-------", fi.Mode(), err)
	}
}

// TestHeadMalformed: a head that cannot be read stops every reader with
// an error naming it and the fix.
func TestHeadMalformed(t *testing.T) {
	t.Parallel()
	data, _ := headLedger(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	os.WriteFile(path, data, 0o600)
	for _, content := range []string{"", "garbage\n", `{"seq":7,"hash":"x"}` + "\n", `{"seq":-1,"hash":""}` + "\n",
		`{"seq":7,"hash":"sha256:` + strings.Repeat("0", 64) + `"}`, `{"seq":1,"hash":"","x":1}` + "\n"} {
		os.WriteFile(headPath(path), []byte(content), 0o600)
		want := headPath(path) + " is malformed"
		if err := Open(path).Verify(); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "remove it to accept") {
			t.Errorf("head %q: Verify = %v", content, err)
		}
		if _, err := Open(path).State(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("head %q: State = %v", content, err)
		}
		if _, err := Open(path).Append(func(*State) ([]Record, error) { return nil, nil }); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("head %q: Append = %v", content, err)
		}
	}
}

// TestCreateEmptyHead: Create with no records writes a head of an empty
// ledger, which every length meets.
func TestCreateEmptyHead(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	l, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(mustRead(t, headPath(path))); got != `{"seq":0,"hash":""}`+"\n" {
		t.Errorf("head = %q", got)
	}
	mustVerify(t, l)
	mustAppend(t, l, releaseRecord(1, StatusSucceeded, nil))
	mustVerify(t, l)
	// Emptied now, it is missing the record.
	os.WriteFile(path, nil, 0o600)
	var herr *HeadError
	if err := l.Verify(); !errors.As(err, &herr) || herr.Records != 0 || herr.HeadSeq != 1 {
		t.Errorf("Verify of the emptied ledger = %v", err)
	}
}
