package router

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	src := []byte("\r\nPOST /a?b=1 HTTP/1.1\r\nHost: app.localhost:8080\r\nContent-Length: 5\r\n" +
		"X-Request-Id: abcdefghijklmnopqrstuvwxyz\r\nConnection: keep-alive, X-Secret\r\nX-Secret:  s \r\n\r\nhello")
	var h Request
	n, err := h.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(src[n:]); got != "hello" {
		t.Errorf("head ends before %q, want before the body", got)
	}
	checks := map[string][2]string{
		"method":     {string(h.Method.In(src)), "POST"},
		"target":     {string(h.Target.In(src)), "/a?b=1"},
		"host":       {string(h.Host.In(src)), "app.localhost:8080"},
		"request id": {string(h.RequestID.In(src)), "abcdefghijklmnopqrstuvwxyz"},
		"x-secret":   {string(h.Fields[4].Value.In(src)), "s"},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", what, c[0], c[1])
		}
	}
	if h.ContentLength != 5 || h.Chunked || h.Close || h.Upgrade || h.Minor != 1 || !h.listed {
		t.Errorf("parsed %+v", h)
	}
	// Every prefix of a head is incomplete, not an error.
	for i := range n {
		if m, err := h.Parse(src[:i]); m != 0 || err != nil {
			t.Fatalf("Parse(%q) = %d, %v; want 0, nil", src[:i], m, err)
		}
	}
}

func TestParseRequestKeepAlive(t *testing.T) {
	for head, close := range map[string]bool{
		"GET / HTTP/1.1\r\n\r\n":                                                     false,
		"GET / HTTP/1.1\r\nConnection: close\r\n\r\n":                                true,
		"GET / HTTP/1.0\r\n\r\n":                                                     true,
		"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n":                           false,
		"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n":                    true,
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n":                      false,
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n": true,
	} {
		var h Request
		if _, err := h.Parse([]byte(head)); err != nil || h.Close != close {
			t.Errorf("%q: Close = %v, err %v; want %v", head, h.Close, err, close)
		}
	}
}

func TestParseRequestRefused(t *testing.T) {
	long := strings.Repeat("a", MaxHeaderLine)
	for head, want := range map[string]*HeadError{
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n":                               errBadHeader,
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n":                     errObsFold,
		"GET / HTTP/1.1\nHost: x\r\n\r\n":                                  errBareLF,
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n": errConflictLength,
		"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n":                     errBadLength,
		"GET / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n":                    errBadLength,
		"GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n":       errUnsupportedTE,
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n":                     errDupHost,
		"GET / HTTP/2.0\r\n\r\n":                                           errBadVersion,
		"GET /  HTTP/1.1\r\n\r\n":                                          errBadVersion,
		"GET  / HTTP/1.1\r\n\r\n":                                          errBadRequestLine,
		"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n":                              errBadHeader,
		"GET /" + long + " HTTP/1.1\r\n":                                   errRequestLineLimit,
		"GET / HTTP/1.1\r\nX: " + long + "\r\n":                            errHeaderLineLimit,
		"GET / HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", MaxHeaders+1):    errHeadersLimit,
	} {
		var h Request
		_, err := h.Parse([]byte(head))
		if err != want {
			t.Errorf("%.60q: err %v, want %v", head, err, want)
		}
	}
	var h Request
	h.Parse([]byte("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"))
	if h.Expect != ExpectContinue {
		t.Errorf("Expect: 100-continue parsed as %v", h.Expect)
	}
	h.Parse([]byte("GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n"))
	if h.Expect != ExpectOther {
		t.Errorf("Expect: 200-ok parsed as %v", h.Expect)
	}
}

func TestParseResponse(t *testing.T) {
	for src, want := range map[string]Response{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n":                           {Minor: 1, Status: 200, ContentLength: 3},
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n":                  {Minor: 1, Status: 200, ContentLength: -1, Chunked: true},
		"HTTP/1.1 204\r\nConnection: close\r\n\r\n":                              {Minor: 1, Status: 204, ContentLength: -1, Close: true},
		"HTTP/1.0 200 OK\r\n\r\n":                                                {Minor: 0, Status: 200, ContentLength: -1, Close: true},
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n": {Minor: 0, Status: 200, ContentLength: 0},
	} {
		var h Response
		n, err := h.Parse([]byte(src))
		if err != nil || n != len(src) {
			t.Errorf("%q: %d, %v", src, n, err)
			continue
		}
		h.Fields, h.Reason = nil, Span{}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("%q: parsed %+v, want %+v", src, h, want)
		}
	}
	for _, src := range []string{"HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nX : y\r\n\r\n"} {
		var h Response
		if _, err := h.Parse([]byte(src)); err != errBadResponse {
			t.Errorf("%q: err %v, want %v", src, err, errBadResponse)
		}
	}
}

// TestAppendForwardMatchesRewrite: the raw path gives the dyno the same
// headers as Rewrite gives through net/http.
func TestAppendForwardMatchesRewrite(t *testing.T) {
	start := time.UnixMilli(1700000000123)
	for _, head := range []string{
		"GET /x HTTP/1.1\r\nHost: a.localhost\r\nAccept: */*\r\nAccept: text/html\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a.localhost\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n" +
			"X-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\nX-Request-Start: 1\r\nVia: 1.1 other\r\n" +
			"X-Request-Id: abcdefghijklmnopqrstuvwxyz\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\n" +
			"X-Secret: s\r\nTE: trailers\r\nProxy-Connection: x\r\nTrailer: y\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: a.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
		"GET /h2c HTTP/1.1\r\nHost: a.localhost\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
		"POST / HTTP/1.0\r\nHost: a.localhost\r\nContent-Length: 3\r\nX-Request-Id: short\r\nConnection: X-Request-Id, X-Forwarded-For\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n",
		// An absolute-form target: the host is the URI's, the dyno gets origin-form.
		"GET http://a.localhost:8080/x?y=1 HTTP/1.1\r\nHost: other.example\r\nAccept: */*\r\n\r\n",
		// Connection naming the framing or the target drops neither.
		"POST / HTTP/1.1\r\nHost: a.localhost\r\nConnection: content-length, host\r\nContent-Length: 3\r\n\r\n",
	} {
		var h Request
		if _, err := h.Parse([]byte(head)); err != nil {
			t.Fatalf("%q: %v", head, err)
		}
		f := Forward{ClientIP: "192.0.2.7", Proto: "http", Port: "8080", Start: start}
		out, fw := h.AppendForward(nil, []byte(head), &f)
		got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("%q rewritten to %q: %v", head, out, err)
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatal(err)
		}
		if want.ProtoMinor == 0 {
			f.Version = "1.0"
		}
		id, fwd := Rewrite(want.Header, f)
		if string(fw.Fwd.In(out)) != fwd {
			t.Errorf("%q: fwd %q, Rewrite's %q", head, fw.Fwd.In(out), fwd)
		}
		if len(want.Header["X-Request-Id"][0]) == 36 { // both made a new one
			want.Header["X-Request-Id"] = got.Header["X-Request-Id"]
			id = string(fw.RequestID.In(out))
		}
		if string(fw.RequestID.In(out)) != id {
			t.Errorf("%q: request id %q, Rewrite's %q", head, fw.RequestID.In(out), id)
		}
		if !reflect.DeepEqual(got.Header, want.Header) {
			t.Errorf("%q:\nraw     %v\nRewrite %v", head, got.Header, want.Header)
		}
	}
}

func TestAppendForwardResponse(t *testing.T) {
	src := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n" +
		"Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nVia: 1.0 cdn\r\n\r\n")
	var h Response
	if _, err := h.Parse(src); err != nil {
		t.Fatal(err)
	}
	got := string(h.AppendForward(nil, src, ClientFraming{Chunked: true, KeepAlive: true, Minor: 1}))
	want := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nVia: 1.0 cdn, 1.1 dyno\r\n\r\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	got = string(h.AppendForward(nil, src, ClientFraming{KeepAlive: false, Minor: 0}))
	want = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nVia: 1.0 cdn, 1.1 dyno\r\n\r\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestHeadErrorIsError(t *testing.T) {
	var err error = errBadExpect
	var he *HeadError
	if !errors.As(err, &he) || he.Status != 417 || he.Code != H26 {
		t.Errorf("errBadExpect = %+v", he)
	}
}

var benchRequest = []byte("GET /hello?x=1 HTTP/1.1\r\nHost: node-hello.localhost:8080\r\nUser-Agent: wrk/4.1.0\r\n" +
	"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nCookie: session=0123456789abcdef\r\n\r\n")

var benchResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Wed, 02 Dec 2026 14:00:00 GMT\r\n" +
	"Content-Length: 13\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\n\r\nHello, world!")

// BenchmarkParseRequest: 0 allocs/op, the head parser on a keep-alive
// request's worth of headers.
func BenchmarkParseRequest(b *testing.B) {
	var h Request
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRequest)))
	for b.Loop() {
		if _, err := h.Parse(benchRequest); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewriteRequest: parse and rewrite for the dyno, a new request
// id included, with no allocation.
func BenchmarkRewriteRequest(b *testing.B) {
	var h Request
	dst := make([]byte, 0, 4096)
	f := Forward{ClientIP: "127.0.0.1", Proto: "http", Port: "8080", Start: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Parse(benchRequest); err != nil {
			b.Fatal(err)
		}
		dst, _ = h.AppendForward(dst[:0], benchRequest, &f)
	}
}

// BenchmarkRewriteResponse: parse and rewrite a dyno's response head.
func BenchmarkRewriteResponse(b *testing.B) {
	var h Response
	dst := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Parse(benchResponse); err != nil {
			b.Fatal(err)
		}
		dst = h.AppendForward(dst[:0], benchResponse, ClientFraming{KeepAlive: true, Minor: 1})
	}
}

// FuzzParseRequest: the parser never panics, never reads past the head it
// reports, agrees with itself on a prefix, and what it accepts rewrites to
// a head it accepts again with the same method, target and framing.
func FuzzParseRequest(f *testing.F) {
	f.Add(benchRequest)
	f.Add([]byte("POST / HTTP/1.0\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc"))
	f.Add([]byte("GET /ws HTTP/1.1\r\nConnection: Upgrade, X-A\r\nUpgrade: websocket\r\nX-A: 1\r\nVia: x\r\n\r\n"))
	f.Add([]byte("\r\n\r\nGET / HTTP/1.1\r\nHost : x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Request
		n, err := h.Parse(b)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) {
			t.Fatalf("head of %d bytes in %d", n, len(b))
		}
		method, target := string(h.Method.In(b)), string(h.Target.In(b))
		chunked, length := h.Chunked, h.ContentLength
		var again Request
		if m, err := again.Parse(b[:n]); m != n || err != nil {
			t.Fatalf("the head alone parses to %d, %v; with more %d", m, err, n)
		}
		out, fw := h.AppendForward(nil, b, &Forward{ClientIP: "127.0.0.1", Proto: "http", Port: "80", Start: time.Now()})
		m, err := again.Parse(out)
		if err != nil || m != len(out) {
			t.Fatalf("rewritten head %q: %d, %v", out, m, err)
		}
		if string(again.Method.In(out)) != method || string(again.Target.In(out)) != target ||
			again.Chunked != chunked || again.ContentLength != length {
			t.Fatalf("rewritten head %q changed the request line or framing", out)
		}
		if !validRequestID(fw.RequestID.In(out)) {
			t.Fatalf("request id %q", fw.RequestID.In(out))
		}
	})
}

func TestChunkScanner(t *testing.T) {
	body := "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n"
	// Whole, and one byte at a time: the same end, right after the body.
	for _, step := range []int{len(body) + 4, 1, 3} {
		var s ChunkScanner
		in := body + "NEXT"
		consumed, done := 0, false
		for !done && consumed < len(in) {
			end := min(consumed+step, len(in))
			n, d, err := s.Scan([]byte(in[consumed:end]))
			if err != nil {
				t.Fatalf("step %d at %d: %v", step, consumed, err)
			}
			consumed += n
			done = d
		}
		if !done || consumed != len(body) {
			t.Errorf("step %d: done %v after %d bytes, want after %d", step, done, consumed, len(body))
		}
	}
	for _, bad := range []string{"x\r\n", "5\r\nhelloXX", "5\nhello", "\r\n", "0\r\nX\n", "fffffffffffffffff\r\n"} {
		var s ChunkScanner
		if _, _, err := s.Scan([]byte(bad)); err != errBadChunk {
			t.Errorf("%q: err %v, want %v", bad, err, errBadChunk)
		}
	}
}

// TestParseAbsoluteForm: RFC 9112 section 3.2.2, the host of an
// absolute-form target wins over Host, and the dyno gets origin-form with
// that host, so that router and dyno agree on the host.
func TestParseAbsoluteForm(t *testing.T) {
	for _, tc := range []struct{ head, host, target, line string }{
		{"GET http://app.localhost/x?y HTTP/1.1\r\nHost: evil.example\r\n\r\n", "app.localhost", "/x?y", "GET /x?y HTTP/1.1\r\nHost: app.localhost\r\n"},
		{"GET HTTPS://app.localhost:8080 HTTP/1.1\r\n\r\n", "app.localhost:8080", "", "GET / HTTP/1.1\r\nHost: app.localhost:8080\r\n"},
		{"GET http://app.localhost?q HTTP/1.0\r\nHost: evil.example\r\n\r\n", "app.localhost", "?q", "GET /?q HTTP/1.1\r\nHost: app.localhost\r\n"},
		{"OPTIONS * HTTP/1.1\r\nHost: app.localhost\r\n\r\n", "app.localhost", "*", "OPTIONS * HTTP/1.1\r\nHost: app.localhost\r\n"},
	} {
		var h Request
		src := []byte(tc.head)
		if _, err := h.Parse(src); err != nil {
			t.Fatalf("%q: %v", tc.head, err)
		}
		if got := string(h.Host.In(src)); got != tc.host {
			t.Errorf("%q: host %q, want %q", tc.head, got, tc.host)
		}
		if got := string(h.Target.In(src)); got != tc.target {
			t.Errorf("%q: target %q, want %q", tc.head, got, tc.target)
		}
		out, _ := h.AppendForward(nil, src, &Forward{ClientIP: "127.0.0.1", Proto: "http", Port: "80"})
		if !bytes.HasPrefix(out, []byte(tc.line)) || bytes.Contains(out, []byte("evil")) {
			t.Errorf("%q forwarded as %q, want it to start %q and name no other host", tc.head, out, tc.line)
		}
	}
	for _, head := range []string{
		"GET http://evil.example@app.localhost/ HTTP/1.1\r\n\r\n",
		"GET http:///x HTTP/1.1\r\n\r\n",
		"GET ftp://app.localhost/ HTTP/1.1\r\n\r\n",
		"GET app.localhost/x HTTP/1.1\r\n\r\n",
	} {
		var h Request
		if _, err := h.Parse([]byte(head)); err != errBadRequestLine {
			t.Errorf("%q: %v, want %v", head, err, errBadRequestLine)
		}
	}
}

// TestParseResponseChunkedWithLength: RFC 9112 section 6.3, a response
// with both Transfer-Encoding and Content-Length is read chunked and its
// connection closed after, never pooled.
func TestParseResponseChunkedWithLength(t *testing.T) {
	var h Response
	src := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
	if _, err := h.Parse(src); err != nil {
		t.Fatal(err)
	}
	if !h.Chunked || h.ContentLength != -1 || !h.Close {
		t.Errorf("chunked %v, length %d, close %v: want chunked, -1, close", h.Chunked, h.ContentLength, h.Close)
	}
}
