package drain

import (
	"fmt"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	for in, want := range map[string]Line{
		"2010-09-16T15:13:46.677020+00:00 app[web.1]: hello [x]: y": {Time: "2010-09-16T15:13:46.677020+00:00", Source: "app", Proc: "web.1", Msg: "hello [x]: y"},
		"2010-09-16T15:13:46.677020+00:00 heroku[router]: at=info":  {Time: "2010-09-16T15:13:46.677020+00:00", Source: "heroku", Proc: "router", Msg: "at=info"},
		"2010-09-16T15:13:46.677020+00:00 app[api]: ":               {Time: "2010-09-16T15:13:46.677020+00:00", Source: "app", Proc: "api", Msg: ""},
		"not a stored line": {Time: "2025-01-02T03:04:05.000006+00:00", Source: "app", Proc: "-", Msg: "not a stored line"},
	} {
		got := ParseLine([]byte(in), now)
		if fmt.Sprint(got.Time, got.Source, got.Proc, string(got.Msg)) != fmt.Sprint(want.Time, want.Source, want.Proc, string(want.Msg)) {
			t.Errorf("ParseLine(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// The frames are Logplex's: octet-counted, the token as HOSTNAME and
// "- -" for MSGID and SD over syslog, "host" and one "-" over HTTPS;
// app lines at local7, the router's at local3, the rest at local0.
func TestFrames(t *testing.T) {
	t.Parallel()
	ts := "2010-09-16T15:13:46.677020+00:00"
	app := Line{Time: ts, Source: "app", Proc: "web.1", Msg: "héllo"}
	router := Line{Time: ts, Source: "heroku", Proc: "router", Msg: "at=info"}
	sys := Line{Time: ts, Source: "heroku", Proc: "web.1", Msg: "State changed from starting to up"}
	for _, tt := range []struct {
		got, want string
	}{
		{string(appendSyslog(nil, &app, "d.1")), "64 <190>1 " + ts + " d.1 app web.1 - - héllo"},
		{string(appendSyslog(nil, &router, "d.1")), "69 <158>1 " + ts + " d.1 heroku router - - at=info"},
		{string(appendSyslog(nil, &sys, "d.1")), "94 <134>1 " + ts + " d.1 heroku web.1 - - State changed from starting to up"},
		{string(appendHTTP(nil, &app)), "63 <190>1 " + ts + " host app web.1 - héllo"},
	} {
		if tt.got != tt.want {
			t.Errorf("frame\n got %q\nwant %q", tt.got, tt.want)
		}
		var n, off int
		fmt.Sscanf(tt.got, "%d", &n)
		off = len(fmt.Sprint(n)) + 1
		if len(tt.got)-off != n {
			t.Errorf("%q: length %d, frame %d bytes", tt.got, n, len(tt.got)-off)
		}
	}
}

// A full queue drops its oldest lines and counts them; the next take
// begins with the L10 that says how many and since when, and the count
// starts again.
func TestQueueOverflow(t *testing.T) {
	t.Parallel()
	q := newQueue(10)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 25 {
		q.push(Line{Msg: fmt.Sprint(i)}, t0.Add(time.Duration(i)*time.Second))
	}
	got := q.take(4, t0.Add(time.Minute))
	if want := "Error L10 (output buffer overflow): 15 messages dropped since 2025-01-02T03:04:15+00:00."; string(got[0].Msg) != want || got[0].Source != "heroku" || got[0].Proc != "logplex" {
		t.Errorf("first line %+v, want heroku[logplex] %q", got[0], want)
	}
	if len(got) != 4 || string(got[1].Msg) != "15" || string(got[3].Msg) != "17" {
		t.Errorf("took %d lines: %q..%q; want L10 and 15..17", len(got), got[1].Msg, got[len(got)-1].Msg)
	}
	rest := q.take(100, t0)
	if len(rest) != 7 || string(rest[0].Msg) != "18" || string(rest[6].Msg) != "24" || !q.empty() {
		t.Errorf("rest %d lines, want 18..24 and no second L10", len(rest))
	}
}
