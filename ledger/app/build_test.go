package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/internal/testutil"
)

// A sweep removes the folder of a build that died (its lock dropped
// with its process, here its descriptor) and leaves a running one's.
func TestSweepBuilds(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	running, err := a.NewScratch()
	if err != nil {
		t.Fatal(err)
	}
	defer running.Remove()
	dead, err := a.NewScratch()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead.Dir, "left"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dead.lock.Close() // what the kernel does when a build is SIGKILLed
	if !strings.HasPrefix(running.Dir, filepath.Join(a.Home().Dir, "builds", "demo-")) {
		t.Errorf("scratch %s is not under DYNO_HOME/builds", running.Dir)
	}

	n, err := a.Home().SweepBuilds()
	if err != nil || n != 1 {
		t.Errorf("SweepBuilds = %d, %v; want 1 removed", n, err)
	}
	if _, err := os.Stat(dead.Dir); !os.IsNotExist(err) {
		t.Errorf("a dead build's folder is still there: %v", err)
	}
	if _, err := os.Stat(running.Dir); err != nil {
		t.Errorf("a running build's folder was swept: %v", err)
	}
	running.Remove()
	if left := testutil.Names(t, a.Home().BuildsDir()); len(left) != 0 {
		t.Errorf("left in builds: %v", left)
	}
}

// A build's scratch is under DYNO_HOME, whatever TMPDIR says, and gone
// after the build.
func TestBuildScratchUnderHome(t *testing.T) {
	a := newApp(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "Procfile"), []byte("web: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bp := t.TempDir()
	seen := filepath.Join(t.TempDir(), "seen")
	for name, script := range map[string]string{
		"detect":  "#!/bin/sh\necho Where\n",
		"compile": "#!/bin/sh\necho \"$1 $HOME $TMPDIR $3 $(cd \"$(dirname \"$0\")\" && pwd)\" > " + seen + "\n",
	} {
		if err := os.MkdirAll(filepath.Join(bp, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bp, "bin", name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := a.Build(context.Background(), BuildOptions{Source: src, Buildpacks: []string{bp}, User: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if rel.Version != 2 {
		t.Errorf("released v%d, want v2", rel.Version)
	}
	b, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	builds := a.Home().BuildsDir() + "/"
	for _, p := range strings.Fields(string(b)) {
		if !strings.HasPrefix(p, builds) {
			t.Errorf("%s (BUILD_DIR, HOME, TMPDIR, ENV_DIR or the buildpack) is not under %s", p, builds)
		}
	}
	if left := testutil.Names(t, a.Home().BuildsDir()); len(left) != 0 {
		t.Errorf("left in builds: %v", left)
	}
	if left := testutil.Names(t, tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}

// A build canceled records nothing and leaves nothing.
func TestBuildCanceled(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := a.Build(ctx, BuildOptions{Source: t.TempDir(), Buildpacks: []string{t.TempDir()}, User: "ann"})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("err = %v, want one saying the build was canceled", err)
	}
	if c := current(t, a); c.Version != 1 {
		t.Errorf("a canceled build released v%d", c.Version)
	}
	if left := testutil.Names(t, a.Home().BuildsDir()); len(left) != 0 {
		t.Errorf("left in builds: %v", left)
	}
}
