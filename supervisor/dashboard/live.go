package dashboard

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The live side: two Server-Sent Event streams per open app page. One
// says what changed (the script then fetches the page again and swaps
// the parts that changed); the other tails the app's logs into the log
// pane. Both end with the request, and neither is buffered anywhere
// but in the kernel's socket: a reader that stops reading is let go
// when its write deadline passes.

// keepAlive is how often a quiet stream sends a comment, so that the
// router (55 s, H15) and proxies in between keep it open.
const keepAlive = 25 * time.Second

// writeWait is how long one write may wait for a slow reader.
const writeWait = 10 * time.Second

// sse starts an event stream.
func sse(w http.ResponseWriter) (*http.ResponseController, bool) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// nginx and the like would hold the stream back otherwise.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc.SetWriteDeadline(time.Now().Add(writeWait))
	if err := rc.Flush(); err != nil {
		return nil, false
	}
	return rc, true
}

func (s *Server) events(w http.ResponseWriter, r *http.Request, ses session) {
	ctx := r.Context()
	name := r.PathValue("app")
	if _, err := s.cfg.Source.App(ctx, name); err != nil {
		s.fail(w, r, ses, err)
		return
	}
	changes := make(chan Change, 1)
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- s.cfg.Source.Watch(ctx, name, func(c Change) {
			// Changes coalesce while the stream writes: the page
			// refreshes once for a burst of them.
			for {
				select {
				case changes <- c:
					return
				default:
				}
				select {
				case old := <-changes:
					c |= old
				default:
				}
			}
		})
	}()
	rc, ok := sse(w)
	if !ok {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var msg string
		select {
		case <-ctx.Done():
			return
		case <-watchErr:
			return
		case c := <-changes:
			if _, ok := s.sessionOf(r); !ok {
				return // signed out, expired, or a new token
			}
			msg = "event: change\ndata: " + changeWords(c) + "\n\n"
		case <-tick.C:
			if _, ok := s.sessionOf(r); !ok {
				return
			}
			msg = ": keep-alive\n\n"
		}
		rc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := w.Write([]byte(msg)); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// changeWords names the parts of the page that changed.
func changeWords(c Change) string {
	var w []string
	if c&ChangeDynos != 0 {
		w = append(w, "dynos")
	}
	if c&ChangeRelease != 0 {
		w = append(w, "release")
	}
	if c&ChangeMetrics != 0 {
		w = append(w, "metrics")
	}
	return strings.Join(w, " ")
}

// maxLogLine bounds what one line of the pane carries.
const maxLogLine = 8 << 10

func (s *Server) logs(w http.ResponseWriter, r *http.Request, ses session) {
	ctx := r.Context()
	name := r.PathValue("app")
	if _, err := s.cfg.Source.App(ctx, name); err != nil {
		s.fail(w, r, ses, err)
		return
	}
	rc, ok := sse(w)
	if !ok {
		return
	}
	// The stream starts with the last lines the page shows too: the
	// script skips those it has, so that no line written between the
	// page and the stream, or while it reconnects, is lost.
	n := 0
	if v, err := strconv.Atoi(r.URL.Query().Get("lines")); err == nil && v >= 0 && v <= 1000 {
		n = v
	}
	var buf bytes.Buffer
	err := s.cfg.Source.Logs(ctx, name, n, func(lines [][]byte) bool {
		if _, ok := s.sessionOf(r); !ok {
			return false // signed out, expired, or a new token
		}
		buf.Reset()
		for _, l := range lines {
			if len(l) > maxLogLine {
				l = l[:maxLogLine]
			}
			// One event per line: "data: COLOR LINE". A line holds no
			// newline (the store splits on them); a carriage return
			// would end an SSE line, so it goes.
			buf.WriteString("data: ")
			buf.WriteString(strconv.Itoa(parseLogLine(l).Color))
			buf.WriteByte(' ')
			buf.Write(bytes.ReplaceAll(l, []byte("\r"), nil))
			buf.WriteString("\n\n")
		}
		if buf.Len() == 0 {
			buf.WriteString(": keep-alive\n\n")
		}
		rc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		return rc.Flush() == nil
	})
	if err != nil && !errors.Is(err, ctx.Err()) {
		s.cfg.ErrorLog.Printf("dashboard: logs of %s: %v", name, err)
	}
}
