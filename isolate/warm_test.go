package isolate

import (
	"os"
	"sync"
	"testing"
)

// Warm inits' lifecycle, in this process: the test binary is the init.
// Run with -race: SetPrewarm, WarmUp, Start, DropWarm and Close are
// called from many goroutines in the daemon.

func newWarmSpawner(t *testing.T) *Spawner {
	t.Helper()
	if reason := userNSBlocker(sysctlDir); reason != "" {
		t.Skip(reason)
	}
	sp, err := NewSpawner()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Close)
	sp.SetPrewarm(true)
	return sp
}

// assertNoWarm checks that nothing is kept warm for stateDir, no init
// is alive and no dyno dir is left.
func assertNoWarm(t *testing.T, sp *Spawner, stateDir string) {
	t.Helper()
	sp.warming.Wait()
	sp.cleanup.Wait()
	sp.mu.Lock()
	slot, live := sp.warm[stateDir], len(sp.live)
	sp.mu.Unlock()
	if slot != nil {
		t.Errorf("a warm init is kept for %s (ready: %v)", stateDir, slot.l != nil)
	}
	if live != 0 {
		t.Errorf("%d inits are still alive", live)
	}
	if entries, _ := os.ReadDir(stateDir); len(entries) != 0 {
		t.Errorf("dyno dirs left in %s: %v", stateDir, entries)
	}
}

// An app destroyed while its warm init is being launched: the init is
// ended when its launch finishes, not kept until the manager exits.
func TestDropWarmDuringLaunch(t *testing.T) {
	t.Parallel()
	sp := newWarmSpawner(t)
	stateDir := t.TempDir()
	launched := 0
	sp.warmLaunched = func(dir string) {
		launched++
		sp.DropWarm(dir)
	}
	sp.WarmUp(stateDir, nil)
	assertNoWarm(t, sp, stateDir)
	if launched != 1 {
		t.Fatalf("%d warm inits launched, want 1", launched)
	}
}

// After DropWarm, starting a dyno in that state dir (a last restart
// racing the app's removal) launches no warm init; WarmUp starts over.
func TestNoWarmInitAfterDropWarm(t *testing.T) {
	t.Parallel()
	sp := newWarmSpawner(t)
	stateDir, lower := t.TempDir(), t.TempDir()
	sp.DropWarm(stateDir)
	d, err := sp.Start(Spec{Name: "web.1", Argv: []string{"/bin/true"}, Dir: "/app", Env: []string{"PATH=/usr/bin:/bin"},
		Sandbox: &Sandbox{Lower: lower, StateDir: stateDir}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := d.Wait(); st != 0 || err != nil {
		t.Fatalf("status %d, %v", st, err)
	}
	assertNoWarm(t, sp, stateDir)

	sp.WarmUp(stateDir, nil)
	sp.warming.Wait()
	sp.mu.Lock()
	slot := sp.warm[stateDir]
	sp.mu.Unlock()
	if slot == nil || slot.l == nil {
		t.Fatal("WarmUp after DropWarm kept no warm init")
	}
	sp.DropWarm(stateDir)
	assertNoWarm(t, sp, stateDir)
}

// SetPrewarm, starts, WarmUp and DropWarm at once (-race finds unlocked
// accesses); whatever the order, Close leaves no init behind.
func TestWarmConcurrentLifecycle(t *testing.T) {
	t.Parallel()
	sp := newWarmSpawner(t)
	stateDir, lower := t.TempDir(), t.TempDir()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				switch (i + j) % 4 {
				case 0:
					sp.SetPrewarm(j%2 == 0)
				case 1:
					sp.WarmUp(stateDir, nil)
				case 2:
					sp.DropWarm(stateDir)
				case 3:
					d, err := sp.Start(Spec{Name: "web.1", Argv: []string{"/bin/true"}, Dir: "/app", Env: []string{"PATH=/usr/bin:/bin"},
						Sandbox: &Sandbox{Lower: lower, StateDir: stateDir}})
					if err != nil {
						t.Error(err)
						continue
					}
					d.Wait()
				}
			}
		}()
	}
	wg.Wait()
	sp.Close()
	sp.mu.Lock()
	live := len(sp.live)
	sp.mu.Unlock()
	if live != 0 {
		t.Errorf("%d inits alive after Close", live)
	}
	if entries, _ := os.ReadDir(stateDir); len(entries) != 0 {
		t.Errorf("dyno dirs left after Close: %v", entries)
	}
}
