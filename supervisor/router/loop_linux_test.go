//go:build linux

package router

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopSink keeps the router lines it gets.
type loopSink struct {
	count atomic.Int64 // lines, kept or not
	quiet atomic.Bool  // count lines only: keeping them allocates
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func newLoopSink() *loopSink { return &loopSink{added: make(chan struct{}, 1000)} }

func (s *loopSink) RouterLines(app string, lines []byte) {
	n := bytes.Count(lines, []byte{'\n'})
	s.count.Add(int64(n))
	if s.quiet.Load() {
		return
	}
	s.mu.Lock()
	for _, l := range strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n") {
		s.lines = append(s.lines, app+": "+l)
	}
	s.mu.Unlock()
	select {
	case s.added <- struct{}{}:
	default:
	}
}

func (s *loopSink) Dropped(app string, n int, since time.Time) {}

// waitFor returns the first line that contains every one of parts,
// waiting for it up to 5 s.
func (s *loopSink) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		s.mu.Lock()
		for _, l := range s.lines {
			ok := true
			for _, p := range parts {
				if !strings.Contains(l, p) {
					ok = false
					break
				}
			}
			if ok {
				s.mu.Unlock()
				return l
			}
		}
		all := strings.Join(s.lines, "\n")
		s.mu.Unlock()
		select {
		case <-s.added:
		case <-deadline:
			t.Fatalf("no router line with %q; lines:\n%s", parts, all)
		}
	}
}

// loopRouter serves an app "app" at app.localhost with the given
// backends through event loops, and returns the router's address.
func loopRouter(t *testing.T, cfg Config, backends ...string) (*Router, string, *App, *loopSink) {
	t.Helper()
	sink := newLoopSink()
	j := NewJournal(sink, 0)
	cfg.Journal = j
	if cfg.EventLoops == 0 {
		cfg.EventLoops = 2
	}
	r := New(cfg)
	hosts, err := NewHosts("localhost")
	if err != nil {
		t.Fatal(err)
	}
	hosts.AddApp("app")
	app := NewApp("app", time.Now)
	var up []Backend
	for i, a := range backends {
		up = append(up, Backend{Dyno: "web." + strconv.Itoa(i+1), Addr: a})
	}
	app.Update(Running, up)
	r.SetTable(NewTable(hosts, map[string]*App{"app": app}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(ln, "http") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != ErrRouterClosed {
			t.Errorf("Serve returned %v, want ErrRouterClosed", err)
		}
		j.Close()
	})
	return r, ln.Addr().String(), app, sink
}

// loopHTTP serves h on a loopback port.
func loopHTTP(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// loopRaw runs serve on each connection to a loopback port.
func loopRaw(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// loopHead reads one request head from br; cl is its Content-Length.
func loopHead(br *bufio.Reader) (head string, cl int, err error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return b.String(), 0, err
		}
		b.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "content-length") {
			cl, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return b.String(), cl, nil
}

func loopGet(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app.localhost\r\n\r\n", path)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}

func loopBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoopProxiesWithHerokusHeadersAndLogLine(t *testing.T) {
	seen := make(chan http.Header, 10)
	be := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("X-Path", r.URL.Path)
		io.WriteString(w, "hello "+r.URL.Path)
	})
	_, addr, _, sink := loopRouter(t, Config{}, be)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		path := "/p" + strconv.Itoa(i)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app.localhost\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nX-Request-Id: abcdefghijklmnopqrstuvwxyz\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopBody(t, resp); got != "hello "+path {
			t.Fatalf("body %q", got)
		}
		if resp.Header.Get("Via") != "1.1 dyno" || resp.Header.Get("X-Path") != path {
			t.Errorf("response headers %v", resp.Header)
		}
		h := <-seen
		if h.Get("X-Forwarded-For") != "10.0.0.1, 127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" ||
			h.Get("X-Forwarded-Port") != addr[strings.LastIndex(addr, ":")+1:] || h.Get("Via") != "1.1 dyno" ||
			h.Get("X-Request-Id") != "abcdefghijklmnopqrstuvwxyz" || h.Get("X-Request-Start") == "" || h.Get("X-Secret") != "" {
			t.Errorf("the dyno saw %v", h)
		}
	}
	line := sink.waitFor(t, `path="/p2"`)
	for _, want := range []string{"app: at=info method=GET", "host=app.localhost", "request_id=abcdefghijklmnopqrstuvwxyz",
		`fwd="10.0.0.1, 127.0.0.1"`, "dyno=web.1", "connect=0ms", "status=200", "protocol=http"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
}

func TestLoopPipelinedRequestsAnsweredInOrder(t *testing.T) {
	be := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond)
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	})
	_, addr, _, _ := loopRouter(t, Config{}, be)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: app.localhost\r\n\r\n"+
		"POST /post HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 5\r\n\r\nhello"+
		"HEAD /head HTTP/1.1\r\nHost: app.localhost\r\n\r\n"+
		"GET /last HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/slow ", "/post hello", "", "/last "} {
		method := "GET"
		if want == "" {
			method = "HEAD"
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if got := loopBody(t, resp); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestLoopRelaysChunkedAndUntilCloseResponses(t *testing.T) {
	be := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			// HTTP/1.1 without a length and without chunking: the body
			// ends when the dyno closes.
			hj, _, _ := w.(http.Hijacker).Hijack()
			io.WriteString(hj, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close")
			hj.Close()
			return
		}
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "chunk %d;", i)
			w.(http.Flusher).Flush()
		}
	})
	_, addr, _, _ := loopRouter(t, Config{}, be)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	resp := loopGet(t, c, br, "/chunked")
	if got := loopBody(t, resp); got != "chunk 0;chunk 1;chunk 2;" || resp.TransferEncoding == nil {
		t.Errorf("chunked: %q %v", got, resp.TransferEncoding)
	}
	resp = loopGet(t, c, br, "/close")
	if got := loopBody(t, resp); got != "until close" || !resp.Close {
		t.Errorf("until close: %q close=%v", got, resp.Close)
	}
}

func TestLoopStreamsServerSentEvents(t *testing.T) {
	next := make(chan struct{})
	be := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			<-next
		}
	})
	_, addr, _, _ := loopRouter(t, Config{}, be)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	resp := loopGet(t, c, br, "/events")
	rd := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		line, err := rd.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		rd.ReadString('\n')
		next <- struct{}{}
	}
}

func TestLoopBackPressureOnALargeDownload(t *testing.T) {
	const size = 8 << 20
	be := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for n := 0; n < size; n += len(chunk) {
			w.Write(chunk)
		}
	})
	_, addr, _, _ := loopRouter(t, Config{}, be)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	resp := loopGet(t, c, br, "/big")
	time.Sleep(100 * time.Millisecond) // the router fills the socket and must stop reading the dyno
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	resp = loopGet(t, c, br, "/big")
	if n, _ := io.Copy(io.Discard, resp.Body); n != size {
		t.Fatalf("second download: %d bytes", n)
	}
}

// The loop hands a connection to the goroutine path mid-connection, after
// requests it served itself, with the bytes it has read.
func TestLoopHandsOffWhatItDoesNotServe(t *testing.T) {
	be := loopRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, cl, err := loopHead(br)
			if err != nil {
				return
			}
			switch {
			case strings.Contains(head, "Upgrade: websocket"):
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
				// Echo what comes, upper-cased, until the client closes.
				buf := make([]byte, 100)
				for {
					n, err := br.Read(buf)
					if err != nil {
						return
					}
					c.Write(bytes.ToUpper(buf[:n]))
				}
			case strings.Contains(head, "Transfer-Encoding: chunked"):
				tp := loopChunkedBody(br)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(tp), tp)
			default:
				b := make([]byte, cl)
				io.ReadFull(br, b)
				reply := "got " + string(b)
				if strings.Contains(head, "Expect") {
					reply = "expect leaked"
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(reply), reply)
			}
		}
	})
	_, addr, _, sink := loopRouter(t, Config{}, be)

	t.Run("expect", func(t *testing.T) {
		c, br := loopDial(t, addr)
		loopGet(t, c, br, "/a").Body.Close()
		loopGet(t, c, br, "/b").Body.Close()
		io.WriteString(c, "POST /e HTTP/1.1\r\nHost: app.localhost\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
		line, _ := br.ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("no 100 Continue: %q", line)
		}
		br.ReadString('\n')
		io.WriteString(c, "body")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopBody(t, resp); got != "got body" {
			t.Errorf("got %q", got)
		}
		// The connection goes on, on the goroutine path.
		if got := loopBody(t, loopGet(t, c, br, "/after")); got != "got " {
			t.Errorf("after: %q", got)
		}
	})
	t.Run("chunked upload", func(t *testing.T) {
		c, br := loopDial(t, addr)
		loopGet(t, c, br, "/a").Body.Close()
		io.WriteString(c, "POST /c HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopBody(t, resp); got != "hello" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("upgrade", func(t *testing.T) {
		c, br := loopDial(t, addr)
		loopGet(t, c, br, "/a").Body.Close()
		loopGet(t, c, br, "/b").Body.Close()
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		for _, m := range []string{"ping", "pong"} {
			io.WriteString(c, m)
			got := make([]byte, len(m))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != strings.ToUpper(m) {
				t.Fatalf("echo %q: %q %v", m, got, err)
			}
		}
	})
	t.Run("large body", func(t *testing.T) {
		c, br := loopDial(t, addr)
		loopGet(t, c, br, "/a").Body.Close()
		big := strings.Repeat("y", loopMaxBody+1)
		fmt.Fprintf(c, "POST /big HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: %d\r\n\r\n%s", len(big), big)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopBody(t, resp); got != "got "+big {
			t.Errorf("got %d bytes", len(got))
		}
	})
	sink.waitFor(t, `path="/big"`, "status=200")
}

func loopChunkedBody(br *bufio.Reader) string {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return b.String()
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if n == 0 {
			br.ReadString('\n')
			return b.String()
		}
		buf := make([]byte, n+2)
		io.ReadFull(br, buf)
		b.Write(buf[:n])
	}
}

func loopDial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// A dyno that closes its keep-alive connections after each response,
// without saying so: the loop sees the pooled connection close, or, when
// it races a request, sends the request again on a fresh connection.
func TestLoopSurvivesADynoClosingPooledConnections(t *testing.T) {
	var conns atomic.Int64
	be := loopRaw(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		if _, _, err := loopHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	_, addr, _, _ := loopRouter(t, Config{}, be)
	c, br := loopDial(t, addr)
	for i := 0; i < 50; i++ {
		resp := loopGet(t, c, br, "/")
		if got := loopBody(t, resp); resp.StatusCode != 200 || got != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, got)
		}
	}
	if n := conns.Load(); n < 50 {
		t.Errorf("%d connections to the dyno for 50 requests", n)
	}
}

func TestLoopTimeouts(t *testing.T) {
	stall := make(chan struct{})
	be := loopRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, _, err := loopHead(br)
		if err != nil {
			return
		}
		if strings.HasPrefix(head, "GET /idle") {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
		}
		<-stall
	})
	t.Cleanup(func() { close(stall) }) // before loopRaw's, which waits for the handlers
	cfg := Config{FirstByte: 1500 * time.Millisecond, Idle: 1500 * time.Millisecond, ClientIdle: 1500 * time.Millisecond}
	_, addr, _, sink := loopRouter(t, cfg, be)

	t.Run("H12", func(t *testing.T) {
		c, br := loopDial(t, addr)
		start := time.Now()
		resp := loopGet(t, c, br, "/first-byte")
		if resp.StatusCode != 503 || !strings.Contains(loopBody(t, resp), "H12") {
			t.Errorf("got %d", resp.StatusCode)
		}
		if d := time.Since(start); d < 1500*time.Millisecond || d > 4*time.Second {
			t.Errorf("H12 after %v", d)
		}
		sink.waitFor(t, "code=H12", `path="/first-byte"`, "status=503", "dyno=web.1")
	})
	t.Run("H15", func(t *testing.T) {
		c, br := loopDial(t, addr)
		resp := loopGet(t, c, br, "/idle")
		b, err := io.ReadAll(resp.Body)
		if err == nil || string(b) != "abc" {
			t.Errorf("body %q, %v: want abc cut short", b, err)
		}
		sink.waitFor(t, "code=H15", `path="/idle"`)
	})
	t.Run("client idle", func(t *testing.T) {
		c, _ := loopDial(t, addr)
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read %d, %v: want the router to close an idle connection", n, err)
		}
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Errorf("closed after %v", d)
		}
	})
}

func TestLoopRetriesRefusedDynosAndGivesH21(t *testing.T) {
	ok := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up") })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	_, addr, app, sink := loopRouter(t, Config{}, dead, ok)
	c, br := loopDial(t, addr)
	for i := 0; i < 5; i++ {
		if got := loopBody(t, loopGet(t, c, br, "/")); got != "up" {
			t.Fatalf("got %q", got)
		}
	}
	// A dyno not quarantined yet, that refuses too.
	ln, _ = net.Listen("tcp", "127.0.0.1:0")
	dead = ln.Addr().String()
	ln.Close()
	app.Update(Running, []Backend{{Dyno: "web.3", Addr: dead}})
	resp := loopGet(t, c, br, "/refused")
	if resp.StatusCode != 503 || !strings.Contains(loopBody(t, resp), "H21") {
		t.Errorf("status %d", resp.StatusCode)
	}
	// Heroku's H21 line names the dyno that refused.
	sink.waitFor(t, "code=H21", `path="/refused"`, "dyno=web.3", "status=503")
}

// Many connections opened and closed at once, some mid-request, reuse
// descriptors within one batch of events; each answer still reaches the
// connection that asked.
func TestLoopConnectionChurn(t *testing.T) {
	be := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	_, addr, _, _ := loopRouter(t, Config{}, be)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				path := fmt.Sprintf("/%d/%d", g, i)
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app.localhost\r\n\r\n", path)
				if i%3 == 0 {
					c.Close() // gone before the answer
					continue
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					errs <- err
				} else if b, _ := io.ReadAll(resp.Body); string(b) != path {
					errs <- fmt.Errorf("asked %s, got %s", path, b)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// loopOK answers every request with "ok" and allocates nothing per
// request, so that AllocsPerRun counts the router's allocations.
func loopOK(t *testing.T) string {
	return loopRaw(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		n := 0
		for {
			m, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
			for {
				i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
				if i < 0 {
					break
				}
				n = copy(buf, buf[i+4:n])
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}
	})
}

func TestLoopAllocatesNothingPerRequest(t *testing.T) {
	_, addr, _, sink := loopRouter(t, Config{}, loopOK(t))
	sink.quiet.Store(true)
	c, _ := loopDial(t, addr)
	req := []byte("GET /x HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: test\r\n\r\n")
	buf := make([]byte, 4096)
	want := 0
	one := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for want == 0 || n < want {
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
			if want == 0 && bytes.HasSuffix(buf[:n], []byte("\r\n\r\nok")) {
				want = n
			}
		}
	}
	for i := 0; i < 100; i++ {
		one()
	}
	if a := testing.AllocsPerRun(2000, one); a > 0.02 && !raceEnabled {
		t.Errorf("%.3f allocations per request", a)
	}
	// The lines reach the Journal within its flush interval.
	deadline := time.Now().Add(5 * time.Second)
	for sink.count.Load() < 2100 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := sink.count.Load(); n < 2100 {
		t.Errorf("%d router lines for 2,101 requests", n)
	}
}

func TestLoopShutdownLetsARequestInFlightFinish(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	be := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	r, addr, _, _ := loopRouter(t, Config{}, be)
	c, br := loopDial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	<-started
	idle, _ := loopDial(t, addr)
	shut := make(chan error, 1)
	go func() { shut <- r.Shutdown(context.Background()) }()
	// The idle connection closes; the request in flight finishes.
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection: %v", err)
	}
	close(release)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := loopBody(t, resp); got != "done" || !resp.Close {
		t.Errorf("got %q, close=%v", got, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func serveLoops(t *testing.T, r *Router, ln net.Listener) {
	r.cfg.EventLoops = 2
	serveGoroutines(t, r, ln)
}

// The goroutine path's conformance checks, through the event loops.
func TestConformanceLoops(t *testing.T) { conformance(t, serveLoops) }

// An event for a descriptor closed earlier in the same batch must not
// reach the connection that accept gave the same number to.
func TestLoopIgnoresAStaleEventForAReusedDescriptor(t *testing.T) {
	r := New(Config{})
	s := &loopServer{r: r, proto: "http", port: "80", lnfd: -1}
	l, err := s.newBareLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	pair := func() (int, int) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fds[0], fds[1]
	}
	a, peerA := pair()
	defer unix.Close(peerA)
	old := l.newClient(a, nil)
	gen, err := l.register(a, old, nil)
	if err != nil {
		t.Fatal(err)
	}
	old.gen = gen
	l.clients++
	stale := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(a), Pad: int32(gen)}
	l.closeClient(old)

	b, peerB := pair() // the lowest free number: a's
	defer unix.Close(peerB)
	if b != a {
		t.Skipf("the new socket got descriptor %d, not the closed %d", b, a)
	}
	nc := l.newClient(b, nil)
	gen2, err := l.register(b, nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc.gen = gen2
	l.clients++
	unix.Write(peerB, []byte("GET / HTTP/1.1\r\n")) // half a head
	l.handle(stale)
	if nc.state != csIdle || nc.in != nil {
		t.Fatalf("the stale event was served to the new connection: state %d, %d bytes read", nc.state, len(nc.in))
	}
	l.handle(unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b), Pad: int32(gen2)})
	if nc.state != csHead || len(nc.in) != 16 {
		t.Fatalf("its own event: state %d, %d bytes read", nc.state, len(nc.in))
	}
}

// A client that reads a long response more slowly than the dyno sends it
// makes the loop hold at most a bounded window of it, not the response.
func TestLoopSlowReaderKeepsMemoryFlat(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	const size = 64 << 20
	be := loopRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := loopHead(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		chunk := bytes.Repeat([]byte("z"), 64<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	_, addr, _, _ := loopRouter(t, Config{}, be)
	c, _ := loopDial(t, addr)
	c.(*net.TCPConn).SetReadBuffer(32 << 10) // so that the router's writes fill it
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	buf := make([]byte, 4096)
	total := 0
	for total < size+40 {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", total, err)
		}
		total += n
		if total%(1<<20) < n {
			time.Sleep(5 * time.Millisecond) // now and then the client lags
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Errorf("%d MB allocated relaying %d MB to a slow reader", d>>20, size>>20)
	}
}

// Closing the listener ends Serve, as it ends the goroutine path's, after
// the request in flight.
func TestLoopServeEndsWhenTheListenerCloses(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	be := loopHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	r := New(Config{EventLoops: 2})
	hosts, _ := NewHosts("localhost")
	hosts.AddApp("app")
	app := NewApp("app", time.Now)
	app.Update(Running, []Backend{{Dyno: "web.1", Addr: be}})
	r.SetTable(NewTable(hosts, map[string]*App{"app": app}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(ln, "http") }()
	c, br := loopDial(t, ln.Addr().String())
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	<-started
	ln.Close()
	close(release)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := loopBody(t, resp); got != "done" {
		t.Errorf("got %q", got)
	}
	select {
	case err := <-served:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve returned %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve goes on after its listener closed")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the closed listener still accepts")
	}
}

// A body larger than the buffer its head came in is not held whole by the
// loop: the dyno gets the head while the body still comes, so a client
// that sends a head and then a byte now and then holds no big buffer.
func TestLoopStreamsAnUploadLargerThanItsBuffer(t *testing.T) {
	headSeen := make(chan string, 1)
	be := loopRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, cl, err := loopHead(br)
		if err != nil {
			return
		}
		headSeen <- head
		b := make([]byte, cl)
		if _, err := io.ReadFull(br, b); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(strconv.Itoa(cl)), cl)
	})
	_, addr, _, _ := loopRouter(t, Config{}, be)
	c, br := loopDial(t, addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 40000\r\n\r\nx")
	select {
	case head := <-headSeen:
		if !strings.HasPrefix(head, "POST /up HTTP/1.1") {
			t.Fatalf("dyno got %q", head)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dyno saw nothing while the body was still coming: the loop holds it whole")
	}
	io.WriteString(c, strings.Repeat("x", 39999))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := loopBody(t, resp); got != "40000" {
		t.Fatalf("dyno read %q bytes, want 40000", got)
	}
}
