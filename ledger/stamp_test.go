package ledger

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Appending changes the ledger's stamp; a stamp is settled only once its
// file has been still for settleTime.
func TestStamp(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	l, err := Create(path, Record{Type: TypeRelease, Release: &Release{Version: 1, Description: "Initial release", Status: StatusSucceeded}})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := l.Stamp()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := l.Stamp(); again != s1 {
		t.Fatalf("stamp moved without a write: %+v, then %+v", s1, again)
	}
	if _, err := l.Append(func(*State) ([]Record, error) {
		return []Record{{Type: TypeDomains, Domains: []string{"a.example.com"}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	s2, err := l.Stamp()
	if err != nil {
		t.Fatal(err)
	}
	if s2 == s1 {
		t.Fatalf("stamp %+v unchanged by an append", s2)
	}
	now := time.Now()
	if s2.Settled(now) {
		t.Errorf("a stamp just written is settled")
	}
	if !s2.Settled(now.Add(settleTime + time.Millisecond)) {
		t.Errorf("a stamp %v old is not settled", settleTime)
	}
	// Times set back, as a restore from backup sets them, are settled.
	old := now.Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	s3, _ := l.Stamp()
	if s3 == s2 {
		t.Errorf("chtimes left the stamp as it was")
	}
	if s3.Settled(now) {
		t.Errorf("ctime was just changed, yet the stamp is settled")
	}
	if _, err := StampFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("a missing file has a stamp")
	}
}
