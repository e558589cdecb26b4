package main

import (
	"bytes"
	"io"
	"os"
	"regexp"

	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// colors is the one place that decides whether a command's output is
// coloured, and how: as Heroku's CLI colours it (⬢ app names, === headers,
// dyno states, a colour per dyno in logs).
type colors struct{ on bool }

// newColors colours cmd's output only when it goes to a terminal that is
// not "dumb", NO_COLOR is not set (to any value) and --no-color was not
// given.
func newColors(cmd *cobra.Command) colors {
	noColor, _ := cmd.Flags().GetBool("no-color")
	return colors{on: colorAllowed(noColor, cmd.OutOrStdout())}
}

func colorAllowed(noColor bool, w io.Writer) bool {
	if noColor || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// useColor is colorAllowed for stdout, for the Procfile runner's log
// multiplexer.
func useColor(noColor bool) bool { return colorAllowed(noColor, os.Stdout) }

const (
	sgrReset   = "\x1b[0m"
	sgrBold    = "\x1b[1m"
	sgrDim     = "\x1b[2m"
	sgrRed     = "\x1b[31m"
	sgrGreen   = "\x1b[32m"
	sgrYellow  = "\x1b[33m"
	sgrMagenta = "\x1b[35m"
)

// dynoPalette is the colours dyno names are given in logs
// (logstore.Colors of them, in its order): no red, which says error.
var dynoPalette = []string{"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[93m", "\x1b[92m", "\x1b[95m", "\x1b[94m"}

func (c colors) paint(sgr, s string) string {
	if !c.on {
		return s
	}
	return sgr + s + sgrReset
}

// app is "⬢ name", in Heroku's purple.
func (c colors) app(name string) string { return c.paint(sgrMagenta, "⬢ "+name) }

// header is "=== text", the Heroku CLI's styled header.
func (c colors) header(text string) string {
	if !c.on {
		return "=== " + text
	}
	return sgrDim + "=== " + sgrReset + sgrBold + text + sgrReset
}

// state is a dyno state as heroku ps colours it.
func (c colors) state(s string) string {
	switch s {
	case "up", "complete":
		return c.paint(sgrGreen, s)
	case "crashed", "down":
		return c.paint(sgrRed, s)
	case "starting", "restarting", "idle":
		return c.paint(sgrYellow, s)
	}
	return s
}

// dyno paints text in the colour of the dyno name: always the same for
// the same name, in this run and the next.
func (c colors) dyno(name, text string) string {
	return c.paint(dynoPalette[logstore.ColorOf(name)], text)
}

// logHeader is a Logplex line's "time source[dyno]:" part.
var logHeader = regexp.MustCompile(`^(\S+ [\w-]+\[([\w.-]+)\]:)(.*)$`)

// logLine colours a Logplex line's header in its dyno's colour.
func (c colors) logLine(line string) string {
	if !c.on {
		return line
	}
	m := logHeader.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	return c.dyno(m[2], m[1]) + m[3]
}

// logWriter colours each whole Logplex line written through it; a
// partial line waits for its end (or Flush).
type logWriter struct {
	c    colors
	w    io.Writer
	part []byte
}

func (l *logWriter) Write(p []byte) (int, error) {
	if !l.c.on {
		return l.w.Write(p)
	}
	l.part = append(l.part, p...)
	var out bytes.Buffer
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		out.WriteString(l.c.logLine(string(l.part[:i])))
		out.WriteByte('\n')
		l.part = l.part[i+1:]
	}
	if _, err := l.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a last line that had no newline.
func (l *logWriter) Flush() error {
	if len(l.part) == 0 {
		return nil
	}
	_, err := l.w.Write([]byte(l.c.logLine(string(l.part))))
	l.part = nil
	return err
}

// isTerminal reports whether r is a terminal: a prompt is only shown to
// someone who can answer it.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
