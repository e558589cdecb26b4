package release

import (
	"io"
	"sync"
	"time"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/ledger/app"
)

// Slug is the slug an app's dynos run on, unpacked and held: slugs:gc
// leaves a held slug alone. The daemon and dyno start -a keep one per
// app and move it to each new release's slug.
type Slug struct {
	App *app.App
	// IDs are the app's own host ids, whose own copy of the slug its
	// dynos mount (app.App.Lower); nil: the store's shared one.
	IDs *isolate.IDRange
	// Grace is how long the slug before stays held after a move: its
	// dynos may take their stop timeout to stop, and a margin.
	Grace time.Duration

	mu     sync.Mutex
	digest string
	lower  string
	hold   io.Closer
}

// Use makes digest the slug the dynos run on and returns the folder it
// is unpacked at; the same digest again costs nothing.
func (s *Slug) Use(digest string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if digest == s.digest && s.hold != nil {
		return s.lower, nil
	}
	// Held before it is unpacked: slugs:gc then leaves it alone.
	hold, err := s.App.Home().Slugs().Acquire(digest)
	if err != nil {
		return "", err
	}
	lower, err := s.App.Lower(digest, s.IDs)
	if err != nil {
		hold.Close()
		return "", err
	}
	if old := s.hold; old != nil {
		time.AfterFunc(s.Grace, func() { old.Close() })
	}
	s.digest, s.lower, s.hold = digest, lower, hold
	return lower, nil
}

// Close lets go of the slug (one still held after a move goes when its
// grace ends).
func (s *Slug) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		s.hold.Close()
		s.hold = nil
	}
}
