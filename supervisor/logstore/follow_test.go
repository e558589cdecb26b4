package logstore

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func texts(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Source + "[" + l.Dyno + "] " + l.Text
	}
	return out
}

func next(t *testing.T, c *Cursor) []string {
	t.Helper()
	lines, err := c.Next()
	if err != nil {
		t.Fatal(err)
	}
	return texts(lines)
}

// History and the cursor meet exactly: the lines written after Follow
// come from Next, those before from the history, each once, whoever
// wrote them.
func TestFollowHistoryThenNew(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	write(t, s, numbered(0, 3))
	hist, c, err := Follow(dir, Filter{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	equal(t, "history", texts(hist), []string{"app[web.1] n 1", "app[web.1] n 2"})
	equal(t, "nothing new", next(t, c), nil)
	write(t, s, numbered(3, 4))
	if err := AppendLines(dir, "app", "api", time.Now(), "Set FOO config vars by user ann"); err != nil {
		t.Fatal(err)
	}
	equal(t, "new", next(t, c), []string{"app[web.1] n 3", "app[api] Set FOO config vars by user ann"})
	equal(t, "read once", next(t, c), nil)
}

// A line is returned once whole, not while it is being written.
func TestFollowWaitsForWholeLines(t *testing.T) {
	dir := t.TempDir()
	_, c, err := Follow(dir, Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	equal(t, "no store yet", next(t, c), nil)
	l := line("heroku", "run.1234", "State changed from starting to up")
	f, err := os.OpenFile(filepath.Join(dir, currentName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(l[:10])
	equal(t, "half a line", next(t, c), nil)
	f.Write(l[10:])
	equal(t, "whole", next(t, c), []string{"heroku[run.1234] State changed from starting to up"})
}

// A line half written when the tail starts is not in the history, and
// the cursor returns it once it is whole: a writer between two writes,
// or a daemon killed mid-line, loses nothing.
func TestFollowStartsMidLine(t *testing.T) {
	dir := t.TempDir()
	first := line("app", "web.1", "first")
	second := line("app", "web.1", "second")
	f, err := os.OpenFile(filepath.Join(dir, currentName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(first)
	f.Write(second[:7])
	history, c, err := Follow(dir, Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(history) != 1 || history[0].Text != "first" {
		t.Errorf("history = %+v; want the first line only", history)
	}
	equal(t, "half a line", next(t, c), nil)
	f.Write(second[7:])
	equal(t, "whole", next(t, c), []string{"app[web.1] second"})
}

// Rotations between two calls, several of them, lose nothing and
// repeat nothing; the filter applies.
func TestFollowAcrossRotations(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{MaxFileBytes: 300, KeepBytes: 1 << 20, KeepLines: 1 << 20})
	_, c, err := Follow(dir, Filter{Dyno: "web"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got, want []string
	for i := range 200 {
		write(t, s, line("app", "web.1", "n "+strconv.Itoa(i)))
		write(t, s, line("app", "worker.1", "w "+strconv.Itoa(i)))
		want = append(want, "app[web.1] n "+strconv.Itoa(i))
		// Sometimes after every line, sometimes after several files.
		if i%7 == 0 || i%50 == 49 {
			got = append(got, next(t, c)...)
		}
	}
	got = append(got, next(t, c)...)
	if len(rotatedFiles(t, dir)) < 10 {
		t.Fatalf("only %d rotations", len(rotatedFiles(t, dir)))
	}
	equal(t, "across rotations", got, want)
}

// A line longer than the read buffer comes whole.
func TestFollowLongLine(t *testing.T) {
	dir := t.TempDir()
	_, c, err := Follow(dir, Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	text := strings.Repeat("abcdefgh", 3*chunkSize/8)
	Append(dir, line("app", "web.1", text))
	got := next(t, c)
	if len(got) != 1 || got[0] != "app[web.1] "+text {
		t.Fatalf("got %d lines", len(got))
	}
}
