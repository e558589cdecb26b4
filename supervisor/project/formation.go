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
// every one of them. "all=N" sets the count of the types not named
// (Foreman's default is all=1, which an empty spec means); "type=0"
// leaves a type out.
//
// "all" is always the default, never a type, as in Foreman: a Procfile
// type called "all" can only be scaled through it.
func ParseFormation(spec string, types []string) (Formation, error) {
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
	}

	f := make(Formation, len(types))
	for _, t := range types {
		if n, ok := counts[t]; ok {
			f[t] = n
		} else {
			f[t] = defaultCount
		}
	}
	return f, nil
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
