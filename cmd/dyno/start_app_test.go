package main

import (
	"maps"
	"testing"

	"github.com/dyno-run/dyno/ledger"
)

// dyno start -a reads -m as dyno start reads it for a folder: the types
// it does not name run none unless all=N. Without -m, the ledger's
// formation, else one of each; types named as arguments narrow either.
func TestAppFormation(t *testing.T) {
	t.Parallel()
	types := []string{"web", "worker", "clock"}
	scaled := ledger.Formation{"web": {Quantity: 3}, "worker": {Quantity: 0}, "clock": {Quantity: 2}}
	tests := []struct {
		flag     string
		recorded ledger.Formation
		only     []string
		want     map[string]int
	}{
		{"", nil, nil, map[string]int{"web": 1, "worker": 1, "clock": 1}},
		{"web=2", nil, nil, map[string]int{"web": 2, "worker": 0, "clock": 0}},
		{"web=2", scaled, nil, map[string]int{"web": 2, "worker": 0, "clock": 0}},
		{"web=0,all=1", scaled, nil, map[string]int{"web": 0, "worker": 1, "clock": 1}},
		{"", scaled, nil, map[string]int{"web": 3, "worker": 0, "clock": 2}},
		{"", scaled, []string{"clock"}, map[string]int{"web": 0, "worker": 0, "clock": 2}},
		{"", nil, []string{"clock"}, map[string]int{"web": 0, "worker": 0, "clock": 1}},
		{"web=2", nil, []string{"web", "clock"}, map[string]int{"web": 2, "worker": 0, "clock": 1}},
	}
	for _, tt := range tests {
		got, err := appFormation(tt.flag, tt.recorded, types, tt.only)
		if err != nil {
			t.Errorf("appFormation(%q, %v, %q): %v", tt.flag, tt.recorded, tt.only, err)
			continue
		}
		if !maps.Equal(got, tt.want) {
			t.Errorf("appFormation(%q, %v, %q) = %v, want %v", tt.flag, tt.recorded, tt.only, got, tt.want)
		}
	}
	if _, err := appFormation("", nil, types, []string{"wrker"}); err == nil {
		t.Error("an unknown type named as an argument was taken")
	}
}
