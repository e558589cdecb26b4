package ledger

import (
	"reflect"
	"strings"
	"testing"
)

// Features and maintenance records are app settings outside releases:
// the newest of each wins, an empty features record disables every
// feature, and none means nil and off.
func TestFeaturesAndMaintenanceLatest(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := mustState(t, l); s.Features != nil || s.Maintenance {
		t.Fatalf("features %q, maintenance %v before any record; want nil, off", s.Features, s.Maintenance)
	}
	on, off := true, false
	mustAppend(t, l, Record{Type: TypeFeatures, Features: []string{"preboot"}})
	mustAppend(t, l, Record{Type: TypeMaintenance, Maintenance: &on})
	mustAppend(t, l, releaseRecord(2, StatusSucceeded, nil))
	s := mustState(t, l)
	if !reflect.DeepEqual(s.Features, []string{"preboot"}) || !s.Maintenance {
		t.Errorf("features %q, maintenance %v; want [preboot], on", s.Features, s.Maintenance)
	}
	if s.Current == nil || s.Current.Version != 2 || s.LastVersion != 2 {
		t.Errorf("current %+v: a settings record must not make a release", s.Current)
	}
	mustAppend(t, l, Record{Type: TypeMaintenance, Maintenance: &off}, Record{Type: TypeFeatures})
	s = mustState(t, l)
	if s.Features == nil || len(s.Features) != 0 || s.Maintenance {
		t.Errorf("after clearing: features %#v, maintenance %v; want empty, off", s.Features, s.Maintenance)
	}
	mustVerify(t, l)
	rels, err := l.Releases(0)
	if err != nil || len(rels) != 2 {
		t.Errorf("releases %d, %v; want 2", len(rels), err)
	}
}

// A maintenance record must say on or off, and no record may carry
// another type's payload.
func TestFeaturesAndMaintenanceShape(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	on := true
	for _, tt := range []struct {
		rec  Record
		want string
	}{
		{Record{Type: TypeMaintenance}, "maintenance record without maintenance"},
		{Record{Type: TypeFeatures, Features: []string{"preboot"}, Maintenance: &on}, "features record with a maintenance"},
		{Record{Type: TypeMaintenance, Maintenance: &on, Domains: []string{"a.example.com"}}, "maintenance record with a domains"},
		{Record{Type: TypeFeatures, Features: []string{"pre\xffboot"}}, "feature"},
	} {
		_, err := l.Append(func(*State) ([]Record, error) { return []Record{tt.rec}, nil })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.rec, err, tt.want)
		}
	}
	if s := mustState(t, l); s.Seq != 1 {
		t.Errorf("refused records reached the ledger: seq %d", s.Seq)
	}
}
