package logmux

import (
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Options configure a Mux.
type Options struct {
	Format    Format
	Color     bool // terminal format only: one colour per process type
	Timestamp bool // terminal format only: the "HH:MM:SS " column

	// Types lists the process types in Procfile order. A type's colour is
	// picked by its position in Foreman's palette (cyan, yellow, green,
	// magenta, red, blue, then again); types not listed get the colours
	// after these, in the order they first appear.
	Types []string

	// Names lists every name that will appear ("web.1", "run.1"). The name
	// column is as wide as the longest of them and "system", and at least 6.
	Names []string

	// FlushDelay is how long a partial line (no newline yet) waits for
	// more data before it is written as a line. Zero means 100ms.
	FlushDelay time.Duration

	// Now returns the time of a line. Nil means time.Now. Timestamps are
	// rendered in the location of the returned time, so time.Now gives
	// local time.
	Now func() time.Time
}

const (
	defaultFlushDelay = 100 * time.Millisecond
	minNameWidth      = 6
	systemName        = "system"

	sgrReset  = "\x1b[0m"
	sgrSystem = "\x1b[1m" // bold white
)

// palette is Foreman's: cyan, yellow, green, magenta, red, blue.
var palette = [...]string{"\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[31m", "\x1b[34m"}

// A Mux writes formatted lines from many sources to one writer. Each Write
// to the writer holds whole lines only, and Writes never overlap.
type Mux struct {
	format     Format
	color      bool
	stamped    bool // lines carry a timestamp column
	width      int  // terminal name column width
	flushDelay time.Duration
	now        func() time.Time

	failed atomic.Bool // the output failed: stop formatting, only drain

	mu    sync.Mutex
	w     io.Writer
	err   error          // first output error
	types map[string]int // process type -> palette index
	stamp stamp          // for System and Line
	buf   []byte         // for System and Line

	routerOnce sync.Once
	router     lineFormat // Router's, made at its first line
}

// New returns a Mux writing to w.
func New(w io.Writer, opts Options) *Mux {
	m := &Mux{
		format:     opts.Format,
		color:      opts.Color && opts.Format == FormatTerminal,
		stamped:    opts.Format == FormatLogplex || opts.Timestamp,
		width:      minNameWidth,
		flushDelay: opts.FlushDelay,
		now:        opts.Now,
		w:          w,
		types:      make(map[string]int, len(opts.Types)),
	}
	if m.flushDelay <= 0 {
		m.flushDelay = defaultFlushDelay
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.stamp.format = m.format
	m.width = max(m.width, len(systemName))
	for _, name := range opts.Names {
		m.width = max(m.width, utf8.RuneCountInString(name))
	}
	for _, t := range opts.Types {
		if _, ok := m.types[t]; !ok {
			m.types[t] = len(m.types)
		}
	}
	return m
}

// Err returns the first error the output returned, after which all output
// is dropped, or nil.
func (m *Mux) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// System writes a line of the dyno manager about the dyno name, or about
// the manager as a whole when name is "".
func (m *Mux) System(name, text string) {
	if m.failed.Load() {
		return
	}
	var lf lineFormat
	body := text
	if m.format == FormatLogplex {
		if name == "" {
			name = "dyno"
		}
		lf.label = []byte("heroku[" + name + "]: ")
	} else {
		if m.color {
			lf.color = sgrSystem
		}
		lf.label = m.terminalLabel(systemName)
		if name != "" {
			body = name + ": " + text
		}
	}
	m.writeText(&lf, []byte(body))
}

// Router writes heroku[router] lines: one, or a batch of them separated
// by newlines, in one write. Unlike System it allocates nothing, since
// the router writes a line per request.
func (m *Mux) Router(text []byte) {
	if m.failed.Load() {
		return
	}
	m.routerOnce.Do(func() {
		if m.format == FormatLogplex {
			m.router.label = []byte("heroku[router]: ")
			return
		}
		if m.color {
			m.router.color = sgrSystem
		}
		m.router.label = append(m.terminalLabel(systemName), "router: "...)
	})
	m.writeText(&m.router, text)
}

// Line writes text as an app line of the dyno name. A text holding
// newlines is written as several lines.
func (m *Mux) Line(name string, text []byte) {
	if m.failed.Load() {
		return
	}
	lf := m.appFormat(name)
	m.writeText(&lf, text)
}

func (m *Mux) writeText(lf *lineFormat, text []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var t time.Time
	if m.stamped {
		t = m.now()
	}
	b := m.buf[:0]
	splitText(text, func(line []byte) {
		b = m.appendLine(b, lf, &m.stamp, t, line)
	})
	m.writeLocked(b)
	m.buf = b
}

// write writes p, whole formatted lines, to the output.
func (m *Mux) write(p []byte) {
	m.mu.Lock()
	m.writeLocked(p)
	m.mu.Unlock()
}

func (m *Mux) writeLocked(p []byte) {
	if m.err != nil || len(p) == 0 {
		return
	}
	if _, err := m.w.Write(p); err != nil {
		// A closed terminal or a reader gone away will not come back;
		// keep the sources draining and drop what follows.
		m.err = err
		m.failed.Store(true)
	}
}

// lineFormat holds the parts of a line that are the same for every line
// of one name, built once so formatting a line is a few appends.
type lineFormat struct {
	color string // SGR sequence opening the prefix; "" without colour
	label []byte // terminal: padded name, " | ", reset; logplex: "app[web.1]: "
}

// appFormat returns the line format of app lines of the dyno name.
func (m *Mux) appFormat(name string) lineFormat {
	if m.format == FormatLogplex {
		return lineFormat{label: []byte("app[" + name + "]: ")}
	}
	var lf lineFormat
	if m.color {
		lf.color = m.typeColor(processType(name))
	}
	lf.label = m.terminalLabel(name)
	return lf
}

// terminalLabel returns name padded to the column width, the separator,
// and the colour reset when colour is on.
func (m *Mux) terminalLabel(name string) []byte {
	pad := max(m.width-utf8.RuneCountInString(name), 0)
	label := name + strings.Repeat(" ", pad) + " | "
	if m.color {
		label += sgrReset
	}
	return []byte(label)
}

// typeColor returns the colour of a process type, giving a type not in
// Options.Types the next colour on first sight.
func (m *Mux) typeColor(typ string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.types[typ]
	if !ok {
		i = len(m.types)
		m.types[typ] = i
	}
	return palette[i%len(palette)]
}

// processType returns the type part of a dyno name: "web" for "web.1".
func processType(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

// appendLine appends one formatted line. t is only used when lines carry
// a timestamp.
func (m *Mux) appendLine(b []byte, lf *lineFormat, st *stamp, t time.Time, text []byte) []byte {
	b = append(b, lf.color...)
	if m.stamped {
		b = st.append(b, t)
	}
	b = append(b, lf.label...)
	b = append(b, text...)
	return append(b, '\n')
}
