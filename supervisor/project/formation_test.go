package project

import (
	"reflect"
	"strings"
	"testing"
)

var threeTypes = []string{"web", "worker", "clock"}

func TestParseFormation(t *testing.T) {
	tests := []struct {
		spec string
		want Formation
	}{
		{"", Formation{"web": 1, "worker": 1, "clock": 1}},
		{"   ", Formation{"web": 1, "worker": 1, "clock": 1}},
		{"web=2", Formation{"web": 2, "worker": 1, "clock": 1}},
		{"web=2,worker=3", Formation{"web": 2, "worker": 3, "clock": 1}},
		{" web = 2 , worker=0 ", Formation{"web": 2, "worker": 0, "clock": 1}},
		{"all=0,web=1", Formation{"web": 1, "worker": 0, "clock": 0}},
		{"web=1,all=0", Formation{"web": 1, "worker": 0, "clock": 0}},
		{"all=3", Formation{"web": 3, "worker": 3, "clock": 3}},
		{"all=2,clock=0", Formation{"web": 2, "worker": 2, "clock": 0}},
		{"web=0,worker=0,clock=0", Formation{"web": 0, "worker": 0, "clock": 0}},
		{"web=+2", Formation{"web": 2, "worker": 1, "clock": 1}},
		{"web=007", Formation{"web": 7, "worker": 1, "clock": 1}},
	}
	for _, tt := range tests {
		got, err := ParseFormation(tt.spec, threeTypes)
		if err != nil {
			t.Errorf("ParseFormation(%q): %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseFormation(%q) = %v, want %v", tt.spec, got, tt.want)
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
		got, err := ParseFormation(tt.spec, tt.types)
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
		got, err := ParseFormation(spec, types)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "formation: ") {
				t.Errorf("error %q lacks the formation: prefix", err)
			}
			return
		}
		for _, typ := range types {
			n, ok := got[typ]
			if !ok {
				t.Errorf("ParseFormation(%q, %q) has no count for %q", spec, types, typ)
			}
			if n < 0 {
				t.Errorf("ParseFormation(%q, %q) gives %q a count of %d", spec, types, typ, n)
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
