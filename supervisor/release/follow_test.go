package release

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
)

// Follow reports each committed change once, from another App value
// (as from another process), and ends when the app is destroyed; so
// does its poll where inotify is refused.
func TestFollow(t *testing.T) {
	t.Parallel()
	noInotify := func(string) (<-chan struct{}, func(), error) { return nil, nil, errors.New("refused") }
	for name, watch := range map[string]func(string) (<-chan struct{}, func(), error){"inotify": watchDir, "poll": noInotify} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testFollow(t, watch)
		})
	}
}

func testFollow(t *testing.T, watch func(string) (<-chan struct{}, func(), error)) {
	h := app.Home{Dir: t.TempDir()}
	a, err := h.Create("demo", "test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.Ledger.State()
	if err != nil {
		t.Fatal(err)
	}
	states := make(chan *ledger.State, 10)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- follow(ctx, a.Ledger, st.Seq, func(s *ledger.State) { states <- s }, watch) }()

	other, err := h.Open("demo")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []string{"1", "2"} {
		rel, err := other.SetConfig(map[string]string{"FOO": v}, "test")
		if err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-states:
			if s.Current.Version != rel.Version || s.Current.ConfigVars["FOO"] != v {
				t.Fatalf("change %d: state at v%d %v, want v%d", i, s.Current.Version, s.Current.ConfigVars, rel.Version)
			}
		case err := <-done:
			t.Fatalf("Follow ended: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("change %d was not seen", i)
		}
	}
	select {
	case s := <-states:
		t.Fatalf("a change reported twice: seq %d", s.Seq)
	default:
	}
	if err := h.Destroy("demo"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Follow of a destroyed app: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow went on after the app was destroyed")
	}
}

// Follow ends with ctx.
func TestFollowEndsWithContext(t *testing.T) {
	t.Parallel()
	h := app.Home{Dir: t.TempDir()}
	a, err := h.Create("demo", "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Follow(ctx, a.Ledger, 0, func(*ledger.State) {}) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not end with its context")
	}
}
