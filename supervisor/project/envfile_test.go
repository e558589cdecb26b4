package project

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/slug"
	"github.com/joho/godotenv"
)

// The syntax every env file that read without error before keeps: each
// case without a "$" reads the same with godotenv v1.5.1, the parser
// dyno used then; those with one are in TestParseEnvLiteral.
func TestParseEnvValid(t *testing.T) {
	tests := []struct {
		name string
		data string
		want map[string]string
	}{
		{"plain", "A=1\nB=two words\n", map[string]string{"A": "1", "B": "two words"}},
		{"no final newline", "A=1\nB=2", map[string]string{"A": "1", "B": "2"}},
		{"empty value", "A=\nB=", map[string]string{"A": "", "B": ""}},
		{"comments and blank lines", "# c\n\n  # indented\nA=1 # trailing\nB=x#not a comment\nC=#not either\n",
			map[string]string{"A": "1", "B": "x#not a comment", "C": "#not either"}},
		{"last comment wins", "A=x # one # two\n", map[string]string{"A": "x # one"}},
		{"export", "export A=1\nexport\tB = 2\nexport=3\nexportC=4\n",
			map[string]string{"A": "1", "B": "2", "export": "3", "exportC": "4"}},
		{"blanks around", "  A  =  1  \n\tB\t=\t2\t\n", map[string]string{"A": "1", "B": "2"}},
		{"yaml style", "A: 1\nB:2\n", map[string]string{"A": "1", "B": "2"}},
		{"name characters", "a.b_C9=1\n9LIVES=2\n", map[string]string{"a.b_C9": "1", "9LIVES": "2"}},
		{"single quotes", `A='B \n "x" # y'` + "\n", map[string]string{"A": `B \n "x" # y`}},
		{"double quotes", `A="B \n\r \"x\" \\n \B # y"` + "\n",
			map[string]string{"A": "B \n\r \"x\" \\n B # y"}},
		{"escaped quote at the end is trimmed", `A="say \"hi\""` + "\n", map[string]string{"A": `say "hi\`}},
		{"multi-line quoted value", "A=\"one\ntwo\"\nB='three\r\nfour'\nC=5\n",
			map[string]string{"A": "one\ntwo", "B": "three\nfour", "C": "5"}},
		{"statement after a closing quote", "A='x' B=2 # c\nC=\"y\"# c\n", map[string]string{"A": "x", "B": "2", "C": "y"}},
		{"later wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"CRLF", "A=1\r\nB=\"x\r\ny\"\r\n", map[string]string{"A": "1", "B": "x\ny"}},
		{"lone CR ends a line", "A=1\rB=2\r", map[string]string{"A": "1", "B": "2"}},
		{"non-ASCII values", "A=café ☕\nB=\"naïve\"\n", map[string]string{"A": "café ☕", "B": "naïve"}},
		{"Unicode blanks", "\u00a0A\u00a0=\u00a0x\u00a0\n\u3000B=1\n", map[string]string{"A": "x", "B": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, skipped := parseEnv(".env", []byte(tt.data))
			if len(skipped) != 0 {
				t.Errorf("skipped %v", skipped)
			}
			if !maps.Equal(vars, tt.want) {
				t.Errorf("vars = %q, want %q", vars, tt.want)
			}
			if strings.Contains(tt.data, "$") {
				t.Fatal("the case has a $, which godotenv expands; move it to TestParseEnvLiteral")
			}
			old, err := godotenv.UnmarshalBytes([]byte(tt.data))
			if err != nil || !maps.Equal(old, tt.want) {
				t.Errorf("godotenv reads %q, %v; the case is wrong", old, err)
			}
		})
	}
}

// A "$" is an ordinary character in every kind of value, as it is to
// Foreman and heroku local: nothing expands, so a password holding one
// reaches the process as written. godotenv expanded $NAME and ${NAME},
// to nothing when NAME was not set earlier in the file.
func TestParseEnvLiteral(t *testing.T) {
	tests := []struct {
		name string
		data string
		want map[string]string
	}{
		{"secret", "DB_PASS=Xy$Z9abc\n", map[string]string{"DB_PASS": "Xy$Z9abc"}},
		{"inherited name", "B=$HOME\n", map[string]string{"B": "$HOME"}},
		{"earlier variable", "A=1\nB=$A${A}$(A)\nF=${A:-x}\n",
			map[string]string{"A": "1", "B": "$A${A}$(A)", "F": "${A:-x}"}},
		{"single quotes", "A=1\nB='$A ${A}'\n", map[string]string{"A": "1", "B": "$A ${A}"}},
		{"double quotes", "A=1\nB=\"$A-${A}-$NOPE-$a-$\"\n", map[string]string{"A": "1", "B": "$A-${A}-$NOPE-$a-$"}},
		{"export and comment", "export A=a$B # c\n", map[string]string{"A": "a$B"}},
		{"lone dollars", "A=$\nB=$$\nC=\"$\"\nD='$'\n", map[string]string{"A": "$", "B": "$$", "C": "$", "D": "$"}},
		// In double quotes a backslash escapes what follows, "$" too.
		{"escaped dollar", `A="\$A \\$A"` + "\nB=\\$A\n", map[string]string{"A": `$A \$A`, "B": `\$A`}},
		{"escapes still apply", `A="x\ny$Z\t"` + "\n", map[string]string{"A": "x\ny$Zt"}},
		{"no growth", "A=$A$A\nA=$A$A\n", map[string]string{"A": "$A$A"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, skipped := parseEnv(".env", []byte(tt.data))
			if len(skipped) != 0 {
				t.Errorf("skipped %v", skipped)
			}
			if !maps.Equal(vars, tt.want) {
				t.Errorf("vars = %q, want %q", vars, tt.want)
			}
		})
	}
}

// Every kind of line that is not NAME=value is skipped, and reported
// with the file's name, its line and why; the lines around it are read.
func TestParseEnvSkipsMalformedLines(t *testing.T) {
	tests := []struct {
		name string
		data string
		want map[string]string
		skip []string // SkippedLine.String() of each skipped line
	}{
		{"name with a space", "A B=1\nC=2\n", map[string]string{"C": "2"},
			[]string{`.env:1: skipped "A B=1": not NAME=value`}},
		{"name not UTF-8", "C=2\n\xff\xfe=bin\n", map[string]string{"C": "2"},
			[]string{`.env:2: skipped "\xff\xfe=bin": not NAME=value`}},
		{"no name", "A=1\n=novalue\n", map[string]string{"A": "1"},
			[]string{`.env:2: skipped "=novalue": not NAME=value`}},
		{"lone word with a newline", "A=1\nB\nC=3\n", map[string]string{"A": "1", "C": "3"},
			[]string{`.env:2: skipped "B": not NAME=value`}},
		{"lone word on a last line without newline", "A=1\nB", map[string]string{"A": "1"},
			[]string{`.env:2: skipped "B": not NAME=value`}},
		{"export without a value", "export A\nB=2\n", map[string]string{"B": "2"},
			[]string{`.env:1: skipped "export A": not NAME=value`}},
		{"export with no name", "export =1\n", map[string]string{},
			[]string{`.env:1: skipped "export =1": not NAME=value`}},
		{"character not in a name", "# settings\nA=1\nBAD-NAME=2\nC=3\n", map[string]string{"A": "1", "C": "3"},
			[]string{`.env:3: skipped "BAD-NAME=2": not NAME=value`}},
		{"non-ASCII name", "CAFÉ=1\n", map[string]string{},
			[]string{`.env:1: skipped "CAFÉ=1": not NAME=value`}},
		{"CRLF file", "A=1\r\nB\r\nC D=2\r\nE=\"e\"\r\n", map[string]string{"A": "1", "E": "e"},
			[]string{`.env:2: skipped "B": not NAME=value`, `.env:3: skipped "C D=2": not NAME=value`}},
		{"unterminated quote", "A=1\r\nB=2\r\nC=\"open\r\nD=4\r\n", map[string]string{"A": "1", "B": "2", "D": "4"},
			[]string{`.env:3: skipped "C=\"open": unterminated quoted value`}},
		{"unterminated quotes of both kinds", "A='x\nB=\"y\nC=1\n", map[string]string{"C": "1"},
			[]string{
				`.env:1: skipped "A='x": unterminated quoted value`,
				`.env:2: skipped "B=\"y": unterminated quoted value`,
			}},
		{"a later quote closes an earlier one", "A='x\nB='y\n", map[string]string{"A": "x\nB="},
			[]string{`.env:2: skipped "y": not NAME=value`}},
		{"value not UTF-8", "A=caf\xe9\nB=2\n", map[string]string{"B": "2"},
			[]string{`.env:1: skipped "A=caf\xe9": not UTF-8`}},
		{"quoted value over lines not UTF-8", "A=\"x\ncaf\xe9\"\nB=2\nC D\n", map[string]string{"B": "2"},
			[]string{`.env:1: skipped "A=\"x\ncaf\xe9\"": not UTF-8`, `.env:4: skipped "C D": not NAME=value`}},
		{"comment not UTF-8 is fine", "A=1 # caf\xe9\n# \xff\n", map[string]string{"A": "1"}, nil},
		{"NUL in a value", "A=a\x00b\nB='\x00'\nC=3", map[string]string{"C": "3"},
			[]string{`.env:1: skipped "A=a\x00b": contains a NUL byte`, `.env:2: skipped "B='\x00'": contains a NUL byte`}},
		{"text after a closing quote", "A='x'y\nB=2\n", map[string]string{"A": "x", "B": "2"},
			[]string{`.env:1: skipped "y": not NAME=value`}},
		{"line numbers past a multi-line value", "A=\"1\n2\"\nB C\n", map[string]string{"A": "1\n2"},
			[]string{`.env:3: skipped "B C": not NAME=value`}},
		{"byte order mark", "\ufeffA=1\nB\n", map[string]string{"A": "1"},
			[]string{`.env:2: skipped "B": not NAME=value`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, skipped := parseEnv(".env", []byte(tt.data))
			if !maps.Equal(vars, tt.want) {
				t.Errorf("vars = %q, want %q", vars, tt.want)
			}
			var got []string
			for _, s := range skipped {
				got = append(got, s.String())
			}
			if !reflect.DeepEqual(got, tt.skip) {
				t.Errorf("skipped\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.skip, "\n"))
			}
		})
	}
}

// A NAME=value longer than execve passes (MAX_ARG_STRLEN, 32 pages with
// the NUL) is skipped: it would stop every process from starting.
func TestParseEnvTooLong(t *testing.T) {
	maxEnv := 32 * os.Getpagesize()
	tooLong := fmt.Sprintf("NAME=value longer than %d bytes, more than execve passes", maxEnv-1)
	fits, over := strings.Repeat("x", maxEnv-1-len("A=")), strings.Repeat("y", maxEnv-len("B="))
	vars, skipped := parseEnv(".env", []byte("A="+fits+"\nB="+over+"\nC='"+over+"'\nD=1\n"))
	if len(vars) != 2 || vars["A"] != fits || vars["D"] != "1" {
		t.Errorf("vars has %d, A of %d bytes; want A of %d and D", len(vars), len(vars["A"]), len(fits))
	}
	if len(skipped) != 2 || skipped[0].Line != 2 || skipped[0].Reason != tooLong || skipped[1].Line != 3 {
		t.Errorf("skipped %d lines, the first %.40v; want lines 2 and 3: %s", len(skipped), skipped, tooLong)
	}
}

// Every value fits, but together they would not: the file is bounded as
// a whole, lines past the bound are skipped, and replacing a variable
// counts only its new value.
func TestParseEnvTotalBound(t *testing.T) {
	big := strings.Repeat("x", 60000)
	var b strings.Builder
	b.WriteString("A=" + big + "\n")
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "A=%s\nC%d=%s\n", big, i, big) // A is replaced: no growth
	}
	vars, skipped := parseEnv(".env", []byte(b.String()))
	total := 0
	for k, v := range vars {
		total += len(k) + len(v) + 2
	}
	if total > maxEnvTotal {
		t.Errorf("the variables take %d bytes, over %d", total, maxEnvTotal)
	}
	if len(vars) < 10 || vars["A"] != big {
		t.Errorf("%d variables kept, A of %d bytes", len(vars), len(vars["A"]))
	}
	want := fmt.Sprintf("the file's variables would take more than %d bytes, more than execve passes", maxEnvTotal)
	if len(skipped) == 0 || skipped[0].Reason != want || !strings.HasPrefix(skipped[0].Text, "C") {
		t.Fatalf("skipped %.60v; want the C lines past the bound: %s", skipped, want)
	}
	if len(vars)-1+len(skipped) != 40 {
		t.Errorf("%d C variables kept and %d skipped, want 40 in all", len(vars)-1, len(skipped))
	}
	for _, s := range skipped {
		if s.Line%2 != 1 {
			t.Errorf("line %d skipped; only the C lines, on odd lines, should be", s.Line)
		}
	}
}

// Load reports every skipped line of the Procfile and the env files, in
// order, each file named as it was given, and runs the rest.
func TestLoadSkipsMalformedLines(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "Procfile", "web: bin/server\noops\nworker: bin/worker\n")
	writeFile(t, dir, ".env", "A=1\nA B=1\nB\n")
	writeFile(t, dir, "other.env", "=novalue\nC=3\n")
	t.Chdir(dir)

	var got []string
	collect := func(s slug.SkippedLine) { got = append(got, s.String()) }
	p, err := Load(Options{OnSkip: collect})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []string{
		`Procfile:2: skipped "oops": not NAME: COMMAND`,
		`.env:2: skipped "A B=1": not NAME=value`,
		`.env:3: skipped "B": not NAME=value`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("skipped\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if names := p.Procfile.Names(); !reflect.DeepEqual(names, []string{"web", "worker"}) {
		t.Errorf("types %q, want web and worker", names)
	}
	wantVar(t, "Env", p.Env, "A", "1")
	if len(p.Dynos) != 2 {
		t.Errorf("%d dynos, want 2", len(p.Dynos))
	}

	got = nil
	p, err = Load(Options{EnvFiles: []string{".env", "other.env"}, OnSkip: collect})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want = append(want, `other.env:1: skipped "=novalue": not NAME=value`)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("skipped\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantVar(t, "Env", p.Env, "C", "3")
}

// A Procfile that is refused still has its skipped lines reported, and
// the env files' too: dyno check lists them all.
func TestLoadReportsSkippedLinesWhenRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "Procfile", "web: a\noops\nweb: b\nx y\n")
	writeFile(t, dir, ".env", "B\n")
	t.Chdir(dir)

	var got []int
	_, err := Load(Options{OnSkip: func(s slug.SkippedLine) { got = append(got, s.Line) }})
	const wantErr = `Procfile:3: duplicate process type "web" (first on line 1)`
	if err == nil || err.Error() != wantErr {
		t.Errorf("error = %v, want %q", err, wantErr)
	}
	if want := []int{2, 4, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("skipped lines %v, want %v (Procfile, then .env)", got, want)
	}

	// With nothing to report, no report is needed.
	if _, err := Load(Options{}); err == nil {
		t.Error("Load without OnSkip succeeded")
	}
}

// BenchmarkParseEnv reads valid and malformed lines, 10,000 and 100,000
// of them: the time per byte is the same (the parser is linear).
func BenchmarkParseEnv(b *testing.B) {
	for _, bc := range []struct{ name, lines string }{
		{"valid", "export NAME_1=\"some value $B\" # comment\nB=plain value\n"},
		{"malformed", "A B=1\n=novalue\n"},
	} {
		for _, n := range []int{10000, 100000} {
			data := []byte(strings.Repeat(bc.lines, n/2))
			b.Run(fmt.Sprintf("%s/%d", bc.name, n), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					parseEnv(".env", data)
				}
			})
		}
	}
}
