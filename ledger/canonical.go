package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	p := canonParser{in: line}
	if len(line) == 0 || line[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	out, err := p.value(make([]byte, 0, len(line)), 0, true)
	if err != nil {
		return nil, err
	}
	if p.i != len(p.in) {
		return nil, p.errorf("unexpected %s after the object", p.what())
	}
	return out, nil
}

// canonParser reads JSON from in, writing its canonical encoding.
type canonParser struct {
	in []byte
	i  int
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

// member is an object member: its key and its value's canonical
// encoding.
type member struct {
	key string
	val []byte
}

// value appends the canonical encoding of the value at the read position
// to out. top says that the value is the record itself, whose "hash"
// member is left out.
func (p *canonParser) value(out []byte, depth int, top bool) ([]byte, error) {
	if p.i >= len(p.in) {
		return nil, p.errorf("unexpected end of line")
	}
	switch c := p.in[p.i]; {
	case c == '{':
		if depth == maxDepth {
			return nil, p.errorf("nested more than %d deep", maxDepth)
		}
		p.i++
		var members []member
		if p.i < len(p.in) && p.in[p.i] == '}' {
			p.i++
			return append(out, "{}"...), nil
		}
		for {
			if p.i >= len(p.in) || p.in[p.i] != '"' {
				return nil, p.errorf("want a key, found %s", p.what())
			}
			key, err := p.string()
			if err != nil {
				return nil, err
			}
			if p.i >= len(p.in) || p.in[p.i] != ':' {
				return nil, p.errorf("want ':', found %s", p.what())
			}
			p.i++
			val, err := p.value(nil, depth+1, false)
			if err != nil {
				return nil, err
			}
			if !(top && key == "hash") {
				members = append(members, member{key, val})
			}
			if p.i >= len(p.in) {
				return nil, p.errorf("unexpected end of line")
			}
			if p.in[p.i] == '}' {
				p.i++
				break
			}
			if p.in[p.i] != ',' {
				return nil, p.errorf("want ',' or '}', found %s", p.what())
			}
			p.i++
		}
		slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
		out = append(out, '{')
		for i, m := range members {
			if i > 0 {
				if m.key == members[i-1].key {
					return nil, fmt.Errorf("duplicate key %q", m.key)
				}
				out = append(out, ',')
			}
			out = appendString(out, m.key)
			out = append(out, ':')
			out = append(out, m.val...)
		}
		return append(out, '}'), nil
	case c == '[':
		if depth == maxDepth {
			return nil, p.errorf("nested more than %d deep", maxDepth)
		}
		p.i++
		out = append(out, '[')
		if p.i < len(p.in) && p.in[p.i] == ']' {
			p.i++
			return append(out, ']'), nil
		}
		for {
			var err error
			if out, err = p.value(out, depth+1, false); err != nil {
				return nil, err
			}
			if p.i >= len(p.in) {
				return nil, p.errorf("unexpected end of line")
			}
			if p.in[p.i] == ']' {
				p.i++
				return append(out, ']'), nil
			}
			if p.in[p.i] != ',' {
				return nil, p.errorf("want ',' or ']', found %s", p.what())
			}
			p.i++
			out = append(out, ',')
		}
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return appendString(out, s), nil
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
			return nil, p.errorf("want a digit, found %s", p.what())
		case n[0] == '0' && len(n) > 1:
			return nil, p.errorf("number %s has a leading zero", p.in[start:p.i])
		case c == '-' && len(n) == 1 && n[0] == '0':
			return nil, p.errorf("number -0")
		}
		if p.i < len(p.in) && (p.in[p.i] == '.' || p.in[p.i] == 'e' || p.in[p.i] == 'E') {
			return nil, p.errorf("number %s is not an integer", p.in[start:p.i])
		}
		return append(out, p.in[start:p.i]...), nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.in[p.i:], []byte(lit)) {
				p.i += len(lit)
				return append(out, lit...), nil
			}
		}
		return nil, p.errorf("unexpected %s", p.what())
	}
}

// string reads the JSON string at the read position and returns its
// value.
func (p *canonParser) string() (string, error) {
	p.i++ // the opening '"'
	start := p.i
	// The common case: no escapes.
	for p.i < len(p.in) {
		c := p.in[p.i]
		if c == '"' {
			s := p.in[start:p.i]
			if !utf8.Valid(s) {
				return "", p.errorf("string is not valid UTF-8")
			}
			p.i++
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	b := append([]byte(nil), p.in[start:p.i]...)
	for {
		if p.i >= len(p.in) {
			return "", p.errorf("unterminated string")
		}
		c := p.in[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(b) {
				return "", p.errorf("string is not valid UTF-8")
			}
			return string(b), nil
		case c < 0x20:
			return "", p.errorf("control character %q in a string", c)
		case c != '\\':
			b = append(b, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.in) {
			return "", p.errorf("unterminated string")
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
				return "", p.errorf(`bad \u escape`)
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate followed by an escaped low one
				// is a character.
				var r2 rune = -1
				if bytes.HasPrefix(p.in[p.i:], []byte(`\u`)) {
					p.i += 2
					if r2, ok = p.hex4(); !ok {
						return "", p.errorf(`bad \u escape`)
					}
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", p.errorf("string holds a lone surrogate, which is not valid UTF-8")
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", p.errorf("bad escape \\%c", esc)
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
func appendString(out []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\b':
			out = append(out, `\b`...)
		case c == '\t':
			out = append(out, `\t`...)
		case c == '\n':
			out = append(out, `\n`...)
		case c == '\f':
			out = append(out, `\f`...)
		case c == '\r':
			out = append(out, `\r`...)
		case c < 0x20:
			out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
