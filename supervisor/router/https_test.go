package router

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// tlsEnv serves r.ServeHTTP over TLS, HTTP/2 and HTTP/1.1, as the
// daemon's HTTPS listener does.
func tlsEnv(t *testing.T, cfg Config) (*env, *httptest.Server) {
	sink := &lineSink{lines: make(chan string, 1000)}
	j := NewJournal(sink, 0)
	t.Cleanup(j.Close)
	cfg.Journal = j
	r := New(cfg)
	hosts, _ := NewHosts("localhost")
	hosts.AddApp("app")
	app := NewApp("app", time.Now)
	r.SetTable(NewTable(hosts, map[string]*App{"app": app}))
	srv := httptest.NewUnstartedServer(r)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &env{t: t, r: r, addr: srv.Listener.Addr().String(), app: app, lines: sink.lines}, srv
}

func httpsGet(t *testing.T, srv *httptest.Server, h2 bool, path string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	client := srv.Client()
	if !h2 {
		tr := client.Transport.(*http.Transport).Clone()
		tr.ForceAttemptHTTP2 = false
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		client = &http.Client{Transport: tr}
	}
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Host = "app.localhost"
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestServeHTTPS(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		name := map[bool]string{true: "HTTP2", false: "HTTP1"}[h2]
		t.Run(name, func(t *testing.T) {
			e, srv := tlsEnv(t, Config{})
			seen := make(chan http.Header, 1)
			b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- r.Header
				w.Header().Set("X-From", "dyno")
				io.WriteString(w, r.URL.Path)
			}))
			e.app.Update(Running, []Backend{b})
			resp, body := httpsGet(t, srv, h2, "/hi?x=1", http.Header{"X-Forwarded-For": {"10.0.0.1"}, "X-Request-Id": {"abcdefghijklmnopqrstuvwxyz"},
				"Via": {"1.1 made-up"}})
			if resp.StatusCode != 200 || body != "/hi" || resp.Header.Get("X-From") != "dyno" {
				t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
			}
			if h2 != (resp.ProtoMajor == 2) {
				t.Errorf("answered over %s", resp.Proto)
			}
			h := recv(t, seen)
			via := map[bool]string{true: "2 dyno", false: "1.1 dyno"}[h2]
			for k, want := range map[string]string{"X-Forwarded-For": "10.0.0.1, 127.0.0.1", "X-Forwarded-Proto": "https",
				"X-Request-Id": "abcdefghijklmnopqrstuvwxyz", "Via": via} {
				if got := h.Get(k); got != want {
					t.Errorf("dyno saw %s: %q, want %q", k, got, want)
				}
			}
			if _, port, _ := net.SplitHostPort(e.addr); h.Get("X-Forwarded-Port") != port {
				t.Errorf("dyno saw X-Forwarded-Port %q, want %q", h.Get("X-Forwarded-Port"), port)
			}
			e.line(`at=info method=GET path="/hi?x=1" host=app.localhost request_id=abcdefghijklmnopqrstuvwxyz fwd="10.0.0.1, 127.0.0.1" dyno=web.1`,
				"status=200 bytes=3 protocol=https")
		})
	}

	t.Run("H14", func(t *testing.T) {
		e, srv := tlsEnv(t, Config{})
		e.app.Update(NoWeb, nil)
		resp, body := httpsGet(t, srv, true, "/", nil)
		if resp.StatusCode != 503 || !strings.Contains(body, "H14") {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		e.line(`at=error code=H14 desc="No web processes running"`, "dyno= connect= service= status=503 bytes= protocol=https")
	})

	t.Run("H80", func(t *testing.T) {
		e, srv := tlsEnv(t, Config{})
		e.app.SetMaintenance(true, "<p>Back soon</p>")
		resp, body := httpsGet(t, srv, true, "/", nil)
		if resp.StatusCode != 503 || body != "<p>Back soon</p>" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		e.line(`at=info code=H80 desc="Maintenance mode"`, "dyno= connect= service= status=503 bytes= protocol=https")
	})

	t.Run("UnknownHost", func(t *testing.T) {
		e, srv := tlsEnv(t, Config{})
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Host = "nope.localhost"
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.noLine()
	})

	t.Run("RetryOnRefusal", func(t *testing.T) {
		e, srv := tlsEnv(t, Config{})
		b, _ := httpBackend(t, "web.2", http.HandlerFunc(echoPath))
		e.app.Update(Running, []Backend{{Dyno: "web.1", Addr: refusedAddr(t)}, b})
		for range 5 {
			if resp, _ := httpsGet(t, srv, true, "/", nil); resp.StatusCode != 200 {
				t.Fatalf("got %d", resp.StatusCode)
			}
			e.line("dyno=web.2", "status=200")
		}
	})

	t.Run("H12", func(t *testing.T) {
		e, srv := tlsEnv(t, fast)
		release := make(chan struct{})
		defer close(release)
		b := rawBackend(t, "web.1", func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			<-release
		})
		e.app.Update(Running, []Backend{b})
		if resp, _ := httpsGet(t, srv, true, "/", nil); resp.StatusCode != 503 {
			t.Errorf("got %d", resp.StatusCode)
		}
		e.line("code=H12", "dyno=web.1", "protocol=https")
	})

	t.Run("ServerSentEvents", func(t *testing.T) {
		e, srv := tlsEnv(t, Config{})
		send := make(chan string)
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			for ev := range send {
				io.WriteString(w, "data: "+ev+"\n\n")
				w.(http.Flusher).Flush()
			}
		}))
		e.app.Update(Running, []Backend{b})
		req, _ := http.NewRequest("GET", srv.URL+"/events", nil)
		req.Host = "app.localhost"
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		send <- "one"
		start := time.Now()
		if line, err := br.ReadString('\n'); err != nil || line != "data: one\n" {
			t.Fatalf("got %q %v", line, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("first event after %v", d)
		}
		close(send)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		e.line("status=200", "protocol=https")
	})

	t.Run("PostBody", func(t *testing.T) {
		e, srv := tlsEnv(t, Config{})
		b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(w, r.Body)
		}))
		e.app.Update(Running, []Backend{b})
		for _, length := range []int64{-1, 11} {
			req, _ := http.NewRequest("POST", srv.URL+"/", io.NopCloser(strings.NewReader("hello there")))
			req.ContentLength = length
			req.Host = "app.localhost"
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "hello there" {
				t.Errorf("length %d: echoed %q", length, body)
			}
			e.line("status=200")
		}
	})

	t.Run("WebSocketEcho", func(t *testing.T) {
		e, _ := tlsEnv(t, Config{})
		e.app.Update(Running, []Backend{rawBackend(t, "web.1", wsEcho)})
		nc, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: app.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(nc)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		for _, msg := range []string{"hello", strings.Repeat("y", 70000)} {
			wsWrite(nc, 1, []byte(msg), true)
			if op, got, err := wsRead(br); err != nil || op != 1 || string(got) != msg {
				t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
			}
		}
		e.line("status=101", "protocol=https")
	})
}

// TestServeHTTPSAbsoluteForm: over HTTPS too an absolute-form target's
// host is the one routed by and the one the dyno sees, in origin-form.
func TestServeHTTPSAbsoluteForm(t *testing.T) {
	e, _ := tlsEnv(t, Config{})
	seen := make(chan string, 1)
	b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Host + " " + r.RequestURI
	}))
	e.app.Update(Running, []Backend{b})
	nc, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET http://app.localhost/abs?x=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("got %d", resp.StatusCode)
	}
	if got := recv(t, seen); got != "app.localhost /abs?x=1" {
		t.Errorf("dyno saw %q, want host app.localhost and origin-form /abs?x=1", got)
	}
	e.line(`path="/abs?x=1" host=app.localhost `, "status=200")
}

// TestServeHTTPSBadPath: an HTTP/2 :path with a space or a control byte
// would split the request line the dyno reads: refused with 400, the dyno
// never asked.
func TestServeHTTPSBadPath(t *testing.T) {
	e, _ := tlsEnv(t, Config{})
	asked := make(chan string, 1)
	b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- r.RequestURI
	}))
	e.app.Update(Running, []Backend{b})
	for _, path := range []string{"/a HTTP/1.1\r\nX: y", "/a b", "/a\x00"} {
		req := httptest.NewRequest("GET", "https://app.localhost/", nil)
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/2.0", 2, 0
		req.RequestURI = path // as net/http's HTTP/2 server sets it from :path
		w := httptest.NewRecorder()
		e.r.ServeHTTP(w, req)
		if w.Code != 400 {
			t.Errorf(":path %q: got %d, want 400", path, w.Code)
		}
	}
	select {
	case p := <-asked:
		t.Errorf("the dyno was asked for %q", p)
	default:
	}
}

// TestServeHTTPSExpect: net/http answers 100 Continue itself, so the dyno
// sees no Expect, as on the plain path.
func TestServeHTTPSExpect(t *testing.T) {
	e, srv := tlsEnv(t, Config{})
	seen := make(chan string, 1)
	b, _ := httpBackend(t, "web.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen <- r.Header.Get("Expect") + "|" + string(body)
	}))
	e.app.Update(Running, []Backend{b})
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader("hello"))
	req.Host = "app.localhost"
	req.Header.Set("Expect", "100-continue")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := recv(t, seen); got != "|hello" {
		t.Errorf("dyno saw Expect|body %q, want no Expect and the body", got)
	}
	e.line("method=POST", "status=200")
}
