package logmux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// signalWriter collects output and lets a test wait for content instead
// of sleeping.
type signalWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // gets a token after every Write
}

func newSignalWriter() *signalWriter {
	return &signalWriter{wrote: make(chan struct{}, 1)}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output contains want.
func (w *signalWriter) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !strings.Contains(w.String(), want) {
		select {
		case <-w.wrote:
		case <-timeout:
			t.Fatalf("output never contained %q; it is %q", want, w.String())
		}
	}
}

func waitDone(t *testing.T, srcs ...*Source) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for _, s := range srcs {
		select {
		case <-s.Done():
		case <-timeout:
			t.Fatalf("source %s not done", s.name)
		}
	}
}

func newSource(t *testing.T, m *Mux, name string) *Source {
	t.Helper()
	s, err := m.Source(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConcurrentSources writes numbered lines into many sources at once,
// in writes of every size from one byte to several pipe buffers, and
// checks that each source's lines come out whole, in order and all there,
// while System lines are written alongside.
func TestConcurrentSources(t *testing.T) {
	for _, format := range []Format{FormatTerminal, FormatLogplex} {
		t.Run(format.String(), func(t *testing.T) {
			testConcurrentSources(t, format)
		})
	}
}

func testConcurrentSources(t *testing.T, format Format) {
	const (
		sources = 8
		lines   = 20000
		ticks   = 2000
	)
	var names []string
	for i := range sources {
		names = append(names, fmt.Sprintf("proc%d.%d", i%3, i))
	}
	var out bytes.Buffer // the mux serialises Writes
	m := New(&out, Options{
		Format: format,
		Names:  names,
		// Writers pause mid-line between writes; a flush there would cut
		// a line, which this test would report as an error.
		FlushDelay: time.Hour,
	})

	want := make(map[string][]string)
	streams := make(map[string][]byte)
	for i, name := range names {
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		var stream []byte
		for n := range lines {
			line := fmt.Appendf(nil, "%s#%d|", name, n)
			line = append(line, filler(rng)...)
			stream = append(stream, line...)
			stream = append(stream, '\n')
			for len(line) > MaxLineBytes {
				want[name] = append(want[name], string(line[:MaxLineBytes]))
				line = line[MaxLineBytes:]
			}
			want[name] = append(want[name], string(line))
		}
		streams[name] = stream
	}

	var srcs []*Source
	var wg sync.WaitGroup
	for i, name := range names {
		s := newSource(t, m, name)
		srcs = append(srcs, s)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 2))
			stream := streams[name]
			for len(stream) > 0 {
				n := min(writeSize(rng), len(stream))
				if _, err := s.Writer().Write(stream[:n]); err != nil {
					t.Errorf("write %s: %v", name, err)
					return
				}
				stream = stream[n:]
			}
			if err := s.CloseWriter(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Go(func() {
		for n := range ticks {
			m.System("", fmt.Sprintf("tick %d", n))
		}
	})
	wg.Wait()
	waitDone(t, srcs...)

	got := make(map[string][]string)
	text := out.String()
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("output does not end in a newline")
	}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		name, body, ok := parseLine(format, line)
		if !ok {
			t.Fatalf("output line %d is malformed: %.100q", i+1, line)
		}
		got[name] = append(got[name], body)
	}
	var tickWant []string
	for n := range ticks {
		tickWant = append(tickWant, fmt.Sprintf("tick %d", n))
	}
	want["system"] = tickWant
	if len(got) != len(want) {
		t.Errorf("output has lines of %d names, want %d", len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("%s line %d = %.60q (%d bytes), want %.60q (%d bytes)", name, i, g[i], len(g[i]), w[i], len(w[i]))
			}
		}
		if len(g) != len(w) {
			t.Errorf("%s has %d lines, want %d", name, len(g), len(w))
		}
	}
}

// filler returns the variable part of a test line: mostly short, some
// longer than PIPE_BUF, a few longer than MaxLineBytes. It holds bytes a
// careless splitter might alter: '\r', tabs, invalid UTF-8, separators.
func filler(rng *rand.Rand) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 |\t\r\xff\xc3[]:"
	var n int
	switch p := rng.IntN(1000); {
	case p < 2:
		n = 10000 + rng.IntN(20000)
	case p < 50:
		n = 200 + rng.IntN(6000)
	default:
		n = rng.IntN(200)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return b
}

// writeSize picks the size of one write: tiny, around PIPE_BUF, or
// larger than the pipe's buffer.
func writeSize(rng *rand.Rand) int {
	switch rng.IntN(4) {
	case 0:
		return 1 + rng.IntN(100)
	case 1:
		return 100 + rng.IntN(8192)
	case 2:
		return 8192 + rng.IntN(64<<10)
	default:
		return 1 + rng.IntN(2<<20)
	}
}

// parseLine splits an output line into name and text, checking the
// parts around them.
func parseLine(format Format, line string) (name, text string, ok bool) {
	if format == FormatTerminal {
		label, text, ok := strings.Cut(line, " | ")
		if !ok || len(label) < minNameWidth {
			return "", "", false
		}
		return strings.TrimRight(label, " "), text, true
	}
	ts, rest, ok := strings.Cut(line, " ")
	if !ok || len(ts) != len("2006-01-02T15:04:05.000000-07:00") {
		return "", "", false
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000000-07:00", ts); err != nil {
		return "", "", false
	}
	label, text, ok := strings.Cut(rest, "]: ")
	if !ok {
		return "", "", false
	}
	switch {
	case strings.HasPrefix(label, "app["):
		return label[len("app["):], text, true
	case label == "heroku[dyno":
		return "system", text, true
	}
	return "", "", false
}

func TestPartialLineFlush(t *testing.T) {
	out := newSignalWriter()
	m := New(out, Options{FlushDelay: 10 * time.Millisecond})
	s := newSource(t, m, "web.1")

	if _, err := io.WriteString(s.Writer(), "prompt> "); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "web.1  | prompt> \n")
	select {
	case <-s.Done():
		t.Fatal("Done closed while the writer is open")
	default:
	}

	if _, err := io.WriteString(s.Writer(), "answer\nmore"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "web.1  | more\n")
	if err := s.CloseWriter(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s)
	want := "web.1  | prompt> \nweb.1  | answer\nweb.1  | more\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestPartialLineAtEOF(t *testing.T) {
	var out bytes.Buffer
	m := New(&out, Options{FlushDelay: time.Hour})
	s := newSource(t, m, "web.1")
	io.WriteString(s.Writer(), "one\n\ntwo\r\nno newline")
	if err := s.CloseWriter(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s)
	want := "web.1  | one\nweb.1  | \nweb.1  | two\r\nweb.1  | no newline\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

// TestChildProcess hands the pipe to a real child as stdout and stderr,
// the way the dyno manager does.
func TestChildProcess(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	var out bytes.Buffer
	m := New(&out, Options{Format: FormatLogplex, Now: pin(fixed)})
	s := newSource(t, m, "web.1")
	cmd := exec.Command(sh, "-c", "echo out; echo err >&2; printf partial")
	cmd.Stdout = s.Writer()
	cmd.Stderr = s.Writer()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWriter(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s)
	const ts = "2026-11-26T10:00:00.123456+00:00 app[web.1]: "
	want := ts + "out\n" + ts + "err\n" + ts + "partial\n"
	if got := out.String(); got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

// TestClose abandons a source whose write end a child still holds.
func TestClose(t *testing.T) {
	out := newSignalWriter()
	m := New(out, Options{FlushDelay: time.Hour})
	s := newSource(t, m, "web.1")
	// The duplicate stands for the child's copy of the write end.
	child, err := unix.Dup(int(s.Writer().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(child)
	if _, err := unix.Write(child, []byte("read\nheld")); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "web.1  | read\n")

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, s)
	if _, err := unix.Write(child, []byte("late\n")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("write after Close: %v, want EPIPE", err)
	}
	if got, want := out.String(), "web.1  | read\nweb.1  | held\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	if err := s.CloseWriter(); err != nil {
		t.Errorf("CloseWriter after Close: %v", err)
	}
}

type failWriter struct {
	mu     sync.Mutex
	writes int
}

var errOutput = errors.New("output gone")

func (w *failWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return 0, errOutput
}

// TestOutputError checks that a dead output neither blocks the dynos nor
// the sources: they drain their pipes to EOF.
func TestOutputError(t *testing.T) {
	var out failWriter
	m := New(&out, Options{})
	data := bytes.Repeat([]byte(strings.Repeat("x", 79)+"\n"), 50000) // 4 MB: several pipe buffers
	var srcs []*Source
	var wg sync.WaitGroup
	for i := range 3 {
		s := newSource(t, m, fmt.Sprintf("web.%d", i+1))
		srcs = append(srcs, s)
		wg.Go(func() {
			if _, err := s.Writer().Write(data); err != nil {
				t.Error(err)
			}
			io.WriteString(s.Writer(), "partial")
			s.CloseWriter()
		})
	}
	wg.Wait()
	waitDone(t, srcs...)
	m.System("", "after")
	m.Line("web.1", []byte("after"))
	if !errors.Is(m.Err(), errOutput) {
		t.Errorf("Err() = %v, want %v", m.Err(), errOutput)
	}
	if out.writes != 1 {
		t.Errorf("output written %d times, want once: it failed the first time", out.writes)
	}
}

// Sources of dynos gone quiet hold no read buffer: 200 sources that
// each wrote a line end up holding a few kilobytes of heap, not the
// 12.8 MB of one 64 KiB buffer each.
func TestIdleSourcesHoldNoBuffer(t *testing.T) {
	const n = 200
	w := newSignalWriter()
	m := New(w, Options{Format: FormatLogplex})
	var sources []*Source
	for i := range n {
		s, err := m.Source(fmt.Sprintf("web.%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		sources = append(sources, s)
		fmt.Fprintf(s.Writer(), "line of web.%d\n", i+1)
	}
	for i := range n {
		w.waitFor(t, fmt.Sprintf("line of web.%d\n", i+1))
	}
	heap := func() uint64 {
		// Two collections: sync.Pool keeps what was put back for one.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	held := uint64(n * readBufSize)
	deadline := time.Now().Add(idleRelease + 10*time.Second)
	for {
		h := heap()
		if h < held/4 {
			t.Logf("heap in use %d kB once the %d sources went quiet", h>>10, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heap in use %d kB %v after the sources' last line; %d buffers are %d kB", h>>10, idleRelease+10*time.Second, n, held>>10)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A source that gave its buffer back reads again when its dyno does.
	fmt.Fprintf(sources[0].Writer(), "again\n")
	w.waitFor(t, "again\n")
}

// gateWriter holds its first Write until release is closed, as a slow
// terminal or a loaded machine holds a source's goroutine.
type gateWriter struct {
	*signalWriter
	once    sync.Once
	blocked chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() {
		close(g.blocked)
		<-g.release
	})
	return g.signalWriter.Write(p)
}

// A source that gets to its pipe after the flush delay has passed, but
// finds the rest of the line already there, does not cut the line: the
// dyno never stalled, the reader was late.
func TestLateReaderDoesNotCutALine(t *testing.T) {
	g := &gateWriter{signalWriter: newSignalWriter(), blocked: make(chan struct{}), release: make(chan struct{})}
	// A delay that has always passed by the next read.
	m := New(g, Options{Format: FormatLogplex, FlushDelay: time.Nanosecond})
	s, err := m.Source("web.1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fmt.Fprint(s.Writer(), "first\npar")
	<-g.blocked // the source is writing "first", holding "par"
	fmt.Fprint(s.Writer(), "tial\n")
	close(g.release)
	g.waitFor(t, "tial\n")
	if out := g.String(); !strings.Contains(out, "]: partial\n") {
		t.Errorf("the line was cut:\n%s", out)
	}
}
