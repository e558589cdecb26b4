package daemon

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dyno-run/dyno/supervisor/daemon/apitls"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
	"github.com/dyno-run/dyno/supervisor/rendezvous"
)

// The API over TCP ([api] listen in dyno.toml): the socket's routes,
// behind TLS with the daemon's own authority (apitls) and a token
// (apitoken), for the Heroku CLI, for git, and for a daemon reached
// through a tunnel. The unix socket needs neither: its 0600 mode is its
// access control.

// dashboardPath is where the API's listener serves the dashboard.
const dashboardPath = "/dashboard"

// apiTCP is the API's TCP listener and its HTTP server.
type apiTCP struct {
	d      *Daemon
	addr   string
	srv    *http.Server
	config *tls.Config
	// rdv holds heroku run's secrets, handed out by createDyno and
	// claimed on this port (tlsListener).
	rdv *rendezvous.Table

	stopped chan struct{} // closed when shutdown begins
	done    chan struct{} // closed when run has returned

	mu        sync.Mutex
	bound     net.Addr      // where it listens, once it does
	listening chan struct{} // closed then (tests wait on it)
}

// startAPI starts the API on TCP, at d.cfg.API.Listen. The authority and
// server certificate are made or loaded first: a damaged authority stops
// the daemon with the file named. A port another process holds is said
// once in the log and tried again every 5 s, as the router's: the dynos
// run whatever happens to the API's TCP port.
func (d *Daemon) startAPI() error {
	dir := APIDir(d.cfg.Home.Dir)
	host, _, _ := net.SplitHostPort(d.cfg.API.Listen)
	issuer, err := apitls.NewIssuer(dir, apitls.Names(host, d.cfg.API.Hostnames), d.logf)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	tokens := apitoken.NewVerifier(dir)
	if err := tokens.Problem(); err != nil {
		d.logf("api: %v; until then every request over TCP is refused", err)
	}
	ttl := d.attachTTL
	if ttl == 0 {
		ttl = rendezvous.DefaultTTL
	}
	t := &apiTCP{d: d, addr: d.cfg.API.Listen, stopped: make(chan struct{}), done: make(chan struct{}),
		listening: make(chan struct{}), rdv: rendezvous.NewTable(ttl)}
	t.config = &tls.Config{
		GetCertificate: issuer.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		// HTTP/1.1 alone: what the Heroku CLI (Node's https) and git
		// speak; a rendezvous on this port negotiates no protocol
		// (Node's tls.connect offers none).
		NextProtos: []string{"http/1.1"},
	}
	// The dashboard signs browsers in with the token itself (a form,
	// then a cookie), so it goes before requireToken.
	mux := http.NewServeMux()
	mux.Handle("/", requireToken(tokens, d.gitHTTP(d.routes())))
	if dash, err := d.dashboardServer(dashboardPath); err != nil {
		d.logf("api: %v; the dashboard is off", err)
	} else {
		mux.Handle(dashboardPath+"/", dash)
		mux.Handle(dashboardPath, dash)
	}
	t.srv = d.serverFor(withTLSState(mux))
	// The listener hands http.Server a connection that has been peeked
	// at (tlsListener.handshake), not the *tls.Conn, so the server
	// cannot fill in Request.TLS itself: the state goes through the
	// connection's context, and withTLSState puts it back.
	t.srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if pc, ok := c.(*peekedConn); ok {
			st := pc.Conn.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &st)
		}
		return ctx
	}
	d.tcp = t
	go t.run()
	return nil
}

func (t *apiTCP) run() {
	defer close(t.done)
	said := false
	for {
		ln, err := net.Listen("tcp", t.addr)
		if err == nil {
			l := newTLSListener(ln, t.config, t.d.cfg.HeaderTimeout, t.d.logf)
			l.claim = t.rdv.Claim
			t.mu.Lock()
			t.bound = ln.Addr()
			close(t.listening)
			t.mu.Unlock()
			select {
			case <-t.stopped:
				l.Close()
				return
			default:
			}
			t.d.logf("api: listening on https://%s", ln.Addr())
			t.srv.Serve(l)
			return
		}
		if !said {
			t.d.logf("api: %v; free the port or set [api] listen in dyno.toml to another; trying again every 5 s", err)
			said = true
		}
		select {
		case <-t.stopped:
			return
		case <-time.After(retryListen):
		}
	}
}

// listenAddr is where the API listens on TCP, nil until it does.
func (t *apiTCP) listenAddr() net.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bound
}

// shutdown stops the listener and the requests under way, as the
// socket's server is stopped: gracefully until ctx ends, then at once.
//
// Secrets not yet claimed expire with it: their run.N end, said in the
// logs. Rendezvous under way are no HTTP requests: their dynos stop
// with their apps (appRun.close).
func (t *apiTCP) shutdown(ctx context.Context) {
	close(t.stopped)
	t.srv.Shutdown(ctx)
	t.srv.Close()
	<-t.done
	t.rdv.Close()
}

// tlsStateKey is the context key of a connection's TLS state
// (apiTCP's ConnContext).
type tlsStateKey struct{}

// withTLSState sets Request.TLS from the connection's context, as
// http.Server does for the *tls.Conn it is given: handlers and git's
// routes see the request came over TLS.
func withTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok && r.TLS == nil {
			r.TLS = st
		}
		h.ServeHTTP(w, r)
	})
}

// requireToken lets through only requests that carry the API's token:
// "Authorization: Bearer TOKEN" (the Heroku CLI's HEROKU_API_KEY), or
// Basic auth whose password is the token, whatever the user name (git's
// credential helper; the Heroku CLI's "heroku git:credentials" gives
// git "heroku" and the token). Others get Heroku's 401, with the
// WWW-Authenticate that makes git ask its credential helper.
func requireToken(tokens *apitoken.Verifier, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokens.Verify(requestToken(r)) {
			w.Header().Set("WWW-Authenticate", `Basic realm="dyno"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "Invalid credentials provided.")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// requestToken is the token a request carries, "" if none.
func requestToken(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	// The scheme is case-insensitive (RFC 9110, 11.1).
	if len(auth) > len("Bearer ") && strings.EqualFold(auth[:len("Bearer ")], "Bearer ") {
		return strings.TrimSpace(auth[len("Bearer "):])
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return ""
}

// tlsListener is the API's TCP port as a net.Listener for its
// http.Server: it accepts TCP connections itself, makes each a TLS
// server connection, completes the handshake in a goroutine of its own
// (bounded by a deadline, so that a slow or silent client holds up no
// other) and hands the connection to Accept.
//
// It is the seam for what a later step adds on this same port:
//   - git's smart HTTP (/APP.git/info/refs, git-receive-pack) is HTTP:
//     it goes to the same http.Server, whose handler then routes
//     /APP.git/... before the API's routes, both behind requireToken
//     (git sends Basic auth after the 401's WWW-Authenticate).
//   - the Heroku CLI's rendezvous (heroku run) is not HTTP: once the
//     handshake is done, its first bytes are a secret and "\r\n", where
//     HTTP's are a method and a space. handshake peeks at a
//     connection's first bytes (rendezvous.Sniff, through a
//     bufio.Reader over the tls.Conn that peekedConn then reads
//     through) and sends a rendezvous to its dyno (claim) rather than
//     to Accept.
type tlsListener struct {
	tcp              net.Listener
	config           *tls.Config
	handshakeTimeout time.Duration
	logf             func(format string, args ...any)
	// claim takes a rendezvous secret's attach (rendezvous.Table.Claim);
	// nil refuses every rendezvous.
	claim func(secret string) (func(net.Conn), bool)

	conns chan net.Conn // handshaken, for Accept
	// ctx ends when the listener closes: handshakes under way stop, and
	// connections not yet accepted are closed.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

func newTLSListener(tcp net.Listener, config *tls.Config, handshakeTimeout time.Duration, logf func(string, ...any)) *tlsListener {
	l := &tlsListener{tcp: tcp, config: config, handshakeTimeout: handshakeTimeout, logf: logf, conns: make(chan net.Conn)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.acceptTCP()
	return l
}

// acceptTCP accepts until the listener closes. An error such as EMFILE
// is waited out, as http.Server does, rather than spun on.
func (l *tlsListener) acceptTCP() {
	var delay time.Duration
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			l.logf("api: accept: %v; retrying in %v", err, delay)
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.config)
	ctx, cancel := context.WithTimeout(l.ctx, l.handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// A client that does not trust the authority says so here
		// ("unknown certificate authority"): worth a line. One that
		// connects and goes (a port check) is not.
		if !errors.Is(err, io.EOF) && l.ctx.Err() == nil {
			l.logf("api: TLS handshake with %s: %v", c.RemoteAddr(), err)
		}
		c.Close()
		return
	}
	// Both HTTP's clients and the rendezvous's speak first, at once, so
	// the first bytes come within the same bound as the handshake.
	// Small: HTTP's bytes only wait here until the server reads them.
	br := bufio.NewReaderSize(tc, 512)
	tc.SetReadDeadline(time.Now().Add(l.handshakeTimeout))
	secret, rdv, err := rendezvous.Sniff(br)
	if err != nil {
		tc.Close()
		return
	}
	tc.SetReadDeadline(time.Time{})
	if rdv {
		// Never HTTP's, whatever became of the secret: a wrong one is
		// closed with nothing said, as a used or expired one.
		var attach func(net.Conn)
		ok := false
		if l.claim != nil && secret != "" {
			attach, ok = l.claim(secret)
		}
		if !ok {
			l.logf("api: rendezvous from %s: no such secret (wrong, used or expired); closed", c.RemoteAddr())
			tc.Close()
			return
		}
		attach(tc)
		return
	}
	pc := &peekedConn{Conn: tc, r: br}
	select {
	case l.conns <- pc:
	case <-l.ctx.Done():
		tc.Close()
	}
}

// peekedConn is a TLS connection whose first bytes were read ahead into
// r (tlsListener.handshake); reads get them first.
type peekedConn struct {
	*tls.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Accept returns the next handshaken connection.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting; handshakes under way end.
func (l *tlsListener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		l.cancel()
		err = l.tcp.Close()
	})
	return err
}

func (l *tlsListener) Addr() net.Addr { return l.tcp.Addr() }
