package rendezvous

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// SecretLen is the length of a secret: 32 random bytes in hex. Hex, and
// lower case, so that no HTTP request line can be taken for one: a
// method is upper case and followed by a space (RFC 9110, 9.1).
const SecretLen = 64

// DefaultTTL is how long a secret waits for its client. The Heroku CLI
// connects as soon as the API answers, so a minute is ample.
const DefaultTTL = time.Minute

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("rendezvous: table closed")

// A Table holds the secrets handed out and not yet claimed. Each is
// claimed once, by the first connection that presents it, or expires.
type Table struct {
	ttl time.Duration

	mu      sync.Mutex
	pending map[string]*entry
	closed  bool
}

type entry struct {
	attach func(net.Conn)
	expire func()
	timer  *time.Timer
}

// NewTable returns a table whose secrets expire after ttl.
func NewTable(ttl time.Duration) *Table {
	return &Table{ttl: ttl, pending: make(map[string]*entry)}
}

// Add makes a new secret for attach, which Claim hands to the first
// connection that presents it. If none does within the table's ttl,
// or the table is closed first, expire runs instead; exactly one of the
// two is ever called.
func (t *Table) Add(attach func(net.Conn), expire func()) (string, error) {
	var b [SecretLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("rendezvous: make secret: %w", err)
	}
	secret := hex.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return "", ErrClosed
	}
	e := &entry{attach: attach, expire: expire}
	e.timer = time.AfterFunc(t.ttl, func() {
		if t.take(secret, e) {
			e.expire()
		}
	})
	t.pending[secret] = e
	return secret, nil
}

// Claim takes secret's attach function, once: a second Claim of the
// same secret, or one after it expired, finds nothing.
func (t *Table) Claim(secret string) (func(net.Conn), bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.pending[secret]
	if !ok {
		return nil, false
	}
	delete(t.pending, secret)
	e.timer.Stop()
	return e.attach, true
}

// Revoke drops secret unclaimed, and reports whether it was pending:
// neither its attach nor its expire runs then.
func (t *Table) Revoke(secret string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.pending[secret]
	if !ok {
		return false
	}
	delete(t.pending, secret)
	e.timer.Stop()
	return true
}

// TTL is how long a secret waits for its client.
func (t *Table) TTL() time.Duration { return t.ttl }

// take removes secret if it is still e's, and reports whether it was.
func (t *Table) take(secret string, e *entry) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending[secret] != e {
		return false
	}
	delete(t.pending, secret)
	return true
}

// Len is how many secrets wait for their client.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// Close expires every pending secret now and refuses new ones.
func (t *Table) Close() {
	t.mu.Lock()
	t.closed = true
	var expired []*entry
	for s, e := range t.pending {
		if e.timer.Stop() {
			expired = append(expired, e)
		}
		delete(t.pending, s)
	}
	t.mu.Unlock()
	for _, e := range expired {
		e.expire()
	}
}
