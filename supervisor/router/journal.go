package router

import (
	"sync"
	"time"
)

// Sink is where the router's log lines go: each app's log store. It is
// called from one goroutine, the Journal's, so it may block (a disk, a
// slow reader) without the requests noticing.
type Sink interface {
	// RouterLines is one or more heroku[router] lines of app, each
	// without the timestamp or source and ended by a newline: a batch,
	// so that a busy app's lines cost its log store one write, not one
	// per request. lines is only valid during the call.
	RouterLines(app string, lines []byte)
	// Dropped says that n of app's router lines were lost since since,
	// because the sink lagged: Heroku's L10.
	Dropped(app string, n int, since time.Time)
}

// JournalSize is how many bytes of log lines wait for the sink at most
// before new ones are dropped: some 4,000 ordinary lines.
const JournalSize = 1 << 20

// Journal carries log lines from the request path to a Sink without ever
// making a request wait for it: Add copies the line into a bounded buffer
// and returns; a goroutine hands the buffer to the sink. When the sink
// lags and the buffer is full, lines are dropped and counted per app, and
// the sink hears the count once it catches up. Two buffers swap, so in a
// steady state nothing is allocated.
//
// Lines wait up to JournalDelay (or until JournalBatch bytes wait) before
// the sink gets them, as nginx buffers its access log: one wake-up of the
// journal's goroutine and one write per app per batch, instead of a
// wake-up (a futex, a thread) and a write per request.
type Journal struct {
	sink  Sink
	max   int
	delay time.Duration

	mu      sync.Mutex
	front   []byte  // lines waiting, back to back, each ended by a newline
	entries []entry // where each run of one app's lines starts
	dropped map[string]*drop
	wake    chan struct{} // the first line after a swap
	full    chan struct{} // JournalBatch bytes wait
	closing chan struct{}
	closed  bool
	done    chan struct{}
}

// JournalDelay is how long a line waits for others to go with it.
const JournalDelay = 20 * time.Millisecond

// JournalBatch is how many bytes of lines go to the sink without waiting
// for JournalDelay.
const JournalBatch = 64 << 10

type entry struct {
	app    string
	offset int
	length int
}

type drop struct {
	n     int
	since time.Time
}

// NewJournal starts a journal that holds at most max bytes of lines
// (JournalSize when max is 0) and feeds sink.
func NewJournal(sink Sink, max int) *Journal {
	if max <= 0 {
		max = JournalSize
	}
	j := &Journal{sink: sink, max: max, delay: JournalDelay, dropped: map[string]*drop{},
		wake: make(chan struct{}, 1), full: make(chan struct{}, 1),
		closing: make(chan struct{}), done: make(chan struct{})}
	go j.run()
	return j
}

// Add queues one line of app, or drops it when the buffer is full.
func (j *Journal) Add(app string, line []byte) {
	j.mu.Lock()
	if j.closed || len(j.front)+len(line)+1 > j.max {
		if !j.closed {
			d := j.dropped[app]
			if d == nil {
				d = &drop{}
				j.dropped[app] = d
			}
			if d.n == 0 {
				d.since = time.Now()
			}
			d.n++
		}
		j.mu.Unlock()
		return
	}
	size := len(j.front)
	if n := len(j.entries); n > 0 && j.entries[n-1].app == app {
		// The same app as the line before: one run, one write.
		j.entries[n-1].length += len(line) + 1
	} else {
		j.entries = append(j.entries, entry{app: app, offset: size, length: len(line) + 1})
	}
	j.front = append(j.front, line...)
	j.front = append(j.front, '\n')
	// Under the lock, so that Close cannot close the channels in between.
	var wake chan struct{}
	switch {
	case size == 0:
		wake = j.wake
	case size < JournalBatch && len(j.front) >= JournalBatch:
		wake = j.full
	}
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	j.mu.Unlock()
}

// Close hands what is queued to the sink and stops the journal; lines
// added after are dropped.
func (j *Journal) Close() {
	j.mu.Lock()
	if !j.closed {
		j.closed = true
		close(j.closing)
	}
	j.mu.Unlock()
	<-j.done
}

func (j *Journal) run() {
	defer close(j.done)
	var back []byte
	var entries []entry
	type lost struct {
		app string
		drop
	}
	var losses []lost
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	closing := false
	for {
		if !closing {
			select {
			case <-j.wake:
			case <-j.full:
			case <-j.closing:
				closing = true
			}
		}
		if !closing {
			// Let the batch gather, unless it is big already.
			delay.Reset(j.delay)
			select {
			case <-delay.C:
			case <-j.full:
				delay.Stop()
			case <-j.closing:
				closing = true
				delay.Stop()
			}
		}
		j.mu.Lock()
		back, j.front = j.front, back[:0]
		entries, j.entries = j.entries, entries[:0]
		losses = losses[:0]
		for app, d := range j.dropped {
			if d.n > 0 {
				losses = append(losses, lost{app, *d})
				d.n = 0
			}
		}
		j.mu.Unlock()
		for _, e := range entries {
			j.sink.RouterLines(e.app, back[e.offset:e.offset+e.length])
		}
		for _, l := range losses {
			j.sink.Dropped(l.app, l.n, l.since)
		}
		if closing {
			// closed was set before closing was: Add has queued
			// nothing since the swap.
			return
		}
	}
}
