package logstore

import (
	"strings"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	east := time.FixedZone("", 5*3600+30*60)
	west := time.FixedZone("", -5*3600)
	tests := []struct {
		in     string
		ok     bool
		time   time.Time
		source string
		dyno   string
		text   string
	}{
		{
			in: "2026-11-26T10:00:00.123456+00:00 app[web.1]: hello world\n", ok: true,
			time: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC), source: "app", dyno: "web.1", text: "hello world",
		},
		{
			in: "2026-11-26T10:00:00.000001+00:00 heroku[web.1]: State changed from starting to up", ok: true,
			time: time.Date(2026, 11, 26, 10, 0, 0, 1000, time.UTC), source: "heroku", dyno: "web.1", text: "State changed from starting to up",
		},
		{
			in: "2026-11-26T10:00:00.5+00:00 app[api]: Release v12 created by user x@y.z", ok: true,
			time: time.Date(2026, 11, 26, 10, 0, 0, 500000000, time.UTC), source: "app", dyno: "api", text: "Release v12 created by user x@y.z",
		},
		{
			in: "2026-11-26T15:30:00.123456+05:30 heroku[router]: at=info method=GET path=\"/\"", ok: true,
			time: time.Date(2026, 11, 26, 15, 30, 0, 123456000, east), source: "heroku", dyno: "router", text: `at=info method=GET path="/"`,
		},
		{
			in: "2026-11-26T05:00:00-05:00 app[run.4711]: no fraction", ok: true,
			time: time.Date(2026, 11, 26, 5, 0, 0, 0, west), source: "app", dyno: "run.4711", text: "no fraction",
		},
		{
			in: "2026-11-26T10:00:00.123456Z heroku[release.3]: Z is RFC 3339 too", ok: true,
			time: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC), source: "heroku", dyno: "release.3", text: "Z is RFC 3339 too",
		},
		{
			in: "2026-11-26T10:00:00.123456+00:00 app[web.1]: a[b]: c ]: d", ok: true,
			time: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC), source: "app", dyno: "web.1", text: "a[b]: c ]: d",
		},
		{
			in: "2026-11-26T10:00:00.123456+00:00 app[web.1]: ", ok: true,
			time: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC), source: "app", dyno: "web.1", text: "",
		},
		{
			in: "2026-11-26T10:00:00.123456+00:00 app[web.1]:", ok: true,
			time: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC), source: "app", dyno: "web.1", text: "",
		},
		{
			in: "2026-11-26T10:00:00.123456+00:00 app[web.1]:  two spaces", ok: true,
			time: time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC), source: "app", dyno: "web.1", text: " two spaces",
		},
		{in: ""},
		{in: "\n"},
		{in: "hello world"},
		{in: "10:00:00 web.1  | terminal format"},
		{in: "2026-11-26T10:00:00.123456+00:00"},
		{in: "2026-11-26T10:00:00.123456+00:00 app"},
		{in: "2026-11-26T10:00:00.123456+00:00 app[web.1] no colon"},
		{in: "2026-11-26T10:00:00.123456+00:00 app[web.1]:no space"},
		{in: "2026-11-26T10:00:00.123456+00:00 app[]: empty dyno"},
		{in: "2026-11-26T10:00:00.123456+00:00 [web.1]: empty source"},
		{in: "2026-11-26T10:00:00.123456+00:00 app[web 1]: space in dyno"},
		{in: "2026-11-26T10:00:00.123456+00:00 my app[web.1]: space in source"},
		{in: "2026-11-26T10:00:00.123456+00:00 app[web.1: unclosed"},
		{in: "2026-11-26 10:00:00.123456+00:00 app[web.1]: space in time"},
		{in: "2026-11-26T10:00:00.123456 app[web.1]: no offset"},
		{in: "2026-13-26T10:00:00.123456+00:00 app[web.1]: month 13"},
		{in: "2026-11-26T25:00:00.123456+00:00 app[web.1]: hour 25"},
		{in: "Nov 26 10:00:00 app[web.1]: syslog time"},
	}
	for _, tt := range tests {
		l, ok := ParseLine([]byte(tt.in))
		if ok != tt.ok {
			t.Errorf("ParseLine(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if !l.Time.Equal(tt.time) {
			t.Errorf("ParseLine(%q) time = %v, want %v", tt.in, l.Time, tt.time)
		}
		_, off := l.Time.Zone()
		if _, want := tt.time.Zone(); off != want {
			t.Errorf("ParseLine(%q) offset = %d, want %d", tt.in, off, want)
		}
		if l.Source != tt.source || l.Dyno != tt.dyno || l.Text != tt.text {
			t.Errorf("ParseLine(%q) = source %q dyno %q text %q, want %q %q %q", tt.in, l.Source, l.Dyno, l.Text, tt.source, tt.dyno, tt.text)
		}
		if want := strings.TrimSuffix(tt.in, "\n"); string(l.Raw) != want {
			t.Errorf("ParseLine(%q) raw = %q, want %q", tt.in, l.Raw, want)
		}
	}
}

func TestParseLineCopies(t *testing.T) {
	b := []byte("2026-11-26T10:00:00.123456+00:00 app[web.1]: hello")
	l, ok := ParseLine(b)
	if !ok {
		t.Fatal("ParseLine failed")
	}
	copy(b, "XXXX")
	if string(l.Raw[:4]) != "2026" {
		t.Errorf("Raw aliases the input: %q", l.Raw)
	}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		f      Filter
		source string
		dyno   string
		want   bool
	}{
		{Filter{}, "app", "web.1", true},
		{Filter{}, "heroku", "router", true},
		{Filter{Dyno: "web"}, "app", "web", true},
		{Filter{Dyno: "web"}, "app", "web.1", true},
		{Filter{Dyno: "web"}, "heroku", "web.12", true},
		{Filter{Dyno: "web"}, "app", "web2", false},
		{Filter{Dyno: "web"}, "app", "web2.1", false},
		{Filter{Dyno: "web"}, "app", "webhooks.1", false},
		{Filter{Dyno: "web"}, "app", "worker.1", false},
		{Filter{Dyno: "web"}, "app", "we", false},
		{Filter{Dyno: "web.1"}, "app", "web.1", true},
		{Filter{Dyno: "web.1"}, "app", "web.12", false},
		{Filter{Dyno: "web.1"}, "app", "web.2", false},
		{Filter{Dyno: "web.1"}, "app", "web", false},
		{Filter{Dyno: "run.4711"}, "app", "run.4711", true},
		{Filter{Dyno: "api"}, "app", "api", true},
		{Filter{Dyno: "router"}, "heroku", "router", true},
		{Filter{Source: "app"}, "app", "web.1", true},
		{Filter{Source: "app"}, "heroku", "web.1", false},
		{Filter{Source: "heroku"}, "heroku", "router", true},
		{Filter{Source: "heroku"}, "app", "api", false},
		{Filter{Source: "heroku", Dyno: "web"}, "heroku", "web.3", true},
		{Filter{Source: "heroku", Dyno: "web"}, "app", "web.3", false},
		{Filter{Source: "app", Dyno: "web.1"}, "app", "web.2", false},
	}
	for _, tt := range tests {
		l := Line{Source: tt.source, Dyno: tt.dyno}
		if got := tt.f.Match(l); got != tt.want {
			t.Errorf("%+v.Match(%s[%s]) = %v, want %v", tt.f, tt.source, tt.dyno, got, tt.want)
		}
		// The byte form used by Read and Hub must agree.
		raw := []byte("2026-11-26T10:00:00.123456+00:00 " + tt.source + "[" + tt.dyno + "]: x")
		fl, ok := split(raw)
		if !ok {
			t.Fatalf("split(%q) failed", raw)
		}
		if got := tt.f.matchFields(&fl); got != tt.want {
			t.Errorf("%+v.matchFields(%s[%s]) = %v, want %v", tt.f, tt.source, tt.dyno, got, tt.want)
		}
	}
}

func TestMatchFieldsAllocs(t *testing.T) {
	fl, _ := split([]byte("2026-11-26T10:00:00.123456+00:00 app[web.1]: x"))
	f := Filter{Dyno: "web", Source: "app"}
	if n := testing.AllocsPerRun(100, func() { f.matchFields(&fl) }); n != 0 {
		t.Errorf("matchFields allocates %v times", n)
	}
}
