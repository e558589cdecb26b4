package daemon

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dyno-run/dyno/supervisor/logstore"
)

// Log sessions over TCP, as Heroku's: POST /apps/APP/log-sessions
// answers with a logplex_url, an absolute URL whose path holds a random
// capability, and the Heroku CLI reads it as Server-Sent Events without
// sending its token (it would send it to Logplex's host, which is not
// the API's). So the URL itself is the secret: it is served before the
// token check (serverFor), is good for one session only, and is
// forgotten logSessionIdle after its last stream ended.
//
// A tail the CLI loses (the daemon restarting a connection, a proxy's
// timeout) is reconnected to the same URL with Last-Event-ID: the
// session keeps its cursor in the store and the events it sent last, so
// the stream goes on from that event rather than from the start.

const (
	// logSessionIdle is how long a session outlives its last stream (or
	// its creation, before any): a reconnect comes within the retry the
	// stream asked for, a CLI that went away never.
	logSessionIdle = 5 * time.Minute
	// maxLogSessions bounds the sessions kept at once.
	maxLogSessions = 1000
	// sseReplay is how many events a session keeps for a reconnect:
	// what a tail can have sent and the client not yet read.
	sseReplay = 1500
	// sseRetry is the reconnect delay the stream asks of the client, in
	// ms. The CLI's EventSource arms its reconnect timer even after it
	// closes the stream at the end of the history, and its default of
	// 3 s would keep every "heroku logs" waiting that long to exit.
	sseRetry = 50
)

// logSessions are the capabilities handed out and not yet forgotten.
type logSessions struct {
	mu sync.Mutex
	m  map[string]*logSession
}

// logSession is one POST /apps/APP/log-sessions over TCP.
type logSession struct {
	app    string
	filter logstore.Filter
	lines  int
	tail   bool
	forget *time.Timer // removes the session once idle

	// mu is held by the one stream that reads the session at a time.
	mu   sync.Mutex
	done bool             // a history without tail was sent whole
	cur  *logstore.Cursor // where the store is read next; nil before the first stream
	sent []sseEvent       // the last events sent, oldest first, for Last-Event-ID
	next int              // the id of the next event
}

type sseEvent struct {
	id   int
	data []byte
}

// add keeps s under a new capability and returns it. Sessions past their
// idle time are forgotten by their own timers; when maxLogSessions are
// kept, none is added.
func (ls *logSessions) add(s *logSession) (string, error) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24 on)
	id := base64.RawURLEncoding.EncodeToString(b[:])
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.m) >= maxLogSessions {
		return "", fmt.Errorf("%d log sessions are open, the most the daemon keeps; end some (each is forgotten %v after its stream ends)", maxLogSessions, logSessionIdle)
	}
	if ls.m == nil {
		ls.m = map[string]*logSession{}
	}
	ls.m[id] = s
	s.forget = time.AfterFunc(logSessionIdle, func() { ls.remove(id, s) })
	return id, nil
}

func (ls *logSessions) get(id string) *logSession {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.m[id]
}

// remove forgets the session id if it is still s, and closes its
// cursor unless a stream is reading it (that stream closes it).
func (ls *logSessions) remove(id string, s *logSession) {
	ls.mu.Lock()
	if ls.m[id] == s {
		delete(ls.m, id)
	}
	ls.mu.Unlock()
	if s.mu.TryLock() {
		s.close()
		s.mu.Unlock()
	}
}

// closeAll forgets every session: the daemon is stopping.
func (ls *logSessions) closeAll() {
	ls.mu.Lock()
	m := ls.m
	ls.m = nil
	ls.mu.Unlock()
	for id, s := range m {
		s.forget.Stop()
		ls.remove(id, s)
	}
}

// close closes the session's cursor; s.mu is held.
func (s *logSession) close() {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
	s.done = true
}

// serveLogSession is GET /log-stream/{session}: the session's lines as
// Server-Sent Events, one line an event. Without tail it sends the last
// lines stored and ends, and the session with it; with tail it goes on
// with every line stored after them until the client goes.
func (d *Daemon) serveLogSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session")
	s := d.logSessions.get(id)
	if s == nil {
		writeError(w, http.StatusNotFound, "not_found", "no such log session; it ended or was never made: ask for a new one (POST /apps/APP/log-sessions)")
		return
	}
	if !s.mu.TryLock() {
		writeError(w, http.StatusConflict, "conflict", "this log session is being read by another stream")
		return
	}
	defer s.mu.Unlock()
	if s.done {
		writeError(w, http.StatusNotFound, "not_found", "this log session has ended: ask for a new one (POST /apps/APP/log-sessions)")
		return
	}
	s.forget.Stop()
	defer s.forget.Reset(logSessionIdle)
	a, err := d.awaitApp(r.Context(), s.app)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "Couldn't find that app: %s", s.app)
		return
	}
	var wake *logstore.Tail
	if s.tail {
		wake = a.hub.Subscribe(s.filter, 1)
		defer wake.Close()
	}
	var replay []sseEvent
	var fresh []logstore.Line
	if s.cur == nil {
		lines, cur, err := logstore.Follow(a.app.LogsDir(), s.filter, s.lines)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
			return
		}
		s.cur, fresh = cur, lines
	} else if last, err := strconv.Atoi(r.Header.Get("Last-Event-ID")); err == nil {
		for _, e := range s.sent {
			if e.id > last {
				replay = append(replay, e)
			}
		}
	} else {
		// A reconnect that says nothing of what it has seen: every
		// event kept, as it may have seen none.
		replay = append(replay, s.sent...)
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	var buf []byte
	flush := func() bool {
		rc.SetWriteDeadline(time.Now().Add(d.cfg.WriteTimeout))
		_, err := w.Write(buf)
		buf = buf[:0]
		return err == nil && rc.Flush() == nil
	}
	buf = fmt.Appendf(buf, "retry: %d\n\n", sseRetry)
	for _, e := range replay {
		buf = appendEvent(buf, e)
	}
	send := func(lines []logstore.Line) bool {
		for _, l := range lines {
			e := sseEvent{id: s.next, data: l.Raw}
			s.next++
			s.sent = append(s.sent, e)
			buf = appendEvent(buf, e)
		}
		if over := len(s.sent) - sseReplay; over > 0 {
			s.sent = append(s.sent[:0], s.sent[over:]...)
		}
		return flush()
	}
	if !send(fresh) {
		return
	}
	if !s.tail {
		// One history per session: a reconnect after the end finds the
		// session gone, and the client stops.
		s.close()
		return
	}
	followLogs(r.Context(), wake, s.cur, 0, send)
}

// appendEvent appends e as an SSE event. A stored line holds no newline
// (the store splits on them), so it is one data field; a carriage
// return, which SSE also takes for a line's end, is left out.
func appendEvent(b []byte, e sseEvent) []byte {
	b = fmt.Appendf(b, "id: %d\ndata: ", e.id)
	for _, c := range e.data {
		if c != '\r' {
			b = append(b, c)
		}
	}
	return append(b, '\n', '\n')
}
