package project

import (
	"reflect"
	"strings"
	"testing"
)

var threeTypes = []string{"web", "worker", "clock"}

// A formation names what runs, as Foreman reads it: types it does not
// name get all=N, else 0; no formation at all runs one of each. Types
// named on the command line narrow it, and get 1 unless it says more.
func TestParseFormation(t *testing.T) {
	tests := []struct {
		spec string
		only []string
		want Formation
	}{
		{"", nil, Formation{"web": 1, "worker": 1, "clock": 1}},
		{"   ", nil, Formation{"web": 1, "worker": 1, "clock": 1}},
		{"web=2", nil, Formation{"web": 2, "worker": 0, "clock": 0}},
		{"web=0", nil, Formation{"web": 0, "worker": 0, "clock": 0}},
		{"web=2,worker=3", nil, Formation{"web": 2, "worker": 3, "clock": 0}},
		{" web = 2 , worker=0 ", nil, Formation{"web": 2, "worker": 0, "clock": 0}},
		{"all=0,web=1", nil, Formation{"web": 1, "worker": 0, "clock": 0}},
		{"web=1,all=0", nil, Formation{"web": 1, "worker": 0, "clock": 0}},
		{"all=1", nil, Formation{"web": 1, "worker": 1, "clock": 1}},
		{"all=1,web=2", nil, Formation{"web": 2, "worker": 1, "clock": 1}},
		{"web=0,all=1", nil, Formation{"web": 0, "worker": 1, "clock": 1}},
		{"all=3", nil, Formation{"web": 3, "worker": 3, "clock": 3}},
		{"all=2,clock=0", nil, Formation{"web": 2, "worker": 2, "clock": 0}},
		{"web=0,worker=0,clock=0", nil, Formation{"web": 0, "worker": 0, "clock": 0}},
		{"web=+2", nil, Formation{"web": 2, "worker": 0, "clock": 0}},
		{"web=007", nil, Formation{"web": 7, "worker": 0, "clock": 0}},

		{"", []string{"worker"}, Formation{"web": 0, "worker": 1, "clock": 0}},
		{"worker=2", []string{"worker"}, Formation{"web": 0, "worker": 2, "clock": 0}},
		{"worker=2", []string{"clock", "worker"}, Formation{"web": 0, "worker": 2, "clock": 1}},
		{"worker=2,web=3", []string{"clock", "worker"}, Formation{"web": 0, "worker": 2, "clock": 1}},
		{"all=3", []string{"clock"}, Formation{"web": 0, "worker": 0, "clock": 3}},
		{"all=0,worker=2", []string{"clock", "worker"}, Formation{"web": 0, "worker": 2, "clock": 0}},
		{"web=0", []string{"web"}, Formation{"web": 0, "worker": 0, "clock": 0}},
	}
	for _, tt := range tests {
		got, err := ParseFormation(tt.spec, threeTypes, tt.only)
		if err != nil {
			t.Errorf("ParseFormation(%q, only %q): %v", tt.spec, tt.only, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFormation(%q, only %q) = %v, want %v", tt.spec, tt.only, got, tt.want)
		}
	}
}

func TestNotNamedHint(t *testing.T) {
	const hint = " (types -m does not name run none unless all=N gives them a count)"
	for spec, want := range map[string]string{
		"": "", "  ": "", "web=0": hint, "web=0,worker=0": hint,
		"all=0": "", "web=0, all = 0": "", "wall=0": hint,
	} {
		if got := NotNamedHint(spec); got != want {
			t.Errorf("NotNamedHint(%q) = %q, want %q", spec, got, want)
		}
	}
}

func TestParseFormationErrors(t *testing.T) {
	tests := []struct {
		spec  string
		types []string
		want  string
	}{
		{"wrker=1", threeTypes,
			`formation: unknown process type "wrker" in "wrker=1"; the Procfile declares web, worker, clock`},
		{"web=1, wrker = 2", threeTypes,
			`formation: unknown process type "wrker" in "wrker = 2"; the Procfile declares web, worker, clock`},
		{"web=1", nil,
			`formation: unknown process type "web" in "web=1"; the Procfile declares none`},
		{"web=two", threeTypes,
			`formation: bad count in "web=two"; want a whole number, 0 or more`},
		{"web=-1", threeTypes,
			`formation: bad count in "web=-1"; want a whole number, 0 or more`},
		{"web=", threeTypes,
			`formation: bad count in "web="; want a whole number, 0 or more`},
		{"web=1.5", threeTypes,
			`formation: bad count in "web=1.5"; want a whole number, 0 or more`},
		{"all=-2", threeTypes,
			`formation: bad count in "all=-2"; want a whole number, 0 or more`},
		{"web=99999999999999999999", threeTypes,
			`formation: bad count in "web=99999999999999999999"; want a whole number, 0 or more`},
		{"web", threeTypes,
			`formation: no "=" in "web"; write it as "web=1"`},
		{"web=1,,worker=1", threeTypes,
			`formation: empty item in "web=1,,worker=1"; write it as "web=2,worker=1"`},
		{"web=1,", threeTypes,
			`formation: empty item in "web=1,"; write it as "web=2,worker=1"`},
		{"web=1,web=2", threeTypes,
			`formation: process type "web" given twice in "web=1,web=2"`},
		{"all=1,all=2", threeTypes,
			`formation: "all" given twice in "all=1,all=2"`},
	}
	for _, tt := range tests {
		got, err := ParseFormation(tt.spec, tt.types, nil)
		if err == nil {
			t.Errorf("ParseFormation(%q) = %v, want error %q", tt.spec, got, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseFormation(%q) error = %q, want %q", tt.spec, err, tt.want)
		}
	}
}

func TestPort(t *testing.T) {
	tests := []struct{ base, typeIndex, instance, want int }{
		{5000, 0, 1, 5000},
		{5000, 0, 2, 5001},
		{5000, 1, 1, 5100},
		{5000, 2, 3, 5202},
		{3000, 1, 10, 3109},
	}
	for _, tt := range tests {
		if got := Port(tt.base, tt.typeIndex, tt.instance); got != tt.want {
			t.Errorf("Port(%d, %d, %d) = %d, want %d", tt.base, tt.typeIndex, tt.instance, got, tt.want)
		}
	}
}

func FuzzParseFormation(f *testing.F) {
	for _, spec := range []string{
		"", "web=2", "web=2,worker=1", "all=0,web=1", " web = 2 , clock=0 ",
		"wrker=1", "web=-1", "web=x", "web", ",", "web=1,web=2", "all=1,all=2",
		"web=9223372036854775807", "=1", "all=",
	} {
		f.Add(spec, "web,worker,clock")
	}
	f.Add("all=1", "")
	f.Add("all=2", "all")
	f.Fuzz(func(t *testing.T, spec, typeList string) {
		var types []string
		if typeList != "" {
			types = strings.Split(typeList, ",")
		}
		got, err := ParseFormation(spec, types, nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "formation: ") {
				t.Errorf("error %q lacks the formation: prefix", err)
			}
			return
		}
		named := map[string]bool{}
		if strings.TrimSpace(spec) != "" {
			for item := range strings.SplitSeq(spec, ",") {
				name, _, _ := strings.Cut(item, "=")
				named[strings.TrimSpace(name)] = true
			}
		}
		for _, typ := range types {
			n, ok := got[typ]
			if !ok {
				t.Errorf("ParseFormation(%q, %q) has no count for %q", spec, types, typ)
			}
			if n < 0 || n > MaxCount {
				t.Errorf("ParseFormation(%q, %q) gives %q a count of %d", spec, types, typ, n)
			}
			// A type runs only when the spec is empty, names it or
			// sets all.
			if n > 0 && strings.TrimSpace(spec) != "" && !named[typ] && !named["all"] {
				t.Errorf("ParseFormation(%q, %q) runs %d of %q, which it does not name", spec, types, n, typ)
			}
		}
		for typ := range got {
			found := false
			for _, declared := range types {
				found = found || declared == typ
			}
			if !found {
				t.Errorf("ParseFormation(%q, %q) counts undeclared type %q", spec, types, typ)
			}
		}
	})
}
