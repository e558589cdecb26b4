package ledger

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

// Domains and certs records are folded like buildpacks: the newest
// holds the whole list, an empty one clears it, and none means nil.
func TestDomainsAndCertsLatest(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := mustState(t, l); s.Domains != nil || s.Certs != nil {
		t.Fatalf("domains %q, certs %v before any record; want nil", s.Domains, s.Certs)
	}
	cert := Cert{Domain: "www.example.com", Fingerprint: "sha256:" + strings.Repeat("ab", 32)}
	mustAppend(t, l, Record{Type: TypeDomains, Domains: []string{"www.example.com"}})
	mustAppend(t, l, Record{Type: TypeCerts, Certs: []Cert{cert}})
	mustAppend(t, l, Record{Type: TypeDomains, Domains: []string{"*.example.org", "www.example.com"}})
	mustAppend(t, l, releaseRecord(2, StatusSucceeded, nil), Record{Type: TypeBuildpacks, Buildpacks: []string{"heroku/go"}})
	s := mustState(t, l)
	if want := []string{"*.example.org", "www.example.com"}; !reflect.DeepEqual(s.Domains, want) {
		t.Errorf("domains = %q, want %q", s.Domains, want)
	}
	if want := []Cert{cert}; !reflect.DeepEqual(s.Certs, want) {
		t.Errorf("certs = %v, want %v", s.Certs, want)
	}
	if s.Current == nil || s.Current.Version != 2 {
		t.Errorf("current = %+v, want v2", s.Current)
	}
	mustAppend(t, l, Record{Type: TypeDomains, Domains: []string{}}, Record{Type: TypeCerts})
	s = mustState(t, l)
	if s.Domains == nil || len(s.Domains) != 0 || s.Certs == nil || len(s.Certs) != 0 {
		t.Errorf("after clearing: domains %#v, certs %#v; want both empty, not nil", s.Domains, s.Certs)
	}
	// The records are in the chain like any other: the ledger verifies,
	// and ReadAll gives them back.
	mustVerify(t, l)
	f, err := os.Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[3]; got.Type != TypeDomains || !reflect.DeepEqual(got.Domains, []string{"*.example.org", "www.example.com"}) {
		t.Errorf("record 4 = %+v", got)
	}
	if got := recs[2]; got.Type != TypeCerts || !reflect.DeepEqual(got.Certs, []Cert{cert}) {
		t.Errorf("record 3 = %+v", got)
	}
}

// A domains or certs record carries only its own payload, and valid
// UTF-8; a refused record leaves the file as it was.
func TestAppendRejectsBadDomainRecords(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	l, err := Create(path, releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	for _, tt := range []struct {
		rec  Record
		want string
	}{
		{Record{Type: TypeDomains, Domains: []string{"a.example.com"}, Buildpacks: []string{"x"}}, "domains record with a buildpacks"},
		{Record{Type: TypeCerts, Domains: []string{"a.example.com"}}, "certs record with a domains"},
		{Record{Type: TypeBuildpacks, Certs: []Cert{{Domain: "a"}}}, "buildpacks record with a certs"},
		{Record{Type: TypeDomains, Domains: []string{"caf\xe9.example.com"}}, "domain"},
		{Record{Type: TypeCerts, Certs: []Cert{{Domain: "a.example.com", Fingerprint: "\xff"}}}, "certificate fingerprint"},
	} {
		_, err := l.Append(func(*State) ([]Record, error) { return []Record{tt.rec}, nil })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.rec, err, tt.want)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("refused records changed the ledger")
	}
}

// A domains record is written as sniff reads it, so that State passes
// over the records between without decoding them.
func TestSniffDomainRecords(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), Record{Type: TypeDomains, Domains: []string{"a.example.com"}}, Record{Type: TypeCerts})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	for i, want := range []string{TypeDomains, TypeCerts} {
		if seq, typ, ok := sniff(lines[i]); !ok || seq != i+1 || typ != want {
			t.Errorf("line %d: sniff = %d %q %v, want %d %q", i+1, seq, typ, ok, i+1, want)
		}
	}
}
