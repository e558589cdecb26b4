// Package slug reads the files that describe an application: its Procfile.
package slug

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
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
	Path  string
	Types []ProcessType // in file order
}

// A ProcfileError reports a problem with a Procfile, at a line when
// the problem has one.
type ProcfileError struct {
	Path string
	Line int // 0 when the problem concerns the whole file
	Msg  string
	Err  error // underlying error, if any (a missing file wraps fs.ErrNotExist)
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

// ParseProcfile parses the contents of a Procfile. Path is used only in
// error messages and is recorded in the result.
//
// Each non-blank line that does not start with "#" must be "name: command".
// The command is everything after the first ":", so it may contain colons
// itself. Unlike Foreman, which skips lines it cannot read, every such
// line is an error: a silently ignored typo means a process that never runs.
func ParseProcfile(path string, data []byte) (*Procfile, error) {
	// Editors on Windows may save the file with a byte order mark.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))

	p := &Procfile{Path: path}
	firstLine := make(map[string]int)
	for i, line := range strings.Split(string(data), "\n") {
		lineNum := i + 1
		line = strings.TrimSuffix(line, "\r")
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, command, ok := strings.Cut(line, ":")
		if !ok {
			return nil, &ProcfileError{Path: path, Line: lineNum,
				Msg: `no ":" in line; write it as "name: command"`}
		}
		name = strings.TrimSpace(name)
		command = strings.TrimSpace(command)
		if !validName(name) {
			return nil, &ProcfileError{Path: path, Line: lineNum,
				Msg: fmt.Sprintf(`invalid process type %q: use letters, digits, "_" and "-", at most %d`, name, maxNameLen)}
		}
		if command == "" {
			return nil, &ProcfileError{Path: path, Line: lineNum,
				Msg: fmt.Sprintf(`empty command for process type %q; write it as "%s: command"`, name, name)}
		}
		if first, dup := firstLine[name]; dup {
			return nil, &ProcfileError{Path: path, Line: lineNum,
				Msg: fmt.Sprintf("duplicate process type %q (first on line %d)", name, first)}
		}
		firstLine[name] = lineNum
		p.Types = append(p.Types, ProcessType{Name: name, Command: command, Line: lineNum})
	}
	if len(p.Types) == 0 {
		return nil, &ProcfileError{Path: path,
			Msg: `no process types; add a line like "web: bin/server"`}
	}
	return p, nil
}

// validName reports whether name matches ^[-\w]{1,128}$, the process
// type names Heroku accepts. \w is ASCII-only there, so this is too.
func validName(name string) bool {
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
