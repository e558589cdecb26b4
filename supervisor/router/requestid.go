package router

import (
	"encoding/binary"
	"math/rand/v2"
)

// RequestID returns the X-Request-Id a request carries through the router:
// the client's own when it is 20 to 200 characters of [A-Za-z0-9+/=-]
// (Heroku's rule), else a new random UUID (version 4), the form Heroku
// generates.
func RequestID(client string) string {
	if validRequestID(client) {
		return client
	}
	return newUUID()
}

func validRequestID[T ~string | ~[]byte](s T) bool {
	if len(s) < 20 || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '+', c == '/', c == '=', c == '-':
		default:
			return false
		}
	}
	return true
}

// newUUID returns a random RFC 9562 version 4 UUID in its 36-character
// text form.
func newUUID() string {
	var b [36]byte
	return string(appendUUID(b[:0]))
}

// appendUUID appends a new random version 4 UUID to dst.
func appendUUID(dst []byte) []byte {
	// The runtime's per-thread ChaCha8, seeded from the kernel: an id
	// must be unique, not secret, and this costs no system call and no
	// lock on the request path.
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	const hex = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[c>>4], hex[c&0x0f])
	}
	return dst
}
