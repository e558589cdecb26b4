package logmux

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// collect feeds chunks to a Splitter, then flushes it, and returns copies
// of the emitted lines.
func collect(chunks ...string) []string {
	var s Splitter
	var lines []string
	emit := func(line []byte) { lines = append(lines, string(line)) }
	for _, c := range chunks {
		s.Write([]byte(c), emit)
	}
	s.Flush(emit)
	return lines
}

func TestSplitter(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"none", nil, nil},
		{"one", []string{"hello\n"}, []string{"hello"}},
		{"several", []string{"a\nb\nc\n"}, []string{"a", "b", "c"}},
		{"empty lines", []string{"\n\na\n\n"}, []string{"", "", "a", ""}},
		{"across chunks", []string{"he", "ll", "o\nwor", "ld\n"}, []string{"hello", "world"}},
		{"partial flushed", []string{"done\nprompt> "}, []string{"done", "prompt> "}},
		{"crlf kept", []string{"a\r\nb\r", "\n"}, []string{"a\r", "b\r"}},
		{"lone cr kept", []string{"a\rb\n"}, []string{"a\rb"}},
		{"invalid utf8 kept", []string{"\xff\xfe\xc3\n\xe2\x82", "\n"}, []string{"\xff\xfe\xc3", "\xe2\x82"}},
		{"nul kept", []string{"a\x00b\n"}, []string{"a\x00b"}},
		{"exactly max", []string{x(MaxLineBytes) + "\n"}, []string{x(MaxLineBytes)}},
		{"exactly max then newline later", []string{x(MaxLineBytes), "\n"}, []string{x(MaxLineBytes)}},
		{"exactly max in pieces", []string{x(6000), x(4000), "\ny\n"}, []string{x(MaxLineBytes), "y"}},
		{"max plus one", []string{x(MaxLineBytes+1) + "\n"}, []string{x(MaxLineBytes), "x"}},
		{"max plus one across chunks", []string{x(MaxLineBytes), "x\n"}, []string{x(MaxLineBytes), "x"}},
		{"twice max", []string{x(2*MaxLineBytes) + "\n"}, []string{x(MaxLineBytes), x(MaxLineBytes)}},
		{"long partial", []string{x(MaxLineBytes*2 + 5)}, []string{x(MaxLineBytes), x(MaxLineBytes), x(5)}},
		{"long across many chunks", []string{x(3000), x(3000), x(3000), x(3000), "\n"}, []string{x(MaxLineBytes), x(2000)}},
		{"cut at exact boundary", []string{"ab" + x(MaxLineBytes-2) + "cd\n"}, []string{"ab" + x(MaxLineBytes-2), "cd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := collect(tt.chunks...)
			if !equalLines(got, tt.want) {
				t.Errorf("lines = %s, want %s", summarize(got), summarize(tt.want))
			}
		})
	}
}

// TestSplitterPieces checks the piece boundaries of a long line byte by
// byte, so a piece that is off by one cannot hide behind repeated bytes.
func TestSplitterPieces(t *testing.T) {
	var line []byte
	for i := range 25000 {
		line = append(line, byte('a'+i%26))
	}
	got := collect(string(line[:7]), string(line[7:12345]), string(line[12345:])+"\n")
	want := []string{string(line[:10000]), string(line[10000:20000]), string(line[20000:])}
	if !equalLines(got, want) {
		t.Errorf("lines = %s, want %s", summarize(got), summarize(want))
	}
}

func TestSplitterFlushStartsNewLine(t *testing.T) {
	var s Splitter
	var lines []string
	emit := func(line []byte) { lines = append(lines, string(line)) }
	s.Write([]byte("prompt> "), emit)
	if s.Buffered() != 8 {
		t.Fatalf("Buffered = %d, want 8", s.Buffered())
	}
	s.Flush(emit)
	s.Flush(emit) // nothing left: must not emit an empty line
	s.Write([]byte("answer\n"), emit)
	want := []string{"prompt> ", "answer"}
	if !equalLines(lines, want) {
		t.Errorf("lines = %q, want %q", lines, want)
	}
}

func TestSplitterAllocs(t *testing.T) {
	chunk := bytes.Repeat([]byte(strings.Repeat("y", 79)+"\n"), 1000)
	chunk = append(chunk, "partial"...)
	var s Splitter
	n := 0
	emit := func([]byte) { n++ }
	s.Write(chunk, emit) // grow the partial buffer once
	allocs := testing.AllocsPerRun(100, func() { s.Write(chunk, emit) })
	if allocs != 0 {
		t.Errorf("Write allocates %v times per chunk, want 0", allocs)
	}
}

func TestSplitText(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"", []string{""}},
		{"a", []string{"a"}},
		{"a\n", []string{"a"}},
		{"a\nb", []string{"a", "b"}},
		{"a\n\n", []string{"a", ""}},
		{"\r", []string{"\r"}},
		{strings.Repeat("z", MaxLineBytes+3), []string{strings.Repeat("z", MaxLineBytes), "zzz"}},
	}
	for _, tt := range tests {
		var got []string
		splitText([]byte(tt.text), func(line []byte) { got = append(got, string(line)) })
		if !equalLines(got, tt.want) {
			t.Errorf("splitText(%.20q) = %s, want %s", tt.text, summarize(got), summarize(tt.want))
		}
	}
}

// referenceLines is the Splitter's contract written as plainly as
// possible: split on '\n', the text after the last '\n' is a partial line
// that Flush emits if not empty, and every line is cut into pieces of
// MaxLineBytes with a shorter last piece.
func referenceLines(input []byte) []string {
	segs := bytes.Split(input, []byte{'\n'})
	last := segs[len(segs)-1]
	segs = segs[:len(segs)-1]
	if len(last) > 0 {
		segs = append(segs, last)
	}
	var lines []string
	for _, seg := range segs {
		for len(seg) > MaxLineBytes {
			lines = append(lines, string(seg[:MaxLineBytes]))
			seg = seg[MaxLineBytes:]
		}
		lines = append(lines, string(seg))
	}
	return lines
}

// FuzzSplitter feeds the input in chunks whose sizes come from cuts, with
// a run of pad bytes in the middle so that overlong lines are common.
//
// Matching referenceLines implies the invariant that matters: the emitted
// lines, each followed by the newline that ended it (none after a piece or
// a flushed partial line), reproduce the input exactly. It is checked
// separately too, since it does not depend on how the reference cuts.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), uint16(0), []byte{})
	f.Add([]byte("a\r\nb\n\n\xff\xfe\n"), uint16(0), []byte{1})
	f.Add([]byte("prompt> "), uint16(0), []byte{2, 3})
	f.Add([]byte("\n"), uint16(MaxLineBytes), []byte{})
	f.Add([]byte("\n\n"), uint16(MaxLineBytes), []byte{100, 0, 1})
	f.Add([]byte("ab\n"), uint16(MaxLineBytes-1), []byte{50})
	f.Add([]byte("x"), uint16(2*MaxLineBytes+1), []byte{255, 7})
	f.Add([]byte("line\nnext"), uint16(25000), []byte{99, 255, 1})

	f.Fuzz(func(t *testing.T, data []byte, pad uint16, cuts []byte) {
		half := len(data) / 2
		input := make([]byte, 0, len(data)+int(pad))
		input = append(input, data[:half]...)
		input = append(input, bytes.Repeat([]byte{'p'}, int(pad)%30000)...)
		input = append(input, data[half:]...)

		var s Splitter
		var lines []string
		var joined []byte
		emit := func(line []byte) {
			if len(line) > MaxLineBytes {
				t.Fatalf("emitted a line of %d bytes", len(line))
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("emitted line %.40q holds a newline", line)
			}
			lines = append(lines, string(line))
			joined = append(joined, line...)
		}
		rest := input
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				c := int(cuts[i%len(cuts)])
				n = min(c*c+1, len(rest))
			}
			s.Write(rest[:n], emit)
			rest = rest[n:]
		}
		s.Flush(emit)

		if want := bytes.ReplaceAll(input, []byte{'\n'}, nil); !bytes.Equal(joined, want) {
			t.Fatalf("emitted bytes differ from input without newlines")
		}
		if want := referenceLines(input); !equalLines(lines, want) {
			t.Fatalf("lines = %s, want %s", summarize(lines), summarize(want))
		}
	})
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// summarize describes lines briefly: long lines would drown the message.
func summarize(lines []string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, l := range lines {
		if i > 0 {
			b.WriteString(" ")
		}
		if len(l) > 20 {
			fmt.Fprintf(&b, "%.12q…(%d bytes)", l, len(l))
		} else {
			fmt.Fprintf(&b, "%q", l)
		}
	}
	b.WriteString("]")
	return b.String()
}
