package addons

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestParseBackupID(t *testing.T) {
	for id, want := range map[string]int{"b001": 1, "b1": 1, "b042": 42, "b1000": 1000} {
		if n, err := ParseBackupID(id); err != nil || n != want {
			t.Errorf("ParseBackupID(%q) = %d, %v; want %d", id, n, err, want)
		}
	}
	for _, id := range []string{"", "b", "001", "b-1", "b+1", "b0", "bx", "b1.json", "../b001"} {
		if _, err := ParseBackupID(id); err == nil || !strings.Contains(err.Error(), "is not a backup ID") {
			t.Errorf("ParseBackupID(%q): %v; want not a backup ID", id, err)
		}
	}
}

// Captures started together each get their own number: the exclusive
// create decides, whatever the others listed.
func TestBackupsReserveNumbersOnce(t *testing.T) {
	b := Backups{Dir: filepath.Join(t.TempDir(), "backups")}
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bk, err := b.reserve(Backup{Database: "DATABASE", Status: BackupRunning})
			if err != nil {
				t.Error(err)
			}
			ids[i] = bk.ID
		}()
	}
	wg.Wait()
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != n || ids[0] != "b001" || ids[n-1] != "b012" {
		t.Fatalf("ids %v; want b001 to b012 once each", ids)
	}
	all, err := b.List()
	if err != nil || len(all) != n || all[9].ID != "b010" || all[n-1].ID != "b012" {
		t.Fatalf("List: %v, %v; want b001..b012 in numeric order", all, err)
	}
	// Only completed backups are the latest; running ones are not.
	if _, err := b.Latest(); err == nil || !strings.Contains(err.Error(), "no backups yet") {
		t.Errorf("Latest with only running backups: %v", err)
	}
	if _, err := b.Get("b013"); err == nil || !strings.Contains(err.Error(), "no backup b013") {
		t.Errorf("Get(b013): %v", err)
	}
	if bk, err := b.Delete("b3"); err != nil || bk.ID != "b003" {
		t.Errorf("Delete(b3): %+v, %v", bk, err)
	}
	if _, err := os.Stat(b.recordPath("b003")); !os.IsNotExist(err) {
		t.Errorf("b003.json after delete: %v", err)
	}
}

// A capture whose database cannot be reached writes nothing.
func TestBackupsCaptureUnreachableLeavesNothing(t *testing.T) {
	if _, err := os.Stat("/usr/bin/psql"); err != nil {
		t.Skip("psql is not installed (apt-get install postgresql-client)")
	}
	dir := t.TempDir()
	b := BackupsIn(dir)
	// Port 1 on loopback: refused at once.
	c := PostgresConn{Addon: "postgresql-flat-12345", URL: "postgres://postgresql-flat-12345:pw@127.0.0.1:1/postgresql-flat-12345"}
	if _, err := b.Capture(context.Background(), c, "DATABASE"); err == nil {
		t.Fatal("capture of an unreachable database succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed capture left %v", entries)
	}
}
