package logmux

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{FormatTerminal, FormatLogplex} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v, nil", f.String(), got, err, f)
		}
	}
	_, err := ParseFormat("json")
	if err == nil {
		t.Fatal(`ParseFormat("json") succeeded`)
	}
	for _, s := range []string{`"json"`, "terminal", "logplex"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

// fixed is 2026-11-26 10:00:00.123456789 UTC.
var fixed = time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)

func pin(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestFormats(t *testing.T) {
	const (
		cyan    = "\x1b[36m"
		yellow  = "\x1b[33m"
		green   = "\x1b[32m"
		magenta = "\x1b[35m"
		bold    = "\x1b[1m"
		reset   = "\x1b[0m"
	)
	type call struct {
		system bool // System instead of Line
		name   string
		text   string
	}
	line := func(name, text string) call { return call{name: name, text: text} }
	system := func(name, text string) call { return call{system: true, name: name, text: text} }

	tests := []struct {
		name  string
		opts  Options
		calls []call
		want  string
	}{{
		name:  "terminal minimum width",
		opts:  Options{Names: []string{"web.1"}},
		calls: []call{line("web.1", "hello"), line("web.1", "")},
		want:  "web.1  | hello\nweb.1  | \n",
	}, {
		name:  "terminal no names",
		calls: []call{line("a.1", "x")},
		want:  "a.1    | x\n",
	}, {
		name:  "terminal width of longest name",
		opts:  Options{Names: []string{"web.1", "scheduler.10"}},
		calls: []call{line("web.1", "a"), line("scheduler.10", "b"), system("web.1", "up")},
		want:  "web.1        | a\nscheduler.10 | b\nsystem       | web.1: up\n",
	}, {
		name:  "terminal timestamp",
		opts:  Options{Timestamp: true, Names: []string{"web.1"}, Now: pin(fixed)},
		calls: []call{line("web.1", "hello")},
		want:  "10:00:00 web.1  | hello\n",
	}, {
		name:  "terminal timestamp in the clock's zone",
		opts:  Options{Timestamp: true, Now: pin(fixed.In(time.FixedZone("x", -5*3600)))},
		calls: []call{line("web.1", "hello")},
		want:  "05:00:00 web.1  | hello\n",
	}, {
		name: "terminal system lines",
		opts: Options{Now: pin(fixed)},
		calls: []call{
			system("web.1", "Starting process with command `bin/web`"),
			system("", "Shutting down"),
		},
		want: "system | web.1: Starting process with command `bin/web`\nsystem | Shutting down\n",
	}, {
		name: "terminal colour",
		opts: Options{Color: true, Timestamp: true, Now: pin(fixed),
			Types: []string{"web", "worker"}, Names: []string{"web.1", "worker.1"}},
		calls: []call{
			line("web.1", "a"),
			line("worker.1", "b"),
			line("clock.1", "c"), // unknown: the colour after the listed types
			line("web.2", "d"),
			line("run.1", "e"), // second unknown: the next colour
			line("clock.2", "f"),
			system("web.1", "crashed"),
		},
		want: cyan + "10:00:00 web.1    | " + reset + "a\n" +
			yellow + "10:00:00 worker.1 | " + reset + "b\n" +
			green + "10:00:00 clock.1  | " + reset + "c\n" +
			cyan + "10:00:00 web.2    | " + reset + "d\n" +
			magenta + "10:00:00 run.1    | " + reset + "e\n" +
			green + "10:00:00 clock.2  | " + reset + "f\n" +
			bold + "10:00:00 system   | " + reset + "web.1: crashed\n",
	}, {
		name:  "terminal colour without timestamp",
		opts:  Options{Color: true, Types: []string{"web"}},
		calls: []call{line("web.1", "a")},
		want:  cyan + "web.1  | " + reset + "a\n",
	}, {
		name:  "terminal colour cycles",
		opts:  Options{Color: true, Types: []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"}},
		calls: []call{line("t5.1", "a"), line("t6.1", "b"), line("t7.1", "c")},
		want: "\x1b[34mt5.1   | " + reset + "a\n" +
			cyan + "t6.1   | " + reset + "b\n" +
			yellow + "t7.1   | " + reset + "c\n",
	}, {
		name:  "terminal colour of a name without a dot",
		opts:  Options{Color: true, Types: []string{"web", "release"}},
		calls: []call{line("release", "x")},
		want:  yellow + "release | " + reset + "x\n",
	}, {
		name:  "logplex",
		opts:  Options{Format: FormatLogplex, Now: pin(fixed)},
		calls: []call{line("web.1", "hello"), system("web.1", "State changed from starting to up"), system("", "bye")},
		want: "2026-11-26T10:00:00.123456+00:00 app[web.1]: hello\n" +
			"2026-11-26T10:00:00.123456+00:00 heroku[web.1]: State changed from starting to up\n" +
			"2026-11-26T10:00:00.123456+00:00 heroku[dyno]: bye\n",
	}, {
		name:  "logplex negative offset",
		opts:  Options{Format: FormatLogplex, Now: pin(fixed.In(time.FixedZone("x", -5*3600)))},
		calls: []call{line("web.1", "hello")},
		want:  "2026-11-26T05:00:00.123456-05:00 app[web.1]: hello\n",
	}, {
		name:  "logplex half-hour offset",
		opts:  Options{Format: FormatLogplex, Now: pin(fixed.In(time.FixedZone("x", 5*3600+1800)))},
		calls: []call{line("web.1", "hello")},
		want:  "2026-11-26T15:30:00.123456+05:30 app[web.1]: hello\n",
	}, {
		name:  "logplex whole second",
		opts:  Options{Format: FormatLogplex, Now: pin(time.Date(2026, 1, 2, 3, 4, 5, 999, time.UTC))},
		calls: []call{line("web.1", "x")},
		want:  "2026-01-02T03:04:05.000000+00:00 app[web.1]: x\n",
	}, {
		name:  "logplex ignores colour and timestamp options",
		opts:  Options{Format: FormatLogplex, Color: true, Types: []string{"web"}, Now: pin(fixed)},
		calls: []call{line("web.1", "x")},
		want:  "2026-11-26T10:00:00.123456+00:00 app[web.1]: x\n",
	}, {
		name:  "text passes through",
		calls: []call{line("web.1", "a\r"), line("web.1", "\xff\xfe"), line("web.1", "\t\x1b[31mred")},
		want:  "web.1  | a\r\nweb.1  | \xff\xfe\nweb.1  | \t\x1b[31mred\n",
	}, {
		name:  "newlines in text make lines",
		calls: []call{line("web.1", "a\nb\n"), system("", "c\nd")},
		want:  "web.1  | a\nweb.1  | b\nsystem | c\nsystem | d\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m := New(&out, tt.opts)
			for _, c := range tt.calls {
				if c.system {
					m.System(c.name, c.text)
				} else {
					m.Line(c.name, []byte(c.text))
				}
			}
			if got := out.String(); got != tt.want {
				t.Errorf("output:\n%q\nwant:\n%q", got, tt.want)
			}
		})
	}
}

func TestLongLineSplit(t *testing.T) {
	var out bytes.Buffer
	m := New(&out, Options{Format: FormatLogplex, Now: pin(fixed)})
	m.Line("web.1", bytes.Repeat([]byte("z"), MaxLineBytes+1))
	const ts = "2026-11-26T10:00:00.123456+00:00 app[web.1]: "
	want := ts + strings.Repeat("z", MaxLineBytes) + "\n" + ts + "z\n"
	if out.String() != want {
		t.Errorf("output is %d bytes, want %d: %.80q", out.Len(), len(want), out.String())
	}
}

func TestStamp(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	utc := time.Date(2026, 3, 8, 6, 59, 59, 999999000, time.UTC)
	steps := []struct {
		t    time.Time
		want string
	}{
		{utc, "2026-03-08T06:59:59.999999+00:00 "},
		{utc.Add(-999998 * time.Microsecond), "2026-03-08T06:59:59.000001+00:00 "}, // same second, cached
		{utc.Add(time.Microsecond), "2026-03-08T07:00:00.000000+00:00 "},           // next second
		{utc.In(est), "2026-03-08T01:59:59.999999-05:00 "},                         // same second, other zone
		{utc.Add(-time.Hour).In(est), "2026-03-08T00:59:59.999999-05:00 "},
	}
	c := stamp{format: FormatLogplex}
	for _, s := range steps {
		if got := string(c.append(nil, s.t)); got != s.want {
			t.Errorf("stamp of %v = %q, want %q", s.t, got, s.want)
		}
	}

	// A zone whose offset changes: the cache must follow it even though
	// the location stays the same.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no zone database: %v", err)
	}
	dst := time.Date(2026, 3, 8, 6, 59, 59, 500000000, time.UTC) // 01:59:59 EST, then 03:00:00 EDT
	c = stamp{format: FormatLogplex}
	for _, s := range []struct {
		t    time.Time
		want string
	}{
		{dst.In(ny), "2026-03-08T01:59:59.500000-05:00 "},
		{dst.Add(time.Second).In(ny), "2026-03-08T03:00:00.500000-04:00 "},
	} {
		if got := string(c.append(nil, s.t)); got != s.want {
			t.Errorf("stamp of %v = %q, want %q", s.t, got, s.want)
		}
	}

	c = stamp{format: FormatTerminal}
	if got := string(c.append(nil, utc.In(est))); got != "01:59:59 " {
		t.Errorf("terminal stamp = %q, want %q", got, "01:59:59 ")
	}
}

func TestLineAllocs(t *testing.T) {
	m := New(nopWriter{}, Options{Format: FormatLogplex})
	s := stamp{format: FormatLogplex}
	lf := m.appFormat("web.1")
	text := []byte(strings.Repeat("y", 80))
	buf := make([]byte, 0, 4096)
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		buf = m.appendLine(buf[:0], &lf, &s, now, text)
	})
	if allocs != 0 {
		t.Errorf("appendLine allocates %v times per line, want 0", allocs)
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestRouterLine(t *testing.T) {
	var out bytes.Buffer
	fixed := time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC)
	m := New(&out, Options{Format: FormatLogplex, Now: func() time.Time { return fixed }})
	line := []byte(`at=info method=GET path="/" status=200`)
	m.Router(line)
	if want := "2026-11-26T10:00:00.123456+00:00 heroku[router]: " + string(line) + "\n"; out.String() != want {
		t.Fatalf("logplex: %q, want %q", out.String(), want)
	}
	if n := testing.AllocsPerRun(100, func() { m.Router(line) }); n != 0 {
		t.Errorf("Router allocates %v times a line", n)
	}
	out.Reset()
	New(&out, Options{}).Router(line)
	if want := "system | router: " + string(line) + "\n"; out.String() != want {
		t.Fatalf("terminal: %q, want %q", out.String(), want)
	}

	// A batch, as the router's journal hands it: each line stamped, all
	// of them in one write.
	var w countingWriter
	m = New(&w, Options{Format: FormatLogplex, Now: func() time.Time { return fixed }})
	m.Router([]byte("at=info a\nat=info b\n"))
	stamp := "2026-11-26T10:00:00.123456+00:00 heroku[router]: "
	if want := stamp + "at=info a\n" + stamp + "at=info b\n"; w.String() != want || w.writes != 1 {
		t.Fatalf("batch: %d writes of %q, want 1 of %q", w.writes, w.String(), want)
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}
