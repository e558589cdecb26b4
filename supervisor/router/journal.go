package router

import (
	"sync"
	"time"
)

// Sink is where the router's log lines go: each app's log store. It is
// called from one goroutine, the Journal's, so it may block (a disk, a
// slow reader) without the requests noticing.
type Sink interface {
	// RouterLine is one heroku[router] line of app, without the
	// timestamp, source or newline. line is only valid during the call.
	RouterLine(app string, line []byte)
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
type Journal struct {
	sink Sink
	max  int

	mu      sync.Mutex
	front   []byte  // lines waiting, back to back
	entries []entry // where each starts and whose it is
	dropped map[string]*drop
	wake    chan struct{}
	closed  bool
	done    chan struct{}
}

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
	j := &Journal{sink: sink, max: max, dropped: map[string]*drop{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go j.run()
	return j
}

// Add queues one line of app, or drops it when the buffer is full.
func (j *Journal) Add(app string, line []byte) {
	j.mu.Lock()
	if j.closed || len(j.front)+len(line) > j.max {
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
	j.entries = append(j.entries, entry{app: app, offset: len(j.front), length: len(line)})
	j.front = append(j.front, line...)
	// Under the lock, so that Close cannot close wake in between.
	select {
	case j.wake <- struct{}{}:
	default:
	}
	j.mu.Unlock()
}

// Close hands what is queued to the sink and stops the journal; lines
// added after are dropped.
func (j *Journal) Close() {
	j.mu.Lock()
	if !j.closed {
		j.closed = true
		close(j.wake)
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
	for {
		_, open := <-j.wake
		for {
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
			if len(entries) == 0 && len(losses) == 0 {
				break
			}
			for _, e := range entries {
				j.sink.RouterLine(e.app, back[e.offset:e.offset+e.length])
			}
			for _, l := range losses {
				j.sink.Dropped(l.app, l.n, l.since)
			}
		}
		if !open {
			return
		}
	}
}
