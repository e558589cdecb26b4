package slug

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseProcfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want []ProcessType
	}{
		{
			name: "one type",
			data: "web: bin/server\n",
			want: []ProcessType{{"web", "bin/server", 1}},
		},
		{
			name: "file order kept",
			data: "worker: bin/worker\nweb: bin/server\nclock: bin/clock",
			want: []ProcessType{{"worker", "bin/worker", 1}, {"web", "bin/server", 2}, {"clock", "bin/clock", 3}},
		},
		{
			name: "blank lines and comments skipped",
			data: "# processes\n\n   \nweb: bin/server\n  # indented comment\n\tworker: bin/worker\n",
			want: []ProcessType{{"web", "bin/server", 4}, {"worker", "bin/worker", 6}},
		},
		{
			name: "command keeps its colons",
			data: "web: rackup -p $PORT --host 0.0.0.0:x\n",
			want: []ProcessType{{"web", "rackup -p $PORT --host 0.0.0.0:x", 1}},
		},
		{
			name: "spaces around name and command trimmed",
			data: "  web   :   bin/server -v   \n",
			want: []ProcessType{{"web", "bin/server -v", 1}},
		},
		{
			name: "no space after colon",
			data: "web:bin/server",
			want: []ProcessType{{"web", "bin/server", 1}},
		},
		{
			name: "CRLF line endings",
			data: "web: bin/server\r\nworker: bin/worker\r\n",
			want: []ProcessType{{"web", "bin/server", 1}, {"worker", "bin/worker", 2}},
		},
		{
			name: "byte order mark",
			data: "\ufeffweb: bin/server\n",
			want: []ProcessType{{"web", "bin/server", 1}},
		},
		{
			name: "name characters",
			data: "urgent_worker-2: bin/w\nWEB: bin/s\n",
			want: []ProcessType{{"urgent_worker-2", "bin/w", 1}, {"WEB", "bin/s", 2}},
		},
		{
			name: "name of 128 characters",
			data: strings.Repeat("a", 128) + ": x",
			want: []ProcessType{{strings.Repeat("a", 128), "x", 1}},
		},
		{
			name: "hash inside command kept",
			data: "web: bin/server # not a comment\n",
			want: []ProcessType{{"web", "bin/server # not a comment", 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProcfile("Procfile", []byte(tt.data))
			if err != nil {
				t.Fatalf("ParseProcfile: %v", err)
			}
			if p.Path != "Procfile" {
				t.Errorf("Path = %q, want %q", p.Path, "Procfile")
			}
			if !reflect.DeepEqual(p.Types, tt.want) {
				t.Errorf("Types = %+v, want %+v", p.Types, tt.want)
			}
		})
	}
}

// Lines that are not "name: command" are skipped, as Foreman skips them,
// and each is listed with its number so that the caller can say so.
func TestParseProcfileSkipsMalformedLines(t *testing.T) {
	t.Parallel()
	web := ProcessType{"web", "bin/server", 1}
	tests := []struct {
		name  string
		data  string
		types []ProcessType
		want  []string // SkippedLine.String() of each skipped line
	}{
		{
			name:  "no colon",
			data:  "web: bin/server\nworker bin/worker\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "worker bin/worker": not NAME: COMMAND`},
		},
		{
			name:  "lone word with a newline",
			data:  "web: bin/server\noops\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "oops": not NAME: COMMAND`},
		},
		{
			name:  "lone word on a last line without newline",
			data:  "web: bin/server\noops",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "oops": not NAME: COMMAND`},
		},
		{
			name:  "space in name",
			data:  "# c\nwe b: bin/server\nweb: bin/server\n",
			types: []ProcessType{{"web", "bin/server", 3}},
			want:  []string{`Procfile:2: skipped "we b: bin/server": ` + badTypeName},
		},
		{
			name:  "empty name",
			data:  "web: bin/server\n: bin/other\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped ": bin/other": ` + badTypeName},
		},
		{
			name:  "non-ASCII name",
			data:  "web: bin/server\nwéb: bin/server\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "wéb: bin/server": ` + badTypeName},
		},
		{
			name:  "dot in name",
			data:  "web: bin/server\nweb.1: bin/server\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "web.1: bin/server": ` + badTypeName},
		},
		{
			name:  "name too long",
			data:  "web: bin/server\n" + strings.Repeat("a", 129) + ": x\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "` + strings.Repeat("a", 129) + `: x": ` + badTypeName},
		},
		{
			name:  "empty command",
			data:  "web: bin/server\nworker:   \n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "worker:": not NAME: COMMAND; the COMMAND is empty`},
		},
		{
			name:  "invalid UTF-8 in the name",
			data:  "web: bin/server\n\xff\xfe: bin/x\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "\xff\xfe: bin/x": ` + badTypeName},
		},
		{
			name:  "invalid UTF-8 in the command",
			data:  "web: bin/server\nworker: caf\xe9\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "worker: caf\xe9": not UTF-8`},
		},
		{
			name:  "NUL in the command",
			data:  "web: bin/server\nworker: a\x00b\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "worker: a\x00b": contains a NUL byte`},
		},
		{
			name:  "CRLF file",
			data:  "web: bin/server\r\noops\r\nworker: bin/worker\r\nx y\r\n",
			types: []ProcessType{web, {"worker", "bin/worker", 3}},
			want: []string{
				`Procfile:2: skipped "oops": not NAME: COMMAND`,
				`Procfile:4: skipped "x y": not NAME: COMMAND`,
			},
		},
		{
			name:  "every one listed, in order",
			data:  "a\nweb: bin/server\nb\n\n# c\nc:\n",
			types: []ProcessType{{"web", "bin/server", 2}},
			want: []string{
				`Procfile:1: skipped "a": not NAME: COMMAND`,
				`Procfile:3: skipped "b": not NAME: COMMAND`,
				`Procfile:6: skipped "c:": not NAME: COMMAND; the COMMAND is empty`,
			},
		},
		{
			name:  "long line quoted in part",
			data:  "web: bin/server\n" + strings.Repeat("x", 300) + "\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "` + strings.Repeat("x", 200) + `"...: not NAME: COMMAND`},
		},
		{
			name:  "long line cut between characters",
			data:  "web: bin/server\nx" + strings.Repeat("é", 150) + "\n",
			types: []ProcessType{web},
			want:  []string{`Procfile:2: skipped "x` + strings.Repeat("é", 99) + `"...: not NAME: COMMAND`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProcfile("Procfile", []byte(tt.data))
			if err != nil {
				t.Fatalf("ParseProcfile: %v", err)
			}
			if !reflect.DeepEqual(p.Types, tt.types) {
				t.Errorf("Types = %+v, want %+v", p.Types, tt.types)
			}
			var got []string
			for _, s := range p.Skipped {
				got = append(got, s.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Skipped =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseProcfileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		path        string
		data        string
		wantLine    int
		want        string
		wantSkipped []int // line numbers the error carries as skipped
	}{
		{
			name:     "duplicate",
			path:     "Procfile",
			data:     "web: a\nworker: b\nweb: c\n",
			wantLine: 3,
			want:     `Procfile:3: duplicate process type "web" (first on line 1)`,
		},
		{
			name:     "path as given",
			path:     "app/Procfile.dev",
			data:     "web: a\nweb: b\n",
			wantLine: 2,
			want:     `app/Procfile.dev:2: duplicate process type "web" (first on line 1)`,
		},
		{
			name:        "duplicate with lines skipped before and after it",
			path:        "Procfile",
			data:        "oops\nweb: a\nweb: b\nweb: c\nx y\n",
			wantLine:    3,
			want:        `Procfile:3: duplicate process type "web" (first on line 2)`,
			wantSkipped: []int{1, 5},
		},
		{
			name: "empty file",
			path: "Procfile",
			data: "",
			want: `Procfile: no process types; add a line like "web: bin/server"`,
		},
		{
			name: "only comments",
			path: "Procfile",
			data: "# web: bin/server\n\n",
			want: `Procfile: no process types; add a line like "web: bin/server"`,
		},
		{
			name:        "the only line skipped",
			path:        "Procfile",
			data:        "web bin/server\n",
			want:        `Procfile: no process types, 1 line skipped; fix it or add a line like "web: bin/server"`,
			wantSkipped: []int{1},
		},
		{
			name:        "every line skipped",
			path:        "Procfile",
			data:        "web bin/server\n# c\nworker\n",
			want:        `Procfile: no process types, 2 lines skipped; fix them or add a line like "web: bin/server"`,
			wantSkipped: []int{1, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProcfile(tt.path, []byte(tt.data))
			if err == nil {
				t.Fatalf("ParseProcfile = %+v, want error %q", p, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
			var pe *ProcfileError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *ProcfileError", err)
			}
			if pe.Line != tt.wantLine || pe.Path != tt.path {
				t.Errorf("error at %s:%d, want %s:%d", pe.Path, pe.Line, tt.path, tt.wantLine)
			}
			var skipped []int
			for _, s := range pe.Skipped {
				skipped = append(skipped, s.Line)
			}
			if !reflect.DeepEqual(skipped, tt.wantSkipped) {
				t.Errorf("skipped lines %v, want %v", skipped, tt.wantSkipped)
			}
		})
	}
}

func TestDuplicateMessagePrefix(t *testing.T) {
	t.Parallel()
	// Other tools match on this exact text, so it must stay a prefix.
	_, err := ParseProcfile("Procfile", []byte("web: a\nworker: b\nweb: c\n"))
	const want = `Procfile:3: duplicate process type "web"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %v, want prefix %q", err, want)
	}
}

func TestReadProcfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "Procfile")
	if err := os.WriteFile(path, []byte("web: bin/server\nworker: bin/worker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ReadProcfile(path)
	if err != nil {
		t.Fatalf("ReadProcfile: %v", err)
	}
	if p.Path != path {
		t.Errorf("Path = %q, want %q", p.Path, path)
	}
	if got, want := p.Names(), []string{"web", "worker"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
}

func TestReadProcfileMissing(t *testing.T) {
	// Not parallel: t.Chdir changes the process's current folder.
	t.Chdir(t.TempDir())
	_, err := ReadProcfile("Procfile")
	const want = `Procfile: no such file; create one with a line like "web: bin/server"`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false, want true", err)
	}
}

func TestReadProcfileDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := ReadProcfile(dir)
	if err == nil {
		t.Fatal("ReadProcfile of a directory succeeded")
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v claims the file does not exist", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name %s", err, dir)
	}
}

func TestLookupAndIndex(t *testing.T) {
	t.Parallel()
	p, err := ParseProcfile("Procfile", []byte("web: a\nworker: b\nclock: c\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"web", "worker", "clock"} {
		if got := p.Index(name); got != i {
			t.Errorf("Index(%q) = %d, want %d", name, got, i)
		}
		pt, ok := p.Lookup(name)
		if !ok || pt.Name != name || pt.Line != i+1 {
			t.Errorf("Lookup(%q) = %+v, %v", name, pt, ok)
		}
	}
	if got := p.Index("wrker"); got != -1 {
		t.Errorf("Index(wrker) = %d, want -1", got)
	}
	if pt, ok := p.Lookup("wrker"); ok {
		t.Errorf("Lookup(wrker) = %+v, true; want false", pt)
	}
}

var nameRE = regexp.MustCompile(`^[-\w]{1,128}$`)

// The fuzz target's own idea of a Procfile line, written as regular
// expressions so that it shares no code with the parser. space is
// unicode.IsSpace as a class.
const space = `[\t\n\v\f\r \x{85}\p{Z}]`

var (
	ignoredLine = regexp.MustCompile(`^` + space + `*(#.*)?$`)
	typeLine    = regexp.MustCompile(`^` + space + `*[-\w]{1,128}` + space + `*:.*[^\t\n\v\f\r \x{85}\p{Z}]`)
)

// badLines returns the numbers of the lines of data that are neither
// blank, nor comments, nor "name: command" in UTF-8 without a NUL.
func badLines(data []byte) []int {
	var bad []int
	for i, line := range strings.Split(strings.TrimPrefix(string(data), "\ufeff"), "\n") {
		if ignoredLine.MatchString(line) {
			continue
		}
		if !typeLine.MatchString(line) || !utf8.ValidString(line) || strings.Contains(line, "\x00") {
			bad = append(bad, i+1)
		}
	}
	return bad
}

// FuzzParseProcfile: the parser never panics; every line that is not
// "name: command" is skipped and reported with its number, whether the
// file is refused or not, and no other line is; what it accepts has
// valid, distinct names and commands, and reads back the same.
func FuzzParseProcfile(f *testing.F) {
	seeds := []string{
		"",
		"web: bin/server\n",
		"web: bin/server\nworker: bin/worker\nclock: bin/clock\n",
		"# comment\n\nweb: rackup -p $PORT --host 0.0.0.0:x\n",
		"\ufeffweb: a\r\nworker: b\r\n",
		"web a\n",
		"we b: x\n",
		"web:\n",
		"web: a\nweb: b\n",
		"  web  :  a : b : c  \n",
		":\n",
		"\ufeff\ufeffweb: a\n",
		"web: a\r\r\n",
		"web:\u00a0x\u0085\n",
		"web: a\noops",
		"web: a\noops\n",
		"web: a\n\xff\xfe: b\nworker: caf\xe9\n",
		"web: a\x00\nx: \u3000\n",
		"bad\nweb: a\nweb: b\nworse\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProcfile("Procfile", data)
		var skipped []SkippedLine
		if err != nil {
			var pe *ProcfileError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, want *ProcfileError", err, err)
			}
			skipped = pe.Skipped
		} else {
			skipped = p.Skipped
		}
		var got []int
		for _, s := range skipped {
			if s.Path != "Procfile" || s.Text == "" || s.Reason == "" {
				t.Errorf("skipped line %+v lacks its file, text or reason", s)
			}
			if msg := s.String(); strings.ContainsAny(msg, "\n\r") {
				t.Errorf("warning %q is more than one line", msg)
			}
			got = append(got, s.Line)
		}
		if want := badLines(data); !slices.Equal(got, want) {
			t.Fatalf("skipped lines %v, want %v", got, want)
		}
		if err != nil {
			return
		}
		if len(p.Types) == 0 {
			t.Fatal("success with no process types")
		}
		seen := make(map[string]bool)
		var b strings.Builder
		for _, pt := range p.Types {
			if !nameRE.MatchString(pt.Name) {
				t.Errorf("name %q does not match %s", pt.Name, nameRE)
			}
			if seen[pt.Name] {
				t.Errorf("name %q appears twice", pt.Name)
			}
			seen[pt.Name] = true
			if pt.Command == "" {
				t.Errorf("type %q has an empty command", pt.Name)
			}
			b.WriteString(pt.Name + ": " + pt.Command + "\n")
		}
		again, err := ParseProcfile("Procfile", []byte(b.String()))
		if err != nil {
			t.Fatalf("reparsing %q: %v", b.String(), err)
		}
		if len(again.Types) != len(p.Types) || len(again.Skipped) != 0 {
			t.Fatalf("reparse gave %d types and %d skipped lines, want %d and none",
				len(again.Types), len(again.Skipped), len(p.Types))
		}
		for i, pt := range again.Types {
			if pt.Name != p.Types[i].Name || pt.Command != p.Types[i].Command || pt.Line != i+1 {
				t.Errorf("reparse type %d = %+v, want %q: %q on line %d",
					i, pt, p.Types[i].Name, p.Types[i].Command, i+1)
			}
		}
	})
}
