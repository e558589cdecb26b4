package router

import "github.com/dyno-run/dyno/internal/uuid"

// RequestID returns the X-Request-Id a request carries through the router:
// the client's own when it is 20 to 200 characters of [A-Za-z0-9+/=-]
// (Heroku's rule), else a new random UUID (version 4), the form Heroku
// generates.
func RequestID(client string) string {
	if validRequestID(client) {
		return client
	}
	return uuid.New()
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
