package drain

import (
	"strconv"
	"strings"
	"time"
)

// A Line is one log line as a drain sends it: the parts of a stored
// Logplex line, "TIME SOURCE[PROC]: MSG".
type Line struct {
	Time   string // RFC 3339 with microseconds, as the store has it
	Source string // "app" or "heroku"
	Proc   string // "web.1", "router", "api", "logplex"
	Msg    string
}

// ParseLine splits a stored line (without its newline) into its parts.
// A line not in that form is sent whole as an app line, stamped now,
// rather than lost.
func ParseLine(b []byte, now time.Time) Line {
	// One copy of the line, which the parts share: a drain costs its
	// writer one allocation a line.
	s := string(b)
	sp := strings.IndexByte(s, ' ')
	if sp > 0 {
		rest := s[sp+1:]
		open := strings.IndexByte(rest, '[')
		end := strings.Index(rest, "]: ")
		if open > 0 && end > open && strings.IndexByte(rest[:open], ' ') < 0 {
			return Line{Time: s[:sp], Source: rest[:open], Proc: rest[open+1 : end], Msg: rest[end+3:]}
		}
	}
	return Line{Time: stamp(now), Source: "app", Proc: "-", Msg: s}
}

// stamp is t as Logplex writes times: RFC 3339, microseconds, UTC as
// +00:00.
func stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

// Syslog facilities (RFC 5424) and severity: Logplex sends app lines
// as local7, the router's as local3 and the rest of heroku's as local0,
// all at info.
const (
	local0 = 16
	local3 = 19
	local7 = 23
	info   = 6
)

// pri is the line's PRI value.
func (l *Line) pri() int {
	switch {
	case l.Source == "app":
		return local7*8 + info
	case l.Proc == "router":
		return local3*8 + info
	}
	return local0*8 + info
}

// appendSyslog appends l as an octet-counted (RFC 6587) RFC 5424 frame
// as Logplex sends it to a syslog drain:
//
//	LEN <PRI>1 TIME TOKEN SOURCE PROC - - MSG
//
// with the drain's token as HOSTNAME, no MSGID and no structured data.
func appendSyslog(b []byte, l *Line, token string) []byte {
	return appendFrame(b, l, token, "- - ")
}

// appendHTTP appends l as Logplex frames it in an HTTPS drain's body:
// the literal "host" as HOSTNAME (the token travels in a header) and
// one "-" where syslog has two.
func appendHTTP(b []byte, l *Line) []byte {
	return appendFrame(b, l, "host", "- ")
}

func appendFrame(b []byte, l *Line, host, nils string) []byte {
	var head [64]byte
	h := head[:0]
	h = append(h, '<')
	h = strconv.AppendInt(h, int64(l.pri()), 10)
	h = append(h, ">1 "...)
	n := len(h) + len(l.Time) + 1 + len(host) + 1 + len(l.Source) + 1 + len(l.Proc) + 1 + len(nils) + len(l.Msg)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, ' ')
	b = append(b, h...)
	b = append(b, l.Time...)
	b = append(b, ' ')
	b = append(b, host...)
	b = append(b, ' ')
	b = append(b, l.Source...)
	b = append(b, ' ')
	b = append(b, l.Proc...)
	b = append(b, ' ')
	b = append(b, nils...)
	return append(b, l.Msg...)
}

// overflowLine is Logplex's L10, which a drain receives before the lines
// that follow a drop.
func overflowLine(dropped int, since, now time.Time) Line {
	msg := "Error L10 (output buffer overflow): " + strconv.Itoa(dropped) + " messages dropped since " + since.UTC().Format("2006-01-02T15:04:05+00:00") + "."
	return Line{Time: stamp(now), Source: "heroku", Proc: "logplex", Msg: msg}
}
