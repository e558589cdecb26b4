package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// Access to the dashboard is the API token's: the login form takes it
// once and sets a session cookie, so the token never rides on each
// request or sits in the browser. The cookie is stateless: its expiry
// and a random id, signed with a key only the daemon reads
// (DYNO_HOME/api/dashboard.key) over the token's hash as well, so that
// `dyno auth:regenerate` ends every session, and a daemon restart ends
// none.

// Tokens checks the API token: apitoken.Verifier.
type Tokens interface {
	Verify(token string) bool
	// Hash is the current token's SHA-256; nil when there is none,
	// and then no session is valid.
	Hash() []byte
}

const (
	sessionCookie = "dyno_session"
	// SessionTTL is how long a login lasts.
	SessionTTL = 12 * time.Hour
	// KeyFile is the session key's file in the API folder.
	KeyFile = "dashboard.key"
	keySize = 32
	idSize  = 16
)

// session is a signed-in browser.
type session struct {
	id      [idSize]byte
	expires time.Time
}

// loadKey reads the session key from dir, making it the first time.
func loadKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, keySize)
		rand.Read(key)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("dashboard key %s: %w", path, err)
		}
		if err := fsutil.WriteFile(path, key, 0o600); err != nil {
			return nil, fmt.Errorf("dashboard key %s: %w", path, err)
		}
		// Another daemon process may have raced this one: the file on
		// disk is the key.
		key, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard key %s: %w", path, err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("dashboard key %s is %d bytes, not %d; remove it and every browser signs in again", path, len(key), keySize)
	}
	return key, nil
}

// mac signs payload for the current token; nil when there is no token.
func (s *Server) mac(purpose string, payload []byte) []byte {
	hash := s.cfg.Tokens.Hash()
	if hash == nil {
		return nil
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(hash)
	m.Write(payload)
	return m.Sum(nil)
}

// newSession signs a fresh session's cookie value.
func (s *Server) newSession(now time.Time) (string, bool) {
	payload := make([]byte, 8+idSize)
	binary.BigEndian.PutUint64(payload, uint64(now.Add(SessionTTL).Unix()))
	rand.Read(payload[8:])
	sig := s.mac("session", payload)
	if sig == nil {
		return "", false
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(sig), true
}

// sessionOf is the request's valid session.
func (s *Server) sessionOf(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	p, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return session{}, false
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	got, err2 := enc.DecodeString(sig)
	if err1 != nil || err2 != nil || len(payload) != 8+idSize {
		return session{}, false
	}
	want := s.mac("session", payload)
	if want == nil || !hmac.Equal(got, want) {
		return session{}, false
	}
	var ses session
	ses.expires = time.Unix(int64(binary.BigEndian.Uint64(payload)), 0)
	copy(ses.id[:], payload[8:])
	if !s.cfg.Now().Before(ses.expires) {
		return session{}, false
	}
	return ses, true
}

// csrf is the session's token for its forms: a POST must carry it, and
// a page of another site cannot read it.
func (s *Server) csrf(ses session) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", ses.id[:]))
}

// checkCSRF says whether a POST from ses carries its token and comes
// from this origin. SameSite=Strict already keeps the cookie off
// other sites' requests; the token and the origin check are for
// browsers that ignore it.
func (s *Server) checkCSRF(r *http.Request, ses session) bool {
	if !sameOrigin(r) {
		return false
	}
	got := r.PostFormValue("csrf")
	want := s.csrf(ses)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// sameOrigin refuses a request a browser says came from another site:
// Sec-Fetch-Site where it is sent, else Origin against Host.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser's cross-site form, which sends one
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// private says whether a request's token is safe from the network:
// it came over TLS (to this server, or to the router in front of it,
// which says so in X-Forwarded-Proto), or from this machine. The router
// appends the address it took the request from to X-Forwarded-For, so
// the last entry is the client's; a request straight to this server
// has its own address.
func private(r *http.Request) bool {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return true
	}
	client := r.RemoteAddr
	if fwd := r.Header.Values("X-Forwarded-For"); len(fwd) > 0 {
		last := fwd[len(fwd)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		client = strings.TrimSpace(last)
	}
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	ip := net.ParseIP(client)
	return ip != nil && ip.IsLoopback()
}

// setSession sets (or, with value "", clears) the session cookie.
func (s *Server) setSession(w http.ResponseWriter, r *http.Request, value string) {
	c := &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     s.cfg.Base + "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
		MaxAge:   int(SessionTTL / time.Second),
	}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.sessionOf(r); ok {
		http.Redirect(w, r, s.cfg.Base+"/", http.StatusSeeOther)
		return
	}
	if !private(r) {
		// No form: the token would cross the network before the refusal.
		s.render(w, r, http.StatusForbidden, "login", page{Title: "Sign in", Insecure: true, Error: insecureLogin})
		return
	}
	s.render(w, r, http.StatusOK, "login", page{Title: "Sign in"})
}

const insecureLogin = "Sign in over HTTPS: over plain HTTP the token would cross the network readable. " +
	"Add a certificate for this host, or reach the dashboard through an SSH tunnel (docs/operations.md, section 15)."

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "This form was sent from another site.", http.StatusForbidden)
		return
	}
	if !private(r) {
		s.render(w, r, http.StatusForbidden, "login", page{Title: "Sign in", Insecure: true, Error: insecureLogin})
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if !s.cfg.Tokens.Verify(token) {
		s.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in",
			Error: "That is not this daemon's API token. Print it with: dyno auth:token"})
		return
	}
	value, ok := s.newSession(s.cfg.Now())
	if !ok {
		s.render(w, r, http.StatusServiceUnavailable, "login", page{Title: "Sign in", Error: "The daemon has no API token; make one with dyno auth:token."})
		return
	}
	s.setSession(w, r, value)
	http.Redirect(w, r, s.cfg.Base+"/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ses session) {
	s.setSession(w, r, "")
	http.Redirect(w, r, s.cfg.Base+"/login", http.StatusSeeOther)
}
