package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary runs itself as writer processes: helperEnv selects what
// the child does, with the ledger's path in pathEnv.
const (
	helperEnv = "DYNO_LEDGER_TEST_HELPER"
	pathEnv   = "DYNO_LEDGER_TEST_PATH"
	countEnv  = "DYNO_LEDGER_TEST_COUNT"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "append":
		n, _ := strconv.Atoi(os.Getenv(countEnv))
		os.Exit(helperAppend(Open(os.Getenv(pathEnv)), n))
	case "append-forever":
		os.Exit(helperAppend(Open(os.Getenv(pathEnv)), -1))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperAppend appends n releases (forever if n < 0), each the next
// version after the state's, as a deploy would. Forever, each append is a
// batch of three records, so that kills land inside batches.
func helperAppend(l *Ledger, n int) int {
	pid := strconv.Itoa(os.Getpid())
	for i := 0; n < 0 || i < n; i++ {
		_, err := l.Append(func(s *State) ([]Record, error) {
			v := s.LastVersion + 1
			rec := releaseRecord(v, StatusSucceeded, configVars(v, 5))
			rec.User = "writer-" + pid
			if n >= 0 {
				return []Record{rec}, nil
			}
			rec.Release.Status = StatusPending
			return []Record{
				rec,
				{Type: TypeStatus, Status: &Status{Version: v, Status: StatusSucceeded}},
				{Type: TypeFormation, Formation: Formation{"web": {Quantity: v % 5, Size: "standard-1x"}}},
			}, nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func ledgerPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "ledger.jsonl")
}

func releaseRecord(v int, status string, config map[string]string) Record {
	return Record{Type: TypeRelease, Release: &Release{
		Version:      v,
		Description:  fmt.Sprintf("Deploy %08x", v*2654435761%(1<<32)),
		Status:       status,
		Slug:         fmt.Sprintf("sha256:%064x", v),
		ProcessTypes: map[string]string{"web": "bin/web --port $PORT", "worker": "bin/worker", "clock": "bin/clock"},
		ConfigVars:   config,
	}}
}

func configVars(v, n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("VAR_%02d", i)] = fmt.Sprintf("value-%d-of-release-%d", i, v)
	}
	return m
}

func mustAppend(t testing.TB, l *Ledger, recs ...Record) []Record {
	t.Helper()
	written, err := l.Append(func(*State) ([]Record, error) { return recs, nil })
	if err != nil {
		t.Fatal(err)
	}
	return written
}

func mustState(t testing.TB, l *Ledger) *State {
	t.Helper()
	s, err := l.State()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustVerify(t testing.TB, l *Ledger) {
	t.Helper()
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func versions(rels []Release) []int {
	var vs []int
	for _, r := range rels {
		vs = append(vs, r.Version)
	}
	return vs
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	first := Record{Type: TypeRelease, User: "ann@example.com", Release: &Release{
		Version: 1, Description: "Initial release", Status: StatusSucceeded,
	}}
	formation := Record{Type: TypeFormation, Formation: Formation{"web": {Quantity: 1, Size: "standard-1x"}}}
	l, err := Create(path, first, formation)
	if err != nil {
		t.Fatal(err)
	}
	s := mustState(t, l)
	if s.Seq != 2 || s.LastVersion != 1 || s.Current == nil || s.Current.Version != 1 || s.Current.User != "ann@example.com" {
		t.Fatalf("state after Create = %+v", s)
	}

	v2 := releaseRecord(2, StatusSucceeded, map[string]string{"FOO": "bar", "HTML": "<a&b>"})
	v2.Release.Description = "Set FOO, HTML config vars"
	written := mustAppend(t, l, v2)
	if len(written) != 1 {
		t.Fatalf("Append wrote %d records, want 1", len(written))
	}
	w := written[0]
	if w.Seq != 3 || w.Prev != s.Hash || !strings.HasPrefix(w.Hash, "sha256:") || len(w.Hash) != len("sha256:")+64 {
		t.Errorf("written record: seq %d prev %q hash %q", w.Seq, w.Prev, w.Hash)
	}
	if w.Time.IsZero() || w.Time.Location() != time.UTC || time.Since(w.Time) > time.Minute {
		t.Errorf("written record time %v, want now in UTC", w.Time)
	}
	if w.User != osUserName() || w.User == "" {
		t.Errorf("written record user %q, want %q", w.User, osUserName())
	}
	if !w.Release.Time.Equal(w.Time) || w.Release.User != w.User {
		t.Errorf("release time/user %v %q, want the record's %v %q", w.Release.Time, w.Release.User, w.Time, w.User)
	}
	if v2.Release.User != "" || v2.Seq != 0 {
		t.Errorf("Append changed the caller's record: %+v", v2)
	}

	s = mustState(t, l)
	if s.Seq != 3 || s.Hash != w.Hash || s.LastVersion != 2 {
		t.Errorf("state = seq %d hash %s last v%d, want 3 %s v2", s.Seq, s.Hash, s.LastVersion, w.Hash)
	}
	if s.Current == nil || !reflect.DeepEqual(s.Current.ConfigVars, v2.Release.ConfigVars) || s.Current.Description != v2.Release.Description {
		t.Errorf("current = %+v, want v2", s.Current)
	}
	if !reflect.DeepEqual(s.Formation, formation.Formation) {
		t.Errorf("formation = %v, want %v", s.Formation, formation.Formation)
	}
	if s.Buildpacks != nil {
		t.Errorf("buildpacks = %q, want nil: none were set", s.Buildpacks)
	}

	rels, err := l.Releases(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := versions(rels); !reflect.DeepEqual(got, []int{2, 1}) {
		t.Errorf("Releases(0) versions = %v, want [2 1]", got)
	}
	if rels, err = l.Releases(1); err != nil || len(rels) != 1 || rels[0].Version != 2 {
		t.Errorf("Releases(1) = %v, %v", versions(rels), err)
	}
	rel, err := l.Release(1)
	if err != nil || rel.Description != "Initial release" {
		t.Errorf("Release(1) = %+v, %v", rel, err)
	}
	if _, err := l.Release(3); !errors.Is(err, ErrNoRelease) {
		t.Errorf("Release(3) error = %v, want ErrNoRelease", err)
	}
	if _, err := l.Release(0); !errors.Is(err, ErrNoRelease) {
		t.Errorf("Release(0) error = %v, want ErrNoRelease", err)
	}
	mustVerify(t, l)

	// What ReadAll reads is what Append returned, byte for byte.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ReadAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("ReadAll read %d records, want 3", len(recs))
	}
	got, _ := json.Marshal(recs[2])
	want, _ := json.Marshal(w)
	if !bytes.Equal(got, want) {
		t.Errorf("record read back:\n%s\nwant\n%s", got, want)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if !bytes.Equal(lines[2], want) {
		t.Errorf("line 3 is\n%s\nwant json.Marshal of the record:\n%s", lines[2], want)
	}
}

func TestEmptyLedger(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t))
	if err != nil {
		t.Fatal(err)
	}
	s := mustState(t, l)
	if !reflect.DeepEqual(s, &State{}) {
		t.Errorf("state of an empty ledger = %+v, want zero", s)
	}
	if rels, err := l.Releases(15); err != nil || len(rels) != 0 {
		t.Errorf("Releases = %v, %v", rels, err)
	}
	mustVerify(t, l)
	w := mustAppend(t, l, releaseRecord(1, StatusSucceeded, nil))
	if w[0].Seq != 1 || w[0].Prev != "" {
		t.Errorf("first record: seq %d prev %q", w[0].Seq, w[0].Prev)
	}
	mustVerify(t, l)
}

func TestStatusFolding(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	status := func(v int, st string) Record {
		return Record{Type: TypeStatus, Status: &Status{Version: v, Status: st}}
	}
	check := func(when string, current, last int, statuses map[int]string) {
		t.Helper()
		s := mustState(t, l)
		if s.Current == nil || s.Current.Version != current || s.LastVersion != last {
			t.Errorf("%s: current %+v, last v%d; want v%d, v%d", when, s.Current, s.LastVersion, current, last)
		}
		if s.Current != nil && s.Current.Status != StatusSucceeded {
			t.Errorf("%s: current has status %q", when, s.Current.Status)
		}
		rels, err := l.Releases(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rel := range rels {
			if want := statuses[rel.Version]; rel.Status != want {
				t.Errorf("%s: Releases: v%d is %s, want %s", when, rel.Version, rel.Status, want)
			}
			one, err := l.Release(rel.Version)
			if err != nil || one.Status != rel.Status {
				t.Errorf("%s: Release(%d) = %+v, %v; want status %s", when, rel.Version, one, err, rel.Status)
			}
		}
	}

	mustAppend(t, l, releaseRecord(2, StatusPending, nil))
	check("v2 pending", 1, 2, map[int]string{1: StatusSucceeded, 2: StatusPending})
	mustAppend(t, l, status(2, StatusSucceeded))
	check("v2 succeeded", 2, 2, map[int]string{1: StatusSucceeded, 2: StatusSucceeded})
	mustAppend(t, l, releaseRecord(3, StatusPending, nil))
	mustAppend(t, l, releaseRecord(4, StatusPending, nil))
	check("v3, v4 pending", 2, 4, map[int]string{1: StatusSucceeded, 2: StatusSucceeded, 3: StatusPending, 4: StatusPending})
	mustAppend(t, l, status(4, StatusFailed))
	mustAppend(t, l, status(3, StatusSucceeded))
	check("v4 failed, v3 succeeded", 3, 4, map[int]string{1: StatusSucceeded, 2: StatusSucceeded, 3: StatusSucceeded, 4: StatusFailed})
	mustAppend(t, l, releaseRecord(5, StatusFailed, nil))
	check("v5 failed at once", 3, 5, map[int]string{1: StatusSucceeded, 2: StatusSucceeded, 3: StatusSucceeded, 4: StatusFailed, 5: StatusFailed})
	mustVerify(t, l)
}

func TestNoSucceededRelease(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusPending, nil))
	if err != nil {
		t.Fatal(err)
	}
	s := mustState(t, l)
	if s.Current != nil || s.LastVersion != 1 {
		t.Errorf("state = %+v, want no current release, last v1", s)
	}
}

func TestFormationAndBuildpacksLatest(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l,
		Record{Type: TypeBuildpacks, Buildpacks: []string{"heroku/go"}},
		Record{Type: TypeFormation, Formation: Formation{"web": {1, "standard-1x"}}})
	mustAppend(t, l, Record{Type: TypeFormation, Formation: Formation{"web": {3, "standard-2x"}, "worker": {1, "standard-1x"}}})
	mustAppend(t, l, releaseRecord(2, StatusSucceeded, nil))
	mustAppend(t, l, Record{Type: TypeBuildpacks, Buildpacks: []string{"heroku/nodejs", "heroku/go"}})
	mustAppend(t, l, releaseRecord(3, StatusSucceeded, nil))

	s := mustState(t, l)
	if want := (Formation{"web": {3, "standard-2x"}, "worker": {1, "standard-1x"}}); !reflect.DeepEqual(s.Formation, want) {
		t.Errorf("formation = %v, want %v", s.Formation, want)
	}
	if want := []string{"heroku/nodejs", "heroku/go"}; !reflect.DeepEqual(s.Buildpacks, want) {
		t.Errorf("buildpacks = %q, want %q", s.Buildpacks, want)
	}

	// An empty list clears the buildpacks: not nil, which means none set.
	mustAppend(t, l, Record{Type: TypeBuildpacks, Buildpacks: []string{}})
	mustAppend(t, l, Record{Type: TypeFormation, Formation: Formation{}})
	s = mustState(t, l)
	if s.Buildpacks == nil || len(s.Buildpacks) != 0 {
		t.Errorf("buildpacks after clearing = %#v, want empty", s.Buildpacks)
	}
	if s.Formation == nil || len(s.Formation) != 0 {
		t.Errorf("formation after emptying = %#v, want empty", s.Formation)
	}
	if s.Current == nil || s.Current.Version != 3 {
		t.Errorf("current = %+v, want v3", s.Current)
	}
	mustVerify(t, l)
}

func TestCreateExisting(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	if _, err := Create(path, releaseRecord(1, StatusSucceeded, nil)); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	headBefore, err := os.ReadFile(headPath(path))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Create(path, releaseRecord(1, StatusFailed, nil))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create on an existing ledger: error %v, want one wrapping fs.ErrExist", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("Create changed the existing ledger")
	}
	if after, _ := os.ReadFile(headPath(path)); !bytes.Equal(headBefore, after) {
		t.Errorf("Create changed the existing ledger's head")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"ledger.head", "ledger.jsonl"}) {
		t.Errorf("directory holds %q, want the ledger and its head alone", names)
	}
}

func TestMode(t *testing.T) {
	// Not parallel: it sets the process's umask.
	// A permissive umask must not widen the mode: config vars are secrets.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := ledgerPath(t)
	l, err := Create(path, releaseRecord(1, StatusSucceeded, map[string]string{"SECRET": "s3cr3t"}))
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, releaseRecord(2, StatusSucceeded, nil))
	for _, p := range []string{path, headPath(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("%s: mode = %v, want -rw-------", p, fi.Mode())
		}
	}
}

func TestMissingLedger(t *testing.T) {
	t.Parallel()
	l := Open(ledgerPath(t))
	if _, err := l.State(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("State: %v, want fs.ErrNotExist", err)
	}
	if _, err := l.Append(func(*State) ([]Record, error) { return nil, nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Append: %v, want fs.ErrNotExist", err)
	}
	if err := l.Verify(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Verify: %v, want fs.ErrNotExist", err)
	}
	if _, err := Create(filepath.Join(t.TempDir(), "no-such-dir", "ledger.jsonl")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Create in a missing directory: %v, want fs.ErrNotExist", err)
	}
}

func TestAppendRejects(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	l, err := Create(path, releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	buildErr := errors.New("build failed")
	if _, err := l.Append(func(*State) ([]Record, error) { return nil, buildErr }); err != buildErr {
		t.Errorf("Append returned %v, want build's error as it is", err)
	}
	if written, err := l.Append(func(*State) ([]Record, error) { return nil, nil }); written != nil || err != nil {
		t.Errorf("Append of nothing = %v, %v", written, err)
	}

	tests := []struct {
		name string
		recs []Record
		want string
	}{
		{"version reused", []Record{releaseRecord(1, StatusSucceeded, nil)}, "release version 1, want 2"},
		{"version skipped", []Record{releaseRecord(3, StatusSucceeded, nil)}, "release version 3, want 2"},
		{"second of a batch", []Record{releaseRecord(2, StatusSucceeded, nil), releaseRecord(2, StatusSucceeded, nil)}, "record 3: release version 2, want 3"},
		{"bad status", []Record{releaseRecord(2, "done", nil)}, `status "done"`},
		{"status of a missing release", []Record{{Type: TypeStatus, Status: &Status{Version: 2, Status: StatusSucceeded}}}, "v2, which does not exist"},
		{"status back to pending", []Record{{Type: TypeStatus, Status: &Status{Version: 1, Status: StatusPending}}}, `"pending"`},
		{"unknown type", []Record{{Type: "addon"}}, `unknown record type "addon"`},
		{"no payload", []Record{{Type: TypeRelease}}, "release record without a release"},
		{"two payloads", []Record{{Type: TypeFormation, Formation: Formation{"web": {1, "x"}}, Buildpacks: []string{"a"}}}, "formation record with a buildpacks"},
		{"negative quantity", []Record{{Type: TypeFormation, Formation: Formation{"web": {-1, "x"}}}}, "web quantity -1"},
		{"invalid UTF-8", []Record{releaseRecord(2, StatusSucceeded, map[string]string{"KEY": "\xff"})}, "config var KEY"},
	}
	for _, tt := range tests {
		_, err := l.Append(func(*State) ([]Record, error) { return tt.recs, nil })
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Append error %v, want one naming %s and saying %q", tt.name, err, path, tt.want)
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("rejected appends changed the file")
	}
}

func TestAppendKeepsCallerTimeAndUser(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))
	rec := releaseRecord(1, StatusSucceeded, nil)
	rec.Time, rec.User = at, "bob@example.com"
	mustAppend(t, l, rec)
	rel, err := l.Release(1)
	if err != nil {
		t.Fatal(err)
	}
	if !rel.Time.Equal(at) || rel.Time.Location() != time.UTC || rel.User != "bob@example.com" {
		t.Errorf("release time %v user %q, want %v in UTC, bob@example.com", rel.Time, rel.User, at)
	}
}

// TestConcurrentProcesses runs writers in several processes, each
// computing its next version from the state, as deploys do.
func TestConcurrentProcesses(t *testing.T) {
	t.Parallel()
	const writers, each = 4, 50
	path := ledgerPath(t)
	l, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for range writers {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=append", pathEnv+"="+path, countEnv+"="+strconv.Itoa(each))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	// Read while they write: readers must only ever see whole appends,
	// and the state only moving forward.
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		readerErr <- func() error {
			lastSeq, reads := 0, 0
			for {
				select {
				case <-done:
					if reads == 0 {
						return errors.New("no reads happened")
					}
					return nil
				default:
				}
				s, err := l.State()
				if err != nil {
					return err
				}
				if s.Seq < lastSeq || s.LastVersion != s.Seq || (s.Seq > 0 && s.Current.Version != s.Seq) {
					return fmt.Errorf("state went from seq %d to %+v", lastSeq, s)
				}
				rels, err := l.Releases(15)
				if err != nil {
					return err
				}
				if len(rels) > 0 && rels[0].Version < s.LastVersion {
					return fmt.Errorf("Releases(15) starts at v%d after State saw v%d", rels[0].Version, s.LastVersion)
				}
				lastSeq = s.Seq
				reads++
			}
		}()
	}()
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %d: %v", cmd.Process.Pid, err)
		}
	}
	close(done)
	if err := <-readerErr; err != nil {
		t.Errorf("reader: %v", err)
	}
	mustVerify(t, l)
	rels, err := l.Releases(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != writers*each {
		t.Fatalf("%d releases, want %d", len(rels), writers*each)
	}
	seen := make(map[int]bool)
	perWriter := make(map[string]int)
	for i, rel := range rels {
		if want := writers*each - i; rel.Version != want {
			t.Fatalf("release %d from the newest is v%d, want v%d", i, rel.Version, want)
		}
		if seen[rel.Version] {
			t.Fatalf("v%d twice", rel.Version)
		}
		seen[rel.Version] = true
		perWriter[rel.User]++
	}
	if len(perWriter) != writers {
		t.Errorf("releases by %d writers, want %d: %v", len(perWriter), writers, perWriter)
	}
	for user, n := range perWriter {
		if n != each {
			t.Errorf("%s appended %d releases, want %d", user, n, each)
		}
	}
}

// TestConcurrentGoroutines: flock(2) locks belong to open file
// descriptions, so appends from goroutines of one process serialise too.
func TestConcurrentGoroutines(t *testing.T) {
	t.Parallel()
	const writers, each = 8, 20
	l, err := Create(ledgerPath(t))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, writers)
	for range writers {
		go func() {
			if helperAppend(Open(l.Path()), each) != 0 {
				errs <- errors.New("append failed")
				return
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mustVerify(t, l)
	rels, err := l.Releases(0)
	if err != nil {
		t.Fatal(err)
	}
	for i, rel := range rels {
		if want := writers*each - i; rel.Version != want {
			t.Fatalf("release %d from the newest is v%d, want v%d", i, rel.Version, want)
		}
	}
	if len(rels) != writers*each {
		t.Errorf("%d releases, want %d", len(rels), writers*each)
	}
}

// TestKilledWriter kills a writer process at random moments, over and
// over, while it appends batches, and checks each time that the ledger
// verifies, that what it holds is whole batches, and that the next
// append works.
func TestKilledWriter(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	l, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	torn := 0
	for i := range rounds {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=append-forever", pathEnv+"="+path)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(5+i*7%23) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()

		mustVerify(t, l)
		if uncommittedBytes(t, path) > 0 {
			torn++
		}
		s := mustState(t, l)
		if s.Seq%3 != 0 {
			t.Fatalf("round %d: %d records committed, not whole batches of 3", i, s.Seq)
		}
		if s.LastVersion != s.Seq/3 || (s.Seq > 0 && (s.Current == nil || s.Current.Version != s.LastVersion)) {
			t.Fatalf("round %d: state %+v", i, s)
		}
		// A writer in this process carries on where the killed one
		// stopped.
		if code := helperAppend(l, 1); code != 0 {
			t.Fatalf("round %d: append after the kill failed", i)
		}
		mustAppend(t, l, Record{Type: TypeStatus, Status: &Status{Version: s.LastVersion + 1, Status: StatusSucceeded}},
			Record{Type: TypeFormation, Formation: Formation{}})
		mustVerify(t, l)
	}
	s := mustState(t, l)
	t.Logf("%d records after %d kills, %d of which left a torn tail", s.Seq, rounds, torn)
}

// uncommittedBytes returns how many bytes at the end of the ledger at
// path are a torn tail.
func uncommittedBytes(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := newWalker(f, path)
	if err != nil {
		t.Fatal(err)
	}
	return w.size - w.end
}

// writeHead writes the head file of the ledger at path.
func writeHead(t testing.TB, path string, seq int, hash string) {
	t.Helper()
	data := fmt.Sprintf(`{"seq":%d,"hash":%q}`+"\n", seq, hash)
	if err := os.WriteFile(headPath(path), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Temporary files a crash left beside a ledger (Create's, the head's)
// are removed by the next Append once they are a minute old; a fresh
// one, which a Create running now may still need, stays.
func TestAppendSweepsStrayTemps(t *testing.T) {
	t.Parallel()
	path := ledgerPath(t)
	l, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	dir, base := filepath.Split(path)
	old := []string{
		filepath.Join(dir, "."+base+".new-123"),
		filepath.Join(dir, "."+filepath.Base(headPath(path))+".new-456"),
	}
	fresh := filepath.Join(dir, "."+base+".new-789")
	for _, p := range append(old, fresh) {
		if err := os.WriteFile(p, []byte("left by a crash\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-time.Hour)
	for _, p := range old {
		if err := os.Chtimes(p, hourAgo, hourAgo); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, l, releaseRecord(1, StatusSucceeded, nil))
	for _, p := range old {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if _, err := os.Lstat(fresh); err != nil {
		t.Errorf("a fresh temporary file was removed: %v", err)
	}
	mustVerify(t, l)
}

func TestSinceStopsAtOlderRecords(t *testing.T) {
	l, err := Create(filepath.Join(t.TempDir(), "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	appendOne := func(typ string) {
		t.Helper()
		_, err := l.Append(func(s *State) ([]Record, error) {
			rec := Record{Type: typ}
			switch typ {
			case TypeFormation:
				rec.Formation = Formation{"web": {Quantity: s.Seq, Size: "basic"}}
			case TypeMaintenance:
				on := true
				rec.Maintenance = &on
			}
			return []Record{rec}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	appendOne(TypeFormation)
	appendOne(TypeMaintenance)
	all, err := l.Since(time.Time{})
	if err != nil || len(all) != 2 {
		t.Fatalf("Since(zero) = %d records, %v; want 2", len(all), err)
	}
	mid := all[1].Time
	appendOne(TypeFormation)
	got, err := l.Since(mid, TypeFormation)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("Since(second record's time, formation) = %+v; want record 3 alone", got)
	}
	got, err = l.Since(time.Now().Add(time.Hour))
	if err != nil || len(got) != 0 {
		t.Fatalf("Since(future) = %+v, %v; want none", got, err)
	}
}
