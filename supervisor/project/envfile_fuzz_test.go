package project

import (
	"bytes"
	"maps"
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/joho/godotenv"
)

var (
	// usableName is what parseEnv may return as a variable name.
	usableName = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)
	// plainLine is a line that is NAME=value beyond doubt: no quotes,
	// comments, escapes or CRs that could tie it to the lines around it.
	// parseEnv never skips one. Its submatches are the name and the value.
	plainLine = regexp.MustCompile(`^[ \t]*(?:export[ \t]+)?([A-Za-z0-9_.]+)[=:][ \t]*([A-Za-z0-9_./,:;@%+=${}()-]*)[ \t]*$`)
	// ignoredLine is a line parseEnv passes over between statements.
	ignoredLine = regexp.MustCompile(`^[ \t]*(#.*)?$`)
)

// FuzzParseEnv: the env file parser never panics; what it accepts has
// only usable names and values; every line it skips is reported with
// the file's name and its own number, in order, and a plain NAME=value
// line never is; a file of plain lines gives each name the value of its
// last line exactly, "$" and all; and a file it reads without skipping a
// line reads the same with godotenv v1.5.1, the parser dyno used before,
// once "$" is an ordinary character to godotenv too, so that the syntax
// of valid files is otherwise unchanged.
func FuzzParseEnv(f *testing.F) {
	for _, seed := range []string{
		"A=1\nB=2\n",
		"export A=1\n# comment\n\nB='single'\nC=\"double $A\"\n",
		"A=\"unterminated\nB=2\n",
		"BAD-NAME=1\n",
		"A=1\r\nB=2\r\n",
		"=novalue\nA\n",
		"A B=1\nB\n",
		"A=1\nB",
		"A=${B:-x}\nMULTI=\"line\none\"\n",
		"\xff\xfe=bin\n",
		"A=caf\xe9 # ok\nB=1 # caf\xe9\n",
		"A='x'B=2 C\n",
		"A=\"say \\\"hi\\\"\" # c\nB=\"\\n\\r\\\\n\\$A $A\"\n",
		"\ufeffA=1\rB=2\r\n",
		"A: 1\nexport\tB :2\n",
		"A=\"x\ncaf\xe9\"\nB=\"a\x00\"\n",
		"A=\"\nB=\"\nC='\nD='\n",
		"DB_PASS=Xy$Z9abc\nB=$HOME\n  export C = ${B}$(A)$ \n# $A\nB=%$%\n",
		"A=0123456789abcdef\nA=$A$A$A$A$A$A$A$A\nA=\"$A$A$A$A$A$A$A$A\"\nA=$A$A$A$A$A$A$A$A\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, skipped := parseEnv("x.env", data)

		lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
		lastLine := 0
		for _, s := range skipped {
			if s.Path != "x.env" || s.Text == "" || s.Reason == "" {
				t.Errorf("skipped line %+v lacks its file, text or reason", s)
			}
			if s.Line < lastLine || s.Line < 1 || s.Line > len(lines) {
				t.Fatalf("skipped line %d out of order or outside the file's %d lines", s.Line, len(lines))
			}
			lastLine = s.Line
			first, _, _ := strings.Cut(s.Text, "\n")
			if !strings.Contains(lines[s.Line-1], first) {
				t.Errorf("skipped text %q is not on line %d, %q", s.Text, s.Line, lines[s.Line-1])
			}
			if plainLine.MatchString(lines[s.Line-1]) {
				t.Errorf("plain line %d, %q, skipped as %q", s.Line, lines[s.Line-1], s.Reason)
			}
			if msg := s.String(); strings.ContainsAny(msg, "\n\r") {
				t.Errorf("warning %q is more than one line", msg)
			}
		}
		for name, value := range vars {
			if !usableName.MatchString(name) {
				t.Errorf("name %q accepted", name)
			}
			if !utf8.ValidString(value) || strings.Contains(value, "\x00") {
				t.Errorf("value %q of %s accepted", value, name)
			}
			if len(name)+len("=")+len(value) >= 32*os.Getpagesize() {
				t.Errorf("%s of %d bytes accepted, more than execve passes", name, len(value))
			}
		}

		if want, ok := plainValues(lines); ok && !maps.Equal(vars, want) {
			t.Errorf("a file of plain lines reads as %q, want %q as written", vars, want)
		}

		if len(skipped) > 0 {
			return
		}
		// godotenv expands "$"; any byte that is not in the file and
		// means nothing to it stands in for "$" there.
		standIn := strings.IndexFunc("%@^~*!?", func(r rune) bool { return !bytes.ContainsRune(data, r) })
		if standIn < 0 {
			return
		}
		dollar, other := []byte("$"), []byte{"%@^~*!?"[standIn]}
		want, err := godotenv.UnmarshalBytes(bytes.ReplaceAll(bytes.TrimPrefix(data, []byte("\ufeff")), dollar, other))
		if err != nil {
			t.Fatalf("read without skipping a line, but godotenv says %v", err)
		}
		for name, value := range want {
			want[name] = strings.ReplaceAll(value, string(other), "$")
		}
		if !maps.Equal(vars, want) {
			t.Fatalf("vars = %q, godotenv reads %q (with %q for $)", vars, want, other)
		}
	})
}

// plainValues returns the variables of a file whose lines are all plain
// NAME=value lines, blank or comments: each name with the value of its
// last line as written. ok is false for any other file.
func plainValues(lines []string) (vars map[string]string, ok bool) {
	vars = make(map[string]string)
	for i, line := range lines {
		if i == 0 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if ignoredLine.MatchString(line) {
			continue
		}
		m := plainLine.FindStringSubmatch(line)
		if m == nil {
			return nil, false
		}
		vars[m[1]] = m[2]
	}
	return vars, true
}
