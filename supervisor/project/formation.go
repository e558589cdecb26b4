package project

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A Formation maps each process type to the number of its instances to run.
type Formation map[string]int

// MaxCount is the most processes of one type a formation may ask for.
// Foreman numbers ports PORT+100*type+instance, so a 101st instance would
// take the next type's ports; and nothing should allocate in proportion
// to an unchecked number (-m web=99999999).
const MaxCount = 100

// ParseFormation parses a formation such as "web=2,worker=1" or
// "all=0,web=1" for a Procfile declaring types, and returns a count for
// every one of them. As in Foreman, a formation names what runs: a type
// it does not name gets the count of "all=N", or 0 without one, so
// "web=2" runs web.1 and web.2 and nothing else. An empty spec (no -m)
// runs one of each type.
//
// only, when not empty, are the types named on the command line (dyno
// start web worker): the others get 0, and those the spec does not name
// get "all=N", or 1 without one, since naming a type asks for it to run.
// Unknown names in only are the caller's to refuse.
//
// "all" is always the default, never a type, as in Foreman: a Procfile
// type called "all" can only be scaled through it.
func ParseFormation(spec string, types, only []string) (Formation, error) {
	defaultCount := 1
	counts := make(map[string]int)
	if strings.TrimSpace(spec) != "" {
		seenAll := false
		for item := range strings.SplitSeq(spec, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				return nil, fmt.Errorf(`formation: empty item in %q; write it as "web=2,worker=1"`, spec)
			}
			name, countText, ok := strings.Cut(item, "=")
			if !ok {
				return nil, fmt.Errorf(`formation: no "=" in %q; write it as "%s=1"`, item, item)
			}
			name = strings.TrimSpace(name)
			count, err := strconv.Atoi(strings.TrimSpace(countText))
			if err != nil || count < 0 {
				return nil, fmt.Errorf("formation: bad count in %q; want a whole number, 0 or more", item)
			}
			if count > MaxCount {
				return nil, fmt.Errorf("formation: %q asks for %d processes, over the limit of %d of a type; ask for %d or fewer", item, count, MaxCount, MaxCount)
			}
			if name == "all" {
				if seenAll {
					return nil, fmt.Errorf("formation: %q given twice in %q", "all", spec)
				}
				seenAll = true
				defaultCount = count
				continue
			}
			if !slices.Contains(types, name) {
				return nil, unknownTypeError(name, item, types)
			}
			if _, dup := counts[name]; dup {
				return nil, fmt.Errorf("formation: process type %q given twice in %q", name, spec)
			}
			counts[name] = count
		}
		if !seenAll && len(only) == 0 {
			defaultCount = 0
		}
	}

	f := make(Formation, len(types))
	for _, t := range types {
		n, named := counts[t]
		switch {
		case len(only) > 0 && !slices.Contains(only, t):
			f[t] = 0
		case named:
			f[t] = n
		default:
			f[t] = defaultCount
		}
	}
	return f, nil
}

// NotNamedHint is what to add to the error for a formation that runs
// nothing when spec names types but leaves the rest to the default of 0,
// which a user of "-m web=0" may not expect; "" otherwise.
func NotNamedHint(spec string) string {
	if strings.TrimSpace(spec) == "" {
		return ""
	}
	for item := range strings.SplitSeq(spec, ",") {
		if name, _, _ := strings.Cut(item, "="); strings.TrimSpace(name) == "all" {
			return ""
		}
	}
	return " (types -m does not name run none unless all=N gives them a count)"
}

func unknownTypeError(name, item string, types []string) error {
	if len(types) == 0 {
		return fmt.Errorf("formation: unknown process type %q in %q; the Procfile declares none", name, item)
	}
	return fmt.Errorf("formation: unknown process type %q in %q; the Procfile declares %s",
		name, item, strings.Join(types, ", "))
}

// runsAny reports whether the formation runs at least one process.
// It does not sum the counts, which could overflow.
func (f Formation) runsAny() bool {
	for _, n := range f {
		if n > 0 {
			return true
		}
	}
	return false
}

// format returns the formation as "type=N,..." with the types in the
// given order; types missing from f are skipped.
func (f Formation) format(types []string) string {
	items := make([]string, 0, len(types))
	for _, t := range types {
		if n, ok := f[t]; ok {
			items = append(items, t+"="+strconv.Itoa(n))
		}
	}
	return strings.Join(items, ",")
}

// Port returns the port Foreman gives instance (1-based) of the process
// type at typeIndex in the Procfile: each type gets a block of 100 ports
// after base.
func Port(base, typeIndex, instance int) int {
	return base + 100*typeIndex + (instance - 1)
}
