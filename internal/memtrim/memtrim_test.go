package memtrim

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exeRSS is how many kB of this test binary's read-only mappings are
// resident, from /proc/self/smaps.
func exeRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kb, ours := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 6 && strings.Contains(fields[0], "-"):
			ours = fields[5] == exe && !strings.ContainsRune(fields[1], 'w')
		case len(fields) == 3 && fields[0] == "Rss:" && ours:
			n, _ := strconv.Atoi(fields[1])
			kb += n
		}
	}
	return kb
}

func TestTrimDropsTheExecutablesPages(t *testing.T) {
	before := exeRSS(t)
	if err := Trim(); err != nil {
		t.Fatal(err)
	}
	after := exeRSS(t)
	t.Logf("read-only pages of the test binary: %d kB resident before, %d kB after", before, after)
	// What ran since (this test's reading of smaps, the runtime) is
	// back, in 64 KiB fault-around chunks; the rest stays out.
	if after > before*3/4 {
		t.Errorf("Trim left %d of %d kB of the executable resident", after, before)
	}
	// What runs next faults its pages back in: the process goes on.
	if got := strings.Repeat("ok", 2); got != "okok" {
		t.Fatal(got)
	}
}

func TestReadOnlyMappings(t *testing.T) {
	maps := filepath.Join(t.TempDir(), "maps")
	os.WriteFile(maps, []byte(`00400000-00aab000 r-xp 00000000 08:01 123 /usr/bin/dyno
00aab000-01156000 r--p 006ab000 08:01 123 /usr/bin/dyno
01156000-011ba000 rw-p 00d56000 08:01 123 /usr/bin/dyno
011ba000-031fe000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 08:01 456 /usr/bin/dyno-other
7f0000002000-7f0000003000 r--p 00000000 08:01 456 /usr/bin/dyno (deleted)
7f0000004000-7f0000005000 r--p 00000000 08:01 456 /usr/bin/dyno x
`), 0o644)
	got, err := readOnlyMappings(maps, "/usr/bin/dyno")
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]uintptr{{0x400000, 0xaab000}, {0xaab000, 0x1156000}}
	if !slices.Equal(got, want) {
		t.Errorf("mappings %x, want %x (text and read-only data, not data, bss or other files)", got, want)
	}
	// A binary replaced on disk while it runs: readlink says so too.
	got, err = readOnlyMappings(maps, "/usr/bin/dyno (deleted)")
	if want := [][2]uintptr{{0x7f0000002000, 0x7f0000003000}}; err != nil || !slices.Equal(got, want) {
		t.Errorf("mappings of a deleted binary %x, %v; want %x", got, err, want)
	}
}

// A Trimmer trims once after each burst of Kicks, and stops with its
// context.
func TestTrimmerTrimsAfterEachBurst(t *testing.T) {
	tr := NewTrimmer(20 * time.Millisecond)
	trims := make(chan error, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		tr.Run(ctx, func(err error) { trims <- err })
		close(done)
	}()
	for burst := range 2 {
		for range 5 {
			tr.Kick()
		}
		if err := <-trims; err != nil {
			t.Fatalf("burst %d: %v", burst, err)
		}
	}
	select {
	case err := <-trims:
		t.Errorf("a trim with no Kick: %v", err)
	default:
	}
	cancel()
	<-done
}
