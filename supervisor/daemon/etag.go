package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// etags gives each GET answered with JSON (200 or 206) an ETag, a hash
// of the body, and answers 304 with no body to an If-None-Match that
// names it, as the Platform API does: a client that cached a resource
// asks whether it changed without reading it again. Other answers (an
// error, the log stream, anything not JSON) pass through as they are
// written, flushes included.
func etags(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			h.ServeHTTP(w, r)
			return
		}
		ew := &etagWriter{ResponseWriter: w, r: r}
		h.ServeHTTP(ew, r)
		ew.finish()
	})
}

// etagWriter holds a JSON answer back until the handler returns, to hash
// it; it passes any other through.
type etagWriter struct {
	http.ResponseWriter
	r      *http.Request
	status int           // the held answer's, once WriteHeader is called
	held   *bytes.Buffer // the held body; nil when passing through
}

func (e *etagWriter) WriteHeader(code int) {
	if e.status != 0 {
		return
	}
	e.status = code
	if (code == http.StatusOK || code == http.StatusPartialContent) &&
		strings.HasPrefix(e.Header().Get("Content-Type"), "application/json") {
		e.held = &bytes.Buffer{}
		return
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *etagWriter) Write(p []byte) (int, error) {
	if e.status == 0 {
		e.WriteHeader(http.StatusOK)
	}
	if e.held != nil {
		return e.held.Write(p)
	}
	return e.ResponseWriter.Write(p)
}

// Flush passes through an answer not held; a held one is sent whole by
// finish.
func (e *etagWriter) Flush() {
	if e.held != nil {
		return
	}
	if e.status == 0 {
		e.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(e.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (the log
// stream's write deadlines).
func (e *etagWriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

func (e *etagWriter) finish() {
	if e.held == nil {
		return
	}
	sum := sha256.Sum256(e.held.Bytes())
	tag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h := e.Header()
	h.Set("ETag", tag)
	if etagMatches(e.r.Header.Get("If-None-Match"), tag) {
		h.Del("Content-Type")
		e.ResponseWriter.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(e.held.Len()))
	e.ResponseWriter.WriteHeader(e.status)
	e.ResponseWriter.Write(e.held.Bytes())
}

// etagMatches says whether an If-None-Match header names tag: "*", or a
// list of tags compared weakly (RFC 9110, 13.1.2).
func etagMatches(header, tag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}
