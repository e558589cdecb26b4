package logmux

import "fmt"

// Format selects how lines are rendered.
type Format int

const (
	// FormatTerminal renders Foreman-style lines: "HH:MM:SS web.1  | text".
	FormatTerminal Format = iota
	// FormatLogplex renders Logplex lines:
	// "2026-11-26T10:00:00.123456+00:00 app[web.1]: text".
	FormatLogplex
)

// String returns the name ParseFormat accepts for f.
func (f Format) String() string {
	switch f {
	case FormatTerminal:
		return "terminal"
	case FormatLogplex:
		return "logplex"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat returns the Format named s: "terminal" or "logplex".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "terminal":
		return FormatTerminal, nil
	case "logplex":
		return FormatLogplex, nil
	}
	return 0, fmt.Errorf("logmux: unknown log format %q (want \"terminal\" or \"logplex\")", s)
}
