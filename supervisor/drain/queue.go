package drain

import "time"

// queue is a drain's bounded buffer of lines not yet sent. When it is
// full the oldest line is dropped to make room, as Logplex keeps the
// newer lines, and the drop is counted for the next L10.
type queue struct {
	ring    []Line
	head, n int
	dropped int       // since the last L10 was taken
	since   time.Time // of the first of those drops
}

func newQueue(size int) *queue { return &queue{ring: make([]Line, size)} }

// push adds l, dropping the oldest line if the queue is full.
func (q *queue) push(l Line, now time.Time) {
	if q.n == len(q.ring) {
		q.ring[q.head] = Line{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
		if q.dropped == 0 {
			q.since = now
		}
		q.dropped++
	}
	q.ring[(q.head+q.n)%len(q.ring)] = l
	q.n++
}

// take removes and returns up to max lines, oldest first, after an L10
// line when lines were dropped since the last take.
func (q *queue) take(max int, now time.Time) []Line {
	var out []Line
	if q.dropped > 0 {
		out = append(out, overflowLine(q.dropped, q.since, now))
		q.dropped = 0
	}
	for q.n > 0 && len(out) < max {
		out = append(out, q.ring[q.head])
		q.ring[q.head] = Line{}
		q.head = (q.head + 1) % len(q.ring)
		q.n--
	}
	return out
}

func (q *queue) empty() bool { return q.n == 0 && q.dropped == 0 }
