package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestServe runs okserver's connection loop on one connection: ok, an
// upload with a Content-Length and a chunked one on the same keep-alive
// connection, and a download.
func TestServe(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go serve(server, &drain{idle: map[net.Conn]bool{}})
	r := bufio.NewReader(client)
	roundTrip := func(req string) (int, string) {
		t.Helper()
		go io.WriteString(client, req)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%q: body: %v", req, err)
		}
		return resp.StatusCode, string(body)
	}
	if code, body := roundTrip("GET / HTTP/1.1\r\nHost: okapp.localhost\r\n\r\n"); code != 200 || body != "ok\n" {
		t.Errorf("GET / = %d %q", code, body)
	}
	data := strings.Repeat("0123456789", 1000)
	sum := sha256.Sum256([]byte(data))
	want := strconv.Itoa(len(data)) + " " + hex.EncodeToString(sum[:]) + "\n"
	if code, body := roundTrip("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(data)) + "\r\n\r\n" + data); code != 200 || body != want {
		t.Errorf("upload with Content-Length = %d %q, want %q", code, body, want)
	}
	chunked := "1388;ext=1\r\n" + data[:5000] + "\r\n" + "1388\r\n" + data[5000:] + "\r\n0\r\nTrailer: x\r\n\r\n"
	if code, body := roundTrip("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked); code != 200 || body != want {
		t.Errorf("chunked upload = %d %q, want %q", code, body, want)
	}
	if code, body := roundTrip("GET /download?bytes=300000 HTTP/1.1\r\nHost: x\r\n\r\n"); code != 200 || body != strings.Repeat("\x00", 300000) {
		t.Errorf("download = %d, %d bytes", code, len(body))
	}
	if code, _ := roundTrip("GET /download?bytes=lots HTTP/1.1\r\nHost: x\r\n\r\n"); code != 400 {
		t.Errorf("download of a bad size = %d, want 400", code)
	}
	if code, body := roundTrip("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); code != 200 || body != "ok\n" {
		t.Errorf("GET / after the others = %d %q", code, body)
	}
}

func TestChunkedReaderRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"bad size":    "zz\r\nabc\r\n0\r\n\r\n",
		"no CRLF":     "3\r\nabcX\r\n0\r\n\r\n",
		"cut short":   "10\r\nabc",
		"no last one": "3\r\nabc\r\n",
	} {
		_, err := io.ReadAll(&chunkedReader{r: bufio.NewReader(strings.NewReader(body))})
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Draining closes a connection that waits for a request, after the
// requests it had were answered, as a web dyno does on SIGTERM.
func TestDrain(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	d := &drain{idle: map[net.Conn]bool{}}
	done := make(chan struct{})
	go func() {
		serve(server, d)
		close(done)
	}()
	r := bufio.NewReader(client)
	go io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("before draining: %v, %v", resp, err)
	}
	io.ReadAll(resp.Body)
	// As onSIGTERM does, without the signal: the connection is idle by
	// now, or about to be, and closes either way.
	d.mu.Lock()
	d.draining = true
	for c := range d.idle {
		c.Close()
	}
	d.mu.Unlock()
	<-done
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("after draining the connection gave %v, want EOF", err)
	}
}
