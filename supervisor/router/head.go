package router

import (
	"bytes"
	"strconv"

	"github.com/dyno-run/dyno/internal/uuid"
)

// Heroku's limits on a request head. A head over them is refused with
// H25. MaxHead bounds the whole head, so that a client cannot make the
// router hold 1000 lines of 8 KiB each.
const (
	MaxRequestLine = 8 << 10
	MaxHeaderLine  = 8 << 10
	MaxHeaders     = 1000
	MaxHead        = 64 << 10
)

// A Span is the byte range [Start, End) of the buffer a head was parsed
// from. Heads hold spans, not strings, so that parsing allocates nothing.
type Span struct{ Start, End int }

// In returns the span's bytes in b, the buffer it was parsed from.
func (s Span) In(b []byte) []byte { return b[s.Start:s.End] }

// Len is the span's length.
func (s Span) Len() int { return s.End - s.Start }

// Field is one header line: its name and its value without surrounding
// whitespace.
type Field struct {
	Name, Value Span
	kind        fieldKind
}

// fieldKind is what the router does with a header, decided once at parse
// time so that the rewrite does not compare names again.
type fieldKind uint8

const (
	fOther fieldKind = iota
	fConnection
	fKeepAlive
	fProxyConnection
	fTE
	fTrailer
	fTransferEncoding
	fUpgrade
	fContentLength
	fHost
	fExpect
	fXForwardedFor
	fXForwardedProto
	fXForwardedPort
	fXRequestStart
	fXRequestID
	fVia
)

// hopByHop reports whether a header of kind k concerns one connection
// only and is never forwarded as such (RFC 9110 section 7.6.1).
func (k fieldKind) hopByHop() bool {
	return k >= fConnection && k <= fUpgrade
}

// framing reports whether a header of kind k frames the message or names
// its target: Content-Length and Host are kept even when Connection names
// them, since dropping them would let a client's body (or a dyno's
// response) be read as the next message on the connection: request
// smuggling (RFC 9112 section 11.2). Transfer-Encoding is hop-by-hop and
// always written by the router itself.
func (k fieldKind) framing() bool {
	return k == fContentLength || k == fHost
}

// kindOf classifies a header name, case-insensitively.
func kindOf(name []byte) fieldKind {
	switch len(name) {
	case 2:
		if equalFold(name, "te") {
			return fTE
		}
	case 3:
		if equalFold(name, "via") {
			return fVia
		}
	case 4:
		if equalFold(name, "host") {
			return fHost
		}
	case 6:
		if equalFold(name, "expect") {
			return fExpect
		}
	case 7:
		if equalFold(name, "upgrade") {
			return fUpgrade
		}
		if equalFold(name, "trailer") {
			return fTrailer
		}
	case 10:
		if equalFold(name, "connection") {
			return fConnection
		}
		if equalFold(name, "keep-alive") {
			return fKeepAlive
		}
	case 12:
		if equalFold(name, "x-request-id") {
			return fXRequestID
		}
	case 14:
		if equalFold(name, "content-length") {
			return fContentLength
		}
	case 15:
		if equalFold(name, "x-forwarded-for") {
			return fXForwardedFor
		}
		if equalFold(name, "x-request-start") {
			return fXRequestStart
		}
	case 16:
		if equalFold(name, "proxy-connection") {
			return fProxyConnection
		}
		if equalFold(name, "x-forwarded-port") {
			return fXForwardedPort
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return fTransferEncoding
		}
		if equalFold(name, "x-forwarded-proto") {
			return fXForwardedProto
		}
	}
	return fOther
}

// equalFold compares b with lower, which is lower case ASCII.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes compares a and b, ASCII case-insensitively.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HeadError is why a head was refused: the code, status and cause the
// router answers and logs with.
type HeadError struct {
	Code   Code
	Status int
	Cause  string
}

func (e *HeadError) Error() string { return e.Cause }

// The ways a head is refused. H26's cause= says which; a request over
// Heroku's limits is H25.
var (
	errBadRequestLine   = &HeadError{H26, 400, "bad request line"}
	errBadVersion       = &HeadError{H26, 400, "bad http version"}
	errBareLF           = &HeadError{H26, 400, "bare lf"}
	errObsFold          = &HeadError{H26, 400, "obsolete line folding"}
	errBadHeader        = &HeadError{H26, 400, "bad header"}
	errBadLength        = &HeadError{H26, 400, "bad content-length"}
	errConflictLength   = &HeadError{H26, 400, "conflicting content-length"}
	errDupHost          = &HeadError{H26, 400, "duplicate host"}
	errBadChunk         = &HeadError{H26, 400, "bad chunk"}
	errUnsupportedTE    = &HeadError{H26, 501, "unsupported transfer-encoding"}
	errBadExpect        = &HeadError{H26, 417, "bad expect"}
	errRequestLineLimit = &HeadError{H25, H25.Status(), "request line too long"}
	errHeaderLineLimit  = &HeadError{H25, H25.Status(), "header line too long"}
	errHeadersLimit     = &HeadError{H25, H25.Status(), "too many headers"}
	errHeadLimit        = &HeadError{H25, H25.Status(), "head too large"}
	errBadResponse      = &HeadError{H25, H25.Status(), "bad response"}
)

// Expectation is what a request's Expect header asks.
type Expectation uint8

const (
	ExpectNone Expectation = iota
	ExpectContinue
	ExpectOther
)

// Request is a parsed request head: spans into the buffer it was parsed
// from, and what the router decides by. Parse reuses its Fields, so a
// Request kept per connection parses without allocating.
type Request struct {
	Method, Target Span
	Minor          int // HTTP/1.Minor: 0 or 1
	Fields         []Field
	Host           Span // the first Host value; zero when none
	RequestID      Span // the first X-Request-Id value; zero when none
	ContentLength  int64
	Chunked        bool // Transfer-Encoding: chunked; ContentLength is then -1
	Close          bool // no further request on this connection after this one
	Upgrade        bool // a WebSocket upgrade (Connection: upgrade, Upgrade: websocket)
	Expect         Expectation
	listed         bool // Connection names headers other than close, keep-alive and upgrade
	absolute       bool // the target was absolute-form: Host is its authority, Target its path
}

// HasBody reports whether a body follows the head.
func (h *Request) HasBody() bool { return h.Chunked || h.ContentLength > 0 }

// Idempotent reports whether the method may be sent again after a pooled
// connection died under it before any byte of a response, as Go's
// Transport retries GET, HEAD, OPTIONS and TRACE.
func (h *Request) Idempotent(b []byte) bool {
	m := h.Method.In(b)
	return string(m) == "GET" || string(m) == "HEAD" || string(m) == "OPTIONS" || string(m) == "TRACE"
}

// IsHead reports whether the method is HEAD, whose response has no body.
func (h *Request) IsHead(b []byte) bool { return string(h.Method.In(b)) == "HEAD" }

// Parse parses the request head at the start of b. It returns the head's
// length, through the blank line; 0 and no error when b holds no whole head
// yet; or a *HeadError. Empty lines before the request line are skipped
// (RFC 9112 section 2.2). Lines must end in CRLF: a bare LF is refused, as
// Heroku's router refuses it.
func (h *Request) Parse(b []byte) (int, error) {
	h.Fields = h.Fields[:0]
	h.Host, h.RequestID = Span{}, Span{}
	h.ContentLength = -1
	h.Chunked, h.Close, h.Upgrade, h.listed, h.absolute = false, false, false, false, false
	h.Expect = ExpectNone

	pos := 0
	for pos < len(b) && (b[pos] == '\r' || b[pos] == '\n') {
		if b[pos] == '\n' {
			return 0, errBareLF
		}
		if pos+1 == len(b) {
			return 0, nil
		}
		if b[pos+1] != '\n' {
			return 0, errBadRequestLine
		}
		pos += 2
		if pos > 64 {
			return 0, errBadRequestLine
		}
	}
	eol, err := lineEnd(b, pos, MaxRequestLine, errRequestLineLimit)
	if eol < 0 || err != nil {
		return 0, err
	}
	line := b[pos:eol]
	// method SP target SP HTTP/1.x
	i := 0
	for i < len(line) && isTokenChar(line[i]) {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ' ' {
		return 0, errBadRequestLine
	}
	h.Method = Span{pos, pos + i}
	i++
	t := i
	for i < len(line) && line[i] > ' ' && line[i] != 0x7f {
		i++
	}
	if i == t || i == len(line) || line[i] != ' ' {
		return 0, errBadRequestLine
	}
	h.Target = Span{pos + t, pos + i}
	minor, ok := parseVersion(line[i+1:])
	if !ok {
		return 0, errBadVersion
	}
	h.Minor = minor

	var keepAlive, connClose, connUpgrade, upgradeWS bool
	pos = eol + 2
	for {
		eol, err := lineEnd(b, pos, MaxHeaderLine, errHeaderLineLimit)
		if eol < 0 || err != nil {
			return 0, err
		}
		if eol == pos {
			pos += 2
			break
		}
		if len(h.Fields) == MaxHeaders {
			return 0, errHeadersLimit
		}
		f, err := parseField(b, pos, eol)
		if err != nil {
			return 0, err
		}
		value := f.Value.In(b)
		switch f.kind {
		case fContentLength:
			n, ok := parseLength(value)
			if !ok {
				return 0, errBadLength
			}
			if h.ContentLength >= 0 && h.ContentLength != n {
				return 0, errConflictLength
			}
			h.ContentLength = n
		case fTransferEncoding:
			if h.Chunked || !equalFold(value, "chunked") {
				return 0, errUnsupportedTE
			}
			h.Chunked = true
		case fConnection:
			forEachToken(value, func(tok []byte) {
				switch {
				case equalFold(tok, "close"):
					connClose = true
				case equalFold(tok, "keep-alive"):
					keepAlive = true
				case equalFold(tok, "upgrade"):
					connUpgrade = true
				default:
					h.listed = true
				}
			})
		case fUpgrade:
			forEachToken(value, func(tok []byte) {
				if equalFold(tok, "websocket") {
					upgradeWS = true
				}
			})
		case fExpect:
			if h.Expect != ExpectNone || !equalFold(value, "100-continue") {
				h.Expect = ExpectOther
			} else {
				h.Expect = ExpectContinue
			}
		case fHost:
			if h.Host != (Span{}) {
				return 0, errDupHost
			}
			h.Host = f.Value
		case fXRequestID:
			if h.RequestID == (Span{}) {
				h.RequestID = f.Value
			}
		}
		h.Fields = append(h.Fields, f)
		pos = eol + 2
		if pos > MaxHead {
			return 0, errHeadLimit
		}
	}
	if h.Chunked {
		// RFC 9112 section 6.3: Transfer-Encoding wins over
		// Content-Length, and such a message closes the connection.
		if h.ContentLength >= 0 {
			h.Close = true
		}
		h.ContentLength = -1
	}
	if h.Minor == 0 {
		h.Close = h.Close || !keepAlive || connClose
	} else {
		h.Close = h.Close || connClose
	}
	h.Upgrade = connUpgrade && upgradeWS
	if t := h.Target.In(b); len(t) > 0 && t[0] != '/' && !(len(t) == 1 && t[0] == '*') {
		// RFC 9112 section 3.2.2: an absolute-form target's authority
		// is the host, whatever Host says; the dyno gets origin-form and
		// that Host, so that it sees the host the router routed by.
		auth, path, ok := splitAbsolute(t)
		if !ok {
			return 0, errBadRequestLine
		}
		start := h.Target.Start
		h.Host = Span{start + auth.Start, start + auth.End}
		h.Target = Span{start + path.Start, start + path.End}
		h.absolute = true
	}
	return pos, nil
}

// splitAbsolute splits an absolute-form target, http://authority/path,
// into the spans of its authority and of its path and query within t.
// Userinfo is refused: a proxy that passed it could be read as the host.
func splitAbsolute(t []byte) (auth, path Span, ok bool) {
	i := bytes.Index(t, []byte("://"))
	if i < 0 || !(equalFold(t[:i], "http") || equalFold(t[:i], "https")) {
		return Span{}, Span{}, false
	}
	a := i + 3
	e := a
	for e < len(t) && t[e] != '/' && t[e] != '?' && t[e] != '#' {
		if t[e] == '@' {
			return Span{}, Span{}, false
		}
		e++
	}
	if e == a || e < len(t) && t[e] == '#' {
		return Span{}, Span{}, false
	}
	return Span{a, e}, Span{e, len(t)}, true
}

// Response is a parsed response head, as Request.
type Response struct {
	Minor         int
	Status        int
	Reason        Span
	Fields        []Field
	ContentLength int64 // -1 when none
	Chunked       bool
	Close         bool // the dyno closes the connection after this response
	listed        bool
}

// Parse parses the response head at the start of b, as Request.Parse. A
// head that is not HTTP/1.x, or breaks the limits, is a *HeadError of H25.
func (h *Response) Parse(b []byte) (int, error) {
	h.Fields = h.Fields[:0]
	h.ContentLength = -1
	h.Chunked, h.Close, h.listed = false, false, false
	h.Reason = Span{}

	eol, err := lineEnd(b, 0, MaxRequestLine, errBadResponse)
	if eol < 0 || err != nil {
		if err != nil {
			return 0, errBadResponse
		}
		return 0, nil
	}
	line := b[:eol]
	// HTTP/1.x SP 3DIGIT SP reason
	if len(line) < 12 || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, errBadResponse
	}
	minor, ok := parseVersion(line[:8])
	if !ok {
		return 0, errBadResponse
	}
	h.Minor = minor
	status := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, errBadResponse
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, errBadResponse
	}
	h.Status = status
	if len(line) > 13 {
		h.Reason = Span{13, eol}
	}
	var keepAlive, connClose bool
	pos := eol + 2
	for {
		eol, err := lineEnd(b, pos, MaxHeaderLine, errBadResponse)
		if eol < 0 || err != nil {
			if err != nil {
				return 0, errBadResponse
			}
			return 0, nil
		}
		if eol == pos {
			pos += 2
			break
		}
		if len(h.Fields) == MaxHeaders {
			return 0, errBadResponse
		}
		f, err := parseField(b, pos, eol)
		if err != nil {
			return 0, errBadResponse
		}
		value := f.Value.In(b)
		switch f.kind {
		case fContentLength:
			n, ok := parseLength(value)
			if !ok || h.ContentLength >= 0 && h.ContentLength != n {
				return 0, errBadResponse
			}
			h.ContentLength = n
		case fTransferEncoding:
			if h.Chunked || !equalFold(value, "chunked") {
				return 0, errBadResponse
			}
			h.Chunked = true
		case fConnection:
			forEachToken(value, func(tok []byte) {
				switch {
				case equalFold(tok, "close"):
					connClose = true
				case equalFold(tok, "keep-alive"):
					keepAlive = true
				case equalFold(tok, "upgrade"):
				default:
					h.listed = true
				}
			})
		}
		h.Fields = append(h.Fields, f)
		pos = eol + 2
		if pos > MaxHead {
			return 0, errBadResponse
		}
	}
	// RFC 9112 section 6.3: with both Transfer-Encoding and
	// Content-Length the body is chunked, and the connection closes
	// after: the dyno and the router may not agree on where it ends.
	h.Close = connClose || h.Minor == 0 && !keepAlive || h.Chunked && h.ContentLength >= 0
	if h.Chunked {
		h.ContentLength = -1
	}
	return pos, nil
}

// Bodiless reports whether the response has no body whatever its headers
// say: 1xx, 204 and 304, and any response to HEAD (RFC 9112 section 6.3).
func (h *Response) Bodiless(head bool) bool {
	return head || h.Status < 200 || h.Status == 204 || h.Status == 304
}

// lineEnd returns the index of the CR of the CRLF that ends the line at
// pos in b, -1 when b holds no whole line yet, or tooLong when the line
// is over max bytes.
func lineEnd(b []byte, pos, max int, tooLong *HeadError) (int, error) {
	rest := b[pos:]
	lim := min(len(rest), max+2)
	i := bytes.IndexByte(rest[:lim], '\n')
	if i < 0 {
		if len(rest) >= max+2 {
			return -1, tooLong
		}
		return -1, nil
	}
	if i == 0 || rest[i-1] != '\r' {
		return -1, errBareLF
	}
	return pos + i - 1, nil
}

// parseField parses the header line b[pos:eol].
func parseField(b []byte, pos, eol int) (Field, error) {
	line := b[pos:eol]
	if line[0] == ' ' || line[0] == '\t' {
		return Field{}, errObsFold
	}
	i := 0
	for i < len(line) && isTokenChar(line[i]) {
		i++
	}
	// No whitespace between name and colon (RFC 9112 section 5.1): a
	// proxy that let it through could be read differently by the dyno.
	if i == 0 || i == len(line) || line[i] != ':' {
		return Field{}, errBadHeader
	}
	f := Field{Name: Span{pos, pos + i}, kind: kindOf(line[:i])}
	i++
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	end := len(line)
	for end > i && (line[end-1] == ' ' || line[end-1] == '\t') {
		end--
	}
	for _, c := range line[i:end] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return Field{}, errBadHeader
		}
	}
	f.Value = Span{pos + i, pos + end}
	return f, nil
}

// parseVersion parses "HTTP/1.0" or "HTTP/1.1".
func parseVersion(v []byte) (minor int, ok bool) {
	if len(v) != 8 || string(v[:7]) != "HTTP/1." {
		return 0, false
	}
	switch v[7] {
	case '0':
		return 0, true
	case '1':
		return 1, true
	}
	return 0, false
}

// parseLength parses a Content-Length: digits only, at most 18 of them.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// forEachToken calls f with each comma-separated token of a header value,
// trimmed, skipping empty ones.
func forEachToken(v []byte, f func(tok []byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		tok = bytes.Trim(tok, " \t")
		if len(tok) > 0 {
			f(tok)
		}
	}
}

// isTokenChar reports whether c may be in a method or header name: RFC
// 9110's tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// listedIn reports whether name is one of the tokens of the Connection
// fields of fields.
func listedIn(src []byte, fields []Field, name []byte) bool {
	found := false
	for _, f := range fields {
		if f.kind != fConnection {
			continue
		}
		forEachToken(f.Value.In(src), func(tok []byte) {
			if equalFoldBytes(tok, name) {
				found = true
			}
		})
	}
	return found
}

// Forwarded is where the rewritten head holds the values the log line
// needs: spans into the buffer the head was appended to.
type Forwarded struct {
	RequestID Span
	Fwd       Span
}

// AppendForward appends to dst the head h, parsed from src, as the dyno
// gets it, by the same rules as Rewrite (hop-by-hop headers and those the
// Connection header names removed; X-Forwarded-For appended to;
// X-Forwarded-Proto, -Port, X-Request-Start set; X-Request-Id kept when
// valid, else a new one; the client's Via replaced by the router's), and also: Expect removed (the
// router answers 100 Continue itself), Content-Length dropped when the
// body is chunked, "Transfer-Encoding: chunked" written when it is, and
// the version always HTTP/1.1 (the router keeps dyno connections alive).
// f.Version is ignored: Via names the request's own version. Nothing is
// allocated when dst has room.
func (h *Request) AppendForward(dst, src []byte, f *Forward) ([]byte, Forwarded) {
	var out Forwarded
	dst = append(dst, h.Method.In(src)...)
	dst = append(dst, ' ')
	if t := h.Target.In(src); len(t) == 0 || t[0] == '?' {
		dst = append(dst, '/') // an absolute-form target with an empty path
	}
	dst = append(dst, h.Target.In(src)...)
	dst = append(dst, " HTTP/1.1\r\n"...)
	if h.absolute {
		dst = append(dst, "Host: "...)
		dst = append(dst, h.Host.In(src)...)
		dst = append(dst, "\r\n"...)
	}
	var nFwd int
	for _, fl := range h.Fields {
		switch {
		case fl.kind == fHost && h.absolute:
			continue
		case fl.kind == fUpgrade && h.Upgrade:
		case fl.kind.hopByHop(), fl.kind == fExpect, fl.kind == fXForwardedProto,
			fl.kind == fXForwardedPort, fl.kind == fXRequestStart, fl.kind == fXRequestID:
			continue
		case fl.kind == fContentLength && h.Chunked:
			continue
		case fl.kind == fXForwardedFor:
			if !h.listed || !listedIn(src, h.Fields, fl.Name.In(src)) {
				nFwd++
			}
			continue
		case fl.kind == fVia:
			// A client's Via is dropped: only the router's own hop is
			// one the dyno can trust.
			continue
		}
		if h.listed && !fl.kind.framing() && listedIn(src, h.Fields, fl.Name.In(src)) {
			continue
		}
		dst = appendField(dst, src, fl)
	}
	if h.Chunked {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	if h.Upgrade {
		dst = append(dst, "Connection: Upgrade\r\n"...)
	}
	dst = append(dst, "X-Forwarded-For: "...)
	out.Fwd.Start = len(dst)
	if nFwd > 0 {
		dst = h.appendJoined(dst, src, fXForwardedFor)
		dst = append(dst, ", "...)
	}
	dst = append(dst, f.ClientIP...)
	out.Fwd.End = len(dst)
	dst = append(dst, "\r\nX-Forwarded-Proto: "...)
	dst = append(dst, f.Proto...)
	dst = append(dst, "\r\nX-Forwarded-Port: "...)
	dst = append(dst, f.Port...)
	dst = append(dst, "\r\nX-Request-Start: "...)
	dst = strconv.AppendInt(dst, f.Start.UnixMilli(), 10)
	dst = append(dst, "\r\nX-Request-Id: "...)
	out.RequestID.Start = len(dst)
	if id := h.RequestID.In(src); h.RequestID.Len() > 0 && validRequestID(id) &&
		(!h.listed || !listedIn(src, h.Fields, []byte("X-Request-Id"))) {
		dst = append(dst, id...)
	} else {
		dst = uuid.Append(dst)
	}
	out.RequestID.End = len(dst)
	dst = append(dst, "\r\nVia: "...)
	if h.Minor == 0 {
		dst = append(dst, "1.0 "+Via+"\r\n\r\n"...)
	} else {
		dst = append(dst, "1.1 "+Via+"\r\n\r\n"...)
	}
	return dst, out
}

// appendJoined appends the values of the fields of kind k, joined by ", ",
// as http.Header's values are joined by Rewrite.
func (h *Request) appendJoined(dst, src []byte, k fieldKind) []byte {
	first := true
	for _, fl := range h.Fields {
		if fl.kind != k || h.listed && listedIn(src, h.Fields, fl.Name.In(src)) {
			continue
		}
		if !first {
			dst = append(dst, ", "...)
		}
		first = false
		dst = append(dst, fl.Value.In(src)...)
	}
	return dst
}

func appendField(dst, src []byte, f Field) []byte {
	dst = append(dst, f.Name.In(src)...)
	dst = append(dst, ": "...)
	dst = append(dst, f.Value.In(src)...)
	return append(dst, "\r\n"...)
}

// ClientFraming is how the router frames a response towards the client.
type ClientFraming struct {
	Chunked   bool // the body is relayed in chunks: "Transfer-Encoding: chunked"
	KeepAlive bool // the connection stays open after the response
	Minor     int  // the client's HTTP/1.Minor: a 1.0 client is told keep-alive
	Upgrade   bool // a 101 to a WebSocket upgrade: "Connection: Upgrade" and the Upgrade header kept
}

// AppendForward appends to dst the response head h, parsed from src, as
// the client gets it: the status line as HTTP/1.1, the dyno's headers
// without hop-by-hop ones, the framing the router relays the body with,
// and Via appended to as on requests.
func (h *Response) AppendForward(dst, src []byte, c ClientFraming) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(h.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, h.Reason.In(src)...)
	dst = append(dst, "\r\n"...)
	nVia := 0
	for _, fl := range h.Fields {
		switch {
		case fl.kind == fUpgrade && c.Upgrade:
		case fl.kind.hopByHop():
			continue
		case fl.kind == fContentLength && (h.Chunked || c.Chunked):
			continue
		case fl.kind == fVia:
			nVia++
			continue
		}
		if h.listed && !fl.kind.framing() && listedIn(src, h.Fields, fl.Name.In(src)) {
			continue
		}
		dst = appendField(dst, src, fl)
	}
	switch {
	case c.Upgrade:
		dst = append(dst, "Connection: Upgrade\r\n"...)
	case !c.KeepAlive:
		dst = append(dst, "Connection: close\r\n"...)
	case c.Minor == 0:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	if c.Chunked {
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	dst = append(dst, "Via: "...)
	if nVia > 0 {
		first := true
		for _, fl := range h.Fields {
			if fl.kind != fVia {
				continue
			}
			if !first {
				dst = append(dst, ", "...)
			}
			first = false
			dst = append(dst, fl.Value.In(src)...)
		}
		dst = append(dst, ", "...)
	}
	dst = append(dst, "1.1 "+Via+"\r\n\r\n"...)
	return dst
}

// ChunkScanner follows the framing of a chunked body (RFC 9112 section
// 7.1) as its bytes go by, so a relay can pass the body on verbatim,
// chunk by chunk as it arrives, and know where it ends, without decoding
// it or allocating. The zero value is at the start of a body.
type ChunkScanner struct {
	state  chunkState
	size   int64 // chunk data bytes still to come in chunkData
	line   int   // bytes of the current size or trailer line
	digits int
}

type chunkState uint8

const (
	chunkSize        chunkState = iota // hex digits of a chunk size
	chunkExt                           // a chunk extension, up to CR
	chunkSizeLF                        // the LF after a size line
	chunkData                          // size bytes of data
	chunkDataCR                        // the CR after the data
	chunkDataLF                        // the LF after the data
	chunkTrailer                       // the start of a trailer line, or of the final CRLF
	chunkTrailerLine                   // a trailer field, up to CR
	chunkTrailerLF                     // the LF ending a trailer field
	chunkEndLF                         // the LF of the final CRLF
	chunkDone
)

// maxChunkLine bounds a chunk size line with its extensions and a
// trailer line.
const maxChunkLine = 4096

// Scan consumes the next bytes of a chunked body from b. It returns how
// many of them belong to the body (all of b unless the body ends within
// it), and done once the body's last byte has been consumed; a framing
// error is errBadChunk.
func (s *ChunkScanner) Scan(b []byte) (n int, done bool, err error) {
	for n < len(b) {
		c := b[n]
		switch s.state {
		case chunkSize:
			switch {
			case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
				if s.digits == 15 {
					return n, false, errBadChunk
				}
				s.size = s.size<<4 | int64(unhex(c))
				s.digits++
			case c == ';' || c == ' ' || c == '\t':
				if s.digits == 0 {
					return n, false, errBadChunk
				}
				s.state = chunkExt
			case c == '\r':
				if s.digits == 0 {
					return n, false, errBadChunk
				}
				s.state = chunkSizeLF
			default:
				return n, false, errBadChunk
			}
			s.line++
		case chunkExt:
			if c == '\r' {
				s.state = chunkSizeLF
			} else if c == '\n' || c < ' ' && c != '\t' {
				return n, false, errBadChunk
			}
			s.line++
		case chunkSizeLF:
			if c != '\n' {
				return n, false, errBadChunk
			}
			s.line, s.digits = 0, 0
			if s.size == 0 {
				s.state = chunkTrailer
			} else {
				s.state = chunkData
			}
		case chunkData:
			k := int64(len(b) - n)
			if k > s.size {
				k = s.size
			}
			n += int(k)
			s.size -= k
			if s.size == 0 {
				s.state = chunkDataCR
			}
			continue
		case chunkDataCR:
			if c != '\r' {
				return n, false, errBadChunk
			}
			s.state = chunkDataLF
		case chunkDataLF:
			if c != '\n' {
				return n, false, errBadChunk
			}
			s.state = chunkSize
		case chunkTrailer:
			if c == '\r' {
				s.state = chunkEndLF
			} else if c == '\n' {
				return n, false, errBadChunk
			} else {
				s.state = chunkTrailerLine
				s.line = 1
			}
		case chunkTrailerLine:
			if c == '\r' {
				s.state = chunkTrailerLF
			} else if c == '\n' {
				return n, false, errBadChunk
			}
			s.line++
		case chunkTrailerLF:
			if c != '\n' {
				return n, false, errBadChunk
			}
			s.state, s.line = chunkTrailer, 0
		case chunkEndLF:
			if c != '\n' {
				return n, false, errBadChunk
			}
			s.state = chunkDone
			return n + 1, true, nil
		case chunkDone:
			return n, true, nil
		}
		if s.line > maxChunkLine {
			return n, false, errBadChunk
		}
		n++
	}
	return n, s.state == chunkDone, nil
}

// DataLeft is how many bytes of chunk data come next, which a relay may
// copy without looking at them.
func (s *ChunkScanner) DataLeft() int64 {
	if s.state == chunkData {
		return s.size
	}
	return 0
}

// Skip accounts for k bytes of chunk data copied without Scan; k is at
// most DataLeft.
func (s *ChunkScanner) Skip(k int64) {
	s.size -= k
	if s.size == 0 {
		s.state = chunkDataCR
	}
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
