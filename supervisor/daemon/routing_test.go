package daemon

// The router under the daemon, against fake web dynos that answer HTTP
// on their PORT: which app a Host reaches, what an app without dynos
// answers, the spread over two dynos, the wait while web restarts, and
// each request's heroku[router] line in the app's logs.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/dyno-run/dyno/supervisor/router"
)

// webRunner makes each fake dyno with a PORT answer HTTP there with its
// name and port, until it ends; on SIGTERM it stops as a web server
// should, finishing the requests it has. With hold set, a dyno listens
// only once it receives from hold: a web dyno that boots for as long as
// a test wants. slow, when set, serves /slow.
type webRunner struct {
	*fakeRunner
	hold chan struct{}
	slow http.HandlerFunc
}

// webProc is a fake web dyno: SIGTERM shuts its server down gracefully,
// and the process ends once its requests are answered.
type webProc struct {
	*fakeProc
	srv *http.Server
}

func (p *webProc) Signal(sig syscall.Signal) error {
	go func() {
		p.srv.Shutdown(context.Background())
		p.end()
	}()
	return nil
}

func (w *webRunner) Start(spec supervisor.DynoSpec) (supervisor.Process, error) {
	p, err := w.fakeRunner.Start(spec)
	if err != nil {
		return p, err
	}
	port := ""
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "PORT="); ok {
			port = v
		}
	}
	if port == "" || !strings.HasPrefix(spec.Name, "web.") {
		return p, nil
	}
	fp := p.(*fakeProc)
	w.fakeRunner.mu.Lock()
	hold, slow := w.hold, w.slow
	w.fakeRunner.mu.Unlock()
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" && slow != nil {
			slow(rw, r)
			return
		}
		fmt.Fprintf(rw, "%s on %s id=%s xff=%s proto=%s\n", spec.Name, port, r.Header.Get("X-Request-Id"),
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
	})}
	go func() {
		if hold != nil {
			select {
			case <-hold:
			case <-fp.done:
				return
			}
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			return // never up: the test fails on it
		}
		go srv.Serve(ln)
		<-fp.done
		srv.Close()
	}()
	return &webProc{fakeProc: fp, srv: srv}, nil
}

// startRouted starts a test daemon whose router listens on a port of its
// own, with web dynos that answer; it returns the router's address.
func startRouted(t *testing.T, w *webRunner, setup func(h app.Home)) (*testDaemon, string) {
	t.Helper()
	td, addrs := startRoutedTLS(t, w, setup, "")
	return td, addrs["http"]
}

// startRoutedTLS is startRouted with HTTPS on tlsListen too, unless it
// is ""; it returns the addresses by scheme.
func startRoutedTLS(t *testing.T, w *webRunner, setup func(h app.Home), tlsListen string) (*testDaemon, map[string]string) {
	t.Helper()
	return startRoutedConfig(t, w, setup, Config{Router: RouterSettings{Listen: "127.0.0.1:0", TLSListen: tlsListen}})
}

// startRoutedConfig is startRoutedTLS with the daemon's config given
// whole.
func startRoutedConfig(t *testing.T, w *webRunner, setup func(h app.Home), cfg Config) (*testDaemon, map[string]string) {
	t.Helper()
	td := startTestDaemon(t, daemonOptions{
		cfg:    cfg,
		setup:  setup,
		runner: func(f *fakeRunner) supervisor.Runner { w.fakeRunner = f; return w },
	})
	select {
	case <-td.d.routing.listening:
	case <-time.After(20 * time.Second):
		t.Fatalf("the router does not listen\ndaemon log:\n%s", td.log)
	}
	td.d.routing.mu.Lock()
	defer td.d.routing.mu.Unlock()
	addrs := map[string]string{}
	for proto, a := range td.d.routing.addrs {
		addrs[proto] = a.String()
	}
	return td, addrs
}

// get sends GET / for host to the router and returns the status and body.
func get(t *testing.T, addr, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = host
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// awaitState waits until the router sees app in state st.
func (td *testDaemon) awaitState(name string, st router.AppState) {
	td.t.Helper()
	td.eventually(fmt.Sprintf("%s in router state %d", name, st), func() bool {
		a, ok := td.d.app(name)
		return ok && a.route.State() == st
	})
}

func TestRouterRoutesByHostAndLogsEachRequest(t *testing.T) {
	t.Parallel()
	td, addr := startRouted(t, &webRunner{}, func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"web": "serve"})
		h.Create("blank", "test")
	})
	td.awaitState("demo", router.Running)
	demo, _ := td.d.app("demo")
	tail := demo.hub.Subscribe(logstore.Filter{Source: "heroku", Dyno: "router"}, 16)
	defer tail.Close()

	status, body := get(t, addr, "demo.localhost:8080")
	if status != 200 || !strings.HasPrefix(body, "web.1 on ") || !strings.Contains(body, "xff=127.0.0.1") {
		t.Fatalf("demo.localhost: %d %q", status, body)
	}
	id := body[strings.Index(body, "id=")+3 : strings.Index(body, " xff=")]
	// The API says the port the router reached web.1 on.
	var dynos []Dyno
	if err := td.client.Do(context.Background(), http.MethodGet, "/apps/demo/dynos", nil, &dynos); err != nil {
		t.Fatal(err)
	}
	if len(dynos) != 1 || !strings.HasPrefix(body, fmt.Sprintf("web.1 on %d ", dynos[0].Port)) {
		t.Errorf("API dynos %+v; web.1 answered %q", dynos, body)
	}
	select {
	case line := <-tail.Lines():
		for _, want := range []string{"heroku[router]: at=info method=GET path=\"/\" host=demo.localhost ",
			"request_id=" + id, "fwd=\"127.0.0.1\"", "dyno=web.1", "status=200", "protocol=http"} {
			if !strings.Contains(string(line), want) {
				t.Errorf("router line %q lacks %q", line, want)
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no heroku[router] line in demo's logs")
	}

	// An app with no release yet: H81; a host no app has: 404.
	td.awaitState("blank", router.NoRelease)
	if status, body := get(t, addr, "blank.localhost"); status != 503 || !strings.Contains(body, "H81") {
		t.Errorf("blank.localhost: %d %q, want 503 H81", status, body)
	}
	if status, _ := get(t, addr, "nobody.localhost"); status != 404 {
		t.Errorf("nobody.localhost: %d, want 404", status)
	}

	// Scaled to no web dynos: H14, with its line.
	scale(t, td.home, "demo", app.Scale{Type: "web", Op: '=', N: 0})
	td.awaitState("demo", router.NoWeb)
	if status, body := get(t, addr, "demo.localhost"); status != 503 || !strings.Contains(body, "H14") {
		t.Errorf("web=0: %d %q, want 503 H14", status, body)
	}
	for {
		select {
		case line := <-tail.Lines():
			if strings.Contains(string(line), `at=error code=H14 desc="No web processes running"`) {
				if !strings.Contains(string(line), "dyno= connect= service= status=503 bytes=") {
					t.Errorf("H14 line %q keeps no empty fields", line)
				}
				return
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no H14 line in demo's logs")
		}
	}
}

func TestRouterSpreadsOverTwoWebDynos(t *testing.T) {
	t.Parallel()
	td, addr := startRouted(t, &webRunner{}, func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"web": "serve"})
		scale(t, h, "demo", app.Scale{Type: "web", Op: '=', N: 2})
	})
	td.eventually("both web dynos up in the router", func() bool {
		a, ok := td.d.app("demo")
		if !ok {
			return false
		}
		n := 0
		for _, st := range a.sup.Status() {
			if st.State == supervisor.Up {
				n++
			}
		}
		return n == 2 && a.route.State() == router.Running
	})
	served := map[string]int{}
	for range 60 {
		_, body := get(t, addr, "demo.localhost")
		name, _, _ := strings.Cut(body, " ")
		served[name]++
	}
	// At random, both get some: all 60 on one has odds of 2^-59.
	if served["web.1"] == 0 || served["web.2"] == 0 {
		t.Fatalf("60 requests went %v", served)
	}
}

// A request that comes while web restarts waits for the new dyno instead
// of failing.
func TestRouterHoldsRequestsWhileWebRestarts(t *testing.T) {
	t.Parallel()
	w := &webRunner{}
	td, addr := startRouted(t, w, func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"web": "serve"})
	})
	td.awaitState("demo", router.Running)
	_, before := get(t, addr, "demo.localhost")

	// From now on a new dyno listens only when the test says.
	w.fakeRunner.mu.Lock()
	hold := make(chan struct{})
	w.hold = hold
	w.fakeRunner.mu.Unlock()
	demo, _ := td.d.app("demo")
	if err := demo.sup.Restart("web"); err != nil {
		t.Fatal(err)
	}
	td.awaitState("demo", router.Booting)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
	// No answer while no web dyno is up: neither an error page nor the
	// old dyno's.
	conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	r := bufio.NewReader(conn)
	if _, err := r.Peek(1); err == nil {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		got, _ := io.ReadAll(r)
		t.Fatalf("the router answered while web was restarting: %q", got)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	close(hold)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(after) == before || !strings.HasPrefix(string(after), "web.1 on ") {
		t.Fatalf("after the restart: %d %q (before it: %q)", resp.StatusCode, after, before)
	}
}

// routeState's mapping from dynos to what the router answers.
func TestRouteStateFollowsTheFormation(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		h.Create("demo", "test")
	}})
	td.awaitState("demo", router.NoRelease)
	a, _ := td.home.Open("demo")
	deployTo(t, td.home, a, map[string]string{"web": "serve", "worker": "w"})
	// The fake web dyno never listens: booting, requests wait.
	td.awaitState("demo", router.Booting)
	// No web dyno in the formation: H14, whatever else runs.
	scale(t, td.home, "demo", app.Scale{Type: "web", Op: '=', N: 0}, app.Scale{Type: "worker", Op: '=', N: 1})
	td.awaitState("demo", router.NoWeb)
}

// Custom domains reach their app, over HTTP and over HTTPS with the
// domain's own certificate picked by SNI, in HTTP/2 when the client
// offers it; a domain removed no longer does.
func TestRouterServesCustomDomainsAndTheirCertificates(t *testing.T) {
	t.Parallel()
	var demo *app.App
	td, addrs := startRoutedTLS(t, &webRunner{}, func(h app.Home) {
		demo = deploy(t, h, "demo", map[string]string{"web": "serve"})
	}, "127.0.0.1:0")
	td.awaitState("demo", router.Running)
	if _, err := demo.AddDomain("www.example.com", "localhost", "test"); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := testutil.SelfSigned(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "www.example.com")
	if _, err := demo.AddCert(certPEM, keyPEM, "www.example.com", "localhost", "test"); err != nil {
		t.Fatal(err)
	}
	td.eventually("www.example.com routed", func() bool {
		status, body := get(t, addrs["http"], "www.example.com")
		return status == 200 && strings.HasPrefix(body, "web.1 on ")
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "www.example.com"},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addrs["https"])
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://www.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.Contains(string(body), "proto=https") {
		t.Fatalf("https://www.example.com/: %d %s %q", resp.StatusCode, resp.Proto, body)
	}

	// A name with no certificate: the handshake fails.
	tr2 := tr.Clone()
	tr2.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "demo.localhost"}
	if _, err := (&http.Client{Transport: tr2, Timeout: 30 * time.Second}).Get("https://demo.localhost/"); err == nil {
		t.Error("a TLS handshake for a name without a certificate succeeded")
	}

	if _, err := demo.RemoveDomain("www.example.com", "test"); err != nil {
		t.Fatal(err)
	}
	td.eventually("www.example.com gone", func() bool {
		status, _ := get(t, addrs["http"], "www.example.com")
		return status == 404
	})
}

// A dyno sent SIGTERM gets no new request, and the request it is serving
// finishes: a restart drops nothing.
func TestRouterLetsAStoppingDynoFinish(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	w := &webRunner{slow: func(rw http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		fmt.Fprintln(rw, "slow done")
	}}
	td, addr := startRouted(t, w, func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"web": "serve"})
	})
	td.awaitState("demo", router.Running)
	_, before := get(t, addr, "demo.localhost")

	slow := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/slow", nil)
		req.Host = "demo.localhost"
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- fmt.Sprint(resp.StatusCode, " ", string(b))
	}()
	<-entered
	demo, _ := td.d.app("demo")
	if err := demo.sup.Restart("web"); err != nil {
		t.Fatal(err)
	}
	// New requests reach the new process only, while the old one still
	// serves /slow.
	td.eventually("requests on the new web.1", func() bool {
		status, body := get(t, addr, "demo.localhost")
		return status == 200 && body != before
	})
	for range 10 {
		if _, body := get(t, addr, "demo.localhost"); body == before {
			t.Fatalf("a dyno sent SIGTERM got a new request: %q", body)
		}
	}
	close(release)
	if got := <-slow; got != "200 slow done\n" {
		t.Fatalf("the request on the stopping dyno: %q", got)
	}
}
