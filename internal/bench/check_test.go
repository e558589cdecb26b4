package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// genLine returns line seq of the process name as linegen documents it.
func genLine(name string, seq int) string {
	s := fmt.Sprintf("%s %07d ", name, seq)
	return s + strings.Repeat("x", lineBytes-1-len(s))
}

func TestParsers(t *testing.T) {
	text := genLine("gen.1", 7)
	tests := []struct {
		parse lineParser
		line  string
		kind  lineKind
		name  string
		text  string
	}{
		{parseTerminal, "03:38:07 gen.1  | " + text, appLine, "gen.1", text},
		{parseTerminal, "03:38:07 gen.10 | " + text, appLine, "gen.10", text},
		{parseTerminal, "03:38:07 gen.1  | ", appLine, "gen.1", ""},
		{parseTerminal, "03:38:07 system | gen.1: State changed from starting to up", managerLine, "", ""},
		{parseTerminal, "03:38:07 system | gen.1: Process exited with status 0", exitLine, "gen.1", ""},
		{parseTerminal, "xxxxxxxxxxxxxxxxxxxxxxx", garbled, "", ""},
		{parseTerminal, "03:38:07 gen.1  " + text, garbled, "", ""},
		{parseLogplex, "2026-11-26T03:38:07.128762+00:00 app[gen.2]: " + text, appLine, "gen.2", text},
		{parseLogplex, "2026-11-26T03:38:07.137703+00:00 heroku[gen.2]: Process exited with status 0", exitLine, "gen.2", ""},
		{parseLogplex, "2026-11-26T03:38:07.137708+00:00 heroku[gen.2]: State changed from up to crashed", managerLine, "gen.2", "State changed from up to crashed"},
		{parseLogplex, "2026-11-26T03:38:07.128762+00:00 gen.2: " + text, garbled, "", ""},
		{parseLogplex, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", garbled, "", ""},
		{parseForeman, "3:38:07 AM gen.1 |  " + text, appLine, "gen.1", text},
		{parseForeman, "10:38:07 PM gen.1 |  " + text, appLine, "gen.1", text},
		{parseForeman, "[DONE] Killing all processes with signal  SIGINT", managerLine, "", ""},
		{parseForeman, "3:38:07 AM gen.1 Exited Successfully", exitLine, "gen.1", ""},
		{parseForeman, "3:38:07 AM gen.2 Exited with exit code SIGINT", exitLine, "gen.2", ""},
		{parseForeman, "xxxxxxxxxxxxxxx", garbled, "", ""},
	}
	for _, tt := range tests {
		kind, name, text := tt.parse([]byte(tt.line))
		if kind != tt.kind || string(name) != tt.name || string(text) != tt.text {
			t.Errorf("parse %.50q = %v, %q, %.20q; want %v, %q, %.20q", tt.line, kind, name, text, tt.kind, tt.name, tt.text)
		}
	}
}

func TestGeneratedSeq(t *testing.T) {
	good := genLine("gen.1", 1234)
	if seq, ok := generatedSeq([]byte(good), []byte("gen.1"), 2000); !ok || seq != 1234 {
		t.Errorf("generatedSeq(good) = %d, %v; want 1234, true", seq, ok)
	}
	bad := []string{
		good[:len(good)-1],                    // short
		good + "x",                            // long
		genLine("gen.2", 1234),                // another process's line
		genLine("gen.1", 2000),                // past the count
		strings.Replace(good, "x", "y", 1),    // padding changed
		strings.Replace(good, "0", "o", 1),    // digit changed
		strings.Replace(good, " ", "_", 1),    // separator changed
		"gen.1 " + strings.Repeat("x", 73),    // no number
		strings.Repeat("x", lineBytes-1),      // padding alone: the tail of a cut line
		genLine("gen.1", 12)[:40] + good[:39], // two halves
	}
	for _, text := range bad {
		if seq, ok := generatedSeq([]byte(text), []byte("gen.1"), 2000); ok {
			t.Errorf("generatedSeq(%q) = %d, true; want false", text, seq)
		}
	}
}

func TestCheckOutput(t *testing.T) {
	const count = 5
	var out strings.Builder
	line := func(name string, seq int) {
		fmt.Fprintf(&out, "03:38:07 %-6s | %s\n", name, genLine(name, seq))
	}
	out.WriteString("03:38:07 system | gen.1: State changed from starting to up\n")
	for seq := range count {
		line("gen.1", seq)
	}
	line("gen.2", 0)
	line("gen.2", 2)
	line("gen.2", 1)             // out of order
	line("gen.2", 2)             // duplicated
	whole := genLine("gen.2", 3) // cut in two: 2 cut, 1 lost
	fmt.Fprintf(&out, "03:38:07 gen.2  | %s\n03:38:07 gen.2  | %s\n", whole[:30], whole[30:])
	out.WriteString("03:38:07 system | gen.1: Process exited with status 0\n")
	line("gen.1", 4)                                               // duplicated, after the exit
	line("gen.3", 0)                                               // not a process of the run
	out.WriteString("garbage\n")                                   // unparseable
	fmt.Fprintf(&out, "03:38:07 gen.2  | %s", genLine("gen.2", 4)) // no final newline
	path := filepath.Join(t.TempDir(), "out.log")
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := checkOutput(path, parseTerminal, []string{"gen.1", "gen.2"}, count)
	if err != nil {
		t.Fatal(err)
	}
	got.example = ""
	want := tally{intact: count + 4, cut: 4, lost: 1, duplicated: 2, disordered: 1, afterExit: 1, manager: 2}
	if got != want {
		t.Errorf("checkOutput = %+v, want %+v", got, want)
	}
}

func TestCheckOutputLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	long := "03:38:07 gen.1  | " + strings.Repeat("y", 3<<20) + "\n"
	if err := os.WriteFile(path, []byte(long+"03:38:07 gen.1  | "+genLine("gen.1", 0)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := checkOutput(path, parseTerminal, []string{"gen.1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.cut != 1 || got.intact != 1 || got.lost != 0 {
		t.Errorf("checkOutput = %+v, want 1 cut and 1 intact", got)
	}
}

func TestParseStat(t *testing.T) {
	// A command name may hold spaces and parentheses.
	stat := "16788 (a (b) c) Z 16783 16746 14802 0 -1 4228108 2044 2927 0 0 2 8 5 2 20 0 1 0 56554 0 0"
	p, err := parseStat(16788, []byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	want := proc{pid: 16788, ppid: 16783, state: 'Z', comm: "a (b) c", start: 56554, cpu: 100 * time.Millisecond}
	if p != want {
		t.Errorf("parseStat = %+v, want %+v", p, want)
	}
	if _, err := parseStat(1, []byte("1 (x) S 0 1")); err == nil {
		t.Error("parseStat accepted a short line")
	}
}
