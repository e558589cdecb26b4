package project

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParseEnv: the env file parser never panics; what it accepts has
// only usable names, and what it refuses is reported with the file's
// name and a line that exists.
func FuzzParseEnv(f *testing.F) {
	for _, seed := range []string{
		"A=1\nB=2\n",
		"export A=1\n# comment\n\nB='single'\nC=\"double $A\"\n",
		"A=\"unterminated\nB=2\n",
		"BAD-NAME=1\n",
		"A=1\r\nB=2\r\n",
		"=novalue\nA\n",
		"A=${B:-x}\nMULTI=\"line\none\"\n",
		"\xff\xfe=1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := parseEnv("x.env", data)
		if err != nil {
			var e *EnvFileError
			if !errors.As(err, &e) || e.Path != "x.env" {
				t.Fatalf("error %v does not name the file", err)
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; e.Line < 0 || e.Line > lines {
				t.Fatalf("error line %d outside the file's %d lines", e.Line, lines)
			}
			if !strings.HasPrefix(err.Error(), "x.env") {
				t.Fatalf("message %q does not start with the file", err)
			}
			return
		}
		if _, ok := vars[""]; ok {
			t.Fatal("empty variable name accepted")
		}
	})
}
