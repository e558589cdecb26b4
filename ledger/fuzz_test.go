package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fuzzSeeds returns ledgers to start fuzzing from: a valid one, cut
// short in places, and some near misses.
func fuzzSeeds(f *testing.F) [][]byte {
	path := filepath.Join(f.TempDir(), "ledger.jsonl")
	l, err := Create(path, history(12, true)...)
	if err != nil {
		f.Fatal(err)
	}
	v := mustState(f, l).LastVersion + 1
	mustAppend(f, l, releaseRecord(v, StatusPending, map[string]string{"A": "<&>", "B": "\u00e9\n"}),
		Record{Type: TypeStatus, Status: &Status{Version: v, Status: StatusFailed}})
	valid, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	first := valid[:bytes.IndexByte(valid, '\n')+1]
	return [][]byte{
		valid,
		valid[:len(valid)-1],
		valid[:len(valid)-300],
		first,
		first[:len(first)/2],
		nil,
		[]byte("\n"),
		[]byte("{}\n"),
		[]byte("null\n"),
		[]byte(`{"seq":1,"type":"release"}` + "\n"),
		[]byte(`{"seq":1,"type":"status","status":{"version":1,"status":"succeeded"},"prev":"","hash":""}` + "\n"),
		[]byte(`{"seq":1,"type":"formation","formation":{"web":{"quantity":1,"size":"x"}},"more":1,"prev":"","hash":""}` + "\n"),
		[]byte(`{"seq":1,"type":"release","time":"2024-01-01T00:00:00+23:00","release":{"version":1,"time":"0000-01-01T00:00:00Z"}}` + "\n"),
	}
}

// FuzzReadAll checks that ReadAll never panics, and that records it
// returns encode to lines that it reads back as the same records.
func FuzzReadAll(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ReadAll(bytes.NewReader(data))
		if err != nil {
			return
		}
		var encoded []byte
		for _, r := range recs {
			line, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("a record ReadAll returned does not encode: %v", err)
			}
			encoded = append(append(encoded, line...), '\n')
		}
		again, err := ReadAll(bytes.NewReader(encoded))
		if err != nil {
			t.Fatalf("ReadAll of re-encoded records: %v", err)
		}
		if len(again) != len(recs) {
			t.Fatalf("re-encoded %d records, read back %d", len(recs), len(again))
		}
		var reencoded []byte
		for _, r := range again {
			line, _ := json.Marshal(r)
			reencoded = append(append(reencoded, line...), '\n')
		}
		if !bytes.Equal(encoded, reencoded) {
			t.Fatalf("encoding is not stable:\n%s\n%s", encoded, reencoded)
		}
	})
}

// FuzzVerify checks that Verify and the readers never panic on any file,
// with or without a head, that on a file Verify accepts the backward
// readers agree with a forward fold of the whole file, and that a ledger
// Verify finds shorter than its head is refused by State and Append,
// which leaves it as it was. headAt, when not 0, is the seq the head
// names, with that record's hash if the file has it.
func FuzzVerify(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(14))
		f.Add(seed, uint8(3))
	}
	path := filepath.Join(f.TempDir(), "ledger.jsonl")
	f.Fuzz(func(t *testing.T, data []byte, headAt uint8) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Remove(headPath(path))
		if headAt > 0 {
			hash := "sha256:" + strings.Repeat("0", 64)
			if recs, err := ReadAll(bytes.NewReader(data)); err == nil && int(headAt) <= len(recs) {
				hash = recs[headAt-1].Hash
			}
			content := fmt.Sprintf(`{"seq":%d,"hash":%q}`+"\n", headAt, hash)
			if err := os.WriteFile(headPath(path), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		l := Open(path)
		verr := l.Verify()
		s, serr := l.State()
		l.Releases(3)
		l.Release(1)
		var herr *HeadError
		if errors.As(verr, &herr) {
			if !errors.As(serr, &herr) {
				t.Fatalf("Verify: %v; State: %v, want a *HeadError", verr, serr)
			}
			_, err := l.Append(func(*State) ([]Record, error) {
				return []Record{{Type: TypeFormation}}, nil
			})
			if !errors.As(err, &herr) {
				t.Fatalf("Verify: %v; Append: %v, want a *HeadError", verr, err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
				t.Fatalf("a refused Append changed the ledger")
			}
			return
		}
		if verr != nil {
			return
		}
		if serr != nil {
			t.Fatalf("Verify passed but State failed: %v", serr)
		}
		recs, err := ReadAll(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Verify passed but ReadAll failed: %v", err)
		}
		if headAt > 0 && (int(headAt) > len(recs) || recs[headAt-1].Hash == "sha256:"+strings.Repeat("0", 64)) {
			t.Fatalf("Verify passed a ledger of %d records whose head names record %d", len(recs), headAt)
		}
		want, _ := foldAll(recs)
		if s.Seq != want.Seq || s.Hash != want.Hash || s.LastVersion != want.LastVersion || (s.Current == nil) != (want.Current == nil) {
			t.Fatalf("State = %+v, forward fold = %+v", s, want)
		}
		checkAgainstFoldAll(t, l)
	})
}

// FuzzCanonical checks that canonicalize accepts only JSON that
// encoding/json reads as the same values, and that its output is a fixed
// point.
func FuzzCanonical(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		for _, line := range bytes.Split(seed, []byte("\n")) {
			f.Add(line)
		}
	}
	f.Add([]byte(`{"s":"\u0041\ud83d\ude80\/\b","n":[-1,0,10],"o":{"b":null,"a":true},"hash":"x"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := canonicalize(line)
		if err != nil {
			return
		}
		again, err := canonicalize(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("canonicalize(%s) = %s, then %s, %v", line, c, again, err)
		}
		var v1, v2 map[string]any
		if err := json.Unmarshal(line, &v1); err != nil {
			t.Fatalf("canonicalize accepted %s, which encoding/json does not: %v", line, err)
		}
		delete(v1, "hash")
		if err := json.Unmarshal(c, &v2); err != nil {
			t.Fatalf("canonical encoding %s is not JSON: %v", c, err)
		}
		if !reflect.DeepEqual(v1, v2) {
			t.Fatalf("%s and its canonical encoding %s hold different values", line, c)
		}
	})
}

// FuzzSniff checks that what sniff and sniffVersion read from the start
// of a line in the form Append writes is what decoding it gives.
func FuzzSniff(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		for _, line := range bytes.Split(seed, []byte("\n")) {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		seq, typ, ok := sniff(line)
		version, vok := sniffVersion(line)
		rec, err := parseRecord(line)
		if err != nil {
			return
		}
		if m, err := json.Marshal(rec); err != nil || !bytes.Equal(m, line) {
			return // not in the form Append writes
		}
		if ok && (seq != rec.Seq || typ != rec.Type) {
			t.Fatalf("sniff read seq %d type %q, the record has %d %q", seq, typ, rec.Seq, rec.Type)
		}
		if vok && (rec.Release == nil || version != rec.Release.Version) {
			t.Fatalf("sniffVersion read %d from %s", version, line)
		}
		if !ok && rec.Seq > 0 && checkShape(rec) == nil {
			t.Fatalf("sniff failed on a line in the form Append writes: %s", line)
		}
	})
}
