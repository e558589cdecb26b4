package app

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dyno-run/dyno/ledger"
)

// DefaultSize is a dyno's size when the formation names none.
const DefaultSize = "standard-1x"

// FormationOf is the formation of rel: the recorded one (ps:scale), else
// Heroku's first-deploy default, web at 1 and every other type at 0.
// Types rel lacks are left out; the release type never forms dynos.
func FormationOf(recorded ledger.Formation, rel *ledger.Release) ledger.Formation {
	f := ledger.Formation{}
	if rel == nil {
		return f
	}
	for _, t := range FormationTypes(rel) {
		e, ok := recorded[t]
		if !ok {
			e = ledger.FormationEntry{}
			if recorded == nil && t == "web" {
				e.Quantity = 1
			}
		}
		if e.Size == "" {
			e.Size = DefaultSize
		}
		f[t] = e
	}
	return f
}

// FormationTypes are rel's process types that make formation dynos, in
// port order (the release type is the release phase's).
func FormationTypes(rel *ledger.Release) []string {
	return slices.DeleteFunc(ProcessTypeNames(rel.ProcessTypes), func(t string) bool { return t == "release" })
}

// Scale is one ps:scale argument: web=3, worker+1, web-1, web=2:standard-2x.
type Scale struct {
	Type string
	Op   byte // '=', '+' or '-'
	N    int
	Size string // "" keeps the type's size
}

var scalePattern = regexp.MustCompile(`^([-\w]+)([=+-])(\d+)(?::([-\w]+))?$`)

// ParseScale reads ps:scale's arguments, Heroku's grammar.
func ParseScale(args []string) ([]Scale, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("say what to scale, like web=2 worker+1 web=2:standard-2x")
	}
	var out []Scale
	for _, a := range args {
		m := scalePattern.FindStringSubmatch(a)
		if m == nil {
			return nil, fmt.Errorf("%q is not a scale; write TYPE=N, TYPE+N or TYPE-N, with :SIZE if you like (web=2:standard-2x)", a)
		}
		// The limit itself is ApplyScale's; this only keeps the number
		// an int.
		n, err := strconv.Atoi(m[3])
		if err != nil || n > 1_000_000 {
			return nil, fmt.Errorf("%q: too many dynos; the limit is %d of a type unless formation.max_quantity in dyno.toml raises it", a, DefaultMaxQuantity)
		}
		out = append(out, Scale{Type: m[1], Op: m[2][0], N: n, Size: strings.ToLower(m[4])})
	}
	return out, nil
}

// ApplyScale records a new formation: the current one with changes
// applied. A type the current release lacks, an unknown size, a count
// below 0 or one over the limit (MaxQuantity) is refused with nothing
// written. The limit is checked here, where every formation is recorded,
// so the CLI and the API cannot differ.
func (a *App) ApplyScale(changes []Scale, sizes []string, user string) (ledger.Formation, error) {
	max, err := a.home.MaxQuantity()
	if err != nil {
		return nil, err
	}
	var out ledger.Formation
	_, err = a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		if s.Current == nil || s.Current.Slug == "" {
			return nil, fmt.Errorf("%s has no release with code yet; build one with dyno build -a %s", a.Name, a.Name)
		}
		f := FormationOf(s.Formation, s.Current)
		for _, c := range changes {
			e, ok := f[c.Type]
			if !ok {
				return nil, fmt.Errorf("%s is not a process type of %s v%d; it has %s", c.Type, a.Name, s.Current.Version, strings.Join(FormationTypes(s.Current), ", "))
			}
			switch c.Op {
			case '=':
				e.Quantity = c.N
			case '+':
				e.Quantity += c.N
			case '-':
				e.Quantity -= c.N
			}
			if e.Quantity < 0 {
				return nil, fmt.Errorf("%s would have %d dynos; there are %d", c.Type, e.Quantity, f[c.Type].Quantity)
			}
			if e.Quantity > max {
				return nil, limitError(fmt.Sprintf("%s would have %d dynos, over the limit of %d of a type; scale to %d or fewer, or raise formation.max_quantity in %s",
					c.Type, e.Quantity, max, max, a.home.SizesFile()))
			}
			if c.Size != "" {
				if !slices.Contains(sizes, c.Size) {
					return nil, fmt.Errorf("unknown dyno size %q; use one of %s", c.Size, strings.Join(sizes, ", "))
				}
				e.Size = c.Size
			}
			f[c.Type] = e
		}
		out = f
		return []ledger.Record{{Type: ledger.TypeFormation, User: user, Formation: f}}, nil
	})
	return out, err
}

// FormationText is "web at 3:Standard-2X, worker at 1:Standard-1X", as
// ps:scale prints; Scaled is the API log's "web@3:Standard-2X worker@1:Standard-1X".
func FormationText(f ledger.Formation) (text, scaled string) {
	var a, b []string
	for _, t := range ProcessTypeNames(formationTypes(f)) {
		e := f[t]
		a = append(a, fmt.Sprintf("%s at %d:%s", t, e.Quantity, SizeName(e.Size)))
		b = append(b, fmt.Sprintf("%s@%d:%s", t, e.Quantity, SizeName(e.Size)))
	}
	return strings.Join(a, ", "), strings.Join(b, " ")
}

// FormationArgs is "web=1:Standard-1X worker=0:Standard-1X", f's scale of
// each of types as ps:scale takes it, and prints it with no argument.
func FormationArgs(f ledger.Formation, types []string) string {
	parts := make([]string, 0, len(types))
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%s=%d:%s", t, f[t].Quantity, SizeName(f[t].Size)))
	}
	return strings.Join(parts, " ")
}

func formationTypes(f ledger.Formation) map[string]string {
	m := map[string]string{}
	for t := range f {
		m[t] = ""
	}
	return m
}

// SizeName is a size as Heroku writes it: Standard-1X, Performance-M, Eco.
func SizeName(size string) string {
	if size == "" {
		size = DefaultSize
	}
	parts := strings.Split(size, "-")
	for i, p := range parts {
		if p == "" {
			continue
		}
		if i > 0 {
			parts[i] = strings.ToUpper(p)
		} else {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}
