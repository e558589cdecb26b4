package router

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Via is the name the router gives itself in the Via header, as Heroku's
// router (vegur) writes "1.1 vegur".
const Via = "dyno"

// Forward is what the router knows about a request besides its headers.
// The engine builds the strings once per connection or listener, so a
// keep-alive request costs no formatting for them.
type Forward struct {
	ClientIP string    // the client's address, without a port: "127.0.0.1", "::1"
	Proto    string    // the listener's scheme: "http" or "https"
	Port     string    // the listener's port: "8080"
	Version  string    // the request's HTTP version for Via: "1.0", "1.1" (also when empty) or "2"
	Start    time.Time // when the router read the request's first byte
}

// Rewrite turns a client's request headers, in place, into those the dyno
// sees, as Heroku's router does:
//   - hop-by-hop headers (Connection, Keep-Alive, Proxy-Connection, TE,
//     Trailer, Transfer-Encoding, Upgrade, and each header Connection
//     names) are removed, except that a WebSocket upgrade keeps
//     "Connection: Upgrade" and its Upgrade header;
//   - X-Forwarded-For gets the client's address appended to the client's
//     own list;
//   - X-Forwarded-Proto, X-Forwarded-Port and X-Request-Start (unix ms)
//     are the router's, whatever the client sent;
//   - X-Request-Id is the client's if RequestID keeps it, else a new one;
//   - Via is "VERSION dyno", the client's own Via dropped.
//
// It returns the request id and the X-Forwarded-For value, the log line's
// request_id and fwd. Keys are taken as http.Header keeps them, canonical.
func Rewrite(h http.Header, f Forward) (requestID, fwd string) {
	var s setter
	upgrade := isWebSocketUpgrade(h)
	for _, v := range h["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = textproto.TrimString(tok)
			if tok == "" || (upgrade && strings.EqualFold(tok, "upgrade")) ||
				strings.EqualFold(tok, "content-length") || strings.EqualFold(tok, "host") {
				// Framing and the target are never dropped: see fieldKind.framing.
				continue
			}
			delete(h, textproto.CanonicalMIMEHeaderKey(tok))
		}
	}
	for _, k := range [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding"} {
		delete(h, k)
	}
	if upgrade {
		s.set(h, "Connection", "Upgrade")
	} else {
		delete(h, "Upgrade")
	}

	fwd = f.ClientIP
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		fwd = strings.Join(prior, ", ") + ", " + f.ClientIP
	}
	s.set(h, "X-Forwarded-For", fwd)
	s.set(h, "X-Forwarded-Proto", f.Proto)
	s.set(h, "X-Forwarded-Port", f.Port)
	s.set(h, "X-Request-Start", strconv.FormatInt(f.Start.UnixMilli(), 10))
	var client string
	if v := h["X-Request-Id"]; len(v) > 0 {
		client = v[0]
	}
	requestID = RequestID(client)
	s.set(h, "X-Request-Id", requestID)

	// The client's Via is dropped, as X-Forwarded-Proto is: a dyno
	// cannot tell a hop the client made up from one that happened.
	s.set(h, "Via", viaValue(f.Version))
	return requestID, fwd
}

// set replaces a header's values with one, reusing its slice when it has
// one, so a header the client also sent costs no allocation; the others
// share one backing array, allocated at the first need.
func (s *setter) set(h http.Header, key, value string) {
	if v := h[key]; cap(v) > 0 {
		h[key] = append(v[:0], value)
		return
	}
	if len(s.spare) == 0 {
		s.spare = make([]string, 7) // Rewrite sets at most 7 headers
	}
	h[key] = s.spare[:1:1]
	h[key][0] = value
	s.spare = s.spare[1:]
}

type setter struct{ spare []string }

func viaValue(version string) string {
	switch version {
	case "1.0":
		return "1.0 " + Via
	case "2", "2.0":
		return "2 " + Via
	}
	return "1.1 " + Via
}

// isWebSocketUpgrade reports whether the request asks to become a
// WebSocket (RFC 6455 section 4.1): Connection names "upgrade" and Upgrade
// names "websocket". Other upgrades (h2c) are not passed on: the router
// speaks HTTP/1.1 to dynos.
func isWebSocketUpgrade(h http.Header) bool {
	return hasToken(h["Connection"], "upgrade") && hasToken(h["Upgrade"], "websocket")
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(tok), token) {
				return true
			}
		}
	}
	return false
}
