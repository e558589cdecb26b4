package ledger

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// encode returns the line for rec, without its '\n', and rec's hash,
// computed by the rule of rec's format (see format0 and format1). The
// line is encoding/json's encoding of rec, which writes struct fields in
// declaration order, so that it starts {"seq":N,"type":"T", as sniff
// expects, and ends with "hash".
func encode(rec *Record) (line []byte, hash string, err error) {
	r := *rec
	r.Hash = ""
	b, err := json.Marshal(&r)
	if err != nil {
		return nil, "", err
	}
	// Hash is the last field and is never omitted, so b ends in
	// "hash":""} and the line is b with the hash between those quotes,
	// which is what encoding rec with Hash set gives (a hex digest needs
	// no escaping), without encoding it a second time. Both rules leave
	// the hash's value out, so they give the same hash for b and for the
	// line.
	const emptyHash = `"hash":""}`
	if !bytes.HasSuffix(b, []byte(emptyHash)) {
		return nil, "", errors.New("internal error: a record's encoding does not end with its hash")
	}
	switch r.V {
	case format0:
		hash, err = hashFormat0(b)
	case format1:
		hash, err = hashFormat1(b)
	default:
		err = fmt.Errorf("format %d is not one this dyno writes", r.V)
	}
	if err != nil {
		return nil, "", err
	}
	line = make([]byte, 0, len(b)+len(hash))
	line = append(line, b[:len(b)-2]...)
	line = append(line, hash...)
	line = append(line, `"}`...)
	return line, hash, nil
}

// hashLine returns the hash of the record rec decoded from line, by the
// rule of its format, or an error for a format this binary does not know
// or a line that the rule cannot read.
func hashLine(line []byte, rec *Record) (string, error) {
	switch rec.V {
	case format0:
		return hashFormat0(line)
	case format1:
		return hashFormat1(line)
	}
	return "", formatError(rec.V)
}

// formatError is the error for a record in format v, which this binary
// does not read.
func formatError(v int) error {
	if v > formatLatest {
		return fmt.Errorf("format %d, newer than this dyno reads (up to %d): the ledger was written by a newer dyno; upgrade dyno to use it", v, formatLatest)
	}
	return fmt.Errorf("format %d does not exist", v)
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
		rec.V = formatLatest
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
		err := checkType(rec.Type)
		if err == nil {
			err = checkShape(&rec)
		}
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

// checkType reports whether typ is a record type this binary writes.
func checkType(typ string) error {
	switch typ {
	case TypeRelease, TypeStatus, TypeFormation, TypeBuildpacks, TypeDomains, TypeCerts, TypeFeatures, TypeMaintenance, TypeDrains, TypeAttachments:
		return nil
	}
	return fmt.Errorf("unknown record type %q", typ)
}

// checkShape reports whether rec has the payload its type calls for and
// no other, so that readers can rely on it. A record of a type this
// binary does not know, written by a newer one, is checked only for a
// well-formed type, seq and more: readers skip it (see the package
// comment).
func checkShape(rec *Record) error {
	if rec.Seq < 1 {
		return fmt.Errorf("seq %d is not positive", rec.Seq)
	}
	if rec.More < 0 {
		return fmt.Errorf("more %d is negative", rec.More)
	}
	if rec.V < 0 || rec.V > formatLatest {
		return formatError(rec.V)
	}
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
	case TypeDomains:
		want = "domains"
	case TypeCerts:
		want = "certs"
	case TypeFeatures:
		want = "features"
	case TypeMaintenance:
		if rec.Maintenance == nil {
			return errors.New("maintenance record without maintenance")
		}
		want = "maintenance"
	case TypeDrains:
		want = "drains"
	case TypeAttachments:
		want = "attachments"
	default:
		if !validTypeName(rec.Type) {
			return fmt.Errorf("malformed record type %q", rec.Type)
		}
		if rec.V == format0 {
			// Format 0 knew only the types above.
			return fmt.Errorf("unknown record type %q", rec.Type)
		}
		return nil
	}
	// Formation, Buildpacks, Domains, Certs, Features, Drains and
	// Attachments may be empty: an empty formation, a cleared list.
	present := []struct {
		name string
		set  bool
	}{
		{"release", rec.Release != nil},
		{"status", rec.Status != nil},
		{"formation", len(rec.Formation) > 0},
		{"buildpacks", len(rec.Buildpacks) > 0},
		{"domains", len(rec.Domains) > 0},
		{"certs", len(rec.Certs) > 0},
		{"features", len(rec.Features) > 0},
		{"maintenance", rec.Maintenance != nil},
		{"drains", len(rec.Drains) > 0},
		{"attachments", len(rec.Attachments) > 0},
	}
	for _, p := range present {
		if p.set && p.name != want {
			return fmt.Errorf("%s record with a %s", rec.Type, p.name)
		}
	}
	return nil
}

// validTypeName reports whether typ has the form of a record type: a
// lower-case letter, then lower-case letters, digits, '-' and '_', at
// most 64 bytes. sniff reads such a name from a line without decoding
// it, since none of its bytes is escaped in JSON.
func validTypeName(typ string) bool {
	if len(typ) == 0 || len(typ) > 64 || typ[0] < 'a' || typ[0] > 'z' {
		return false
	}
	for i := 1; i < len(typ); i++ {
		c := typ[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
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
	errs := []error{bad("user", rec.User), list("buildpack", rec.Buildpacks), list("domain", rec.Domains), list("feature", rec.Features)}
	for _, d := range rec.Drains {
		errs = append(errs, bad("drain id", d.ID), bad("drain URL", d.URL), bad("drain token", d.Token))
	}
	for _, at := range rec.Attachments {
		errs = append(errs, bad("attachment name", at.Name), bad("add-on", at.Addon), bad("add-on service", at.Service),
			bad("add-on plan", at.Plan), bad("add-on owner", at.Owner))
	}
	for _, c := range rec.Certs {
		errs = append(errs, bad("certificate domain", c.Domain), bad("certificate fingerprint", c.Fingerprint))
	}
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
	err := json.Unmarshal(line, &rec)
	if err == nil {
		return &rec, nil
	}
	// A record of a type this binary does not know may hold fields whose
	// names it knows with values of other shapes: of such a record only
	// the envelope, the fields every record has, is needed.
	var env struct {
		Seq  int       `json:"seq"`
		Type string    `json:"type"`
		V    int       `json:"v"`
		Time time.Time `json:"time"`
		User string    `json:"user"`
		More int       `json:"more"`
		Prev string    `json:"prev"`
		Hash string    `json:"hash"`
	}
	if json.Unmarshal(line, &env) != nil || checkType(env.Type) == nil {
		return nil, err
	}
	return &Record{Seq: env.Seq, Type: env.Type, V: env.V, Time: env.Time, User: env.User,
		More: env.More, Prev: env.Prev, Hash: env.Hash}, nil
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
// Append writes, `{"seq":12,"type":"release","v":1,...`, so that readers can
// skip records they do not need without decoding them. ok is false for a
// line in any other form or whose type is not a well-formed type name.
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
	case TypeDomains:
		typ = TypeDomains
	case TypeCerts:
		typ = TypeCerts
	case TypeFeatures:
		typ = TypeFeatures
	case TypeMaintenance:
		typ = TypeMaintenance
	case TypeDrains:
		typ = TypeDrains
	case TypeAttachments:
		typ = TypeAttachments
	default:
		// A type a newer binary writes, which readers skip.
		typ = string(rest[:end])
		if !validTypeName(typ) {
			return 0, "", false
		}
	}
	return seq, typ, true
}

// sniffVersion reads the version of a release record from its line in
// the form Append writes, where the fields before the release hold no
// '{': `{"seq":12,"type":"release","v":1,"time":"...","user":"...","release":{"version":7,`.
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
// the line, as is a record in a format newer than this binary reads. A
// record of a type it does not know is returned with what of it decodes
// into a Record (at least the fields every record has). ReadAll does not
// check seqs or hashes, nor the head; Verify does.
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
