package app

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/slug"
)

// deployPending makes a pending release of a real slug (with a release
// type) and returns it.
func deployPending(t *testing.T, a *App) ledger.Release {
	t.Helper()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "Procfile"), []byte("release: r\n"), 0o644)
	sl, _, err := a.Home().Slugs().Pack(src, slug.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := a.Deploy(sl.Digest, "", map[string]string{"web": "w", "release": "r"}, nil, nil, "ann")
	if err != nil || rel.Status != ledger.StatusPending {
		t.Fatalf("Deploy = %+v, %v", rel, err)
	}
	return rel
}

// A pending release's phase runs once: its maker holds the phase lock
// until the outcome is recorded, so another process (here another App on
// the same ledger: flock(2) excludes descriptors, not processes) leaves
// it alone; once the maker is gone the lock is free, and the phase is
// taken up.
func TestReleasePhaseRunsOnce(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	rel := deployPending(t, a)
	other, err := a.Home().Open(a.Name)
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	run := func(context.Context, ledger.Release, string) (int, error) { runs++; return 0, nil }
	if ran, err := other.RunReleasePhase(context.Background(), rel, io.Discard, run); ran || err != nil || runs != 0 {
		t.Fatalf("while its maker holds it: ran %v, %v, %d runs", ran, err, runs)
	}
	// The maker dies: its lock goes with its descriptor.
	a.held.take(rel.Version).Close()
	if ran, err := other.RunReleasePhase(context.Background(), rel, io.Discard, run); !ran || err != nil || runs != 1 {
		t.Fatalf("orphaned: ran %v, %v, %d runs", ran, err, runs)
	}
	if c := current(t, other); c.Version != rel.Version {
		t.Fatalf("current is v%d, want v%d", c.Version, rel.Version)
	}
	// Recorded: nobody runs it again, from a stale copy of the release.
	if ran, err := a.RunReleasePhase(context.Background(), rel, io.Discard, run); ran || err != nil || runs != 1 {
		t.Fatalf("after it ended: ran %v, %v, %d runs", ran, err, runs)
	}
	// And the lock is free for the next release.
	if _, err := other.SetConfig(map[string]string{"A": "1"}, "ann"); err != nil {
		t.Fatal(err)
	}
}

// The maker runs its own phase with the lock it kept.
func TestReleasePhaseByItsMaker(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	rel := deployPending(t, a)
	ran, err := a.RunReleasePhase(context.Background(), rel, io.Discard, func(context.Context, ledger.Release, string) (int, error) { return 3, nil })
	if !ran || err == nil {
		t.Fatalf("ran %v, %v", ran, err)
	}
	if r, _ := a.Ledger.Release(rel.Version); r.Status != ledger.StatusFailed {
		t.Fatalf("status %s", r.Status)
	}
	// A failed phase holds nothing: the next release is made.
	if _, err := a.SetConfig(map[string]string{"A": "1"}, "ann"); err != nil {
		t.Fatal(err)
	}
}

func TestChangeConfig(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.SetConfig(map[string]string{"A": "1", "B": "2"}, "ann")
	rel, err := a.ChangeConfig(map[string]string{"C": "3"}, []string{"A"}, "ann")
	if err != nil || rel.Description != "Set C; remove A config vars" || rel.ConfigVars["C"] != "3" || rel.ConfigVars["A"] != "" || rel.ConfigVars["B"] != "2" {
		t.Fatalf("%+v, %v", rel, err)
	}
	if _, err := a.ChangeConfig(map[string]string{"C": "4"}, []string{"C"}, "ann"); err == nil {
		t.Error("a var both set and unset was accepted")
	}
}
