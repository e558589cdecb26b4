package ledger

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// sixLines makes a ledger of six records, buildpacks first so that State
// reads all the way back, and returns its lines with their '\n's.
func sixLines(t *testing.T) [][]byte {
	t.Helper()
	path := ledgerPath(t)
	l, err := Create(path,
		Record{Type: TypeBuildpacks, Buildpacks: []string{"heroku/go"}},
		releaseRecord(1, StatusSucceeded, map[string]string{"DATABASE_URL": "postgres://u:p@db/app"}),
		releaseRecord(2, StatusSucceeded, map[string]string{"DATABASE_URL": "postgres://u:secret@db/app", "FOO": "bar"}))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, Record{Type: TypeFormation, Formation: Formation{"web": {2, "standard-1x"}}})
	mustAppend(t, l, releaseRecord(3, StatusPending, nil), Record{Type: TypeStatus, Status: &Status{Version: 3, Status: StatusSucceeded}})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	return lines[:len(lines)-1]
}

func writeLines(t *testing.T, lines [][]byte) *Ledger {
	t.Helper()
	path := ledgerPath(t)
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return Open(path)
}

func TestVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	edit := func(edit func(lines [][]byte) [][]byte) func(*testing.T) [][]byte {
		return func(t *testing.T) [][]byte {
			return edit(sixLines(t))
		}
	}
	replace := func(n int, old, new string) func(*testing.T) [][]byte {
		return edit(func(lines [][]byte) [][]byte {
			if !bytes.Contains(lines[n-1], []byte(old)) {
				panic("line " + string(lines[n-1]) + " lacks " + old)
			}
			lines[n-1] = bytes.Replace(lines[n-1], []byte(old), []byte(new), 1)
			return lines
		})
	}
	tests := []struct {
		name   string
		make   func(*testing.T) [][]byte
		line   int
		seq    int
		reason string
		// The line State names, if it notices: it reads back to the
		// first line here, and meets a break from the other side.
		state int
	}{
		{
			name:   "config var changed by one byte",
			make:   replace(3, "u:secret@", "u:secreT@"),
			line:   3,
			seq:    3,
			reason: "hash mismatch (the record was changed after it was written)",
		},
		{
			name:   "description changed",
			make:   replace(2, "Deploy", "Deplox"),
			line:   2,
			seq:    2,
			reason: "hash mismatch",
		},
		{
			name: "middle line deleted",
			make: edit(func(lines [][]byte) [][]byte {
				return append(lines[:2:2], lines[3:]...)
			}),
			line:   3,
			seq:    4,
			reason: "out of sequence: record 3 should be here",
			state:  2,
		},
		{
			name: "two lines swapped",
			make: edit(func(lines [][]byte) [][]byte {
				lines[2], lines[3] = lines[3], lines[2]
				return lines
			}),
			line:   3,
			seq:    4,
			reason: "out of sequence",
			state:  4,
		},
		{
			name: "first line deleted",
			make: edit(func(lines [][]byte) [][]byte {
				return lines[1:]
			}),
			line:   1,
			seq:    2,
			reason: "out of sequence: record 1 should be here",
			state:  1,
		},
		{
			name:   "record renumbered to hide a deletion",
			make:   replace(4, `{"seq":4,`, `{"seq":3,`),
			line:   4,
			seq:    3,
			reason: "out of sequence",
			state:  4,
		},
		{
			name:   "prev changed",
			make:   replace(5, `"prev":"sha256:`, `"prev":"sha256:0`),
			line:   5,
			seq:    5,
			reason: "prev is not the hash of record 4",
		},
		{
			name:   "field added",
			make:   replace(3, `{"seq":3,`, `{"seq":3,"admin":true,`),
			line:   3,
			seq:    3,
			reason: "hash mismatch",
		},
		{
			name:   "key in other case",
			make:   replace(2, `"user":`, `"User":`),
			line:   2,
			seq:    2,
			reason: "hash mismatch",
		},
		{
			name:   "garbage line",
			make:   edit(func(lines [][]byte) [][]byte { lines[2] = []byte("not json\n"); return lines }),
			line:   3,
			reason: "malformed record",
			state:  3,
		},
		{
			name:   "empty line",
			make:   edit(func(lines [][]byte) [][]byte { lines[2] = []byte("\n"); return lines }),
			line:   3,
			reason: "malformed record",
			state:  3,
		},
		{
			name:   "last line garbage",
			make:   edit(func(lines [][]byte) [][]byte { lines[5] = []byte("{}\n"); return lines }),
			line:   6,
			reason: "record 6 should be here",
			state:  6,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := writeLines(t, tt.make(t))
			err := l.Verify()
			var verr *VerifyError
			if !errors.As(err, &verr) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			if verr.Line != tt.line || verr.Seq != tt.seq || !strings.Contains(verr.Reason, tt.reason) {
				t.Errorf("Verify = line %d, record %d, %q; want line %d, record %d, %q", verr.Line, verr.Seq, verr.Reason, tt.line, tt.seq, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "ledger.jsonl:") {
				t.Errorf("error %q does not start with the file's name", err)
			}
			if tt.state > 0 {
				_, err := l.State()
				if !errors.As(err, &verr) || verr.Line != tt.state {
					t.Errorf("State = %v, want a *VerifyError naming line %d", err, tt.state)
				}
			} else if _, err := l.State(); err != nil {
				t.Errorf("State = %v; it checks no hashes and should not notice", err)
			}
		})
	}
}

func TestVerifyErrorMessage(t *testing.T) {
	t.Parallel()
	lines := sixLines(t)
	lines[2] = bytes.Replace(lines[2], []byte("FOO"), []byte("FOX"), 1)
	err := writeLines(t, lines).Verify()
	want := "ledger.jsonl:3: record 3: hash mismatch (the record was changed after it was written)"
	if err == nil || err.Error() != want {
		t.Errorf("Verify = %v, want %q", err, want)
	}

	for _, tt := range []struct {
		err  VerifyError
		want string
	}{
		{VerifyError{Path: "/home/a/apps/x/ledger.jsonl", Line: 2, Reason: "malformed record: x"}, "ledger.jsonl:2: malformed record: x"},
		{VerifyError{Line: 7, Seq: 7, Reason: "r"}, "line 7: record 7: r"},
		{VerifyError{Path: "ledger.jsonl", Seq: 3, Reason: "r"}, "ledger.jsonl: record 3: r"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestReadAllNamesBadLine(t *testing.T) {
	t.Parallel()
	lines := sixLines(t)
	lines[3] = []byte(`{"seq":4,"type":"release","time":"2024-01-01T00:00:00Z","user":"u","prev":"","hash":""}` + "\n")
	_, err := ReadAll(bytes.NewReader(bytes.Join(lines, nil)))
	var verr *VerifyError
	if !errors.As(err, &verr) || verr.Line != 4 || verr.Seq != 4 || !strings.Contains(verr.Reason, "release record without a release") {
		t.Errorf("ReadAll = %v, want line 4, record 4, release without a release", err)
	}
}

func TestVerifyIgnoresUncommittedTail(t *testing.T) {
	t.Parallel()
	lines := sixLines(t)
	// The first record of the last append, without the second, and half
	// a line after it: a crash in the middle of write(2).
	torn := append(lines[:5:5], lines[5][:20])
	l := writeLines(t, torn)
	mustVerify(t, l)
	if s := mustState(t, l); s.Seq != 4 || s.LastVersion != 2 {
		t.Errorf("state = seq %d, last v%d; want 4, v2", s.Seq, s.LastVersion)
	}
	recs, err := ReadAll(bytes.NewReader(bytes.Join(torn, nil)))
	if err != nil || len(recs) != 4 {
		t.Errorf("ReadAll read %d records, %v; want 4", len(recs), err)
	}
}

// TestVerifyBatchBroken rewrites a ledger, hashes and all, so that an
// append's records are not all there although every seq, prev and hash
// is right.
func TestVerifyBatchBroken(t *testing.T) {
	t.Parallel()
	recs, err := ReadAll(bytes.NewReader(bytes.Join(sixLines(t), nil)))
	if err != nil {
		t.Fatal(err)
	}
	recs[3].More = 3 // the formation record claims three more records of its append
	var lines [][]byte
	prev := ""
	for i := range recs {
		recs[i].Prev = prev
		line, hash, err := encode(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, append(line, '\n'))
		prev = hash
	}
	err = writeLines(t, lines).Verify()
	var verr *VerifyError
	if !errors.As(err, &verr) || verr.Line != 5 || !strings.Contains(verr.Reason, "more is 1, want 2: records of one append are missing") {
		t.Errorf("Verify = %v, want line 5: records of one append are missing", err)
	}
}
