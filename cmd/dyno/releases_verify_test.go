package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A ledger cut short, by its last record or to nothing, fails
// releases:verify with the records missing, and no command writes to it
// (issue 8: an emptied ledger verified and the next config:set wrote a
// new v1).
func TestReleasesVerifyTruncated(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "cut")
	e.must(t, "config:set", "A=1", "-a", "cut")
	e.must(t, "config:set", "B=2", "-a", "cut")
	wantLines(t, e.must(t, "releases:verify", "-a", "cut"), "cut: 3 records, hash chain intact")
	path := filepath.Join(e.home, "apps", "cut", "ledger.jsonl")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for _, tc := range []struct {
		data    []byte
		missing string
	}{
		{bytes.Join(lines[:2], nil), "has 2 records but " + filepath.Join(e.home, "apps", "cut", "ledger.head") + " says 3: 1 record missing; restore the file from a backup, or remove " + filepath.Join(e.home, "apps", "cut", "ledger.head") + " to go on without it"},
		{nil, "has 0 records but"},
	} {
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"releases:verify"}, {"config:set", "C=3"}, {"releases"}} {
			out, st := e.dynoOut(t, append(args, "-a", "cut")...)
			if st == 0 || !strings.Contains(out, "ledger "+path+" "+tc.missing) || strings.Count(strings.TrimSpace(out), "\n") > 0 {
				t.Errorf("%d bytes left: %v: exit %d, %q; want one line with %q", len(tc.data), args, st, out, tc.missing)
			}
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.data) {
			t.Errorf("%d bytes left: a refused config:set changed the ledger to\n%s", len(tc.data), got)
		}
	}
}
