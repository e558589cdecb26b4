package ledger

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// encode returns the line for rec, without its '\n', and rec's hash: the
// sha256 of rec's JSON encoding with Hash set to "". encoding/json writes
// struct fields in declaration order and map keys sorted, so a record's
// encoding depends only on its contents, and the hash of a decoded line
// can be recomputed.
func encode(rec *Record) (line []byte, hash string, err error) {
	r := *rec
	r.Hash = ""
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	hash = "sha256:" + hex.EncodeToString(sum[:])

	// Hash is the last field and is never omitted, so b ends in
	// "hash":""} and the line is b with the hash between those quotes,
	// which is what encoding rec with Hash set gives (a hex digest needs
	// no escaping), without encoding it a second time.
	const emptyHash = `"hash":""}`
	if !bytes.HasSuffix(b, []byte(emptyHash)) {
		return nil, "", errors.New("internal error: a record's encoding does not end with its hash")
	}
	line = make([]byte, 0, len(b)+len(hash))
	line = append(line, b[:len(b)-2]...)
	line = append(line, hash...)
	line = append(line, `"}`...)
	return line, hash, nil
}

// seal fills in recs as the records that follow the state s, written at
// now, checks them, and returns them encoded as lines, ready for one
// write(2), and as filled in. It does not change recs.
func seal(recs []Record, s *State, now time.Time, userName func() string) ([]byte, []Record, error) {
	now = now.UTC()
	var name string // looked up once, and only when needed
	prev, lastVersion := s.Hash, s.LastVersion
	out := make([]Record, len(recs))
	var data []byte
	for i, rec := range recs {
		rec.Seq = s.Seq + i + 1
		rec.Prev = prev
		rec.More = len(recs) - 1 - i
		rec.Hash = ""
		if rec.Time.IsZero() {
			rec.Time = now
		} else {
			rec.Time = rec.Time.UTC()
		}
		if rec.User == "" {
			if name == "" {
				name = userName()
			}
			rec.User = name
		}
		if rec.Release != nil {
			rel := *rec.Release
			rel.Time, rel.User = rec.Time, rec.User
			rec.Release = &rel
		}
		err := checkShape(&rec)
		if err == nil {
			err = checkNext(&rec, &lastVersion)
		}
		if err == nil {
			err = checkUTF8(&rec)
		}
		var line []byte
		if err == nil {
			line, rec.Hash, err = encode(&rec)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("record %d: %w", rec.Seq, err)
		}
		data = append(data, line...)
		data = append(data, '\n')
		out[i] = rec
		prev = rec.Hash
	}
	return data, out, nil
}

// checkShape reports whether rec has the payload its type calls for and
// no other, so that readers can rely on it.
func checkShape(rec *Record) error {
	var want string
	switch rec.Type {
	case TypeRelease:
		if rec.Release == nil {
			return errors.New("release record without a release")
		}
		want = "release"
	case TypeStatus:
		if rec.Status == nil {
			return errors.New("status record without a status")
		}
		want = "status"
	case TypeFormation:
		want = "formation"
	case TypeBuildpacks:
		want = "buildpacks"
	default:
		return fmt.Errorf("unknown record type %q", rec.Type)
	}
	// Formation and Buildpacks may be empty: an empty formation, a
	// cleared buildpack list.
	present := []struct {
		name string
		set  bool
	}{
		{"release", rec.Release != nil},
		{"status", rec.Status != nil},
		{"formation", len(rec.Formation) > 0},
		{"buildpacks", len(rec.Buildpacks) > 0},
	}
	for _, p := range present {
		if p.set && p.name != want {
			return fmt.Errorf("%s record with a %s", rec.Type, p.name)
		}
	}
	if rec.Seq < 1 {
		return fmt.Errorf("seq %d is not positive", rec.Seq)
	}
	if rec.More < 0 {
		return fmt.Errorf("more %d is negative", rec.More)
	}
	return nil
}

// checkNext reports whether rec may follow records whose highest release
// version is *lastVersion, and advances *lastVersion past a release.
// Versions are consecutive, as Heroku's are, so that a version names one
// release and State can take the newest release's as the highest.
func checkNext(rec *Record, lastVersion *int) error {
	switch rec.Type {
	case TypeRelease:
		rel := rec.Release
		if rel.Version != *lastVersion+1 {
			return fmt.Errorf("release version %d, want %d", rel.Version, *lastVersion+1)
		}
		switch rel.Status {
		case StatusPending, StatusSucceeded, StatusFailed:
		default:
			return fmt.Errorf("release v%d: status %q, want %q, %q or %q",
				rel.Version, rel.Status, StatusPending, StatusSucceeded, StatusFailed)
		}
		*lastVersion = rel.Version
	case TypeStatus:
		st := rec.Status
		if st.Version < 1 || st.Version > *lastVersion {
			return fmt.Errorf("status of v%d, which does not exist", st.Version)
		}
		switch st.Status {
		case StatusSucceeded, StatusFailed:
		default:
			return fmt.Errorf("status of v%d: %q, want %q or %q",
				st.Version, st.Status, StatusSucceeded, StatusFailed)
		}
	case TypeFormation:
		for _, name := range slices.Sorted(maps.Keys(rec.Formation)) {
			if q := rec.Formation[name].Quantity; q < 0 {
				return fmt.Errorf("formation: %s quantity %d is negative", name, q)
			}
		}
	}
	return nil
}

// checkUTF8 reports whether every string in rec is valid UTF-8.
// encoding/json would replace invalid bytes with U+FFFD, and the ledger
// would hold a different value from the one it was given.
func checkUTF8(rec *Record) error {
	bad := func(what, s string) error {
		if utf8.ValidString(s) {
			return nil
		}
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	list := func(what string, l []string) error {
		for _, s := range l {
			if err := bad(what, s); err != nil {
				return err
			}
		}
		return nil
	}
	table := func(what string, m map[string]string) error {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := bad(what+" name", k); err != nil {
				return err
			}
			if err := bad(what+" "+k, m[k]); err != nil {
				return err
			}
		}
		return nil
	}
	errs := []error{bad("user", rec.User), list("buildpack", rec.Buildpacks)}
	for _, name := range slices.Sorted(maps.Keys(rec.Formation)) {
		errs = append(errs, bad("process type", name), bad("dyno size", rec.Formation[name].Size))
	}
	if rel := rec.Release; rel != nil {
		errs = append(errs,
			bad("description", rel.Description),
			bad("status", rel.Status),
			bad("slug", rel.Slug),
			table("process type", rel.ProcessTypes),
			table("config var", rel.ConfigVars),
			list("buildpack", rel.Buildpacks),
			bad("source version", rel.SourceVersion),
			list("add-on", rel.Addons))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// parseRecord decodes a line.
func parseRecord(line []byte) (*Record, error) {
	var rec Record
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// decodeRecord decodes a line and checks that the record has the shape
// readers rely on. A record of the wrong shape is returned with the error.
func decodeRecord(line []byte) (*Record, error) {
	rec, err := parseRecord(line)
	if err != nil {
		return nil, fmt.Errorf("malformed record: %w", err)
	}
	if err := checkShape(rec); err != nil {
		return rec, err
	}
	return rec, nil
}

// sniff reads the seq and type from the start of a line in the form
// Append writes, `{"seq":12,"type":"release",...`, so that readers can
// skip records they do not need without decoding them. ok is false for a
// line in any other form or of an unknown type.
//
// The prefix cannot be forged by a value inside the record: encoding/json
// escapes every '"' in a string.
func sniff(line []byte) (seq int, typ string, ok bool) {
	const seqKey, typeKey = `{"seq":`, `,"type":"`
	rest, found := bytes.CutPrefix(line, []byte(seqKey))
	if !found || len(rest) == 0 || rest[0] < '1' || rest[0] > '9' {
		return 0, "", false
	}
	i := 0
	for ; i < len(rest) && '0' <= rest[i] && rest[i] <= '9'; i++ {
		if i == 15 { // far beyond any ledger, and short of overflowing an int
			return 0, "", false
		}
		seq = seq*10 + int(rest[i]-'0')
	}
	rest, found = bytes.CutPrefix(rest[i:], []byte(typeKey))
	if !found {
		return 0, "", false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0, "", false
	}
	switch string(rest[:end]) {
	case TypeRelease:
		typ = TypeRelease
	case TypeStatus:
		typ = TypeStatus
	case TypeFormation:
		typ = TypeFormation
	case TypeBuildpacks:
		typ = TypeBuildpacks
	default:
		return 0, "", false
	}
	return seq, typ, true
}

// sniffVersion reads the version of a release record from its line in
// the form Append writes, where the fields before the release hold no
// '{': `{"seq":12,"type":"release","time":"...","user":"...","release":{"version":7,`.
// As in sniff, the key cannot be forged by a string value, in which every
// '"' is escaped.
func sniffVersion(line []byte) (version int, ok bool) {
	const key = `,"release":{"version":`
	i := bytes.Index(line, []byte(key))
	if i < 0 || bytes.IndexByte(line[:i], '{') != 0 {
		return 0, false
	}
	rest := line[i+len(key):]
	n := 0
	for ; n < len(rest) && '0' <= rest[n] && rest[n] <= '9'; n++ {
		if n == 15 {
			return 0, false
		}
		version = version*10 + int(rest[n]-'0')
	}
	if n == 0 || n == len(rest) || rest[n] != ',' || (rest[0] == '0' && n > 1) {
		return 0, false
	}
	return version, true
}

// ReadAll reads the records of a ledger from r, oldest first. A last line
// without its '\n', and a last batch that lacks some of its records (see
// Record.More), are left out: they were never committed. A line that
// does not hold a well-formed record is an error, a *VerifyError naming
// the line. ReadAll does not check seqs or hashes; Verify does.
func ReadAll(r io.Reader) ([]Record, error) {
	var recs []Record
	err := forEachLine(r, func(n int, line []byte) error {
		rec, err := decodeRecord(line)
		if err != nil {
			verr := &VerifyError{Line: n, Reason: err.Error()}
			if rec != nil {
				verr.Seq = rec.Seq
			}
			return verr
		}
		recs = append(recs, *rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs[:committed(recs)], nil
}

// committed returns how many of recs, which are consecutive records
// ending with the last in the file, were committed: all but a last batch
// that lacks some of its records.
func committed(recs []Record) int {
	n := len(recs)
	for n > 0 && recs[n-1].More > 0 {
		n--
	}
	return n
}

// forEachLine calls fn with each complete line of r, numbered from 1,
// without its '\n'. A last line without '\n' is not complete. The line is
// valid only during the call.
func forEachLine(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte // a line longer than br's buffer, gathered
	inLong := false
	for n := 1; ; {
		chunk, err := br.ReadSlice('\n')
		switch err {
		case nil:
			line := chunk
			if inLong {
				long = append(long, chunk...)
				line, long, inLong = long, long[:0], false
			}
			if err := fn(n, line[:len(line)-1]); err != nil {
				return err
			}
			n++
		case bufio.ErrBufferFull:
			long = append(long, chunk...)
			inLong = true
		case io.EOF:
			return nil // what is left is a torn line, or nothing
		default:
			return err
		}
	}
}
