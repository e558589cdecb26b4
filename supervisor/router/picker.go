package router

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// Quarantine is how long a dyno that refused a connection gets no
// requests: Heroku's router quarantines it for up to 5 s and retries the
// request on another dyno.
const Quarantine = 5 * time.Second

// Backend is one web dyno a request can go to.
type Backend struct {
	Dyno string // "web.1", the log line's dyno=
	Addr string // where it listens: "127.0.0.1:20003"
}

// Why Pick found no dyno. The engine answers ErrNoDynos at once (H14, or
// H10 when they crashed) and holds the request on ErrAllQuarantined,
// retrying until Heroku's 75 s.
var (
	ErrNoDynos        = errors.New("no web dyno is up")
	ErrAllQuarantined = errors.New("every web dyno that is up is quarantined")
)

// Picker chooses, at random as Heroku's router does, one of an app's web
// dynos that are up, skipping those quarantined. It is safe for
// concurrent use and a pick allocates nothing.
type Picker struct {
	now func() time.Time

	mu    sync.Mutex
	dynos []pickable
}

type pickable struct {
	Backend
	until time.Time // quarantined before this instant
}

// NewPicker returns a Picker with no dynos that reads the time from now
// (time.Now, or a fake clock in tests).
func NewPicker(now func() time.Time) *Picker {
	return &Picker{now: now}
}

// SetUp replaces the dynos that are up. A dyno that stays, the same name
// at the same address, keeps its quarantine; a dyno restarted on a new
// address starts clean.
func (p *Picker) SetUp(up []Backend) {
	next := make([]pickable, len(up))
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range up {
		next[i].Backend = b
		for _, old := range p.dynos {
			if old.Backend == b {
				next[i].until = old.until
				break
			}
		}
	}
	p.dynos = next
}

// Pick returns a random dyno among those up and not quarantined.
func (p *Picker) Pick() (Backend, error) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.dynos) == 0 {
		return Backend{}, ErrNoDynos
	}
	n := 0
	for i := range p.dynos {
		if !now.Before(p.dynos[i].until) {
			n++
		}
	}
	if n == 0 {
		return Backend{}, ErrAllQuarantined
	}
	k := rand.IntN(n)
	for i := range p.dynos {
		if now.Before(p.dynos[i].until) {
			continue
		}
		if k == 0 {
			return p.dynos[i].Backend, nil
		}
		k--
	}
	panic("unreachable: n counted the dynos that are not quarantined")
}

// Quarantine keeps b from being picked for the next 5 s: the engine calls
// it when b refused a connection, then picks again.
func (p *Picker) Quarantine(b Backend) {
	until := p.now().Add(Quarantine)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.dynos {
		if p.dynos[i].Backend == b {
			p.dynos[i].until = until
		}
	}
}

// nextFree returns when the first quarantined dyno becomes free again,
// when every dyno that is up is quarantined; ok is false otherwise.
func (p *Picker) nextFree() (t time.Time, ok bool) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.dynos {
		u := p.dynos[i].until
		if !now.Before(u) {
			return time.Time{}, false
		}
		if !ok || u.Before(t) {
			t, ok = u, true
		}
	}
	return t, ok
}
