package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor/daemon"
)

// ps colours states as heroku ps does; without colour, no codes.
func TestPsStateColors(t *testing.T) {
	t.Parallel()
	now := time.Now()
	dynos := []daemon.Dyno{
		{Name: "web.1", Type: "web", State: "up", Size: "Standard-1X", Command: "w", UpdatedAt: now},
		{Name: "web.2", Type: "web", State: "crashed", Size: "Standard-1X", Command: "w", UpdatedAt: now},
		{Name: "web.3", Type: "web", State: "starting", Size: "Standard-1X", Command: "w", UpdatedAt: now},
	}
	var b strings.Builder
	printPs(&b, colors{on: true}, "demo", dynos, now)
	for _, want := range []string{"web.1: \x1b[32mup\x1b[0m ", "web.2: \x1b[31mcrashed\x1b[0m ", "web.3: \x1b[33mstarting\x1b[0m ",
		"\x1b[2m=== \x1b[0m\x1b[1mweb (Standard-1X): w (3)\x1b[0m\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("ps lacks %q:\n%q", want, b.String())
		}
	}
	b.Reset()
	printPs(&b, colors{}, "demo", dynos, now)
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("ps without colour: %q", b.String())
	}
}

// A dyno keeps its colour; a line split across writes is coloured whole.
func TestLogWriterColorsWholeLines(t *testing.T) {
	t.Parallel()
	c := colors{on: true}
	var b strings.Builder
	w := &logWriter{c: c, w: &b}
	line := "2026-01-01T00:00:00.000000+00:00 app[web.1]: hi"
	w.Write([]byte(line[:20]))
	w.Write([]byte(line[20:] + "\n" + line))
	w.Flush()
	want := c.dyno("web.1", "2026-01-01T00:00:00.000000+00:00 app[web.1]:") + " hi"
	if b.String() != want+"\n"+want {
		t.Errorf("got %q, want %q twice", b.String(), want)
	}
	if c.dyno("web.1", "x") != c.dyno("web.1", "x") || c.dyno("web.1", "x") == c.dyno("worker.1", "x") && c.dyno("web.2", "x") == c.dyno("web.1", "x") {
		t.Error("dyno colours are not stable or all the same")
	}
}
