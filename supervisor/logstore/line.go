package logstore

import (
	"bytes"
	"hash/fnv"
	"strings"
	"time"
)

// A Line is one parsed Logplex line.
type Line struct {
	Time   time.Time
	Source string // "app" or "heroku"
	Dyno   string // "web.1", "run.4711", "api", "router"
	Text   string
	Raw    []byte // the whole line, without its newline
}

// fields locates the parts of a Logplex line without copying or parsing
// the timestamp, so that lines a filter rejects cost no allocation.
type fields struct {
	stamp, source, dyno, text []byte
}

// minStampLen is the length of the shortest RFC 3339 timestamp,
// "2006-01-02T15:04:05Z".
const minStampLen = 20

// split cuts b, a line without its newline, into the fields of
// "<timestamp> <source>[<dyno>]: <text>". It checks the shape only; the
// timestamp is parsed by line.
func split(b []byte) (fields, bool) {
	var f fields
	sp := bytes.IndexByte(b, ' ')
	if sp < minStampLen || b[4] != '-' || b[10] != 'T' {
		return f, false
	}
	f.stamp = b[:sp]
	rest := b[sp+1:]
	open := bytes.IndexByte(rest, '[')
	if open <= 0 {
		return f, false
	}
	f.source = rest[:open]
	if bytes.ContainsAny(f.source, " ]") {
		return f, false
	}
	rest = rest[open+1:]
	// The first ']' ends the dyno name: the text may hold "]: " itself.
	end := bytes.IndexByte(rest, ']')
	if end <= 0 {
		return f, false
	}
	f.dyno = rest[:end]
	if bytes.ContainsAny(f.dyno, " [") {
		return f, false
	}
	rest = rest[end+1:]
	if len(rest) == 0 || rest[0] != ':' {
		return f, false
	}
	rest = rest[1:]
	// An empty message may have lost its trailing space on the way.
	if len(rest) > 0 {
		if rest[0] != ' ' {
			return f, false
		}
		rest = rest[1:]
	}
	f.text = rest
	return f, true
}

// line parses the timestamp and returns the Line, with copies of raw and
// of every field, so that it outlives the buffer it was read from.
func (f *fields) line(raw []byte) (Line, bool) {
	t, err := time.Parse(time.RFC3339Nano, string(f.stamp))
	if err != nil {
		return Line{}, false
	}
	return Line{
		Time:   t,
		Source: intern(f.source),
		Dyno:   string(f.dyno),
		Text:   string(f.text),
		Raw:    bytes.Clone(raw),
	}, true
}

// intern returns the common sources without allocating.
func intern(b []byte) string {
	switch string(b) {
	case "app":
		return "app"
	case "heroku":
		return "heroku"
	}
	return string(b)
}

// ParseLine parses a line in Logplex's format,
// "<RFC 3339 timestamp> <source>[<dyno>]: <text>", with or without its
// newline. It reports false for anything else, including a timestamp that
// is not valid RFC 3339. Raw is a copy: b may be reused.
func ParseLine(b []byte) (Line, bool) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	f, ok := split(b)
	if !ok {
		return Line{}, false
	}
	return f.line(b)
}

// A Filter selects lines the way heroku logs does. The zero Filter
// matches every line.
type Filter struct {
	// Dyno is a process type ("web": web and web.1, web.2, ..., the CLI's
	// --ps) or, with a dot, one dyno ("web.1", the CLI's --dyno). Empty
	// matches every dyno.
	Dyno string
	// Source is "app" or "heroku"; empty matches both.
	Source string
}

// Match reports whether l is selected by f.
func (f Filter) Match(l Line) bool {
	if f.Source != "" && l.Source != f.Source {
		return false
	}
	return f.matchDyno(l.Dyno)
}

func (f Filter) matchDyno(dyno string) bool {
	switch {
	case f.Dyno == "" || dyno == f.Dyno:
		return true
	case strings.Contains(f.Dyno, "."):
		return false
	}
	// A type matches its dynos, "web" matches "web.1", but not another type
	// it happens to prefix, like "web2" or "webhooks.1".
	return len(dyno) > len(f.Dyno) && dyno[len(f.Dyno)] == '.' && dyno[:len(f.Dyno)] == f.Dyno
}

// matchFields is Match for a line that has only been split. The
// conversions do not allocate: the strings do not escape, and dyno names
// of up to 32 bytes fit the runtime's stack buffer.
func (f Filter) matchFields(l *fields) bool {
	if f.Source != "" && string(l.source) != f.Source {
		return false
	}
	return f.matchDyno(string(l.dyno))
}

// stampLayout is how Logplex writes times: microseconds and a numeric
// offset, "+00:00" rather than "Z" for UTC.
const stampLayout = "2006-01-02T15:04:05.000000-07:00"

// Colors is how many colours dyno names are given in logs: the CLI's
// terminal palette and the dashboard's log pane both have this many,
// in the same order (cyan, yellow, green, magenta, blue, then each
// bright).
const Colors = 10

// ColorOf is the colour a dyno's lines get in logs, an index into such
// a palette: always the same for the same name, in every run and in
// both places.
func ColorOf(dyno string) int {
	h := fnv.New32a()
	h.Write([]byte(dyno))
	return int(h.Sum32() % Colors)
}
