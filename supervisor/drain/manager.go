package drain

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/dyno-run/dyno/ledger"
)

// A Manager is one app's drains: an io.Writer of the app's stored lines
// that hands each line to every drain, kept to the ledger's list by Set.
type Manager struct {
	opts Options

	mu     sync.RWMutex
	drains map[string]*Drain // by ID and URL (key)
	closed bool
	wg     sync.WaitGroup // drains being closed
}

// NewManager returns a Manager with no drains, whose drains are made
// with opts.
func NewManager(opts Options) *Manager {
	return &Manager{opts: opts.withDefaults(), drains: map[string]*Drain{}}
}

func key(d ledger.Drain) string { return d.ID + " " + d.URL }

// removeGrace is how long a removed drain may go on sending what it
// holds: the user asked for it to stop, so a drain that is down is not
// waited on for long.
const removeGrace = 5 * time.Second

// Set makes the drains those of list: a drain in both keeps running
// with its buffer, a new one starts, and one no longer listed is closed
// in the background, once it has sent what it holds or after
// removeGrace.
func (m *Manager) Set(list []ledger.Drain) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	want := make(map[string]ledger.Drain, len(list))
	for _, d := range list {
		want[key(d)] = d
	}
	for k, d := range m.drains {
		if _, ok := want[k]; !ok {
			delete(m.drains, k)
			m.wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), removeGrace)
				defer cancel()
				d.Close(ctx)
			})
		}
	}
	for k, ld := range want {
		if _, ok := m.drains[k]; ok {
			continue
		}
		d, err := New(ld.URL, ld.Token, m.opts)
		if err != nil {
			// The ledger's URLs were checked when added; one that is
			// not a drain's now is reported, not retried.
			m.opts.Logf("%v", err)
			continue
		}
		m.drains[k] = d
	}
}

// Len returns how many drains run.
func (m *Manager) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.drains)
}

// Write hands each line of p, whole lines in the store's format, to
// every drain. It never blocks on a drain and never fails, so that it
// can sit beside the store in an io.MultiWriter.
func (m *Manager) Write(p []byte) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.drains) == 0 {
		return len(p), nil
	}
	now := m.opts.Now()
	for rest := p; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		l := ParseLine(line, now)
		for _, d := range m.drains {
			d.sendAt(l, now)
		}
	}
	return len(p), nil
}

// Close closes every drain, each sending what it holds until ctx ends,
// and returns when all have stopped. Lines written after are dropped.
func (m *Manager) Close(ctx context.Context) {
	m.mu.Lock()
	m.closed = true
	for k, d := range m.drains {
		delete(m.drains, k)
		m.wg.Go(func() { d.Close(ctx) })
	}
	m.mu.Unlock()
	m.wg.Wait()
}
