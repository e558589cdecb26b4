package logstore

import (
	"bytes"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTailBuffer is how many lines a tail holds for its reader, as
// many as Logplex holds for a drain.
const DefaultTailBuffer = 1024

// A Hub hands lines to live tails. Its Write never blocks on a tail and
// never fails, so it can sit in an io.MultiWriter next to a Store.
type Hub struct {
	mu     sync.Mutex // serialises Subscribe, Tail.Close and Close
	closed bool
	// tails is replaced, never modified, so that Write reads it without
	// a lock.
	tails atomic.Pointer[[]*Tail]
}

// NewHub returns a Hub with no tails.
func NewHub() *Hub {
	return &Hub{}
}

// Write hands each line of p to every tail whose filter matches it. A
// final line without a newline gets one. It always returns len(p), nil.
func (h *Hub) Write(p []byte) (int, error) {
	tp := h.tails.Load()
	if tp == nil || len(*tp) == 0 {
		return len(p), nil
	}
	tails := *tp
	for rest := p; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		var (
			fl       fields
			didSplit bool // fl is set
			parsed   bool // the line is a Logplex line
			owned    []byte
		)
		for _, t := range tails {
			if t.filter != (Filter{}) {
				if !didSplit {
					fl, parsed = split(line)
					didSplit = true
				}
				if !parsed || !t.filter.matchFields(&fl) {
					continue
				}
			}
			if owned == nil {
				// p is the caller's; one copy is shared by all tails.
				owned = make([]byte, len(line)+1)
				copy(owned, line)
				owned[len(line)] = '\n'
			}
			t.offer(owned)
		}
	}
	return len(p), nil
}

// Subscribe returns a tail that receives the lines matching f written
// from now on. buffer is how many lines it holds while its reader is
// behind; <= 0 means DefaultTailBuffer. The caller must Close it.
func (h *Hub) Subscribe(f Filter, buffer int) *Tail {
	if buffer <= 0 {
		buffer = DefaultTailBuffer
	}
	t := &Tail{
		hub:    h,
		filter: f,
		out:    make(chan []byte),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		ring:   make([][]byte, buffer),
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		t.stop()
		close(t.out)
		close(t.exited)
		return t
	}
	var tails []*Tail
	if tp := h.tails.Load(); tp != nil {
		tails = *tp
	}
	tails = append(slices.Clip(tails), t)
	h.tails.Store(&tails)
	go t.deliver()
	return t
}

// remove takes t out of the tails that Write serves.
func (h *Hub) remove(t *Tail) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tp := h.tails.Load()
	if tp == nil {
		return
	}
	tails := slices.DeleteFunc(slices.Clone(*tp), func(u *Tail) bool { return u == t })
	h.tails.Store(&tails)
}

// Close ends every tail, whose Lines channels are then closed, as are
// those of tails subscribed later. Writes after Close are discarded.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	tp := h.tails.Swap(nil)
	h.mu.Unlock()
	if tp == nil {
		return
	}
	for _, t := range *tp {
		t.stop()
		<-t.exited
	}
}

// A Tail is one reader of a Hub's lines: heroku logs --tail.
//
// Lines wait in a ring of fixed size. When the ring is full the oldest line
// is dropped and counted, as Logplex does, so that what the reader gets
// once it catches up is recent; before those lines it gets Logplex's L11
// line saying how many were dropped since when.
type Tail struct {
	hub    *Hub
	filter Filter
	out    chan []byte   // Lines; unbuffered, the ring is the buffer
	wake   chan struct{} // tells deliver that the state changed
	done   chan struct{} // closed by stop
	exited chan struct{} // closed when deliver has returned
	once   sync.Once

	mu      sync.Mutex
	ring    [][]byte
	head, n int       // the lines waiting are ring[head:head+n], wrapping
	dropped int       // lines dropped and not yet reported
	since   time.Time // when the first of them was dropped
	// deliver offers one value on out at a time, taken out of the ring. A
	// line it holds still counts against the ring's size, and is the one
	// dropped next, so that the L11 line comes before every kept line.
	held     held
	heldLost bool // a writer dropped the held line
	idle     bool // deliver waits for wake with nothing to offer
}

type held int

const (
	heldNone held = iota
	heldLine
	heldNotice
)

// Lines returns the channel of the tail's lines, each a whole line with
// its newline. Lines may be shared with other tails: do not modify them.
// The channel is closed when the tail or its Hub is closed.
func (t *Tail) Lines() <-chan []byte { return t.out }

// Close stops the tail: once Close returns, no more lines are delivered
// and Lines is closed.
func (t *Tail) Close() {
	t.hub.remove(t)
	t.stop()
	<-t.exited
}

func (t *Tail) stop() { t.once.Do(func() { close(t.done) }) }

// offer queues line, dropping the oldest line if the ring is full. It
// never waits for the reader.
func (t *Tail) offer(line []byte) {
	t.mu.Lock()
	wake := t.idle
	queued := t.n
	if t.held == heldLine && !t.heldLost {
		queued++
	}
	if queued == len(t.ring) {
		if t.held == heldLine && !t.heldLost {
			t.heldLost = true
		} else {
			t.ring[t.head] = nil
			t.head = (t.head + 1) % len(t.ring)
			t.n--
		}
		if t.dropped == 0 {
			t.since = time.Now()
		}
		t.dropped++
		// deliver discards a lost held line, or renders its L11 line anew.
		wake = true
	}
	t.ring[(t.head+t.n)%len(t.ring)] = line
	t.n++
	t.idle = false
	t.mu.Unlock()
	if wake {
		select {
		case t.wake <- struct{}{}:
		default: // a wake is pending already
		}
	}
}

// deliver moves lines from the ring to the reader, after an L11 line
// whenever lines were dropped.
func (t *Tail) deliver() {
	defer close(t.exited)
	defer close(t.out)
	reported := 0 // the count in the L11 line being offered
	for {
		var v []byte
		t.mu.Lock()
		switch {
		case t.dropped > 0:
			t.held, reported = heldNotice, t.dropped
			v = overflowLine(time.Now(), reported, t.since)
		case t.n > 0:
			t.held, t.heldLost = heldLine, false
			v = t.ring[t.head]
			t.ring[t.head] = nil
			t.head = (t.head + 1) % len(t.ring)
			t.n--
		default:
			t.held, t.idle = heldNone, true
		}
		t.mu.Unlock()
		if v == nil {
			select {
			case <-t.wake:
				continue
			case <-t.done:
				return
			}
		}
	offer:
		for {
			select {
			case t.out <- v:
				t.mu.Lock()
				switch {
				case t.held == heldNotice:
					t.dropped -= reported
					// Lines dropped while the reader took the line are
					// reported next; when they began is not known exactly.
					if t.dropped > 0 {
						t.since = time.Now()
					}
				case t.heldLost:
					// The reader took the line as a writer dropped it.
					t.dropped--
				}
				t.held, t.heldLost = heldNone, false
				t.mu.Unlock()
				break offer
			case <-t.wake:
				t.mu.Lock()
				lost := t.held == heldLine && t.heldLost
				if lost {
					t.held, t.heldLost = heldNone, false
				}
				if t.held == heldNotice && t.dropped != reported {
					reported = t.dropped
					v = overflowLine(time.Now(), reported, t.since)
				}
				t.mu.Unlock()
				if lost {
					break offer
				}
			case <-t.done:
				return
			}
		}
	}
}

// overflowLine renders Logplex's L11 line.
func overflowLine(now time.Time, dropped int, since time.Time) []byte {
	b := make([]byte, 0, 160)
	b = now.AppendFormat(b, stampLayout)
	b = append(b, " heroku[logplex]: Error L11 (Tail buffer overflow) -> This tail session dropped "...)
	b = strconv.AppendInt(b, int64(dropped), 10)
	b = append(b, " messages since "...)
	b = since.AppendFormat(b, stampLayout)
	return append(b, ".\n"...)
}
