package slug

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseProcfile(t *testing.T) {
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

func TestParseProcfileErrors(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		data     string
		wantLine int
		want     string
	}{
		{
			name:     "no colon",
			path:     "Procfile",
			data:     "web: bin/server\nworker bin/worker\n",
			wantLine: 2,
			want:     `Procfile:2: no ":" in line; write it as "name: command"`,
		},
		{
			name:     "space in name",
			path:     "Procfile",
			data:     "# c\nwe b: bin/server\n",
			wantLine: 2,
			want:     `Procfile:2: invalid process type "we b": use letters, digits, "_" and "-", at most 128`,
		},
		{
			name:     "empty name",
			path:     "Procfile",
			data:     ": bin/server\n",
			wantLine: 1,
			want:     `Procfile:1: invalid process type "": use letters, digits, "_" and "-", at most 128`,
		},
		{
			name:     "non-ASCII name",
			path:     "Procfile",
			data:     "wéb: bin/server\n",
			wantLine: 1,
			want:     `Procfile:1: invalid process type "wéb": use letters, digits, "_" and "-", at most 128`,
		},
		{
			name:     "dot in name",
			path:     "Procfile",
			data:     "web.1: bin/server\n",
			wantLine: 1,
			want:     `Procfile:1: invalid process type "web.1": use letters, digits, "_" and "-", at most 128`,
		},
		{
			name:     "name too long",
			path:     "Procfile",
			data:     strings.Repeat("a", 129) + ": x\n",
			wantLine: 1,
			want:     `Procfile:1: invalid process type "` + strings.Repeat("a", 129) + `": use letters, digits, "_" and "-", at most 128`,
		},
		{
			name:     "empty command",
			path:     "Procfile",
			data:     "web: bin/server\nworker:   \n",
			wantLine: 2,
			want:     `Procfile:2: empty command for process type "worker"; write it as "worker: command"`,
		},
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
		})
	}
}

func TestDuplicateMessagePrefix(t *testing.T) {
	// Other tools match on this exact text, so it must stay a prefix.
	_, err := ParseProcfile("Procfile", []byte("web: a\nworker: b\nweb: c\n"))
	const want = `Procfile:3: duplicate process type "web"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %v, want prefix %q", err, want)
	}
}

func TestReadProcfile(t *testing.T) {
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
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProcfile("Procfile", data)
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
		if len(again.Types) != len(p.Types) {
			t.Fatalf("reparse gave %d types, want %d", len(again.Types), len(p.Types))
		}
		for i, pt := range again.Types {
			if pt.Name != p.Types[i].Name || pt.Command != p.Types[i].Command || pt.Line != i+1 {
				t.Errorf("reparse type %d = %+v, want %q: %q on line %d",
					i, pt, p.Types[i].Name, p.Types[i].Command, i+1)
			}
		}
	})
}
