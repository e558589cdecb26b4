package router

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLogLine(t *testing.T) {
	tests := []struct {
		name string
		l    LogLine
		want string
	}{
		{
			name: "served",
			l: LogLine{Method: "GET", Path: "/", Host: "node-hello.localhost:8080", RequestID: "ID", Fwd: "127.0.0.1",
				Dyno: "web.1", Connect: 0, Service: 2 * time.Millisecond, Status: 200, Bytes: 1234, Protocol: "http"},
			want: `at=info method=GET path="/" host=node-hello.localhost request_id=ID fwd="127.0.0.1" dyno=web.1 connect=0ms service=2ms status=200 bytes=1234 protocol=http`,
		},
		{
			name: "H14 keeps empty fields",
			l: LogLine{Code: H14, Method: "GET", Path: "/a?b=c", Host: "h", RequestID: "ID", Fwd: "1.2.3.4, 10.0.0.1",
				Connect: -1, Service: -1, Status: 503, Bytes: -1, Protocol: "https"},
			want: `at=error code=H14 desc="No web processes running" method=GET path="/a?b=c" host=h request_id=ID fwd="1.2.3.4, 10.0.0.1" dyno= connect= service= status=503 bytes= protocol=https`,
		},
		{
			name: "H12 with a dyno",
			l: LogLine{Code: H12, Method: "POST", Path: "/slow", Host: "h", RequestID: "ID", Fwd: "::1",
				Dyno: "web.2", Connect: 1500 * time.Microsecond, Service: 30001 * time.Millisecond, Status: 503, Bytes: 0, Protocol: "http"},
			want: `at=error code=H12 desc="Request timeout" method=POST path="/slow" host=h request_id=ID fwd="::1" dyno=web.2 connect=1ms service=30001ms status=503 bytes=0 protocol=http`,
		},
		{
			name: "H18 begins with sock=backend",
			l: LogLine{Code: H18, Method: "GET", Path: "/", Host: "h", RequestID: "ID", Fwd: "f",
				Dyno: "web.1", Connect: 0, Service: 5 * time.Millisecond, Status: 503, Bytes: 10, Protocol: "http"},
			want: `sock=backend at=error code=H18 desc="Server Request Interrupted" method=GET path="/" host=h request_id=ID fwd="f" dyno=web.1 connect=0ms service=5ms status=503 bytes=10 protocol=http`,
		},
		{
			name: "H27 begins with sock=client, at=warning",
			l: LogLine{Code: H27, Method: "GET", Path: "/", Host: "h", RequestID: "ID", Fwd: "f",
				Dyno: "web.1", Connect: 0, Service: 5 * time.Millisecond, Status: 499, Bytes: 0, Protocol: "http"},
			want: `sock=client at=warning code=H27 desc="Client Request Interrupted" method=GET path="/" host=h request_id=ID fwd="f" dyno=web.1 connect=0ms service=5ms status=499 bytes=0 protocol=http`,
		},
		{
			name: "H26 with its cause",
			l: LogLine{Code: H26, Cause: "bad expect header value: foo", Method: "PUT", Path: "/", Host: "h", RequestID: "ID",
				Fwd: "f", Connect: -1, Service: -1, Status: 417, Bytes: -1, Protocol: "http"},
			want: `at=error code=H26 desc="Request Error" cause="bad expect header value: foo" method=PUT path="/" host=h request_id=ID fwd="f" dyno= connect= service= status=417 bytes= protocol=http`,
		},
		{
			name: "hostile values cannot forge fields or end the line",
			l: LogLine{Method: "GET", Path: "/x\" status=200 dyno=web.9\n at=info\\", Host: "evil host=a.b", RequestID: "ID",
				Fwd: "1.2.3.4\r\n", Dyno: "web.1", Connect: 0, Service: 0, Status: 200, Bytes: 0, Protocol: "http"},
			want: `at=info method=GET path="/x\" status=200 dyno=web.9\x0a at=info\\" host="evil host=a.b" request_id=ID fwd="1.2.3.4\x0d\x0a" dyno=web.1 connect=0ms service=0ms status=200 bytes=0 protocol=http`,
		},
		{
			name: "non-ASCII and empty method",
			l:    LogLine{Path: "/caf\xc3\xa9", Host: "h\x00", RequestID: "ID", Fwd: "f", Connect: -1, Service: -1, Bytes: -1},
			want: `at=info method= path="/caf\xc3\xa9" host="h\x00" request_id=ID fwd="f" dyno= connect= service= status= bytes= protocol=`,
		},
	}
	for _, tt := range tests {
		got := string(tt.l.Append([]byte("prefix: ")))
		if got != "prefix: "+tt.want {
			t.Errorf("%s:\n got %s\nwant prefix: %s", tt.name, got, tt.want)
		}
	}
}

func TestLogLineAllocations(t *testing.T) {
	l := errorLine()
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf = l.Append(buf[:0]) }); n != 0 {
		t.Errorf("LogLine.Append into a large enough buffer: %v allocations, want 0", n)
	}
}

func errorLine() LogLine {
	return LogLine{Code: H12, Method: "GET", Path: "/search?q=a%20b", Host: "node-hello.localhost",
		RequestID: "4b2f3c1e-9d2a-4f6b-8c1d-2e3f4a5b6c7d", Fwd: "203.0.113.7, 127.0.0.1", Dyno: "web.1",
		Connect: time.Millisecond, Service: 30 * time.Second, Status: 503, Bytes: 0, Protocol: "http"}
}

func BenchmarkLogLine(b *testing.B) {
	l := errorLine()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = l.Append(buf[:0])
	}
}

// FuzzLogLine writes lines with arbitrary values and reads them back with
// a logfmt reader: the line must be one line of printable ASCII, have
// exactly Heroku's fields in order, and give back every value unchanged.
func FuzzLogLine(f *testing.F) {
	f.Add("GET", "/", "h", "ID", "1.2.3.4", "web.1", "http", "", uint8(0))
	f.Add("G ET", "/x\" a=b\n", "h=1", "i\\d", "\r", "", "", "c\"", uint8(8))
	f.Fuzz(func(t *testing.T, method, path, host, id, fwd, dyno, proto, cause string, code uint8) {
		l := LogLine{Code: Code(code % uint8(numCodes)), Cause: cause, Method: method, Path: path, Host: host,
			RequestID: id, Fwd: fwd, Dyno: dyno, Connect: 3 * time.Millisecond, Service: -1, Status: 503, Bytes: -1, Protocol: proto}
		line := l.Append(nil)
		for _, c := range line {
			if c < ' ' || c >= 0x7f {
				t.Fatalf("byte %#x in line %q", c, line)
			}
		}
		fields, err := parseLogfmt(string(line))
		if err != nil {
			t.Fatalf("%v in line %q", err, line)
		}
		want := [][2]string{}
		if s := l.Code.Sock(); s != "" {
			want = append(want, [2]string{"sock", s})
		}
		want = append(want, [2]string{"at", l.Code.Level()})
		if l.Code != OK {
			want = append(want, [2]string{"code", l.Code.String()}, [2]string{"desc", l.Code.Desc()})
			if cause != "" {
				want = append(want, [2]string{"cause", cause})
			}
		}
		want = append(want, [][2]string{{"method", method}, {"path", path}, {"host", host}, {"request_id", id},
			{"fwd", fwd}, {"dyno", dyno}, {"connect", "3ms"}, {"service", ""}, {"status", "503"}, {"bytes", ""},
			{"protocol", proto}}...)
		if len(fields) != len(want) {
			t.Fatalf("line %q has %d fields %q, want %d", line, len(fields), fields, len(want))
		}
		for i := range want {
			if fields[i] != want[i] {
				t.Fatalf("line %q field %d is %q, want %q", line, i, fields[i], want[i])
			}
		}
	})
}

// parseLogfmt reads key=value pairs separated by one space, a value bare
// or in quotes with \" \\ and \xHH escapes.
func parseLogfmt(s string) ([][2]string, error) {
	var out [][2]string
	for s != "" {
		key, rest, ok := strings.Cut(s, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return nil, fmt.Errorf("no key=value at %q", s)
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] != '\\' {
					b.WriteByte(rest[i])
					continue
				}
				if i+1 >= len(rest) {
					return nil, fmt.Errorf("escape at end of %q", rest)
				}
				switch rest[i+1] {
				case '"', '\\':
					b.WriteByte(rest[i+1])
					i++
				case 'x':
					if i+3 >= len(rest) {
						return nil, fmt.Errorf("short \\x in %q", rest)
					}
					n, err := strconv.ParseUint(rest[i+2:i+4], 16, 8)
					if err != nil {
						return nil, err
					}
					b.WriteByte(byte(n))
					i += 3
				default:
					return nil, fmt.Errorf("unknown escape in %q", rest)
				}
			}
			if i >= len(rest) {
				return nil, fmt.Errorf("unterminated quote in %q", rest)
			}
			val, rest = b.String(), rest[i+1:]
		} else {
			val, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
			if rest == " " {
				rest = ""
			}
		}
		out = append(out, [2]string{key, val})
		if rest == "" {
			break
		}
		if rest[0] != ' ' {
			return nil, fmt.Errorf("no space after %s=%q", key, val)
		}
		s = rest[1:]
		if s == "" {
			return nil, errors.New("trailing space")
		}
	}
	return out, nil
}
