package router

import "crypto/rand"

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

func validRequestID(s string) bool {
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
	var u [16]byte
	rand.Read(u[:])         // never returns an error since Go 1.24: a broken source ends the program
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[c>>4], hex[c&0x0f]
		j += 2
	}
	return string(b[:])
}
