package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/ledger/app"
)

// The API's request bodies are decoded here, by pure functions of the
// body's bytes, so that they can be fuzzed without a daemon. Each
// refuses text that is not valid Unicode: encoding/json would turn it
// into U+FFFD silently, storing something the caller never sent, where
// the CLI refuses it.

// maxBody is the most a request body may hold: the largest an app's
// config vars can be is 32 KB (app.MaxConfigBytes), so 1 MB is plenty.
const maxBody = 1 << 20

// paramError is a request the API refuses with 422 invalid_params.
type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }

func paramErrorf(format string, args ...any) error {
	return &paramError{msg: fmt.Sprintf(format, args...)}
}

// checkText refuses a body that is not valid UTF-8, or whose strings
// hold a \u escape of a lone UTF-16 surrogate (which encodes no
// character): encoding/json decodes both to U+FFFD. The body must
// already be valid JSON for the escape scan to mean anything.
func checkText(body []byte) error {
	if !utf8.Valid(body) {
		at := 0
		for at < len(body) {
			r, n := utf8.DecodeRune(body[at:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			at += n
		}
		return paramErrorf("the request body is not valid UTF-8 (byte %d is 0x%02x); send text as UTF-8", at, body[at])
	}
	inString := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(body) && body[i+1] != 'u' {
				i++ // \" \\ \n ...: one character escaped
				continue
			}
			r, ok := hex4(body, i+2)
			if !ok {
				continue // not JSON; the decoder says so
			}
			i += 5
			switch {
			case r >= 0xD800 && r < 0xDC00:
				// A high surrogate must be followed by a low one.
				if i+2 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
					if lo, ok := hex4(body, i+3); ok && lo >= 0xDC00 && lo < 0xE000 {
						i += 6
						continue
					}
				}
				return paramErrorf("the request body holds \\u%04x, half of a UTF-16 surrogate pair, which is no character; send text as UTF-8", r)
			case r >= 0xDC00 && r < 0xE000:
				return paramErrorf("the request body holds \\u%04x, half of a UTF-16 surrogate pair, which is no character; send text as UTF-8", r)
			}
		}
	}
	return nil
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// decodeJSON decodes body into v after checkText: one JSON value and
// nothing after it.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

// DecodeConfigPatch reads PATCH /apps/APP/config-vars: an object of
// config vars, each a string to set or null to unset.
func DecodeConfigPatch(body []byte) (set map[string]string, unset []string, err error) {
	const usage = `give the config vars as a JSON object of strings, null to unset one: {"A": "1", "B": null}`
	if err := checkText(body); err != nil {
		return nil, nil, err
	}
	var vars map[string]*string
	if err := decodeJSON(body, &vars); err != nil || len(vars) == 0 {
		return nil, nil, paramErrorf("%s", usage)
	}
	set = map[string]string{}
	for k, v := range vars {
		if v == nil {
			unset = append(unset, k)
		} else {
			set[k] = *v
		}
	}
	return set, unset, nil
}

// maxScaleQuantity keeps a quantity an int that sums cannot overflow;
// the limit itself is ApplyScale's (app.ErrFormationLimit), where every
// formation is recorded, so that its message names the limit in force.
const maxScaleQuantity = 1_000_000_000

var quantityPattern = regexp.MustCompile(`^([+-]?)([0-9]+)$`)

// DecodeFormationPatch reads PATCH /apps/APP/formation:
// {"updates": [{"type": "web", "quantity": 2, "size": "standard-2x"}]}.
// A quantity is a JSON number, or a string as the Heroku CLI sends it
// (platform-api.md §6.8): "3" sets, "+1" and "-1" change. Without one,
// only the size changes.
func DecodeFormationPatch(body []byte) ([]app.Scale, error) {
	const usage = `give {"updates": [{"type": "web", "quantity": 2, "size": "standard-1x"}]}`
	if err := checkText(body); err != nil {
		return nil, err
	}
	var req struct {
		Updates []struct {
			Type     string          `json:"type"`
			Quantity json.RawMessage `json:"quantity"`
			Size     string          `json:"size"`
		} `json:"updates"`
	}
	if err := decodeJSON(body, &req); err != nil || len(req.Updates) == 0 {
		return nil, paramErrorf("%s", usage)
	}
	var out []app.Scale
	for _, u := range req.Updates {
		if u.Type == "" || len(u.Type) > 64 {
			return nil, paramErrorf("an update names no process type, or one longer than 64 bytes; %s", usage)
		}
		c := app.Scale{Type: u.Type, Op: '+', Size: strings.ToLower(u.Size)}
		if q := u.Quantity; len(q) > 0 && string(q) != "null" {
			var text string
			if q[0] == '"' {
				if err := json.Unmarshal(q, &text); err != nil {
					return nil, paramErrorf("%s: quantity %s is not a count", u.Type, clip(q))
				}
			} else {
				text = string(q)
				if strings.HasPrefix(text, "+") || strings.HasPrefix(text, "-") {
					// A JSON number is a count to set; a change is a
					// string ("+1"), as the Heroku CLI sends it.
					if text != "-0" {
						return nil, paramErrorf("%s: quantity %s is below 0", u.Type, clip(q))
					}
					text = "0"
				}
			}
			m := quantityPattern.FindStringSubmatch(text)
			if m == nil {
				return nil, paramErrorf("%s: quantity %s is not a whole number; give a count like 2, or a change like \"+1\"", u.Type, clip(q))
			}
			n, err := strconv.Atoi(m[2])
			if err != nil || n > maxScaleQuantity {
				return nil, paramErrorf("%s: quantity %s is too large; the limit is %d of a type unless dyno.toml raises it", u.Type, clip(q), app.DefaultMaxQuantity)
			}
			c.Op, c.N = '=', n
			if m[1] != "" {
				c.Op = m[1][0]
			}
			if c.Op != '=' && n == 0 {
				c.Op = '+' // "-0" changes nothing, as "+0" does
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// clip is q short enough to quote in an error.
func clip(q []byte) string {
	if len(q) > 40 {
		return strings.ToValidUTF8(string(q[:40]), "") + "..."
	}
	return string(q)
}

// DynoRequest is POST /apps/APP/dynos: a one-off to run. Attach asks
// for heroku run's rendezvous (attach.go); Env, Type and ForceNoTTY are
// the Heroku CLI's too.
type DynoRequest struct {
	Command string `json:"command"`
	Size    string `json:"size,omitempty"`
	Attach  bool   `json:"attach,omitempty"`
	// Env is set in the dyno over the release's config vars, as heroku
	// run -e's are; the CLI adds TERM, and COLUMNS and LINES when its
	// stdout is a terminal.
	Env        map[string]string `json:"env,omitempty"`
	Type       string            `json:"type,omitempty"`
	ForceNoTTY bool              `json:"force_no_tty,omitempty"`
}

// DecodeDynoCreate reads POST /apps/APP/dynos. The Heroku CLI sends
// env's COLUMNS and LINES as JSON numbers (Node's process.stdout.columns)
// and leaves TERM out when it has none: a number is taken as its text,
// null as absent.
func DecodeDynoCreate(body []byte) (DynoRequest, error) {
	if err := checkText(body); err != nil {
		return DynoRequest{}, err
	}
	var req struct {
		DynoRequest
		Env        map[string]json.RawMessage `json:"env"`
		ForceNoTTY *bool                      `json:"force_no_tty"`
	}
	if err := decodeJSON(body, &req); err != nil || strings.TrimSpace(req.Command) == "" {
		return DynoRequest{}, paramErrorf(`give the command to run: {"command": "..."}`)
	}
	out := req.DynoRequest
	out.ForceNoTTY = req.ForceNoTTY != nil && *req.ForceNoTTY
	for k, raw := range req.Env {
		if !isolate.ValidEnvName(k) {
			return DynoRequest{}, paramErrorf("env: %q is not a variable name: letters, digits and _, not starting with a digit", k)
		}
		var s string
		var n json.Number
		switch {
		case string(raw) == "null":
			continue
		case json.Unmarshal(raw, &s) == nil:
		case json.Unmarshal(raw, &n) == nil:
			s = n.String()
		default:
			return DynoRequest{}, paramErrorf("env: give %s as a string", k)
		}
		if out.Env == nil {
			out.Env = map[string]string{}
		}
		out.Env[k] = s
	}
	return out, nil
}

// readBody reads a request's body, which limitBodies capped at maxBody:
// a longer one is answered 413 and read no further.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeTooLarge(w)
		return nil, false
	case err != nil:
		// The body's deadline (Config.BodyTimeout) passed, or the
		// client went away.
		writeError(w, http.StatusRequestTimeout, "request_timeout", "the request body did not arrive: %v", err)
		return nil, false
	}
	return b, true
}

func writeTooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", "the request body is over %d bytes (1 MB), the most the API reads", maxBody)
}

// limitBodies answers 413 for a body declared longer than maxBody before
// reading a byte of it (net/http then closes the connection rather than
// drain the body), and caps every other body at maxBody: one sent in
// chunks is cut there, answered 413 by readBody.
func limitBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			writeTooLarge(w)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r)
	})
}

// decodeError answers a refused body: 422 in the Platform API's shape.
func decodeError(w http.ResponseWriter, err error) {
	writeError(w, http.StatusUnprocessableEntity, "invalid_params", "%v", err)
}
