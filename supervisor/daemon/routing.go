package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/dashboard"
	"github.com/dyno-run/dyno/supervisor/router"
)

// routing is the daemon's side of the router: it listens where dyno.toml
// says, tells the router which apps answer to which hosts and which of
// their web dynos take requests, and writes each request's heroku[router]
// line to its app's logs.
type routing struct {
	d       *Daemon
	rt      *router.Router
	journal *router.Journal
	domain  string

	mu    sync.Mutex
	sig   string                      // the apps and domains of the table in use
	certs map[string]*tls.Certificate // by hostname, "*.example.com" for a wildcard

	stopped chan struct{} // closed when the listeners are to close
	wg      sync.WaitGroup
	lns     []net.Listener

	// addrs are where the listeners listen, by scheme; listening is
	// closed once every one asked for is up (tests wait on it).
	addrs     map[string]net.Addr
	want      int
	listening chan struct{}

	cancelDrain context.CancelFunc // ends stop's wait for requests under way
	drained     chan struct{}      // closed when that wait is over

	// dashboard is the dashboard as the router sees it: an app at
	// dashboard.DOMAIN whose one backend is the dashboard's loopback
	// server (dashboard.go); nil when it could not start.
	dashboard *router.App
}

// retryListen is how often the router tries again to listen on an
// address it could not get (another process holds the port).
const retryListen = 5 * time.Second

func newRouting(d *Daemon) *routing {
	g := &routing{d: d, domain: d.cfg.Router.Domain, stopped: make(chan struct{}),
		addrs: map[string]net.Addr{}, listening: make(chan struct{})}
	g.journal = router.NewJournal(g, 0)
	g.rt = router.New(router.Config{Journal: g.journal})
	return g
}

// start listens for HTTP on addr and, unless tlsAddr is "", for HTTPS on
// tlsAddr. An address it cannot get is said once in the daemon's log and
// tried again every 5 s: the dynos run whatever happens to the router.
func (g *routing) start(addr, tlsAddr string) {
	for _, a := range []string{addr, tlsAddr} {
		if a != "" {
			g.want++
		}
	}
	if addr != "" {
		g.listen(addr, "http", func(ln net.Listener) { g.rt.Serve(ln, "http") })
	}
	if tlsAddr != "" {
		g.listen(tlsAddr, "https", func(ln net.Listener) {
			srv := &http.Server{
				Handler:           g.rt,
				TLSConfig:         &tls.Config{GetCertificate: g.certificate, MinVersion: tls.VersionTLS12},
				ReadHeaderTimeout: 30 * time.Second,
				IdleTimeout:       60 * time.Second,
				ErrorLog:          log.New(serverLog{g.d}, "router: ", 0),
			}
			go func() {
				<-g.stopped
				ctx, cancel := context.WithTimeout(context.Background(), g.d.cfg.StopTimeout)
				defer cancel()
				srv.Shutdown(ctx)
			}()
			// ServeTLS with empty file names takes GetCertificate, and
			// speaks HTTP/2 to clients that offer it (ALPN h2).
			srv.ServeTLS(ln, "", "")
		})
	}
}

func (g *routing) listen(addr, proto string, serve func(net.Listener)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		said := false
		for {
			ln, err := net.Listen("tcp", addr)
			if err == nil {
				g.mu.Lock()
				g.lns = append(g.lns, ln)
				g.addrs[proto] = ln.Addr()
				if len(g.addrs) == g.want {
					close(g.listening)
				}
				g.mu.Unlock()
				g.d.logf("router: listening for %s on %s", proto, ln.Addr())
				select {
				case <-g.stopped:
					ln.Close()
					return
				default:
				}
				serve(ln)
				return
			}
			if !said {
				g.d.logf("router: %v; %s", err, listenHint(err))
				said = true
			}
			select {
			case <-g.stopped:
				return
			case <-time.After(retryListen):
			}
		}
	}()
}

// listenHint says how to fix a listen that failed.
func listenHint(err error) string {
	var se *net.OpError
	if errors.As(err, &se) && strings.Contains(err.Error(), "permission denied") {
		return "ports under 1024 need CAP_NET_BIND_SERVICE (see docs/operations.md) or [router] listen set to a higher port in dyno.toml; trying again every 5 s"
	}
	return "set [router] listen in dyno.toml to a free address; trying again every 5 s"
}

// stop closes the listeners at once and lets requests under way finish
// for up to timeout, in the background: the dynos stop meanwhile.
func (g *routing) stop(timeout time.Duration) {
	close(g.stopped)
	g.mu.Lock()
	for _, ln := range g.lns {
		ln.Close()
	}
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	g.cancelDrain = cancel
	g.drained = make(chan struct{})
	go func() {
		defer close(g.drained)
		g.rt.Shutdown(ctx)
	}()
}

// close ends what stop left running, once every dyno has stopped, and
// flushes the last lines to the apps' logs.
func (g *routing) close() {
	g.cancelDrain()
	<-g.drained
	g.wg.Wait()
	g.journal.Close()
}

// RouterLines writes a batch of an app's request lines to its logs, in
// one write (router.Sink).
func (g *routing) RouterLines(app string, lines []byte) {
	if a, ok := g.d.app(app); ok {
		a.logs.Router(lines)
	}
}

// Dropped says in an app's logs how many router lines its log store
// lost by lagging, as Logplex says L10 (router.Sink).
func (g *routing) Dropped(app string, n int, since time.Time) {
	if a, ok := g.d.app(app); ok {
		a.logs.System("logplex", fmt.Sprintf("Error L10 (output buffer overflow): %d messages dropped since %s.",
			n, since.UTC().Format(time.RFC3339)))
	}
}

// hostsOf is what refresh builds a table from: each app and its custom
// domains.
type hostsOf struct {
	app     *appRun
	domains []string
	certs   []ledger.Cert // what the ledger says; the keys are in files
}

// refresh gives the router a new table when the apps or their domains
// have changed since the last one. Only the main loop calls it.
func (g *routing) refresh(apps []hostsOf) {
	slices.SortFunc(apps, func(a, b hostsOf) int { return strings.Compare(a.app.name, b.app.name) })
	var sig strings.Builder
	for _, a := range apps {
		sig.WriteString(a.app.name)
		for _, h := range a.domains {
			sig.WriteByte(' ')
			sig.WriteString(h)
		}
		for _, c := range a.certs {
			sig.WriteString(" " + c.Domain + "=" + c.Fingerprint)
		}
		sig.WriteByte('\n')
	}
	g.mu.Lock()
	same := g.sig == sig.String()
	g.sig = sig.String()
	g.mu.Unlock()
	if same {
		return
	}
	hosts, err := router.NewHosts(g.domain)
	if err != nil {
		g.d.logf("router: %v", err)
		return
	}
	routed := make(map[string]*router.App, len(apps)+1)
	if g.dashboard != nil {
		// First, so that no custom domain takes its hostname.
		hosts.AddApp(dashboard.Host)
		routed[dashboard.Host] = g.dashboard
	}
	for _, a := range apps {
		if a.app.name == dashboard.Host && g.dashboard != nil {
			// An app made before the name was kept for the dashboard.
			g.d.logf("router: %s.%s is the dashboard's; rename the app %s to reach it through the router", dashboard.Host, g.domain, a.app.name)
			continue
		}
		hosts.AddApp(a.app.name)
		routed[a.app.name] = a.app.route
		for _, h := range a.domains {
			// The CLI refuses a host another app holds; a ledger
			// edited by hand may still hold one.
			if err := hosts.AddDomain(a.app.name, h); err != nil {
				g.d.logf("router: %s: %v", a.app.name, err)
			}
		}
	}
	g.rt.SetTable(router.NewTable(hosts, routed))
	g.setCerts(g.loadCerts(apps))
}

// loadCerts reads the certificates and keys the apps' ledgers name, by
// domain. One that cannot be used is said in the daemon's log and left
// out; the others serve.
func (g *routing) loadCerts(apps []hostsOf) map[string]*tls.Certificate {
	certs := map[string]*tls.Certificate{}
	for _, a := range apps {
		if len(a.certs) == 0 {
			continue
		}
		list, err := a.app.app.Certificates()
		if err != nil {
			g.d.logf("router: %s: %v", a.app.name, err)
		}
		for _, c := range list {
			pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
			if err != nil {
				g.d.logf("router: %s: certificate for %s: %v", a.app.name, c.Domain, err)
				continue
			}
			certs[c.Domain] = &pair
		}
	}
	return certs
}

// certificate picks the certificate for a TLS client's server name
// (SNI): the domain's own, else its parent's wildcard.
func (g *routing) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.certs[name]; ok {
		return c, nil
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c, ok := g.certs["*."+parent]; ok {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no certificate for %q; add one with dyno certs:add CRT KEY --domain %s", hello.ServerName, hello.ServerName)
}

// setCerts replaces the certificates the HTTPS listener offers.
func (g *routing) setCerts(certs map[string]*tls.Certificate) {
	g.mu.Lock()
	g.certs = certs
	g.mu.Unlock()
}

// routeState tells the router what app r's web formation can do now: no
// release (H81), no web dynos wanted (H14), the dynos that are up and not
// stopping, else booting (requests wait) or crashed (H10). It is called
// on every change of a dyno and after every reconcile; routeMu keeps two
// calls from applying out of order.
func (r *appRun) routeState() {
	r.routeMu.Lock()
	defer r.routeMu.Unlock()
	on, page, fetch, gen := r.maint.state()
	r.route.SetMaintenance(on, page)
	if fetch != "" && r.d.life.Err() != nil {
		r.maint.done(fetch, gen, "") // shutting down: no fetch starts
	} else if fetch != "" {
		r.d.background.Add(1)
		go func() {
			defer r.d.background.Done()
			page, err := fetchPage(r.d.life, fetch)
			if err != nil {
				r.logs.System("router", err.Error()+"; the router serves its own maintenance page")
			}
			r.maint.done(fetch, gen, page)
			r.routeState()
		}()
	}
	r.mu.Lock()
	released, webs := r.rel != nil, r.webs
	r.mu.Unlock()
	switch {
	case !released:
		r.route.Update(router.NoRelease, nil)
		return
	case webs == 0:
		r.route.Update(router.NoWeb, nil)
		return
	case r.sup.Asleep():
		// Eco dynos asleep: a request wakes them (sleep.go).
		r.route.Update(router.Sleeping, nil)
		return
	}
	var up []router.Backend
	booting := false
	for _, st := range r.sup.Status() {
		if st.OneOff || st.Type != "web" {
			continue
		}
		if st.ServingPort > 0 {
			// A preboot: the dyno's previous process takes requests
			// until its replacement is up.
			up = append(up, router.Backend{Dyno: st.Name, Addr: "127.0.0.1:" + strconv.Itoa(st.ServingPort)})
		}
		switch {
		case st.State == supervisor.Up && !st.Stopping && st.Port > 0:
			up = append(up, router.Backend{Dyno: st.Name, Addr: "127.0.0.1:" + strconv.Itoa(st.Port)})
		case st.State == supervisor.Starting || st.State == supervisor.Down || st.Stopping:
			// Coming up, or stopped to start again (ps:stop, a
			// restart): requests wait for it.
			booting = true
		}
	}
	switch {
	case len(up) > 0:
		r.route.Update(router.Running, up)
	case booting:
		r.route.Update(router.Booting, nil)
	default:
		r.route.Update(router.Crashed, nil)
	}
}

// serverLog passes the HTTPS server's complaints to the daemon's log,
// except failed TLS handshakes: every scanner on the internet makes
// those, and the client sees its own error.
type serverLog struct{ d *Daemon }

func (l serverLog) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("TLS handshake error")) {
		l.d.logf("%s", bytes.TrimSuffix(p, []byte("\n")))
	}
	return len(p), nil
}
