// Package slug reads the files that describe an application: its Procfile.
package slug

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"
)

// maxNameLen is the longest process type name Heroku's API accepts.
const maxNameLen = 128

// A ProcessType is one "name: command" line of a Procfile.
type ProcessType struct {
	Name    string
	Command string
	Line    int // 1-based line number in the Procfile
}

// A Procfile is the parsed contents of a Procfile.
type Procfile struct {
	Path    string
	Types   []ProcessType // in file order
	Skipped []SkippedLine // lines that are not "name: command", in file order
}

// A SkippedLine is a line of a Procfile or an env file that is not in
// the file's form. Foreman skips such lines and runs the rest; dyno skips
// them too, but never silently: whoever reads the file reports each one.
type SkippedLine struct {
	Path   string // the file as the user named it
	Line   int    // 1-based
	Text   string // the line, trimmed; may be any bytes
	Reason string // what is wrong, e.g. "not NAME: COMMAND"
}

// maxQuoted is how much of a skipped line String quotes: a warning
// stays one readable line however long the line is.
const maxQuoted = 200

// String returns the one-line warning, e.g.
// `Procfile:3: skipped "oops": not NAME: COMMAND`. The line is quoted
// with Go's escapes, so control characters and bytes that are not UTF-8
// show as escapes instead of reaching the terminal.
func (s SkippedLine) String() string {
	text, more := s.Text, ""
	if len(text) > maxQuoted {
		n := maxQuoted
		for n > maxQuoted-utf8.UTFMax && !utf8.RuneStart(text[n]) {
			n--
		}
		text, more = text[:n], "..."
	}
	return fmt.Sprintf("%s:%d: skipped %q%s: %s", s.Path, s.Line, text, more, s.Reason)
}

// A ProcfileError reports a problem with a Procfile, at a line when
// the problem has one.
type ProcfileError struct {
	Path    string
	Line    int // 0 when the problem concerns the whole file
	Msg     string
	Err     error         // underlying error, if any (a missing file wraps fs.ErrNotExist)
	Skipped []SkippedLine // lines skipped before the file was refused, to be reported too
}

func (e *ProcfileError) Error() string {
	if e.Line == 0 {
		return e.Path + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

func (e *ProcfileError) Unwrap() error { return e.Err }

// ReadProcfile reads and parses the Procfile at path.
// A missing file is reported as a *ProcfileError that wraps fs.ErrNotExist,
// so callers for which a Procfile is optional can test for it with errors.Is.
func ReadProcfile(path string) (*Procfile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &ProcfileError{
			Path: path,
			Msg:  `no such file; create one with a line like "web: bin/server"`,
			Err:  err,
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading Procfile: %w", err)
	}
	return ParseProcfile(path, data)
}

// Reasons for skipping a Procfile line.
const (
	notProcfileLine = "not NAME: COMMAND"
	badTypeName     = notProcfileLine + `; a NAME is letters, digits, "_" and "-", at most 128`
	emptyCommand    = notProcfileLine + "; the COMMAND is empty"
	notUTF8         = "not UTF-8"
	nulByte         = "contains a NUL byte"
)

// ParseProcfile parses the contents of a Procfile. Path is used only in
// messages and is recorded in the result.
//
// Each non-blank line that does not start with "#" is "name: command".
// The command is everything after the first ":", so it may contain colons
// itself. A line that is not in that form, or is not UTF-8 text, is
// skipped as Foreman skips it, and listed in Skipped so that the caller
// can say so: a silently ignored typo means a process that never runs.
// A process type declared twice is an error, as is a file that declares
// none; the error carries the lines skipped so far all the same.
func ParseProcfile(path string, data []byte) (*Procfile, error) {
	// Editors on Windows may save the file with a byte order mark.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))

	p := &Procfile{Path: path}
	firstLine := make(map[string]int)
	var dup *ProcfileError
	for i, line := range strings.Split(string(data), "\n") {
		lineNum := i + 1
		line = strings.TrimSuffix(line, "\r")
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, command, reason := parseProcfileLine(line)
		if reason != "" {
			p.Skipped = append(p.Skipped, SkippedLine{Path: path, Line: lineNum, Text: line, Reason: reason})
			continue
		}
		if first, seen := firstLine[name]; seen {
			// Reading on finds every line to skip, for dyno check.
			if dup == nil {
				dup = &ProcfileError{Path: path, Line: lineNum,
					Msg: fmt.Sprintf("duplicate process type %q (first on line %d)", name, first)}
			}
			continue
		}
		firstLine[name] = lineNum
		p.Types = append(p.Types, ProcessType{Name: name, Command: command, Line: lineNum})
	}
	if dup != nil {
		dup.Skipped = p.Skipped
		return nil, dup
	}
	if len(p.Types) == 0 {
		msg := `no process types; add a line like "web: bin/server"`
		switch n := len(p.Skipped); {
		case n == 1:
			msg = `no process types, 1 line skipped; fix it or add a line like "web: bin/server"`
		case n > 1:
			msg = fmt.Sprintf(`no process types, %d lines skipped; fix them or add a line like "web: bin/server"`, n)
		}
		return nil, &ProcfileError{Path: path, Msg: msg, Skipped: p.Skipped}
	}
	return p, nil
}

// parseProcfileLine splits a trimmed, non-comment line into its process
// type and command, or says why it is not a Procfile line.
func parseProcfileLine(line string) (name, command, reason string) {
	name, command, ok := strings.Cut(line, ":")
	if !ok {
		return "", "", notProcfileLine
	}
	name = strings.TrimSpace(name)
	command = strings.TrimSpace(command)
	switch {
	case !ValidProcessType(name):
		return "", "", badTypeName
	case command == "":
		return "", "", emptyCommand
	// The command goes to the ledger as JSON and to execve: JSON would
	// turn bytes that are not UTF-8 into U+FFFD, and execve cannot pass
	// a NUL.
	case !utf8.ValidString(command):
		return "", "", notUTF8
	case strings.IndexByte(command, 0) >= 0:
		return "", "", nulByte
	}
	return name, command, ""
}

// ValidProcessType reports whether name matches ^[-\w]{1,128}$, the
// process type names Heroku accepts. \w is ASCII-only there, so this is
// too.
func ValidProcessType(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Names returns the process type names in file order.
func (p *Procfile) Names() []string {
	names := make([]string, len(p.Types))
	for i, t := range p.Types {
		names[i] = t.Name
	}
	return names
}

// Lookup returns the process type called name.
func (p *Procfile) Lookup(name string) (ProcessType, bool) {
	if i := p.Index(name); i >= 0 {
		return p.Types[i], true
	}
	return ProcessType{}, false
}

// Index returns the position of the process type called name in file
// order, or -1 if the Procfile does not declare it. Ports are assigned
// by this position.
func (p *Procfile) Index(name string) int {
	for i, t := range p.Types {
		if t.Name == name {
			return i
		}
	}
	return -1
}
