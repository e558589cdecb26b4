package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// The shape of a generated line, as linegen's documentation gives it.
// The checker rebuilds its expectations from that description instead of
// sharing linegen's code, so a bug in one is not mirrored by the other.
const (
	lineBytes = 80 // with the newline
	seqDigits = 7
)

// A lineKind classifies a line of a manager's output.
type lineKind int

const (
	garbled     lineKind = iota // not a line the manager's format can produce
	managerLine                 // the manager's own: state changes and the like
	exitLine                    // the manager's line saying that process name exited
	appLine                     // a line of the output of process name
)

// A lineParser splits a line of a manager's output, without its newline,
// into its kind, the process's name for an app or exit line, and the
// text of an app line.
type lineParser func(line []byte) (kind lineKind, name, text []byte)

var (
	terminalSep = []byte(" | ")
	logplexApp  = []byte("app[")
	logplexSys  = []byte("heroku[")
	logplexEnd  = []byte("]: ")
)

// parseTerminal parses dyno's terminal format without colour:
// "15:04:05 gen.1  | text", and "15:04:05 system | gen.1: ..." for the
// manager's lines.
func parseTerminal(line []byte) (lineKind, []byte, []byte) {
	if len(line) < 9 || line[2] != ':' || line[5] != ':' || line[8] != ' ' {
		return garbled, nil, nil
	}
	rest := line[9:]
	i := bytes.Index(rest, terminalSep)
	if i < 0 {
		return garbled, nil, nil
	}
	name := bytes.TrimRight(rest[:i], " ")
	text := rest[i+len(terminalSep):]
	if string(name) == "system" {
		return systemLine(text)
	}
	return appLine, name, text
}

// parseLogplex parses dyno's Logplex format:
// "2026-11-26T10:00:00.123456+00:00 app[gen.1]: text", with heroku[...]
// instead of app[...] for the manager's lines.
func parseLogplex(line []byte) (lineKind, []byte, []byte) {
	const stampLen = len("2006-01-02T15:04:05.000000+00:00")
	if len(line) <= stampLen || line[stampLen] != ' ' || line[10] != 'T' {
		return garbled, nil, nil
	}
	rest := line[stampLen+1:]
	kind := appLine
	switch {
	case bytes.HasPrefix(rest, logplexApp):
		rest = rest[len(logplexApp):]
	case bytes.HasPrefix(rest, logplexSys):
		rest = rest[len(logplexSys):]
		kind = managerLine
	default:
		return garbled, nil, nil
	}
	i := bytes.Index(rest, logplexEnd)
	if i < 0 {
		return garbled, nil, nil
	}
	name, text := rest[:i], rest[i+len(logplexEnd):]
	if kind == managerLine && bytes.HasPrefix(text, dynoExited) {
		return exitLine, name, nil
	}
	return kind, name, text
}

var dynoExited = []byte("Process exited")

// systemLine parses the text of a terminal line of dyno's: "gen.1:
// Process exited with status 0" and the like.
func systemLine(text []byte) (lineKind, []byte, []byte) {
	name, text, ok := bytes.Cut(text, []byte(": "))
	if ok && bytes.HasPrefix(text, dynoExited) {
		return exitLine, name, nil
	}
	return managerLine, nil, nil
}

// parseForeman parses node-foreman's output without colour. App lines are
// "3:38:40 AM gen.1 |  text": a locale-dependent time, the name, padding,
// " |" and the text, joined by console.log with one more space. Its own
// lines are "[DONE] Killing all processes ..." and "3:38:40 AM gen.1
// Exited Successfully" (or "Exited with exit code ...").
func parseForeman(line []byte) (lineKind, []byte, []byte) {
	if bytes.HasPrefix(line, []byte("[")) {
		return managerLine, nil, nil
	}
	i := bytes.Index(line, terminalSep)
	if i < 0 {
		// nf says so once the process's output has closed.
		head, _, ok := bytes.Cut(line, []byte(" Exited "))
		if f := bytes.Fields(head); ok && len(f) > 0 {
			return exitLine, f[len(f)-1], nil
		}
		return garbled, nil, nil
	}
	head := bytes.Fields(line[:i])
	text := line[i+len(terminalSep):]
	if len(head) == 0 || len(text) == 0 || text[0] != ' ' {
		return garbled, nil, nil
	}
	return appLine, head[len(head)-1], text[1:]
}

// A tally is what a check found in one run's output.
type tally struct {
	intact     int // app lines exactly as generated, each counted once
	cut        int // app or unparseable lines that are not an intact generated line
	lost       int // generated lines with no intact copy in the output
	lostTail   int // of those, the lines after a process's last intact line
	duplicated int // intact lines seen more than once
	disordered int // intact lines of a process after a later line of it
	afterExit  int // app lines of a process after the manager said it exited
	manager    int // the manager's own lines
	example    string
}

// A stream tracks the lines of one process.
type stream struct {
	seen   []bool
	last   int  // highest seq seen so far, -1 before the first
	exited bool // the manager has said the process exited
}

// checkOutput reads a manager's output and checks every app line against
// the count lines that each process in names wrote. A line cut in two
// shows as two cut lines and, since no intact copy arrived, one lost line.
func checkOutput(path string, parse lineParser, names []string, count int) (tally, error) {
	f, err := os.Open(path)
	if err != nil {
		return tally{}, fmt.Errorf("check output: %w", err)
	}
	defer f.Close()

	streams := make(map[string]*stream, len(names))
	for _, name := range names {
		streams[name] = &stream{seen: make([]bool, count), last: -1}
	}
	var t tally
	bad := func(line []byte) {
		t.cut++
		if t.example == "" {
			t.example = fmt.Sprintf("%.120q", line)
		}
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than any line a manager writes for an 80-byte input:
			// count it and skip to its end.
			bad(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
		} else if len(line) > 0 {
			t.add(bytes.TrimSuffix(line, []byte{'\n'}), parse, streams, count, bad)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return tally{}, fmt.Errorf("check output: read %s: %w", path, err)
		}
	}
	for _, s := range streams {
		for _, ok := range s.seen {
			if !ok {
				t.lost++
			}
		}
		// The end of a process's output is where a manager that stops
		// processes, or exits before draining their pipes, loses lines.
		t.lostTail += count - 1 - s.last
	}
	return t, nil
}

func (t *tally) add(line []byte, parse lineParser, streams map[string]*stream, count int, bad func([]byte)) {
	kind, name, text := parse(line)
	switch kind {
	case managerLine:
		t.manager++
		return
	case exitLine:
		t.manager++
		if s := streams[string(name)]; s != nil {
			s.exited = true
		}
		return
	case garbled:
		bad(line)
		return
	}
	s := streams[string(name)]
	if s == nil {
		bad(line)
		return
	}
	if s.exited {
		// The exit line should close a process's output: a line after
		// it was read late, or read from a pipe thought drained.
		t.afterExit++
	}
	seq, ok := generatedSeq(text, name, count)
	if !ok {
		bad(line)
		return
	}
	if s.seen[seq] {
		t.duplicated++
		return
	}
	s.seen[seq] = true
	t.intact++
	if seq < s.last {
		t.disordered++
	}
	s.last = max(s.last, seq)
}

// generatedSeq returns the sequence number of text if it is exactly line
// seq of the process name: the name, a space, seq in seven digits, a
// space, then 'x' up to 79 bytes.
func generatedSeq(text, name []byte, count int) (int, bool) {
	n := len(name)
	if len(text) != lineBytes-1 || n+seqDigits+2 >= len(text) ||
		!bytes.Equal(text[:n], name) || text[n] != ' ' || text[n+1+seqDigits] != ' ' {
		return 0, false
	}
	seq := 0
	for _, c := range text[n+1 : n+1+seqDigits] {
		if c < '0' || c > '9' {
			return 0, false
		}
		seq = seq*10 + int(c-'0')
	}
	for _, c := range text[n+2+seqDigits:] {
		if c != 'x' {
			return 0, false
		}
	}
	return seq, seq < count
}
