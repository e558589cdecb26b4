package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// Record formats: the value of a record's "v".
const (
	// Format 0 records, written before records had a version, carry no
	// "v". Their hash is the sha256 of the line with the hash's value
	// emptied: the writer hashed encoding/json's encoding of the Record
	// struct of its day and then put the hash between the quotes of
	// "hash":"" at its end, so the line itself holds the hashed bytes,
	// and verifying one depends on no Go struct.
	format0 = 0

	// Format 1 records carry "v":1. Their hash is the sha256 of the
	// record's canonical encoding (see canonicalize) without "hash":
	// every field in the line counts, whether or not the binary reading
	// it knows the field, so a field added by a newer binary is covered
	// by the hash and verifies with an older one.
	format1 = 1

	// formatLatest is the format Append writes and the newest this
	// binary reads.
	formatLatest = format1
)

// maxDepth bounds the nesting of a record's JSON, so that a hostile line
// cannot exhaust the stack. Records nest three deep.
const maxDepth = 32

// hashFormat0 returns the hash of a format 0 line: the sha256 of the line
// with the value of its last field, "hash", emptied. It fails for a line
// that does not end with a hash field.
func hashFormat0(line []byte) (string, error) {
	const key = `"hash":"`
	i := bytes.LastIndex(line, []byte(key))
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) || i+len(key) > len(line)-2 {
		return "", errors.New(`the line does not end with its "hash"`)
	}
	h := sha256.New()
	h.Write(line[:i+len(key)])
	h.Write([]byte(`"}`))
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// hashFormat1 returns the hash of a format 1 line: the sha256 of its
// canonical encoding.
func hashFormat1(line []byte) (string, error) {
	c, err := canonicalize(line)
	if err != nil {
		return "", fmt.Errorf("malformed record: %w", err)
	}
	sum := sha256.Sum256(c)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// canonicalize returns the canonical encoding of the JSON object line,
// without its top-level "hash" member: the encoding the hash of a format
// 1 record is computed over. It is defined on the JSON, not on a Go
// type, so that it covers fields this binary does not know:
//
//   - objects: members sorted by key, compared byte by byte as UTF-8
//     (which is code point order); a duplicate key is an error;
//   - strings: '"' and '\' escaped with a backslash, U+0008, U+0009,
//     U+000A, U+000C and U+000D as \b, \t, \n, \f and \r, the other
//     control characters below U+0020 as \u00xx in lower-case hex, and
//     everything else, non-ASCII included, as its UTF-8 bytes (the
//     string escaping of RFC 8785); invalid UTF-8, in the line or as
//     escaped lone surrogates, is an error;
//   - numbers: integers only, written as in the line, which allows only
//     the minimal form (no '+', no leading zeros, no "-0"); a fraction
//     or exponent is an error;
//   - true, false and null as they are;
//   - no whitespace between tokens. The writer writes none, and a line
//     holding some is an error: it was not written as it is.
func canonicalize(line []byte) ([]byte, error) {
	p := canonParser{in: line, out: make([]byte, 0, len(line))}
	if len(line) == 0 || line[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	if err := p.value(0, true); err != nil {
		return nil, err
	}
	if p.i != len(p.in) {
		return nil, p.errorf("unexpected %s after the object", p.what())
	}
	return p.out, nil
}

// canonParser reads JSON from in, appending its canonical encoding to
// out. Verify canonicalizes every line of a ledger, so the parser
// allocates little: members are written to out as they come and put in
// order when their object ends, and a string without escapes is copied
// as it is.
type canonParser struct {
	in      []byte
	i       int
	out     []byte
	members []member // of the objects being read, innermost last
	tmp     []byte   // scratch for putting members in order
	str     []byte   // scratch for a string with escapes
}

// member is an object member written to out: its key's value and where
// it is in out, "key":value.
type member struct {
	key        []byte
	start, end int
}

func (p *canonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("byte %d: %s", p.i+1, fmt.Sprintf(format, args...))
}

// what describes the byte at the read position, for errors.
func (p *canonParser) what() string {
	if p.i >= len(p.in) {
		return "end of line"
	}
	return fmt.Sprintf("%q", p.in[p.i])
}

// value reads the value at the read position. top says that the value is
// the record itself, whose "hash" member is left out.
func (p *canonParser) value(depth int, top bool) error {
	if p.i >= len(p.in) {
		return p.errorf("unexpected end of line")
	}
	switch c := p.in[p.i]; {
	case c == '{':
		return p.object(depth, top)
	case c == '[':
		if depth == maxDepth {
			return p.errorf("nested more than %d deep", maxDepth)
		}
		p.i++
		p.out = append(p.out, '[')
		if p.i < len(p.in) && p.in[p.i] == ']' {
			p.i++
			p.out = append(p.out, ']')
			return nil
		}
		for {
			if err := p.value(depth+1, false); err != nil {
				return err
			}
			if p.i >= len(p.in) {
				return p.errorf("unexpected end of line")
			}
			if p.in[p.i] == ']' {
				p.i++
				p.out = append(p.out, ']')
				return nil
			}
			if p.in[p.i] != ',' {
				return p.errorf("want ',' or ']', found %s", p.what())
			}
			p.i++
			p.out = append(p.out, ',')
		}
	case c == '"':
		s, err := p.string(false)
		if err != nil {
			return err
		}
		p.out = appendString(p.out, s)
		return nil
	case c == '-' || '0' <= c && c <= '9':
		start := p.i
		if c == '-' {
			p.i++
		}
		digits := p.i
		for p.i < len(p.in) && '0' <= p.in[p.i] && p.in[p.i] <= '9' {
			p.i++
		}
		n := p.in[digits:p.i]
		switch {
		case len(n) == 0:
			return p.errorf("want a digit, found %s", p.what())
		case n[0] == '0' && len(n) > 1:
			return p.errorf("number %s has a leading zero", p.in[start:p.i])
		case c == '-' && len(n) == 1 && n[0] == '0':
			return p.errorf("number -0")
		}
		if p.i < len(p.in) && (p.in[p.i] == '.' || p.in[p.i] == 'e' || p.in[p.i] == 'E') {
			return p.errorf("number %s is not an integer", p.in[start:p.i])
		}
		p.out = append(p.out, p.in[start:p.i]...)
		return nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.in[p.i:], []byte(lit)) {
				p.i += len(lit)
				p.out = append(p.out, lit...)
				return nil
			}
		}
		return p.errorf("unexpected %s", p.what())
	}
}

// object reads the object at the read position. Its members are written
// to out as they come, without commas, and then put in order.
func (p *canonParser) object(depth int, top bool) error {
	if depth == maxDepth {
		return p.errorf("nested more than %d deep", maxDepth)
	}
	p.i++
	if p.i < len(p.in) && p.in[p.i] == '}' {
		p.i++
		p.out = append(p.out, "{}"...)
		return nil
	}
	base, start := len(p.members), len(p.out)
	for {
		if p.i >= len(p.in) || p.in[p.i] != '"' {
			return p.errorf("want a key, found %s", p.what())
		}
		key, err := p.string(true)
		if err != nil {
			return err
		}
		if p.i >= len(p.in) || p.in[p.i] != ':' {
			return p.errorf("want ':', found %s", p.what())
		}
		p.i++
		m := member{key: key, start: len(p.out)}
		p.out = appendString(p.out, key)
		p.out = append(p.out, ':')
		if err := p.value(depth+1, false); err != nil {
			return err
		}
		if top && string(key) == "hash" {
			p.out = p.out[:m.start]
		} else {
			m.end = len(p.out)
			p.members = append(p.members, m)
		}
		if p.i >= len(p.in) {
			return p.errorf("unexpected end of line")
		}
		if p.in[p.i] == '}' {
			p.i++
			break
		}
		if p.in[p.i] != ',' {
			return p.errorf("want ',' or '}', found %s", p.what())
		}
		p.i++
	}
	ms := p.members[base:]
	slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	p.tmp = append(p.tmp[:0], p.out[start:]...)
	p.out = append(p.out[:start], '{')
	for i, m := range ms {
		if i > 0 {
			if bytes.Equal(m.key, ms[i-1].key) {
				return fmt.Errorf("duplicate key %q", m.key)
			}
			p.out = append(p.out, ',')
		}
		p.out = append(p.out, p.tmp[m.start-start:m.end-start]...)
	}
	p.out = append(p.out, '}')
	p.members = p.members[:base]
	return nil
}

// string reads the JSON string at the read position and returns its
// value, valid UTF-8. The value is in in when the string has no escapes;
// otherwise it is in a scratch buffer valid until the next call, or,
// with keep, in a buffer of its own.
func (p *canonParser) string(keep bool) ([]byte, error) {
	p.i++ // the opening '"'
	start := p.i
	// The common case: no escapes. A string's bytes then need no
	// escaping either: JSON has '"' and '\' escaped and no control
	// characters raw.
	for p.i < len(p.in) {
		c := p.in[p.i]
		if c == '"' {
			s := p.in[start:p.i]
			if !utf8.Valid(s) {
				return nil, p.errorf("string is not valid UTF-8")
			}
			p.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	b := append(p.str[:0], p.in[start:p.i]...)
	if keep {
		b = append([]byte(nil), b...)
	}
	for {
		if p.i >= len(p.in) {
			return nil, p.errorf("unterminated string")
		}
		c := p.in[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(b) {
				return nil, p.errorf("string is not valid UTF-8")
			}
			if !keep {
				p.str = b
			}
			return b, nil
		case c < 0x20:
			return nil, p.errorf("control character %q in a string", c)
		case c != '\\':
			b = append(b, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.in) {
			return nil, p.errorf("unterminated string")
		}
		esc := p.in[p.i]
		p.i++
		switch esc {
		case '"', '\\', '/':
			b = append(b, esc)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.errorf(`bad \u escape`)
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate followed by an escaped low one
				// is a character.
				var r2 rune = -1
				if bytes.HasPrefix(p.in[p.i:], []byte(`\u`)) {
					p.i += 2
					if r2, ok = p.hex4(); !ok {
						return nil, p.errorf(`bad \u escape`)
					}
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, p.errorf("string holds a lone surrogate, which is not valid UTF-8")
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return nil, p.errorf("bad escape \\%c", esc)
		}
	}
}

// hex4 reads the four hex digits of a \u escape.
func (p *canonParser) hex4() (rune, bool) {
	if len(p.in)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.in[p.i : p.i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

// appendString appends s, valid UTF-8, as a canonical JSON string.
func appendString(out []byte, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	for {
		i := 0
		for i < len(s) && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\' {
			i++
		}
		out = append(out, s[:i]...)
		if i == len(s) {
			return append(out, '"')
		}
		switch c := s[i]; c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, `\b`...)
		case '\t':
			out = append(out, `\t`...)
		case '\n':
			out = append(out, `\n`...)
		case '\f':
			out = append(out, `\f`...)
		case '\r':
			out = append(out, `\r`...)
		default:
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		s = s[i+1:]
	}
}
