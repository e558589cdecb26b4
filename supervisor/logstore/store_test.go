package logstore

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary double as a CLI process appending lines:
// with appenderEnv set to "dir|id|lines" it says "ready", waits for its
// stdin to close, appends the lines one Append at a time and exits.
func TestMain(m *testing.M) {
	if spec := os.Getenv(appenderEnv); spec != "" {
		if err := appender(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const appenderEnv = "LOGSTORE_TEST_APPENDER"

func appender(spec string) error {
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		return fmt.Errorf("bad %s %q", appenderEnv, spec)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		return err
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for k := range n {
		if err := Append(parts[0], writerLine("api", parts[1], k)); err != nil {
			return err
		}
	}
	return nil
}

var stamp0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// line returns a Logplex line with its newline.
func line(source, dyno, text string) []byte {
	return []byte(stamp0.Format(stampLayout) + " " + source + "[" + dyno + "]: " + text + "\n")
}

// writerLine returns line k of writer id, with a length that varies.
func writerLine(dyno, id string, k int) []byte {
	return line("app", dyno, fmt.Sprintf("%s %d %s", id, k, strings.Repeat("x", k%41)))
}

// numbered returns lines "n <i>" for i in [from, to) of web.1.
func numbered(from, to int) []byte {
	var b []byte
	for i := from; i < to; i++ {
		b = append(b, line("app", "web.1", "n "+strconv.Itoa(i))...)
	}
	return b
}

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func write(t *testing.T, w io.Writer, p []byte) {
	t.Helper()
	if n, err := w.Write(p); n != len(p) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
	}
}

func read(t *testing.T, dir string, f Filter, n int) []string {
	t.Helper()
	lines, err := Read(dir, f, n)
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, len(lines))
	for i, l := range lines {
		texts[i] = l.Source + "[" + l.Dyno + "] " + l.Text
	}
	return texts
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestStoreWriteRead(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	// One Write may hold many lines, as the mux writes them.
	var batch []byte
	batch = append(batch, line("heroku", "web.1", "Starting process with command `bin/web`")...)
	batch = append(batch, line("app", "web.1", "listening")...)
	batch = append(batch, line("app", "web.2", "listening")...)
	write(t, s, batch)
	write(t, s, line("app", "api", "Release v2 created by user a@b.c"))
	write(t, s, line("heroku", "router", "at=info path=/"))
	write(t, s, line("app", "worker.1", "working"))
	write(t, s, line("app", "web2.1", "another type"))
	write(t, s, line("heroku", "web.1", "State changed from starting to up"))

	all := []string{
		"heroku[web.1] Starting process with command `bin/web`",
		"app[web.1] listening",
		"app[web.2] listening",
		"app[api] Release v2 created by user a@b.c",
		"heroku[router] at=info path=/",
		"app[worker.1] working",
		"app[web2.1] another type",
		"heroku[web.1] State changed from starting to up",
	}
	equal(t, "all", read(t, dir, Filter{}, 0), all)
	equal(t, "all, n > lines", read(t, dir, Filter{}, 100), all)
	equal(t, "last 3", read(t, dir, Filter{}, 3), all[5:])
	equal(t, "--ps web", read(t, dir, Filter{Dyno: "web"}, 0), []string{all[0], all[1], all[2], all[7]})
	equal(t, "--ps web -n 2", read(t, dir, Filter{Dyno: "web"}, 2), []string{all[2], all[7]})
	equal(t, "--dyno web.1", read(t, dir, Filter{Dyno: "web.1"}, 0), []string{all[0], all[1], all[7]})
	equal(t, "--source heroku", read(t, dir, Filter{Source: "heroku"}, 0), []string{all[0], all[4], all[7]})
	equal(t, "--source app --dyno api", read(t, dir, Filter{Source: "app", Dyno: "api"}, 0), []string{all[3]})
	equal(t, "no match", read(t, dir, Filter{Dyno: "clock"}, 5), []string{})

	lines, err := Read(dir, Filter{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(string(line("heroku", "web.1", "State changed from starting to up")), "\n"); string(lines[0].Raw) != want {
		t.Errorf("Raw = %q, want %q", lines[0].Raw, want)
	}
	if !lines[0].Time.Equal(stamp0) {
		t.Errorf("Time = %v, want %v", lines[0].Time, stamp0)
	}
}

func TestStoreWriteAddsNewline(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	l := line("app", "web.1", "one")
	write(t, s, l[:len(l)-1])
	write(t, s, line("app", "web.1", "two"))
	equal(t, "lines", read(t, dir, Filter{}, 0), []string{"app[web.1] one", "app[web.1] two"})
	if n, err := s.Write(nil); n != 0 || err != nil {
		t.Errorf("Write(nil) = %d, %v", n, err)
	}
}

func TestStoreClosed(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(line("app", "web.1", "late")); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Write after Close: %v, want an error naming %s", err, dir)
	}
	if err := s.Close(); err == nil {
		t.Error("second Close: no error")
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(dir, Options{}); err == nil {
		s2.Close()
		t.Fatal("second Open of the same dir succeeded")
	} else if !strings.Contains(err.Error(), "another store") {
		t.Errorf("second Open: %v", err)
	}
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

// rotatedFiles returns dir's rotated files, oldest first.
func rotatedFiles(t *testing.T, dir string) []string {
	t.Helper()
	seqs, err := rotated(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range seqs {
		names = append(names, rotatedName(q))
	}
	return names
}

func TestStoreRotation(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{MaxFileBytes: 500, KeepBytes: 1 << 40})
	const total = 300
	for i := range total {
		write(t, s, numbered(i, i+1))
	}
	files := rotatedFiles(t, dir)
	// Lines are 50-odd bytes: 10 or so to a file.
	if len(files) < total/15 {
		t.Fatalf("%d rotated files, want about %d: %v", len(files), total/10, files)
	}
	for _, name := range append(files, currentName) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		// A file is rotated by the write that takes it to 500 bytes.
		if name != currentName && (fi.Size() < 500 || fi.Size() > 600) {
			t.Errorf("%s: %d bytes, want 500 plus at most one line", name, fi.Size())
		}
	}
	want := func(from, to int) []string {
		var w []string
		for i := from; i < to; i++ {
			w = append(w, "app[web.1] n "+strconv.Itoa(i))
		}
		return w
	}
	equal(t, "all", read(t, dir, Filter{}, 0), want(0, total))
	for _, n := range []int{1, 7, 10, 11, 25, 299, 300} {
		equal(t, fmt.Sprintf("last %d", n), read(t, dir, Filter{}, n), want(total-n, total))
	}
	if err := s.Err(); err != nil {
		t.Error(err)
	}
}

// TestStoreOpenRotates checks that a Store rotates a current.log that
// reached the size while no Store was open, and keeps numbering after the
// files that are there.
func TestStoreOpenRotates(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxFileBytes: 500, KeepBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, numbered(0, 25))
	write(t, s, numbered(25, 26))
	s.Close()
	before := rotatedFiles(t, dir)
	if err := Append(dir, numbered(26, 40)); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{MaxFileBytes: 500, KeepBytes: 1 << 40})
	after := rotatedFiles(t, dir)
	if len(after) != len(before)+1 {
		t.Fatalf("rotated files %v after Open, want one more than %v", after, before)
	}
	if fi, err := os.Stat(filepath.Join(dir, currentName)); err != nil || fi.Size() != 0 {
		t.Fatalf("current.log after Open: %v, %v; want empty", fi, err)
	}
	write(t, s, numbered(40, 41))
	got := read(t, dir, Filter{}, 0)
	if len(got) != 41 || got[0] != "app[web.1] n 0" || got[40] != "app[web.1] n 40" {
		t.Errorf("read %d lines, %q ... %q", len(got), got[0], got[len(got)-1])
	}
}

// kept returns the sizes and line counts of dir's rotated files, oldest
// first.
func kept(t *testing.T, dir string) (sizes []int64, lines []int) {
	t.Helper()
	for _, name := range rotatedFiles(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, int64(len(b)))
		lines = append(lines, bytes.Count(b, []byte{'\n'}))
	}
	return sizes, lines
}

func sum[T int | int64](s []T) T {
	var n T
	for _, v := range s {
		n += v
	}
	return n
}

func TestStoreRetention(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"bytes", Options{MaxFileBytes: 1000, KeepBytes: 3500, KeepLines: 5}},
		// KeepLines decides: a few bytes are kept, but 45 lines at least.
		{"lines", Options{MaxFileBytes: 1000, KeepBytes: 10, KeepLines: 45}},
		// Lines bigger than a file: one line per file.
		{"big lines", Options{MaxFileBytes: 10, KeepBytes: 10, KeepLines: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, tt.opts)
			const total = 1000
			for i := range total {
				write(t, s, numbered(i, i+1))
			}
			sizes, lines := kept(t, dir)
			t.Logf("kept %d files, %d bytes, %d lines", len(sizes), sum(sizes), sum(lines))
			// current.log was empty at the last rotation, which applied
			// retention: the rotated files alone must keep enough, and
			// without the oldest of them they must not.
			if sum(sizes) < tt.opts.KeepBytes || sum(lines) < tt.opts.KeepLines {
				t.Errorf("kept %d bytes, %d lines; want at least %d, %d", sum(sizes), sum(lines), tt.opts.KeepBytes, tt.opts.KeepLines)
			}
			if sum(sizes[1:]) >= tt.opts.KeepBytes && sum(lines[1:]) >= tt.opts.KeepLines {
				t.Errorf("kept %d bytes, %d lines in files %v, %v: the oldest is not needed", sum(sizes), sum(lines), sizes, lines)
			}
			// What is kept is the newest lines, in order, with none missing.
			got := read(t, dir, Filter{}, 0)
			if len(got) < tt.opts.KeepLines {
				t.Fatalf("Read: %d lines, want at least %d", len(got), tt.opts.KeepLines)
			}
			for i, text := range got {
				if want := "app[web.1] n " + strconv.Itoa(total-len(got)+i); text != want {
					t.Fatalf("line %d = %q, want %q", i, text, want)
				}
			}
			if err := s.Err(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestOpenRetains checks that Open applies smaller limits to what a Store
// with larger ones left.
func TestOpenRetains(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxFileBytes: 1000, KeepBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, numbered(0, 1000))
	for i := 1000; i < 1100; i++ {
		write(t, s, numbered(i, i+1))
	}
	s.Close()
	opts := Options{MaxFileBytes: 1000, KeepBytes: 2000, KeepLines: 10}
	openStore(t, dir, opts)
	got := read(t, dir, Filter{}, 0)
	if len(got) >= 1100 || len(got) < 10 {
		t.Fatalf("kept %d lines after reopening with %+v", len(got), opts)
	}
	if got[len(got)-1] != "app[web.1] n 1099" {
		t.Errorf("last line %q", got[len(got)-1])
	}
}

// TestStoreConcurrent has 4 goroutines write through the Store and 2 other
// processes Append while the Store rotates every few lines; every line
// must come back whole, once, and in its writer's order.
func TestStoreConcurrent(t *testing.T) {
	const (
		goroutines = 4
		children   = 2
		perWriter  = 5000
	)
	dir := t.TempDir()
	s := openStore(t, dir, Options{MaxFileBytes: 16 << 10, KeepBytes: 1 << 40})

	start := make(chan struct{})
	var cmds []*exec.Cmd
	var stdins []io.WriteCloser
	for c := range children {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|child%d|%d", appenderEnv, dir, c, perWriter))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child runs, so that it appends while the
		// goroutines write rather than after them.
		if l, err := bufio.NewReader(stdout).ReadString('\n'); l != "ready\n" {
			t.Fatalf("child %d: %q, %v", c, l, err)
		}
		cmds = append(cmds, cmd)
		stdins = append(stdins, stdin)
	}

	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("g%d", g)
			// 1 to 3 lines per Write, as the mux batches them.
			for k := 0; k < perWriter; {
				var b []byte
				for range min(k%3+1, perWriter-k) {
					b = append(b, writerLine("web."+strconv.Itoa(g+1), id, k)...)
					k++
				}
				if _, err := s.Write(b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	close(start)
	for _, in := range stdins {
		in.Close()
	}
	wg.Wait()
	for c, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", c, err)
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if n := len(rotatedFiles(t, dir)); n < 10 {
		t.Errorf("only %d rotations", n)
	}

	// Every byte of every file must be whole lines that parse.
	var raw int
	for _, name := range append(rotatedFiles(t, dir), currentName) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s ends inside a line", name)
		}
		for l := range bytes.Lines(b) {
			raw++
			if _, ok := ParseLine(l); !ok {
				t.Fatalf("%s: torn line %q", name, l)
			}
		}
	}
	lines, err := Read(dir, Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	const want = (goroutines + children) * perWriter
	if len(lines) != want || raw != want {
		t.Fatalf("Read %d lines, files hold %d; want %d", len(lines), raw, want)
	}
	next := map[string]int{}
	for _, l := range lines {
		id, rest, _ := strings.Cut(l.Text, " ")
		k, err := strconv.Atoi(strings.Fields(rest)[0])
		if err != nil {
			t.Fatalf("line %q", l.Raw)
		}
		if k != next[id] {
			t.Fatalf("writer %s: line %d after %d", id, k, next[id]-1)
		}
		next[id]++
		if wantRaw := strings.TrimSuffix(string(writerLine(l.Dyno, id, k)), "\n"); string(l.Raw) != wantRaw {
			t.Fatalf("line %q, want %q", l.Raw, wantRaw)
		}
	}
	if len(next) != goroutines+children {
		t.Errorf("writers seen: %v", next)
	}
}

func TestAppendWithoutStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "apps", "x", "logs")
	if got := read(t, dir, Filter{}, 0); len(got) != 0 {
		t.Fatalf("Read of a missing dir: %q", got)
	}
	if err := Append(dir, line("app", "api", "Initial release by user a@b.c")); err != nil {
		t.Fatal(err)
	}
	l := line("app", "api", "Enable Logplex by user a@b.c")
	if err := Append(dir, l[:len(l)-1]); err != nil {
		t.Fatal(err)
	}
	if err := Append(dir, line("app", "api", "Release v2 created by user a@b.c")); err != nil {
		t.Fatal(err)
	}
	equal(t, "lines", read(t, dir, Filter{}, 0), []string{
		"app[api] Initial release by user a@b.c",
		"app[api] Enable Logplex by user a@b.c",
		"app[api] Release v2 created by user a@b.c",
	})
	fi, err := os.Stat(filepath.Join(dir, currentName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("current.log mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestReadSkips(t *testing.T) {
	dir := t.TempDir()
	content := string(line("app", "web.1", "one")) +
		"not a logplex line\n" +
		"\n" +
		string(line("app", "web.1", "two")) +
		"2026-11-26T10:00:00.123456+00:00 app[web.1]: being writ" // no newline yet
	if err := os.WriteFile(filepath.Join(dir, currentName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	equal(t, "lines", read(t, dir, Filter{}, 0), []string{"app[web.1] one", "app[web.1] two"})
	equal(t, "last", read(t, dir, Filter{}, 1), []string{"app[web.1] two"})
}

// TestReadRotatedMeanwhile sets up what Read sees when the Store rotates
// after Read opened current.log: that file is now also 000001.log, and
// 000002.log is newer than what Read opened.
func TestReadRotatedMeanwhile(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk("000001.log", numbered(0, 3))
	mk("000002.log", numbered(3, 6))
	if err := os.Link(filepath.Join(dir, "000002.log"), filepath.Join(dir, currentName)); err != nil {
		t.Fatal(err)
	}
	mk("000003.log", numbered(6, 9))
	equal(t, "lines", read(t, dir, Filter{}, 0), []string{
		"app[web.1] n 0", "app[web.1] n 1", "app[web.1] n 2",
		"app[web.1] n 3", "app[web.1] n 4", "app[web.1] n 5",
	})
}

func TestScanBackward(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, maxLen := range []int{0, 10, 1000, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize} {
		var b []byte
		var want []string
		for range 20 {
			n := 0
			if maxLen > 0 {
				n = r.IntN(maxLen + 1)
			}
			if len(want)%5 == 0 {
				n = maxLen
			}
			l := make([]byte, n)
			for i := range l {
				l[i] = 'a' + byte(r.IntN(26))
			}
			b = append(append(b, l...), '\n')
			want = append(want, string(l))
		}
		tail := []byte("unterminated")
		for _, tt := range []struct {
			b    []byte
			want []string
		}{{b, want}, {append(b, tail...), want}, {tail, nil}, {nil, nil}} {
			var got []string
			err := scanBackward(bytes.NewReader(tt.b), int64(len(tt.b)), func(l []byte) bool {
				got = append(got, string(l))
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
				got[i], got[j] = got[j], got[i]
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") || len(got) != len(tt.want) {
				t.Errorf("max %d: got %d lines, want %d", maxLen, len(got), len(tt.want))
			}
		}
	}
}
