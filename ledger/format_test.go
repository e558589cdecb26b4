package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// copyFixture copies testdata/name.jsonl, and its head if it has one,
// into a temporary directory and returns the ledger there, so that a
// test may append to it.
func copyFixture(t *testing.T, name string) *Ledger {
	t.Helper()
	dir := t.TempDir()
	for _, ext := range []string{".jsonl", ".head"} {
		data, err := os.ReadFile(filepath.Join("testdata", name+ext))
		if errors.Is(err, os.ErrNotExist) && ext == ".head" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ledger"+ext), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return Open(filepath.Join(dir, "ledger.jsonl"))
}

// checkFixtureState checks the state folded from a ledger holding the
// records of fixtureRecords.
func checkFixtureState(t *testing.T, l *Ledger) {
	t.Helper()
	s := mustState(t, l)
	if s.Seq != 10 || s.LastVersion != 4 || s.Current == nil || s.Current.Version != 3 {
		t.Fatalf("state = seq %d, last v%d, current %+v; want 10, v4, v3", s.Seq, s.LastVersion, s.Current)
	}
	if got := s.Current.ConfigVars["CONTROL"]; got != "tab\there\nnewline\rcr\x01\x1f\x7f" {
		t.Errorf("CONTROL = %q", got)
	}
	if got := s.Current.ConfigVars["SEPARATORS"]; got != "line\u2028para\u2029end" {
		t.Errorf("SEPARATORS = %q", got)
	}
	if got := s.Current.ConfigVars["\u00dcNICODE_NAME"]; got != "v" {
		t.Errorf("config vars = %q", s.Current.ConfigVars)
	}
	if s.Formation == nil || len(s.Formation) != 0 || s.Buildpacks == nil || len(s.Buildpacks) != 0 {
		t.Errorf("formation %v, buildpacks %v; want both set and empty", s.Formation, s.Buildpacks)
	}
	rels, err := l.Releases(0)
	if err != nil || !slices.Equal(versions(rels), []int{4, 3, 2, 1}) || rels[0].Status != StatusFailed || rels[1].Status != StatusSucceeded {
		t.Errorf("Releases = %v, %v", versions(rels), err)
	}
}

// TestFixtureFormat0 verifies a ledger written before records had a
// format, by the code of its day, and appends to it: every later binary
// must go on reading it.
func TestFixtureFormat0(t *testing.T) {
	t.Parallel()
	l := copyFixture(t, "format0")
	mustVerify(t, l)
	checkFixtureState(t, l)
	recs, err := ReadAll(bytes.NewReader(mustRead(t, l.Path())))
	if err != nil || len(recs) != 10 || recs[0].V != 0 {
		t.Fatalf("ReadAll = %d records, %v", len(recs), err)
	}
	// It has no head: the next append writes one, and new records in
	// the latest format.
	w := mustAppend(t, l, releaseRecord(5, StatusSucceeded, nil))
	if w[0].V != formatLatest {
		t.Errorf("appended a record of format %d, want %d", w[0].V, formatLatest)
	}
	mustVerify(t, l)
	if h, ok, err := readHead(l.Path()); err != nil || !ok || h.Seq != 11 || h.Hash != w[0].Hash {
		t.Errorf("head = %+v, %v, %v; want record 11's", h, ok, err)
	}
}

// TestFixtureFormat1 verifies a ledger written by the first binary to
// write format 1, with its head. It must verify with every later binary,
// whatever it adds to the Record struct.
func TestFixtureFormat1(t *testing.T) {
	t.Parallel()
	l := Open(filepath.Join("testdata", "format1.jsonl"))
	mustVerify(t, l)
	checkFixtureState(t, l)
	recs, err := ReadAll(bytes.NewReader(mustRead(t, l.Path())))
	if err != nil || len(recs) != 10 {
		t.Fatalf("ReadAll = %d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.V != 1 {
			t.Errorf("record %d has format %d, want 1", r.Seq, r.V)
		}
	}
	// The hash is over the canonical encoding, which this spells out for
	// record 10, so that the rule is pinned here and not only in code.
	line := bytes.Split(mustRead(t, l.Path()), []byte("\n"))[9]
	canon := `{"prev":"` + recs[8].Hash + `","seq":10,"time":"2026-12-02T08:07:00.123456789Z","type":"formation","user":"bob","v":1}`
	if got, err := canonicalize(line); err != nil || string(got) != canon {
		t.Errorf("canonical encoding of record 10:\n%s, %v\nwant\n%s", got, err, canon)
	}
	sum := sha256.Sum256([]byte(canon))
	if want := "sha256:" + hex.EncodeToString(sum[:]); recs[9].Hash != want {
		t.Errorf("record 10 hash %s, want sha256 of its canonical encoding, %s", recs[9].Hash, want)
	}
	// The same records with their strings escaped otherwise, as another
	// encoder might write them, verify too: the hash is over the values.
	data := mustRead(t, l.Path())
	data = bytes.ReplaceAll(data, []byte("é"), []byte(`\u00e9`))
	data = bytes.ReplaceAll(data, []byte(`\u003c`), []byte("<"))
	data = bytes.ReplaceAll(data, []byte(`heroku/go`), []byte(`heroku\/go`))
	if bytes.Equal(data, mustRead(t, l.Path())) {
		t.Fatal("the fixture holds none of the strings to escape")
	}
	other := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := os.WriteFile(other, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, Open(other))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// appendRaw appends lines to the ledger at path, each a JSON object
// without seq, prev and hash, which it fills in as a writer of format 1
// would: seq and prev at the front, the canonical hash at the end.
func appendRaw(t *testing.T, path string, objects ...string) {
	t.Helper()
	recs, err := ReadAll(bytes.NewReader(mustRead(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	seq, prev := len(recs), ""
	if seq > 0 {
		prev = recs[seq-1].Hash
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, obj := range objects {
		seq++
		b := []byte(`{"seq":` + strconv.Itoa(seq) + `,` + strings.TrimPrefix(obj, "{"))
		b = append(b[:len(b)-1], `,"prev":"`+prev+`","hash":""}`...)
		hash, err := hashFormat1(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		b = append(b[:len(b)-2], hash+`"}`+"\n"...)
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		prev = hash
	}
}

// TestNewerRecords appends what a newer binary might write in format 1:
// a field this binary does not know in a release and in the record, and
// records of types it does not know, one of them reusing a known field
// name with another shape. They verify, readers skip what they do not
// know, and Append writes after them.
func TestNewerRecords(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	l, err := Create(path, releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(headPath(path)) // appendRaw does not keep it
	appendRaw(t, path,
		`{"type":"release","v":1,"time":"2030-01-01T00:00:00Z","user":"u","stack":"heroku-30","release":{"version":2,"description":"Deploy","status":"succeeded","labels":{"b":"2","a":"é"},"time":"2030-01-01T00:00:00Z","user":"u"}}`,
		`{"type":"domain","v":1,"time":"2030-01-01T00:00:00Z","user":"u","domain":{"hostname":"www.example.com","acm":true,"ttl":300}}`,
		`{"type":"drain","v":1,"time":"2030-01-01T00:00:00Z","user":"u","release":"not a release","formation":[1,2,null]}`,
		`{"type":"webhook","v":1,"time":"2030-01-01T00:00:00Z","user":"u","on":true}`)
	mustVerify(t, l)
	s := mustState(t, l)
	if s.Seq != 5 || s.LastVersion != 2 || s.Current == nil || s.Current.Version != 2 || s.Current.Description != "Deploy" {
		t.Fatalf("state = seq %d, last v%d, current %+v", s.Seq, s.LastVersion, s.Current)
	}
	if rels, err := l.Releases(0); err != nil || !slices.Equal(versions(rels), []int{2, 1}) {
		t.Errorf("Releases = %v, %v", versions(rels), err)
	}
	if rel, err := l.Release(1); err != nil || rel.Version != 1 {
		t.Errorf("Release(1) = %+v, %v", rel, err)
	}
	recs, err := ReadAll(bytes.NewReader(mustRead(t, path)))
	if err != nil || len(recs) != 5 || recs[3].Type != "drain" || recs[3].Release != nil {
		t.Fatalf("ReadAll = %d records, %v", len(recs), err)
	}
	w := mustAppend(t, l, releaseRecord(3, StatusSucceeded, nil))
	if w[0].Seq != 6 || w[0].Prev != recs[4].Hash {
		t.Errorf("appended seq %d prev %s", w[0].Seq, w[0].Prev)
	}
	mustVerify(t, l)

	// The unknown fields are covered by the hash: changing one is seen.
	data := mustRead(t, path)
	for _, edit := range [][2]string{{`"acm":true`, `"acm":false`}, {`"stack":"heroku-30"`, `"stack":"heroku-31"`}, {`"a":"é"`, `"a":"e"`}} {
		bad := bytes.Replace(data, []byte(edit[0]), []byte(edit[1]), 1)
		if bytes.Equal(bad, data) {
			t.Fatalf("no %s in the ledger", edit[0])
		}
		other := filepath.Join(t.TempDir(), "ledger.jsonl")
		os.WriteFile(other, bad, 0o600)
		var verr *VerifyError
		if err := Open(other).Verify(); !errors.As(err, &verr) || !strings.Contains(verr.Reason, "hash mismatch") {
			t.Errorf("%s changed to %s: Verify = %v, want a hash mismatch", edit[0], edit[1], err)
		}
	}
}

// TestNewerFormat: a ledger whose newest record is in a format this
// binary does not know is read by none of its methods, and not written.
func TestNewerFormat(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	l, err := Create(path, releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(headPath(path))
	appendRaw(t, path, `{"type":"release","v":2,"time":"2030-01-01T00:00:00Z","user":"u","release":{"version":2,"status":"succeeded"}}`)
	before := mustRead(t, path)
	want := "format 2, newer than this dyno reads (up to 1): the ledger was written by a newer dyno; upgrade dyno to use it"
	if err := l.Verify(); err == nil || !strings.Contains(err.Error(), "ledger.jsonl:2: record 2: "+want) {
		t.Errorf("Verify = %v", err)
	}
	if _, err := l.State(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("State = %v", err)
	}
	if _, err := l.Append(func(*State) ([]Record, error) {
		return []Record{releaseRecord(2, StatusSucceeded, nil)}, nil
	}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Append = %v", err)
	}
	if !bytes.Equal(before, mustRead(t, path)) {
		t.Error("Append changed the ledger")
	}
}

// TestFormatGoesBack: a format 0 record after a format 1 record is not
// what any binary writes.
func TestFormatGoesBack(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	l, err := Create(path, releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := ReadAll(bytes.NewReader(mustRead(t, path)))
	rec := Record{Seq: 2, Type: TypeFormation, User: "u", Prev: recs[0].Hash}
	line, _, err := encode(&rec)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(append(line, '\n'))
	f.Close()
	if err := l.Verify(); err == nil || !strings.Contains(err.Error(), "record 2: format 0 after a record of format 1") {
		t.Errorf("Verify = %v", err)
	}
}

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{`{"b":1,"a":2,"hash":"x"}`, `{"a":2,"b":1}`},
		{`{"a":{"hash":"kept","z":[],"y":{}}}`, `{"a":{"hash":"kept","y":{},"z":[]}}`},
		{`{"é":1,"z":2,"Z":3,"e":4}`, `{"Z":3,"e":4,"z":2,"é":1}`},
		{`{"s":"\u0041\u00e9\/\u003c\u0026\u2028"}`, "{\"s\":\"A\u00e9/<&\u2028\"}"},
		{`{"s":"\b\f\n\r\t\u0001\u001f\u007f\"\\"}`, "{\"s\":\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\\\"\\\\\"}"},
		{`{"s":"\ud83d\ude80"}`, "{\"s\":\"\U0001F680\"}"},
		{`{"n":[0,-1,12345678901234567890],"t":true,"f":false,"z":null}`, `{"f":false,"n":[0,-1,12345678901234567890],"t":true,"z":null}`},
	} {
		got, err := canonicalize([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("canonicalize(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{``, "not a JSON object"},
		{`[]`, "not a JSON object"},
		{`{"a":1,"a":2}`, `duplicate key "a"`},
		{`{"a":1, "b":2}`, "found ' '"},
		{`{"a":1.5}`, "not an integer"},
		{`{"a":1e3}`, "not an integer"},
		{`{"a":01}`, "leading zero"},
		{`{"a":-0}`, "-0"},
		{`{"a":+1}`, "unexpected '+'"},
		{"{\"a\":\"\xff\"}", "not valid UTF-8"},
		{`{"a":"\ud800"}`, "lone surrogate"},
		{`{"a":"\udc00\ud800"}`, "lone surrogate"},
		{"{\"a\":\"\n\"}", "control character"},
		{`{"a":"\x"}`, `bad escape`},
		{`{"a":1}x`, "after the object"},
		{`{"a":1`, "end of line"},
		{`{"a":tru}`, "unexpected 't'"},
		{`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "nested more than"},
	} {
		_, err := canonicalize([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("canonicalize(%q) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
}
