package router

import (
	"strconv"
	"time"
)

// LogLine is one request's heroku[router] line. A negative Connect,
// Service or Bytes and a zero Status are written as empty fields
// ("connect="), as Heroku writes an error line for a request that never
// reached a dyno.
type LogLine struct {
	Code      Code   // OK for a request a dyno answered
	Cause     string // H26's cause= (what was wrong), H99's (what failed); else ""
	Method    string
	Path      string // with the query
	Host      string // the Host header; the line leaves out its port
	RequestID string
	Fwd       string // the X-Forwarded-For value
	Dyno      string // "web.1", "" when none served it
	Connect   time.Duration
	Service   time.Duration
	Status    int
	Bytes     int64 // sent to the client by the dyno
	Protocol  string
}

// Append appends the line, without a newline, to dst and returns the
// result, in Heroku's order:
//
//	at=info method=GET path="/" host=app.localhost request_id=ID fwd="127.0.0.1" dyno=web.1 connect=0ms service=2ms status=200 bytes=1234 protocol=http
//	at=error code=H14 desc="No web processes running" method=GET path="/" host=... request_id=... fwd="..." dyno= connect= service= status=503 bytes= protocol=http
//	sock=client at=warning code=H27 desc="Client Request Interrupted" method=...
//
// Values come from the client, so none can forge a field or end the line:
// path, fwd, desc and cause are always quoted; other values are quoted when
// they hold anything but printable ASCII other than space, '"' and '\';
// within quotes '"' and '\' are backslash-escaped and bytes outside
// printable ASCII are written \xHH. Spaces stay inside quotes, as in
// Heroku's fwd="1.2.3.4, 5.6.7.8".
func (l *LogLine) Append(dst []byte) []byte {
	i := info(l.Code)
	if i.sock != "" {
		dst = append(dst, "sock="...)
		dst = append(dst, i.sock...)
		dst = append(dst, ' ')
	}
	dst = append(dst, "at="...)
	dst = append(dst, i.level...)
	if i.name != "" {
		dst = append(dst, " code="...)
		dst = append(dst, i.name...)
		dst = append(dst, " desc="...)
		dst = appendQuoted(dst, i.desc)
		if l.Cause != "" {
			dst = append(dst, " cause="...)
			dst = appendQuoted(dst, l.Cause)
		}
	}
	dst = append(dst, " method="...)
	dst = appendValue(dst, l.Method)
	dst = append(dst, " path="...)
	dst = appendQuoted(dst, l.Path)
	dst = append(dst, " host="...)
	// The hostname alone, as Heroku's lines show the app's host: a
	// request to node-hello.localhost:8080 logs host=node-hello.localhost.
	dst = appendValue(dst, stripPort(l.Host))
	dst = append(dst, " request_id="...)
	dst = appendValue(dst, l.RequestID)
	dst = append(dst, " fwd="...)
	dst = appendQuoted(dst, l.Fwd)
	dst = append(dst, " dyno="...)
	dst = appendValue(dst, l.Dyno)
	dst = append(dst, " connect="...)
	dst = appendMillis(dst, l.Connect)
	dst = append(dst, " service="...)
	dst = appendMillis(dst, l.Service)
	dst = append(dst, " status="...)
	if l.Status != 0 {
		dst = strconv.AppendInt(dst, int64(l.Status), 10)
	}
	dst = append(dst, " bytes="...)
	if l.Bytes >= 0 {
		dst = strconv.AppendInt(dst, l.Bytes, 10)
	}
	dst = append(dst, " protocol="...)
	dst = appendValue(dst, l.Protocol)
	return dst
}

func appendMillis(dst []byte, d time.Duration) []byte {
	if d < 0 {
		return dst
	}
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, "ms"...)
}

// plain reports whether c may stand in an unquoted value.
func plain(c byte) bool {
	return c > ' ' && c < 0x7f && c != '"' && c != '\\'
}

// appendValue writes s bare when every byte is plain, else quoted.
func appendValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			return appendQuoted(dst, s)
		}
	}
	return append(dst, s...)
}

func appendQuoted(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c < 0x7f && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0x0f])
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
