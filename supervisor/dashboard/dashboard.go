// Package dashboard is dyno's web dashboard: every app, its dynos,
// releases and metrics, live, with the few actions people take on a
// bad day (restart, scale, rollback, maintenance). Pages are HTML from
// Go templates with the charts drawn on the server as SVG, so they load
// at once and work without JavaScript; a small script makes them live
// (Server-Sent Events). Every file the pages use is in the binary, and
// every response forbids anything from another origin (a strict
// Content-Security-Policy).
//
// The daemon serves it on the router's listener at dashboard.DOMAIN and
// on the API's TCP listener under /dashboard/. What it shows and does
// comes through Source: the daemon, or a fake in tests.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/dyno-run/dyno/supervisor/dashboard/chart"
)

// Host is the first label of the dashboard's hostname on the router:
// dashboard.DOMAIN. No app may take it as its name.
const Host = "dashboard"

// ErrNoApp is what Source returns, wrapped, for an app that does not
// exist.
var ErrNoApp = errors.New("no such app")

// Config is what a Server needs.
type Config struct {
	Source Source
	Tokens Tokens
	// KeyDir is where the session key is kept: the API's folder.
	KeyDir string
	// Base is the path the dashboard is served under: "" at the root
	// of its own host, "/dashboard" on the API's listener.
	Base string
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Location is the time zone of times on the pages; nil is Local.
	Location *time.Location
	// ErrorLog gets what the pages could not show; nil is discarded.
	ErrorLog *log.Logger
}

// Server is the dashboard, an http.Handler.
type Server struct {
	cfg   Config
	key   []byte
	pages map[string]*template.Template
	css   []byte
	mux   *http.ServeMux
}

//go:embed assets
var assets embed.FS

// New makes the dashboard, reading (or making) its session key.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = log.New(discard{}, "", 0)
	}
	cfg.Base = strings.TrimSuffix(cfg.Base, "/")
	key, err := loadKey(cfg.KeyDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, key: key}
	if s.pages, err = parsePages(s.funcs()); err != nil {
		return nil, err
	}
	css, err := assets.ReadFile("assets/dash.css")
	if err != nil {
		return nil, err
	}
	// The charts' classes, then the page's: one stylesheet, one request.
	s.css = append(chart.CSS(), css...)
	s.mux = s.routes()
	return s, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (s *Server) routes() *http.ServeMux {
	b := s.cfg.Base
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+b+"/login", s.loginPage)
	mux.HandleFunc("POST "+b+"/login", s.login)
	mux.HandleFunc("GET "+b+"/assets/{file}", s.asset)
	mux.HandleFunc("GET "+b+"/favicon.ico", s.asset)
	mux.HandleFunc("POST "+b+"/logout", s.post(s.logout))
	mux.HandleFunc("GET "+b+"/{$}", s.get(s.appsPage))
	mux.HandleFunc("GET "+b+"/apps/{app}", s.get(s.appPage))
	mux.HandleFunc("GET "+b+"/apps/{app}/config", s.get(s.configPage))
	mux.HandleFunc("GET "+b+"/apps/{app}/events", s.get(s.events))
	mux.HandleFunc("GET "+b+"/apps/{app}/logs", s.get(s.logs))
	mux.HandleFunc("POST "+b+"/apps/{app}/{action}", s.post(s.action))
	if b != "" {
		mux.HandleFunc("GET "+b, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, b+"/", http.StatusMovedPermanently)
		})
	}
	return mux
}

// contentSecurityPolicy lets a page load its own stylesheet and script
// and nothing else: no inline script or style, no other origin, no
// frames, and forms that post only here.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP serves a request with the headers every response carries.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		// Once over HTTPS, always: the browser never sends the cookie
		// or the token in the clear to this host.
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

// get serves a page to a signed-in browser; any other is sent to sign
// in (or, for a stream, refused). A stream checks the session again as
// it goes (live.go), so that it ends with the session.
func (s *Server) get(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ses, ok := s.sessionOf(r)
		if !ok {
			if strings.HasSuffix(r.URL.Path, "/events") || strings.HasSuffix(r.URL.Path, "/logs") {
				http.Error(w, "Sign in again.", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, s.cfg.Base+"/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, ses)
	}
}

// post serves a form from a signed-in browser that carries the
// session's CSRF token.
func (s *Server) post(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ses, ok := s.sessionOf(r)
		if !ok {
			http.Redirect(w, r, s.cfg.Base+"/login", http.StatusSeeOther)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if !s.checkCSRF(r, ses) {
			http.Error(w, "This form is stale or came from another site; reload the page and send it again.", http.StatusForbidden)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, ses)
	}
}

// maxForm bounds a form's body.
const maxForm = 16 << 10

// asset serves the stylesheet, the script and the icon.
func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" {
		name = "icon.svg"
	}
	var body []byte
	var err error
	switch name {
	case "dash.css":
		body = s.css
	default:
		body, err = assets.ReadFile(path.Join("assets", path.Base(name)))
	}
	if err != nil || strings.HasSuffix(name, ".html") {
		http.NotFound(w, r)
		return
	}
	ctype := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}[path.Ext(name)]
	if ctype == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	// The files change only with the binary.
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(body)
}

// page is what every template gets.
type page struct {
	Title string
	Base  string
	CSRF  string
	Error string
	Now   time.Time

	Apps    []AppSummary
	App     *AppView
	Charts  []chartView
	Range   string
	Ranges  []Range
	Config  []configVar
	Confirm *confirmView
	Logs    []logLine
	Live    bool // the page's script listens for changes
	// Step is the range's period in seconds: the script redraws the
	// charts for new samples no more often.
	Step     int
	Insecure bool // plain HTTP from afar: no sign-in form
}

// render writes template name, all of it or, on an error, a plain
// error page: a template fails before a byte is sent.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Base = s.cfg.Base
	if p.Now.IsZero() {
		p.Now = s.cfg.Now()
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.cfg.ErrorLog.Printf("dashboard: %s: %v", name, err)
		http.Error(w, "The page could not be drawn; the daemon's log says why.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail answers a Source error: 404 for a missing app, else 500 with
// the error in the daemon's log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, ses session, err error) {
	status, msg := http.StatusInternalServerError, "The daemon could not answer; its log says why."
	switch {
	case errors.Is(err, ErrNoApp):
		status, msg = http.StatusNotFound, "There is no such app."
	case errors.Is(err, context.Canceled):
		return
	default:
		s.cfg.ErrorLog.Printf("dashboard: %s: %v", r.URL.Path, err)
	}
	s.render(w, r, status, "error", page{Title: "Error", Error: msg, CSRF: s.csrf(ses)})
}

// parsePages parses each page with the layout.
func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	names, err := fs.Glob(assets, "assets/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(assets, "assets/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}
