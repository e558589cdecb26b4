package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// serveFunc starts r serving plain HTTP on ln until the test ends. The
// conformance checks run against each way of serving: the goroutine
// engine now, the event loop when it comes.
type serveFunc func(t *testing.T, r *Router, ln net.Listener)

func serveGoroutines(t *testing.T, r *Router, ln net.Listener) {
	if r.cfg.EventLoops == 0 {
		r.cfg.EventLoops = -1 // no event loop: serveLoops sets one
	}
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln, "http") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
		if err := <-done; err != ErrRouterClosed {
			t.Errorf("Serve returned %v, want ErrRouterClosed", err)
		}
	})
}

func TestConformanceGoroutines(t *testing.T) { conformance(t, serveGoroutines) }

// lineSink collects router lines.
type lineSink struct{ lines chan string }

func (s *lineSink) RouterLines(app string, lines []byte) {
	for _, l := range strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n") {
		s.lines <- app + ": " + l
	}
}
func (s *lineSink) Dropped(string, int, time.Time) {}

// env is one router with one app, "app" at app.localhost, and its lines.
type env struct {
	t     *testing.T
	r     *Router
	addr  string
	port  string
	app   *App
	lines chan string
}

// fast are the timeouts the checks of timeouts run with.
var fast = Config{Connect: 300 * time.Millisecond, FirstByte: 300 * time.Millisecond, Idle: 300 * time.Millisecond,
	BootWait: 300 * time.Millisecond, ClientIdle: 2 * time.Second, HeadTimeout: 300 * time.Millisecond}

func newEnv(t *testing.T, serve serveFunc, cfg Config) *env {
	t.Helper()
	sink := &lineSink{lines: make(chan string, 10000)}
	j := NewJournal(sink, 0)
	t.Cleanup(j.Close)
	cfg.Journal = j
	r := New(cfg)
	hosts, err := NewHosts("localhost")
	if err != nil {
		t.Fatal(err)
	}
	hosts.AddApp("app")
	app := NewApp("app", time.Now)
	r.SetTable(NewTable(hosts, map[string]*App{"app": app}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, r, ln)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &env{t: t, r: r, addr: ln.Addr().String(), port: port, app: app, lines: sink.lines}
}

// line waits for the next router line and checks it holds each of want.
func (e *env) line(want ...string) string {
	e.t.Helper()
	select {
	case l := <-e.lines:
		for _, w := range want {
			if !strings.Contains(l, w) {
				e.t.Errorf("router line %q lacks %q", l, w)
			}
		}
		return l
	case <-time.After(5 * time.Second):
		e.t.Fatalf("no router line (want %q)", want)
	}
	return ""
}

// noLine checks that no router line is waiting.
func (e *env) noLine() {
	e.t.Helper()
	select {
	case l := <-e.lines:
		e.t.Errorf("unexpected router line %q", l)
	default:
	}
}

// client is one connection to the router.
type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (e *env) dial() *client {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	return &client{t: e.t, nc: nc, br: bufio.NewReader(nc)}
}

// dialSmall is dial with a small receive buffer, so that a client that
// reads slowly or not at all holds the router's writes back at once.
func (e *env) dialSmall() *client {
	e.t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		return nil
	}}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	return &client{t: e.t, nc: nc, br: bufio.NewReaderSize(nc, 4<<10)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// response reads a response with its whole body.
func (c *client) response(method string) (*http.Response, string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading a response body: %v", err)
	}
	return resp, string(body)
}

// closed checks that the router closed the connection.
func (c *client) closed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := c.br.ReadByte(); err == nil {
		c.t.Errorf("connection still open: read %q", b)
	} else if errors := err.Error(); strings.Contains(errors, "timeout") {
		c.t.Errorf("connection still open: %v", err)
	}
}

// recv receives from ch, failing the test after 5 s rather than hanging.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("waited 5 s for %T", *new(T))
	}
	panic("unreachable")
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
}

// httpBackend runs h as web.N and returns it.
func httpBackend(t *testing.T, dyno string, h http.Handler) (Backend, *httptest.Server) {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return Backend{Dyno: dyno, Addr: srv.Listener.Addr().String()}, srv
}

// rawBackend runs serve for each connection, on a raw listener.
func rawBackend(t *testing.T, dyno string, serve func(net.Conn)) Backend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return Backend{Dyno: dyno, Addr: ln.Addr().String()}
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// blackhole is a loopback address whose accept queue is full, so that a
// connect never completes: the kernel drops the SYNs.
func blackhole(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the kernel completes connections beyond the accept queue here")
	return ""
}

func echoPath(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }

func conformance(t *testing.T, serve serveFunc) {
	t.Run("Get", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET /hello?x=1 HTTP/1.1\r\nHost: app.localhost:8080\r\nX-Request-Id: abcdefghijklmnopqrstuvwxyz\r\n\r\n")
		resp, body := c.response("GET")
		if resp.StatusCode != 200 || body != "/hello" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if got := resp.Header.Get("Via"); got != "1.1 dyno" {
			t.Errorf("Via %q", got)
		}
		e.line(`app: at=info method=GET path="/hello?x=1" host=app.localhost request_id=abcdefghijklmnopqrstuvwxyz fwd="127.0.0.1" dyno=web.1 connect=`,
			" status=200 bytes=", " protocol=http")
	})

	t.Run("UnknownHost", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		c := e.dial()
		c.send("GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\n")
		resp, body := c.response("GET")
		if resp.StatusCode != 404 || !strings.Contains(body, "There is no app at nope.localhost") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		// The connection goes on.
		c.send("GET / HTTP/1.1\r\nHost: other.localhost\r\n\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != 404 {
			t.Errorf("second request: %d", resp.StatusCode)
		}
		e.noLine()
	})

	for _, tc := range []struct {
		state AppState
		code  Code
	}{{NoRelease, H81}, {NoWeb, H14}, {Crashed, H10}} {
		t.Run("State"+tc.code.String(), func(t *testing.T) {
			e := newEnv(t, serve, Config{})
			e.app.Update(tc.state, nil)
			c := e.dial()
			c.send(get("/"))
			resp, body := c.response("GET")
			if resp.StatusCode != tc.code.Status() || !strings.Contains(body, tc.code.String()) {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
			e.line("at="+tc.code.Level()+" code="+tc.code.String()+` desc="`+tc.code.Desc()+`" method=GET path="/" host=app.localhost request_id=`,
				" dyno= connect= service= status=503 bytes= protocol=http")
			// The connection stays open after an error page.
			c.send(get("/"))
			c.response("GET")
			e.line("code=" + tc.code.String())
		})
	}

	t.Run("H80", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		// Set before any connection: the handlers read it.
		waiting := make(chan struct{}, 1)
		e.r.onWait = func() { waiting <- struct{}{} }
		var hits atomic.Int64
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			io.Copy(io.Discard, r.Body)
			echoPath(w, r)
		}))
		e.app.Update(Running, []Backend{b})
		e.app.SetMaintenance(true, "")
		c := e.dial()
		c.send(get("/"))
		resp, body := c.response("GET")
		if resp.StatusCode != 503 || !strings.Contains(body, "Offline for maintenance") || !strings.Contains(body, "H80") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		e.line(`at=info code=H80 desc="Maintenance mode" method=GET path="/" host=app.localhost request_id=`,
			" dyno= connect= service= status=503 bytes= protocol=http")
		// A custom page, for a request with a body: the connection goes
		// on once the body is read, or closes.
		page := "<html><body>Back soon</body></html>\n"
		e.app.SetMaintenance(true, page)
		c.send("POST /form HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 5\r\n\r\nhello")
		resp, body = c.response("POST")
		if resp.StatusCode != 503 || body != page {
			t.Errorf("custom page: got %d %q", resp.StatusCode, body)
		}
		e.line("code=H80", `method=POST path="/form"`, "status=503")
		if n := hits.Load(); n != 0 {
			t.Errorf("the dyno got %d requests in maintenance mode", n)
		}
		// A request waiting for a dyno to come up gets the page as soon
		// as maintenance mode goes on.
		e.app.SetMaintenance(false, "")
		e.app.Update(Booting, nil)
		w := e.dial()
		w.send(get("/waiting"))
		recv(t, waiting)
		e.app.SetMaintenance(true, "")
		if resp, _ := w.response("GET"); resp.StatusCode != 503 {
			t.Errorf("waiting request: got %d, want the maintenance page", resp.StatusCode)
		}
		e.line("code=H80", `path="/waiting"`)
		// Off again: requests reach the dyno.
		e.app.SetMaintenance(false, "")
		e.app.Update(Running, []Backend{b})
		d := e.dial()
		d.send(get("/back"))
		if resp, body := d.response("GET"); resp.StatusCode != 200 || body != "/back" {
			t.Errorf("after maintenance:off: got %d %q", resp.StatusCode, body)
		}
		e.line("at=info method=GET", "dyno=web.1", "status=200")
	})

	t.Run("WakeOnRequest", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(echoPath))
		woken := make(chan struct{}, 16)
		// The daemon's waker starts the dynos in the background; here,
		// one is up at once.
		e.app.SetWaker(func() {
			woken <- struct{}{}
			go e.app.Update(Running, []Backend{b})
		})
		e.app.Update(Sleeping, nil)
		before := time.Now()
		c := e.dial()
		c.send(get("/woken"))
		resp, body := c.response("GET")
		if resp.StatusCode != 200 || body != "/woken" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		recv(t, woken)
		if last := e.app.LastRequest(); last.Before(before.Add(-time.Second)) {
			t.Errorf("LastRequest %v, before the request at %v", last, before)
		}
		e.line("at=info", `path="/woken"`, "dyno=web.1", "status=200")
	})

	t.Run("HoldAndWait", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		waiting := make(chan struct{}, 1)
		e.r.onWait = func() { waiting <- struct{}{} }
		e.app.Update(Booting, nil)
		c := e.dial()
		c.send(get("/restarted"))
		recv(t, waiting)
		b, _ := httpBackend(t, "web.2", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{b})
		resp, body := c.response("GET")
		if resp.StatusCode != 200 || body != "/restarted" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		e.line("at=info", "dyno=web.2", "status=200")
	})

	t.Run("H20", func(t *testing.T) {
		e := newEnv(t, serve, fast)
		e.app.Update(Booting, nil)
		c := e.dial()
		start := time.Now()
		c.send(get("/"))
		resp, _ := c.response("GET")
		if resp.StatusCode != 503 || time.Since(start) < fast.BootWait {
			t.Errorf("got %d after %v", resp.StatusCode, time.Since(start))
		}
		e.line(`at=error code=H20 desc="App boot timeout"`, "status=503")
	})

	t.Run("H27WhileWaiting", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		waiting := make(chan struct{}, 1)
		e.r.onWait = func() { waiting <- struct{}{} }
		e.app.Update(Booting, nil)
		c := e.dial()
		c.send(get("/"))
		recv(t, waiting)
		c.nc.Close()
		e.line(`sock=client at=warning code=H27 desc="Client Request Interrupted"`, "status=499")
	})

	// A client that leaves after the head's or the idle connection's
	// deadline has passed, while its request waits, still ends the wait
	// at once with H27: those deadlines do not end the watch.
	t.Run("H27WhileWaitingPastHeadDeadline", func(t *testing.T) {
		cfg := Config{ClientIdle: 50 * time.Millisecond, HeadTimeout: 50 * time.Millisecond}
		e := newEnv(t, serve, cfg)
		waiting := make(chan struct{}, 1)
		e.r.onWait = func() { waiting <- struct{}{} }
		e.app.Update(Booting, nil)
		c := e.dial()
		c.send("GET / HTTP/1.1\r\n")
		c.send("Host: app.localhost\r\n\r\n")
		recv(t, waiting)
		time.Sleep(2 * cfg.HeadTimeout) // not synchronisation: the deadlines must be past
		c.nc.Close()
		e.line(`code=H27`, "status=499") // within 5 s, not BootWait's 75 s
	})

	t.Run("RetryOnRefusal", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.2", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{{Dyno: "web.1", Addr: refusedAddr(t)}, b})
		c := e.dial()
		for range 10 {
			c.send(get("/"))
			if resp, _ := c.response("GET"); resp.StatusCode != 200 {
				t.Fatalf("got %d", resp.StatusCode)
			}
			e.line("at=info", "dyno=web.2", "status=200")
		}
	})

	// A fresh connection reset after the request went out, before any
	// byte of an answer (a dyno's server closing its listener with the
	// connection in its accept queue): a GET tries another dyno, as on
	// a refusal; a POST, which may have been taken, is H13.
	reset := func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		c.(*net.TCPConn).SetLinger(0) // close(2) sends RST
		c.Close()
	}
	t.Run("RetryOnResetBeforeAnswer", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.2", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{rawBackend(t, "web.1", reset), b})
		c := e.dial()
		for range 10 {
			c.send(get("/"))
			if resp, _ := c.response("GET"); resp.StatusCode != 200 {
				t.Fatalf("got %d", resp.StatusCode)
			}
			e.line("at=info", "dyno=web.2", "status=200")
		}
	})
	t.Run("H13OnResetOfAPost", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		e.app.Update(Running, []Backend{rawBackend(t, "web.1", reset)})
		c := e.dial()
		c.send("POST /form HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 2\r\n\r\nhi")
		if resp, _ := c.response("POST"); resp.StatusCode != 503 {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.line(`at=error code=H13`, "dyno=web.1", "status=503")
	})

	t.Run("H21", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		e.app.Update(Running, []Backend{{Dyno: "web.1", Addr: refusedAddr(t)}, {Dyno: "web.2", Addr: refusedAddr(t)}})
		c := e.dial()
		c.send(get("/"))
		resp, _ := c.response("GET")
		if resp.StatusCode != 503 {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.line(`at=error code=H21 desc="Backend connection refused"`, "status=503")
	})

	t.Run("H19", func(t *testing.T) {
		addr := blackhole(t)
		e := newEnv(t, serve, fast)
		e.app.Update(Running, []Backend{{Dyno: "web.1", Addr: addr}})
		c := e.dial()
		c.send(get("/"))
		resp, _ := c.response("GET")
		if resp.StatusCode != 503 {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.line(`at=error code=H19 desc="Backend connection timeout"`, "dyno=web.1", "status=503")
	})

	t.Run("H12", func(t *testing.T) {
		e := newEnv(t, serve, fast)
		release := make(chan struct{})
		defer close(release)
		b := rawBackend(t, "web.1", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			<-release
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/slow"))
		resp, body := c.response("GET")
		if resp.StatusCode != 503 || !strings.Contains(body, "H12") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		e.line(`at=error code=H12 desc="Request timeout" method=GET path="/slow"`, "dyno=web.1", "status=503")
	})

	t.Run("H13", func(t *testing.T) {
		e := newEnv(t, serve, fast)
		b := rawBackend(t, "web.1", func(c net.Conn) { http.ReadRequest(bufio.NewReader(c)) })
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/"))
		resp, _ := c.response("GET")
		if resp.StatusCode != 503 {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.line(`at=error code=H13 desc="Connection closed without response"`, "dyno=web.1", "status=503")
	})

	t.Run("DeadPooledConnection", func(t *testing.T) {
		// The dyno answers one request per connection, with keep-alive,
		// and then closes it: the pooled connection is dead on reuse.
		e := newEnv(t, serve, Config{})
		var accepted atomic.Int32
		closedOne := make(chan struct{}, 10)
		b := rawBackend(t, "web.1", func(c net.Conn) {
			accepted.Add(1)
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			c.Close()
			closedOne <- struct{}{}
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/1"))
		c.response("GET")
		e.line("status=200")
		recv(t, closedOne)
		c.send(get("/2"))
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
			t.Errorf("GET after the dyno closed the pooled connection: %d %q", resp.StatusCode, body)
		}
		e.line("at=info", "status=200")
		select {
		case <-closedOne:
		case <-time.After(5 * time.Second):
			t.Fatal("the router did not open a second connection")
		}
		if n := accepted.Load(); n != 2 {
			t.Errorf("dyno accepted %d connections, want 2", n)
		}
		// A POST cannot be sent again: the router sees that the pooled
		// connection was closed before using it, and dials a fresh one.
		c.send("POST /3 HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 2\r\n\r\nhi")
		if resp, body := c.response("POST"); resp.StatusCode != 200 || body != "ok" {
			t.Errorf("POST after the dyno closed the pooled connection: %d %q, want the dyno's answer", resp.StatusCode, body)
		}
		e.line("at=info", "status=200")
		if n := accepted.Load(); n != 3 {
			t.Errorf("dyno accepted %d connections, want 3", n)
		}
	})

	t.Run("H15", func(t *testing.T) {
		e := newEnv(t, serve, fast)
		release := make(chan struct{})
		defer close(release)
		b := rawBackend(t, "web.1", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			<-release
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/"))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %v %v", resp, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err == nil || string(body) != "partial" {
			t.Errorf("body %q, err %v: want the partial body cut", body, err)
		}
		e.line(`at=error code=H15 desc="Idle connection"`, "dyno=web.1")
	})

	t.Run("H18", func(t *testing.T) {
		e := newEnv(t, serve, fast)
		b := rawBackend(t, "web.1", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/"))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if body, err := io.ReadAll(resp.Body); err == nil || string(body) != "0123456789" {
			t.Errorf("body %q, err %v", body, err)
		}
		e.line(`sock=backend at=error code=H18 desc="Server Request Interrupted"`, "dyno=web.1")
	})

	t.Run("H28", func(t *testing.T) {
		e := newEnv(t, serve, fast)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 10\r\n\r\nab")
		e.line(`at=warning code=H28 desc="Client Connection Idle"`, "status=499")
		c.closed()
	})

	t.Run("H27DuringBody", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		got := make(chan struct{}, 1)
		b := rawBackend(t, "web.1", func(c net.Conn) {
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				got <- struct{}{}
				io.Copy(io.Discard, req.Body)
			}
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 100000\r\n\r\nonly this much")
		recv(t, got)
		c.nc.Close()
		e.line(`sock=client at=warning code=H27`, "status=499")
	})

	t.Run("H13DuringBody", func(t *testing.T) {
		// The dyno closes, unanswered, while the request body is still
		// coming: H13, Heroku's H18 being for a response cut short.
		e := newEnv(t, serve, Config{})
		b := rawBackend(t, "web.1", func(c net.Conn) { http.ReadRequest(bufio.NewReader(c)) })
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		const size = 64 << 20
		go func() {
			io.WriteString(c.nc, "POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
			c.nc.Write(make([]byte, size))
		}()
		e.line(`at=error code=H13`, "dyno=web.1")
	})

	t.Run("EarlyResponse", func(t *testing.T) {
		// The dyno refuses a big upload without reading it: the client
		// gets the refusal, not an error of the router's.
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		const size = 64 << 20
		go func() {
			io.WriteString(c.nc, "POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
			c.nc.Write(make([]byte, size))
		}()
		resp, body := c.response("POST")
		if resp.StatusCode != 413 || body != "too big\n" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		e.line("at=info", "status=413")
	})

	t.Run("FullDuplex", func(t *testing.T) {
		// The dyno echoes the body as it reads it: the response streams
		// while the upload does.
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.NewResponseController(w).EnableFullDuplex()
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			buf := make([]byte, 100)
			for {
				n, err := r.Body.Read(buf)
				w.Write(buf[:n])
				w.(http.Flusher).Flush()
				if err != nil {
					return
				}
			}
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("POST / HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nping1\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %v %v", resp, err)
		}
		got := make([]byte, 5)
		for _, msg := range []string{"ping1", "ping2"} {
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != msg {
				t.Fatalf("echo %q: %q %v", msg, got, err)
			}
			if msg == "ping1" {
				c.send("5\r\nping2\r\n")
			}
		}
		c.send("0\r\n\r\n")
		if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
			t.Errorf("after the echo: %q %v", rest, err)
		}
		e.line("status=200")
	})

	t.Run("H25HeadTooLarge", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		c := e.dial()
		c.send("GET / HTTP/1.1\r\nHost: app.localhost\r\nX-Big: " + strings.Repeat("a", MaxHeaderLine+10) + "\r\n\r\n")
		resp, _ := c.response("GET")
		if resp.StatusCode != H25.Status() {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.line(`at=error code=H25 desc="HTTP Restriction" cause="header line too long"`)
		c.closed()
	})

	for name, tc := range map[string]struct {
		req    string
		status int
		cause  string
	}{
		"ObsFold":           {"GET / HTTP/1.1\r\nHost: app.localhost\r\nX: a\r\n b\r\n\r\n", 400, "obsolete line folding"},
		"SpaceBeforeColon":  {"GET / HTTP/1.1\r\nHost: app.localhost\r\nX : a\r\n\r\n", 400, "bad header"},
		"ConflictingLength": {"POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "conflicting content-length"},
		"BadLength":         {"POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1x\r\n\r\n", 400, "bad content-length"},
		"TransferEncoding":  {"POST / HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer-encoding"},
		"BadExpect":         {"POST / HTTP/1.1\r\nHost: app.localhost\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n", 417, "bad expect"},
	} {
		t.Run("H26"+name, func(t *testing.T) {
			e := newEnv(t, serve, Config{})
			b, _ := httpBackend(t, "web.1", http.HandlerFunc(echoPath))
			e.app.Update(Running, []Backend{b})
			c := e.dial()
			c.send(tc.req)
			resp, body := c.response("POST")
			if resp.StatusCode != tc.status || !strings.Contains(body, "H26") {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			e.line(`at=error code=H26 desc="Request Error" cause="`+tc.cause+`"`, "status="+strconv.Itoa(tc.status))
			c.closed()
		})
	}

	t.Run("H26BadChunk", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("POST / HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
		resp, _ := c.response("POST")
		if resp.StatusCode != 400 {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.line(`code=H26`, `cause="bad chunk"`)
	})

	t.Run("H25BadResponse", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b := rawBackend(t, "web.1", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HELLO THERE\r\n\r\n")
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/"))
		if resp, _ := c.response("GET"); resp.StatusCode != 502 {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.line("code=H25", "dyno=web.1", "status=502")
	})

	t.Run("BigHead", func(t *testing.T) {
		// 40 KiB of headers: more than one read, and more than the
		// router's first buffer.
		e := newEnv(t, serve, Config{})
		seen := make(chan int, 1)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- len(r.Header["X-Big"])
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET / HTTP/1.1\r\nHost: app.localhost\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 1000)+"\r\n", 40) + "\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Errorf("got %d", resp.StatusCode)
		}
		if n := recv(t, seen); n != 40 {
			t.Errorf("the dyno saw %d of 40 headers", n)
		}
		c.send("GET / HTTP/1.1\r\nHost: app.localhost\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 1000)+"\r\n", 70) + "\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != H25.Status() {
			t.Errorf("a head over %d bytes: %d, want H25", MaxHead, resp.StatusCode)
		}
		e.line("status=200")
		e.line("code=H25", `cause="head too large"`)
	})

	t.Run("ClientIdle", func(t *testing.T) {
		// A keep-alive connection quiet for ClientIdle between requests
		// is closed, with no line.
		cfg := fast
		cfg.ClientIdle = 300 * time.Millisecond
		e := newEnv(t, serve, cfg)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/"))
		c.response("GET")
		e.line("status=200")
		start := time.Now()
		c.closed()
		if d := time.Since(start); d < cfg.ClientIdle/2 {
			t.Errorf("closed after %v, want after ClientIdle", d)
		}
		e.noLine()
	})

	t.Run("SlowHead", func(t *testing.T) {
		// A head that never ends is cut after HeadTimeout, quietly.
		e := newEnv(t, serve, fast)
		c := e.dial()
		start := time.Now()
		c.send("GET / HTTP/1.1\r\nHost: app")
		c.closed()
		if d := time.Since(start); d < fast.HeadTimeout {
			t.Errorf("closed after %v, before HeadTimeout", d)
		}
		e.noLine()
	})

	t.Run("HeadersAsRewrite", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		seen := make(chan http.Header, 1)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Header
		}))
		e.app.Update(Running, []Backend{b})
		raw := "GET /h HTTP/1.1\r\nHost: app.localhost\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1\r\n" +
			"X-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\nX-Request-Start: 1\r\nVia: 1.1 cdn\r\n" +
			"X-Request-Id: abcdefghijklmnopqrstuvwxyz\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n" +
			"X-Secret: s\r\nTE: trailers\r\nProxy-Connection: x\r\nUpgrade: h2c\r\n\r\n"
		before := time.Now()
		c := e.dial()
		c.send(raw)
		c.response("GET")
		got := recv(t, seen)
		want, _ := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		Rewrite(want.Header, Forward{ClientIP: "127.0.0.1", Proto: "http", Port: e.port, Version: "1.1", Start: before})
		start, err := strconv.ParseInt(got.Get("X-Request-Start"), 10, 64)
		if err != nil || start < before.UnixMilli() || start > time.Now().UnixMilli() {
			t.Errorf("X-Request-Start %q, want unix ms of now", got.Get("X-Request-Start"))
		}
		if v := got["Via"]; len(v) != 1 || v[0] != "1.1 dyno" {
			t.Errorf("dyno saw Via %q, want the client's dropped: only \"1.1 dyno\"", v)
		}
		got.Del("X-Request-Start")
		want.Header.Del("X-Request-Start")
		got.Del("Accept-Encoding") // net/http's server adds nothing, but be exact about what is compared
		want.Header.Del("Accept-Encoding")
		if fmt.Sprint(got) != fmt.Sprint(want.Header) {
			t.Errorf("the dyno saw\n%v\nRewrite gives\n%v", got, want.Header)
		}
		e.line(`fwd="10.0.0.1, 127.0.0.1"`, "request_id=abcdefghijklmnopqrstuvwxyz")
	})

	// A Connection header naming Content-Length must not drop it: the
	// body would reach the dyno as a second request (smuggling), and a
	// response without its length would poison the pooled connection.
	t.Run("ConnectionNamesFraming", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		seen := make(chan string, 4)
		b := rawBackend(t, "web.1", func(nc net.Conn) {
			br := bufio.NewReader(nc)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				body, _ := io.ReadAll(req.Body)
				seen <- req.Method + " " + req.RequestURI + " " + string(body)
				io.WriteString(nc, "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\nok")
				if req.RequestURI == "/next" {
					return // the test is over: do not hold the pooled connection
				}
			}
		})
		e.app.Update(Running, []Backend{b})
		smuggled := "GET /smuggled HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
		c := e.dial()
		c.send(fmt.Sprintf("POST /a HTTP/1.1\r\nHost: app.localhost\r\nConnection: content-length\r\nContent-Length: %d\r\n\r\n%s",
			len(smuggled), smuggled))
		resp, body := c.response("POST")
		if resp.StatusCode != 200 || body != "ok" || resp.ContentLength != 2 {
			t.Errorf("got %d %q, Content-Length %d", resp.StatusCode, body, resp.ContentLength)
		}
		if got := recv(t, seen); got != "POST /a "+smuggled {
			t.Errorf("dyno saw %q, want the POST with its body", got)
		}
		e.line("method=POST", "status=200")
		c.send(get("/next"))
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
			t.Errorf("next request: %d %q", resp.StatusCode, body)
		}
		if got := recv(t, seen); got != "GET /next " {
			t.Errorf("dyno saw %q, want GET /next", got)
		}
		e.line("path=\"/next\"")
		e.noLine()
	})

	// An absolute-form target names the host (RFC 9112 section 3.2.2):
	// the router routes by it and the dyno sees it, in origin-form.
	t.Run("AbsoluteForm", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		seen := make(chan string, 1)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Host + " " + r.RequestURI
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET http://app.localhost/abs?x=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Errorf("got %d", resp.StatusCode)
		}
		if got := recv(t, seen); got != "app.localhost /abs?x=1" {
			t.Errorf("dyno saw %q, want host app.localhost and origin-form /abs?x=1", got)
		}
		e.line(`path="/abs?x=1" host=app.localhost `, "status=200")
		// The URI's host wins over Host: no app there.
		c.send("GET http://nope.localhost/ HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
		if resp, body := c.response("GET"); resp.StatusCode != 404 || !strings.Contains(body, "nope.localhost") {
			t.Errorf("got %d %q, want the 404 for nope.localhost", resp.StatusCode, body)
		}
		e.noLine()
	})

	// A pooled connection on which the dyno sent bytes after its response
	// (a late second response, the CRLF ending a chunked body) is not
	// reused: those bytes would be the next client's response.
	t.Run("StalePooledConnection", func(t *testing.T) {
		for _, tc := range []struct{ name, first, late, version string }{
			{"LateResponse", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale", "1.1"},
			{"LateChunkEnd", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n", "\r\n", "1.0"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, serve, Config{})
				late, wrote := make(chan struct{}), make(chan struct{})
				b := rawBackend(t, "web.1", func(nc net.Conn) {
					br := bufio.NewReader(nc)
					for {
						req, err := http.ReadRequest(br)
						if err != nil {
							return
						}
						if req.URL.Path == "/first" {
							io.WriteString(nc, tc.first)
							<-late
							io.WriteString(nc, tc.late)
							close(wrote)
							continue
						}
						io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfresh")
						return
					}
				})
				e.app.Update(Running, []Backend{b})
				c := e.dial()
				c.send("GET /first HTTP/" + tc.version + "\r\nHost: app.localhost\r\n\r\n")
				if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
					t.Errorf("first: %d %q", resp.StatusCode, body)
				}
				e.line("status=200")
				close(late)
				<-wrote
				v := e.dial()
				v.send(get("/next"))
				if resp, body := v.response("GET"); resp.StatusCode != 200 || body != "fresh" {
					t.Errorf("next client got %d %q, want the dyno's answer to it", resp.StatusCode, body)
				}
				e.line("status=200")
			})
		}
	})

	// A client that stops reading is cut after Idle: it holds neither the
	// router nor the dyno's connection (a stream it never reads).
	t.Run("ClientStopsReading", func(t *testing.T) {
		for _, version := range []string{"1.1", "1.0"} {
			t.Run("HTTP"+version, func(t *testing.T) {
				e := newEnv(t, serve, Config{Idle: 100 * time.Millisecond})
				ended := make(chan error, 1)
				b := rawBackend(t, "web.1", func(nc net.Conn) {
					if _, err := http.ReadRequest(bufio.NewReader(nc)); err != nil {
						return
					}
					io.WriteString(nc, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
					chunk := fmt.Sprintf("4000\r\n%s\r\n", strings.Repeat("x", 0x4000))
					for {
						nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
						if _, err := io.WriteString(nc, chunk); err != nil {
							ended <- err
							return
						}
					}
				})
				e.app.Update(Running, []Backend{b})
				c := e.dialSmall()
				c.send("GET /stream HTTP/" + version + "\r\nHost: app.localhost\r\n\r\n")
				// The client reads nothing.
				if err := recv(t, ended); isTimeout(err) {
					t.Errorf("the dyno's stream was never cut: %v", err)
				}
				e.line("path=\"/stream\"")
			})
		}
	})

	// A slow but steady upload is not idle: sent at a pace far under what
	// copies in one step within Idle, it goes through whole.
	t.Run("SlowSteadyUpload", func(t *testing.T) {
		e := newEnv(t, serve, Config{Idle: 100 * time.Millisecond})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		const size = 256 << 10
		c.send(fmt.Sprintf("POST /up HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: %d\r\n\r\n", size))
		chunk := make([]byte, 16<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			c.send(string(chunk))
			time.Sleep(10 * time.Millisecond) // pacing: ~1.6 MB/s, never a pause near Idle
		}
		if resp, body := c.response("POST"); resp.StatusCode != 200 || body != strconv.Itoa(size) {
			t.Errorf("got %d %q, want the dyno to have read %d bytes", resp.StatusCode, body, size)
		}
		e.line("method=POST", "status=200")
	})

	t.Run("NewRequestID", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		seen := make(chan string, 1)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Header.Get("X-Request-Id")
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET / HTTP/1.1\r\nHost: app.localhost\r\nX-Request-Id: short\r\n\r\n")
		c.response("GET")
		id := recv(t, seen)
		if len(id) != 36 || id == "short" {
			t.Errorf("dyno saw X-Request-Id %q, want a new UUID", id)
		}
		e.line("request_id=" + id)
	})

	t.Run("KeepAliveAndPool", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		var conns atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(echoPath))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		b := Backend{Dyno: "web.1", Addr: srv.Listener.Addr().String()}
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		for i := range 5 {
			c.send(get("/" + strconv.Itoa(i)))
			if _, body := c.response("GET"); body != "/"+strconv.Itoa(i) {
				t.Errorf("request %d: %q", i, body)
			}
			e.line("status=200")
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("the dyno saw %d connections for 5 keep-alive requests, want 1", n)
		}
	})

	t.Run("HTTP10", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET /ka HTTP/1.0\r\nHost: app.localhost\r\nConnection: keep-alive\r\n\r\n")
		resp, body := c.response("GET")
		if body != "/ka" || resp.Header.Get("Connection") != "keep-alive" {
			t.Errorf("1.0 keep-alive: %q, Connection %q", body, resp.Header.Get("Connection"))
		}
		c.send("GET /close HTTP/1.0\r\nHost: app.localhost\r\n\r\n")
		if _, body := c.response("GET"); body != "/close" {
			t.Errorf("1.0: %q", body)
		}
		c.closed()
	})

	t.Run("HTTP10Chunked", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "one ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "two")
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET / HTTP/1.0\r\nHost: app.localhost\r\nConnection: keep-alive\r\n\r\n")
		resp, body := c.response("GET")
		if body != "one two" || len(resp.TransferEncoding) > 0 {
			t.Errorf("1.0 client got %q, TE %v; want the body decoded", body, resp.TransferEncoding)
		}
		c.closed()
	})

	t.Run("Pipelining", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/a") + "POST /b HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 3\r\n\r\nxyz" + get("/c"))
		for _, want := range []string{"/a", "/b", "/c"} {
			if _, body := c.response("GET"); body != want {
				t.Errorf("got %q, want %q", body, want)
			}
		}
	})

	t.Run("PipelinedAfterChunkedUpload", func(t *testing.T) {
		// The chunked body is longer than the router's buffer, so its end
		// and the next request arrive in a later read.
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%s %d", r.URL.Path, n)
		}))
		e.app.Update(Running, []Backend{b})
		var req strings.Builder
		req.WriteString("POST /up HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 100 {
			req.WriteString("3e8\r\n" + strings.Repeat("z", 1000) + "\r\n")
		}
		req.WriteString("0\r\n\r\n" + get("/next"))
		c := e.dial()
		go c.nc.Write([]byte(req.String()))
		for _, want := range []string{"/up 100000", "/next 0"} {
			if _, body := c.response("GET"); body != want {
				t.Errorf("got %q, want %q", body, want)
			}
		}
	})

	t.Run("LargeBodies", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		const size = 5 << 20
		payload := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		sum := sha256.Sum256(payload)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/chunked" {
				for rest := payload; len(rest) > 0; rest = rest[min(len(rest), 100000):] {
					w.Write(rest[:min(len(rest), 100000)])
					w.(http.Flusher).Flush()
				}
				return
			}
			if r.Method == "GET" {
				w.Header().Set("Content-Length", strconv.Itoa(size))
				w.Write(payload)
				return
			}
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		}))
		e.app.Update(Running, []Backend{b})
		want := fmt.Sprintf("%d %x", size, sum)
		c := e.dial()
		// Content-Length upload.
		go func() {
			io.WriteString(c.nc, "POST /up HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
			c.nc.Write(payload)
		}()
		if _, body := c.response("POST"); body != want {
			t.Errorf("Content-Length upload: dyno got %q, want %q", body, want)
		}
		// Chunked upload, in uneven chunks.
		go func() {
			io.WriteString(c.nc, "POST /up HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
			for rest := payload; len(rest) > 0; {
				k := min(len(rest), 300001)
				fmt.Fprintf(c.nc, "%x\r\n", k)
				c.nc.Write(rest[:k])
				io.WriteString(c.nc, "\r\n")
				rest = rest[k:]
			}
			io.WriteString(c.nc, "0\r\n\r\n")
		}()
		if _, body := c.response("POST"); body != want {
			t.Errorf("chunked upload: dyno got %q, want %q", body, want)
		}
		// Download.
		c.send(get("/down"))
		if _, body := c.response("GET"); sha256.Sum256([]byte(body)) != sum {
			t.Errorf("download of %d bytes differs", len(body))
		}
		// Chunked download, in chunks big enough to be spliced.
		c.send(get("/chunked"))
		if resp, body := c.response("GET"); sha256.Sum256([]byte(body)) != sum || len(resp.TransferEncoding) == 0 {
			t.Errorf("chunked download of %d bytes differs (TE %v)", len(body), resp.TransferEncoding)
		}
		for range 4 {
			e.line("status=200")
		}
	})

	t.Run("ExpectContinue", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		expect := make(chan string, 1)
		b := rawBackend(t, "web.1", func(c net.Conn) {
			br := bufio.NewReader(c)
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			expect <- req.Header.Get("Expect")
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n") // must not reach the client
			body, _ := io.ReadAll(req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+string(body))
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("POST / HTTP/1.1\r\nHost: app.localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		cont := make([]byte, len("HTTP/1.1 100 Continue\r\n\r\n"))
		if _, err := io.ReadFull(c.br, cont); err != nil || string(cont) != "HTTP/1.1 100 Continue\r\n\r\n" {
			t.Fatalf("got %q, %v; want 100 Continue before the body", cont, err)
		}
		c.send("hello")
		resp, body := c.response("POST")
		if resp.StatusCode != 200 || body != "hello" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if got := recv(t, expect); got != "" {
			t.Errorf("the dyno saw Expect: %q", got)
		}
		e.line("status=200")
	})

	t.Run("BodilessResponses", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/204":
				w.WriteHeader(204)
			case "/304":
				w.WriteHeader(304)
			default:
				w.Header().Set("Content-Length", "5000000")
				if r.Method != "HEAD" {
					w.Write(make([]byte, 5000000))
				}
			}
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("HEAD / HTTP/1.1\r\nHost: app.localhost\r\n\r\n" + get("/204") + get("/304") + get("/echo"))
		for _, want := range []struct {
			method string
			status int
		}{{"HEAD", 200}, {"GET", 204}, {"GET", 304}, {"GET", 200}} {
			resp, body := c.response(want.method)
			if resp.StatusCode != want.status || want.method == "HEAD" && body != "" {
				t.Errorf("%s: %d, %d bytes", want.method, resp.StatusCode, len(body))
			}
		}
	})

	t.Run("UntilClose", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b := rawBackend(t, "web.1", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it until close")
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/"))
		if _, body := c.response("GET"); body != "all of it until close" {
			t.Errorf("got %q", body)
		}
		e.line("status=200", "bytes=")
		c.closed()
	})

	t.Run("ServerSentEvents", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		send := make(chan string)
		sent := make(chan time.Time, 2)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			for ev := range send {
				io.WriteString(w, "data: "+ev+"\n\n")
				w.(http.Flusher).Flush()
				sent <- time.Now()
			}
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/events"))
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		for _, ev := range []string{"one", "two"} {
			send <- ev
			line, err := br.ReadString('\n')
			at := time.Now()
			if err != nil || line != "data: "+ev+"\n" {
				t.Fatalf("got %q, %v", line, err)
			}
			if d := at.Sub(recv(t, sent)); d > 100*time.Millisecond {
				t.Errorf("event %q reached the client %v after the dyno sent it, want under 100 ms", ev, d)
			}
			br.ReadString('\n')
		}
		close(send)
		io.ReadAll(br)
		e.line("status=200")
	})

	t.Run("LongPoll", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		answer := make(chan string)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, <-answer)
		}))
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send(get("/poll"))
		answer <- "news"
		if _, body := c.response("GET"); body != "news" {
			t.Errorf("got %q", body)
		}
	})

	t.Run("WebSocketEcho", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b := rawBackend(t, "web.1", wsEcho)
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET /ws HTTP/1.1\r\nHost: app.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
			!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		for _, msg := range []string{"hello", strings.Repeat("x", 10000), "bye"} {
			wsWrite(c.nc, 1, []byte(msg), true)
			op, got, err := wsRead(c.br)
			if err != nil || op != 1 || string(got) != msg {
				t.Fatalf("echo of %d bytes: op %d, %d bytes, %v", len(msg), op, len(got), err)
			}
		}
		e.line("status=101", "dyno=web.1")
	})

	// An upgrade request with a body: the dyno gets the body once, then
	// the tunnel's bytes, whether they came in the same read or later.
	t.Run("UpgradeWithBody", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		got := make(chan string, 1)
		b := rawBackend(t, "web.1", func(nc net.Conn) {
			br := bufio.NewReader(nc)
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			io.WriteString(nc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			next := make([]byte, 4)
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadFull(br, next)
			got <- fmt.Sprintf("body %q then %q %v", body, next, err)
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET /ws HTTP/1.1\r\nHost: app.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhelloPING")
		if resp, err := http.ReadResponse(c.br, nil); err != nil || resp.StatusCode != 101 {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		if s := recv(t, got); s != `body "hello" then "PING" <nil>` {
			t.Errorf("dyno read %s, want the body once, then the tunnel's PING", s)
		}
		e.line("status=101")
	})

	t.Run("WebSocketIdle", func(t *testing.T) {
		// Silence both ways for Idle ends the tunnel; a dyno that pushes
		// more often keeps it, though the client never speaks.
		e := newEnv(t, serve, fast)
		push := make(chan bool)
		b := rawBackend(t, "web.1", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			for p := range push {
				if p {
					wsWrite(c, 1, []byte("tick"), false)
				}
			}
			io.Copy(io.Discard, c)
		})
		e.app.Update(Running, []Backend{b})
		c := e.dial()
		c.send("GET /ws HTTP/1.1\r\nHost: app.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		if resp, err := http.ReadResponse(c.br, nil); err != nil || resp.StatusCode != 101 {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		// Push every Idle/3 for 2×Idle: the tunnel stays.
		ticker := time.NewTicker(fast.Idle / 3)
		for end := time.Now().Add(2 * fast.Idle); time.Now().Before(end); <-ticker.C {
			push <- true
			if _, got, err := wsRead(c.br); err != nil || string(got) != "tick" {
				t.Fatalf("push through the tunnel: %q %v", got, err)
			}
		}
		ticker.Stop()
		close(push)
		c.closed() // then silence: closed after Idle
	})

	t.Run("RandomSpread", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		b1, _ := httpBackend(t, "web.1", http.HandlerFunc(echoPath))
		b2, _ := httpBackend(t, "web.2", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{b1, b2})
		c := e.dial()
		count := map[string]int{}
		for range 100 {
			c.send(get("/"))
			c.response("GET")
			l := e.line("status=200")
			for _, d := range []string{"web.1", "web.2"} {
				if strings.Contains(l, "dyno="+d+" ") {
					count[d]++
				}
			}
		}
		if count["web.1"] < 15 || count["web.2"] < 15 {
			t.Errorf("100 requests went %v, want both dynos picked at random", count)
		}
	})

	t.Run("Shutdown", func(t *testing.T) {
		e := newEnv(t, serve, Config{})
		got := make(chan struct{})
		release := make(chan struct{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				got <- struct{}{}
				<-release
			}
			io.WriteString(w, r.URL.Path)
		}))
		e.app.Update(Running, []Backend{b})
		idle := e.dial()
		idle.send(get("/"))
		idle.response("GET")
		busy := e.dial()
		busy.send(get("/slow"))
		recv(t, got)
		done := make(chan error)
		go func() { done <- e.r.Shutdown(context.Background()) }()
		idle.closed()
		close(release)
		if resp, body := busy.response("GET"); resp.StatusCode != 200 || body != "/slow" {
			t.Errorf("in flight during Shutdown: %d %q", resp.StatusCode, body)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if _, err := net.Dial("tcp", e.addr); err == nil {
			t.Errorf("still accepting after Shutdown")
		}
	})
}

// wsEcho is a WebSocket dyno that echoes each message.
func wsEcho(c net.Conn) {
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(h[:])+"\r\n\r\n")
	for {
		op, msg, err := wsRead(br)
		if err != nil {
			return
		}
		wsWrite(c, op, msg, false)
	}
}

// wsWrite writes one final WebSocket frame (RFC 6455 section 5.2),
// masked as a client's must be.
func wsWrite(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op, 0}
	switch n := len(payload); {
	case n < 126:
		hdr[1] = byte(n)
	case n < 1<<16:
		hdr[1] = 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	body := payload
	if mask {
		hdr[1] |= 0x80
		key := []byte{1, 2, 3, 4}
		hdr = append(hdr, key...)
		body = make([]byte, len(payload))
		for i, b := range payload {
			body[i] = b ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, body...))
	return err
}

func wsRead(r *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	if h[1]&0x80 != 0 {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, payload, nil
}
