package project

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dyno-run/dyno/slug"
)

// An envFile is one .env file that was read.
type envFile struct {
	path    string
	vars    map[string]string
	skipped []slug.SkippedLine // lines not NAME=value, in file order
}

// readEnvFiles reads the named .env files in order, passing each line
// skipped in them to onSkip. With names nil it reads ".env" in dir if
// there is one: a missing default is fine, a missing named file is an
// error.
func readEnvFiles(names []string, dir string, onSkip func(slug.SkippedLine)) ([]envFile, error) {
	if names == nil {
		path := filepath.Join(dir, ".env")
		f, err := readEnvFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		reportSkipped(f.skipped, onSkip)
		return []envFile{f}, nil
	}
	files := make([]envFile, 0, len(names))
	for _, path := range names {
		f, err := readEnvFile(path)
		if err != nil {
			return nil, err
		}
		reportSkipped(f.skipped, onSkip)
		files = append(files, f)
	}
	return files, nil
}

func readEnvFile(path string) (envFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return envFile{}, fmt.Errorf("reading env file: %w", err)
	}
	vars, skipped := parseEnv(path, data)
	return envFile{path: path, vars: vars, skipped: skipped}, nil
}

// Reasons for skipping a statement of an env file.
const (
	notEnvLine   = "not NAME=value"
	unterminated = "unterminated quoted value"
	notUTF8      = "not UTF-8"
	nulByte      = "contains a NUL byte"
)

// parseEnv parses the content of the env file at path (path is used
// only in what is reported). It returns the variables, and the lines it
// skipped because they are not NAME=value: Foreman, whose files dyno
// reads, skips such lines and runs the rest, and so does dyno, but each
// one is reported.
//
// Values are taken as written: "$" is an ordinary character, as it is to
// Foreman and heroku local, so a secret such as Xy$Z9abc is never
// silently cut. Otherwise the syntax is the one dyno read with
// github.com/joho/godotenv v1.5.1 (FuzzParseEnv compares the two with
// "$" made an ordinary character for godotenv too):
//
//   - Blank lines and lines starting with "#" are ignored. CRLF is LF.
//   - A statement is NAME=value or NAME: value, optionally after
//     "export ". A NAME is ASCII letters, digits, "_" and ".". Blanks
//     around NAME, "=" and the value do not count.
//   - An unquoted value runs to the end of the line (or a lone CR); the
//     last " #" and what follows it is a comment.
//   - A value in single quotes is taken as it is; one in double quotes
//     has \n and \r made newline and CR, and other backslashes dropped
//     (\$ is $, \\ is \). Either may span lines; the value ends at the
//     first quote not after a backslash, and another statement may follow
//     it on the same line.
//
// A statement that breaks these rules is skipped to the end of its line,
// as is one whose quote never closes; one whose value is not UTF-8 or
// holds a NUL is skipped whole (execve cannot pass a NUL, and config vars
// are UTF-8 everywhere else in dyno), and so is one past the bounds on a
// variable and on the whole file (see envParser). The rest of the file
// is read on.
func parseEnv(path string, data []byte) (map[string]string, []slug.SkippedLine) {
	// Editors on Windows may save the file with a byte order mark.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	p := &envParser{
		path: path,
		src:  strings.ReplaceAll(string(data), "\r\n", "\n"),
		line: 1,
		vars: make(map[string]string),
		// Linux's execve refuses with E2BIG an environment string
		// longer than MAX_ARG_STRLEN, 32 pages with its NUL
		// (fs/exec.c, copy_strings): a longer variable would stop
		// every process from starting.
		maxLen:   32*os.Getpagesize() - 1,
		maxTotal: maxEnvTotal,
	}
	for p.nextStatement() {
		p.statement()
	}
	return p.vars, p.skipped
}

type envParser struct {
	path    string
	src     string // the file, CRLF made LF (which keeps the line count)
	pos     int    // offset in src
	line    int    // 1-based line of pos
	vars    map[string]string
	skipped []slug.SkippedLine
	maxLen  int // the longest NAME=value a process can be given
	// total is what vars take as an environment (NAME=value and a NUL
	// each); maxTotal bounds it. Each value is bounded by maxLen, but a
	// file of many such values would still be more than execve passes
	// (and more than dyno should hold for every process it starts).
	total, maxTotal int
}

// maxEnvTotal bounds the variables of one env file: execve refuses an
// argv and environment over a quarter of the stack limit (2 MiB with
// the usual 8 MiB), and the process's own environment needs room too.
const maxEnvTotal = 1 << 20

// advance moves to offset to, counting the lines passed.
func (p *envParser) advance(to int) {
	p.line += strings.Count(p.src[p.pos:to], "\n")
	p.pos = to
}

// nextStatement moves past white space (any, newlines included) and
// comment lines to the start of the next statement, and reports whether
// there is one.
func (p *envParser) nextStatement() bool {
	for {
		i := strings.IndexFunc(p.src[p.pos:], func(r rune) bool { return !unicode.IsSpace(r) })
		if i < 0 {
			p.advance(len(p.src))
			return false
		}
		p.advance(p.pos + i)
		if p.src[p.pos] != '#' {
			return true
		}
		p.advance(p.lineEnd(p.pos))
	}
}

// lineEnd returns the offset of the newline that ends the line at
// offset at, or the end of src.
func (p *envParser) lineEnd(at int) int {
	if i := strings.IndexByte(p.src[at:], '\n'); i >= 0 {
		return at + i
	}
	return len(p.src)
}

// statement reads one statement starting at p.pos, records its variable
// or the line it skipped, and leaves p.pos where the next may start.
func (p *envParser) statement() {
	start, line := p.pos, p.line
	name, rest, ok := envName(p.src[start:])
	if !ok {
		p.skip(start, line, p.lineEnd(start), notEnvLine)
		return
	}
	valueAt := len(p.src) - len(rest)
	value, raw, end, ok := p.value(valueAt)
	if !ok {
		p.skip(start, line, p.lineEnd(start), unterminated)
		return
	}
	// The name is ASCII; a comment after the value may be anything.
	switch {
	case !utf8.ValidString(raw):
		p.skip(start, line, end, notUTF8)
		return
	case strings.IndexByte(raw, 0) >= 0:
		p.skip(start, line, end, nulByte)
		return
	case len(name)+1+len(value) > p.maxLen:
		p.skip(start, line, end, fmt.Sprintf("NAME=value longer than %d bytes, more than execve passes", p.maxLen))
		return
	}
	total := p.total + len(name) + len(value) + 2
	if old, ok := p.vars[name]; ok {
		total -= len(name) + len(old) + 2
	}
	if total > p.maxTotal {
		p.skip(start, line, end, fmt.Sprintf("the file's variables would take more than %d bytes, more than execve passes", p.maxTotal))
		return
	}
	p.total = total
	p.vars[name] = value
	p.advance(end)
}

// skip records the statement from start (on line) to end as skipped,
// and moves to end.
func (p *envParser) skip(start, line, end int, reason string) {
	p.skipped = append(p.skipped, slug.SkippedLine{
		Path:   p.path,
		Line:   line,
		Text:   strings.TrimSpace(p.src[start:end]),
		Reason: reason,
	})
	p.advance(end)
}

// envName reads "[export ]NAME =" or "[export ]NAME :" at the start of s
// and returns NAME and what follows the separator and the blanks after it.
func envName(s string) (name, rest string, ok bool) {
	if after, found := strings.CutPrefix(s, "export"); found {
		if r, _ := utf8.DecodeRuneInString(after); isBlank(r) {
			s = strings.TrimLeftFunc(after, isBlank)
		}
	}
	n := 0
	for n < len(s) && isNameByte(s[n]) {
		n++
	}
	name, s = s[:n], strings.TrimLeftFunc(s[n:], isBlank)
	if name == "" || s == "" || (s[0] != '=' && s[0] != ':') {
		return "", "", false
	}
	return name, strings.TrimLeftFunc(s[1:], isBlank), true
}

// isNameByte reports whether c may be part of a variable name.
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.'
}

// isBlank reports whether r is white space within a line: a newline is
// not, a lone CR is.
func isBlank(r rune) bool {
	switch r {
	case '\t', '\v', '\f', '\r', ' ', 0x85, 0xA0:
		return true
	}
	return false
}

// value reads the value at offset at and returns it, the text it was
// read from, and the offset just past it; ok is false for a quote that is
// never closed.
func (p *envParser) value(at int) (value, raw string, end int, ok bool) {
	s := p.src[at:]
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		value, raw, end = p.unquoted(at)
		return value, raw, end, true
	}
	// The search may run to the end of the file, but only once for
	// each kind of quote: an opening quote is never after a backslash,
	// so a quote whose search fails has no other opening one after it.
	quote := s[0]
	for i := 1; i < len(s); i++ {
		if s[i] != quote || s[i-1] == '\\' {
			continue
		}
		// Trimming every quote at both ends, not just one, drops an
		// escaped quote at the end of the value: A="say \"hi\"" is
		// `say "hi\`. godotenv did that, and a file it read without error
		// must read the same.
		value = strings.TrimLeft(strings.TrimRight(s[:i], string(quote)), string(quote))
		if quote == '"' {
			value = expandEscapes(value)
		}
		return value, s[:i+1], at + i + 1, true
	}
	return "", "", 0, false
}

// unquoted reads an unquoted value at offset at: the rest of the line,
// up to a newline or a lone CR, without its comment and outer blanks.
func (p *envParser) unquoted(at int) (value, raw string, end int) {
	s := p.src[at:]
	n := strings.IndexAny(s, "\n\r")
	if n < 0 {
		n = len(s)
	}
	s = s[:n]
	// The comment starts at the last "#" that follows a blank.
	prev := utf8.RuneError
	cut := len(s)
	for i, r := range s {
		if r == '#' && isBlank(prev) {
			cut = i
		}
		prev = r
	}
	return strings.TrimFunc(s[:cut], isBlank), s[:cut], at + n
}

// expandEscapes turns \n and \r in a double-quoted value into newline
// and CR; then a backslash before any other character is dropped. A
// backslash pair counts once in the first pass, so `\\n` is `\n`, not a
// newline.
func expandEscapes(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) || s[i+1] == '\n' {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte('\\')
			b.WriteByte(s[i])
		}
	}
	s, b = b.String(), strings.Builder{}
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
