package ledger

import (
	"strings"
	"testing"
	"time"
)

// A drains record is the app's whole drain list, outside releases: the
// newest wins, an empty one removes every drain, and none means nil.
func TestDrainsLatest(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := mustState(t, l); s.Drains != nil {
		t.Fatalf("drains %+v before any record; want nil", s.Drains)
	}
	d := Drain{ID: "0b5c1a2e-7d43-4e0e-9f6a-0d2a3c4b5e6f", URL: "syslog://logs.example.com:514", Token: "d.5e8f1c0a-3b2d-4c6e-8a7f-9b0c1d2e3f4a", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	mustAppend(t, l, Record{Type: TypeDrains, Drains: []Drain{d}})
	mustAppend(t, l, releaseRecord(2, StatusSucceeded, nil))
	s := mustState(t, l)
	if len(s.Drains) != 1 || s.Drains[0] != d {
		t.Errorf("drains %+v; want [%+v]", s.Drains, d)
	}
	if s.Current == nil || s.Current.Version != 2 || s.LastVersion != 2 {
		t.Errorf("current %+v: a drains record must not make a release", s.Current)
	}
	mustAppend(t, l, Record{Type: TypeDrains})
	if s := mustState(t, l); s.Drains == nil || len(s.Drains) != 0 {
		t.Errorf("after removing all: drains %#v; want empty", s.Drains)
	}
	mustVerify(t, l)
}

// A drains record carries no other type's payload, and its text is
// UTF-8.
func TestDrainsShape(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rec  Record
		want string
	}{
		{Record{Type: TypeDrains, Drains: []Drain{{URL: "syslog://a:1"}}, Features: []string{"preboot"}}, "drains record with a features"},
		{Record{Type: TypeFeatures, Drains: []Drain{{URL: "syslog://a:1"}}}, "features record with a drains"},
		{Record{Type: TypeDrains, Drains: []Drain{{URL: "syslog://\xff:1"}}}, "drain URL"},
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
