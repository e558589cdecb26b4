package release

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
)

// packSlug stores a slug of one file holding content.
func packSlug(t *testing.T, h app.Home, content string) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "Procfile"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sl, _, err := h.Slugs().Pack(src, slug.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sl.Digest
}

// A Slug keeps the running slug from slugs:gc; after a move the one
// before goes once its grace has passed, and Close lets go of the last.
func TestSlugHolds(t *testing.T) {
	t.Parallel()
	// testutil.SharedDir, not t.TempDir: an unpacked slug's folders lose
	// their write bits, which only root's RemoveAll gets past.
	h := app.Home{Dir: testutil.SharedDir(t)}
	a, err := h.Create("demo", "test")
	if err != nil {
		t.Fatal(err)
	}
	one, two := packSlug(t, h, "web: one"), packSlug(t, h, "web: two")
	s := &Slug{App: a}
	lower, err := s.Use(one)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(lower, "Procfile")); err != nil || string(b) != "web: one" {
		t.Fatalf("%s: %q, %v", lower, b, err)
	}
	if again, err := s.Use(one); err != nil || again != lower {
		t.Fatalf("the same slug again: %q, %v", again, err)
	}
	if removed, err := h.Slugs().GC(nil); err != nil || len(removed) != 1 || removed[0] != two {
		t.Fatalf("gc removed %v (%v); want only the slug nobody runs", removed, err)
	}
	two = packSlug(t, h, "web: two")
	if _, err := s.Use(two); err != nil {
		t.Fatal(err)
	}
	// Grace 0: the slug before is let go at once, by a timer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		removed, err := h.Slugs().GC(nil)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(removed, two) {
			t.Fatal("gc removed the running slug")
		}
		if slices.Contains(removed, one) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slug before was never let go")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	if removed, err := h.Slugs().GC(nil); err != nil || !slices.Equal(removed, []string{two}) {
		t.Fatalf("gc after Close removed %v (%v)", removed, err)
	}
}
