// Command okserver is the web dyno of the benchmark's router section: a
// keep-alive HTTP/1.1 server on $PORT that costs as little as it can per
// request, so that what the benchmark measures is the proxy in front of
// it. It answers
//
//   - POST /upload: reads the body (Content-Length or chunked), answers
//     "BYTES SHA256HEX\n";
//   - GET /download?bytes=N: N zero bytes with a Content-Length;
//   - anything else: "ok\n".
//
// It parses only what those need and is no general HTTP server: no
// pipelining guarantees beyond answering requests in order, no trailers.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
)

const maxHead = 8 << 10

var okResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "5000"
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "okserver:", err)
		os.Exit(1)
	}
	fmt.Println("okserver listening on port", port)
	d := &drain{idle: map[net.Conn]bool{}}
	go d.onSIGTERM(ln)
	for {
		c, err := ln.Accept()
		if err != nil {
			if d.stopping() {
				d.wg.Wait()
				os.Exit(0)
			}
			fmt.Fprintln(os.Stderr, "okserver:", err)
			os.Exit(1)
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			serve(c, d)
		}()
	}
}

// drain is how okserver stops as a web dyno should on SIGTERM: it takes
// no new connection, closes those waiting for a request, finishes the
// requests it has, and exits 0 once they are answered.
type drain struct {
	mu       sync.Mutex
	draining bool
	idle     map[net.Conn]bool // connections waiting for a request head
	wg       sync.WaitGroup
}

func (d *drain) onSIGTERM(ln net.Listener) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	d.mu.Lock()
	d.draining = true
	for c := range d.idle {
		c.Close()
	}
	d.mu.Unlock()
	ln.Close()
}

func (d *drain) stopping() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draining
}

// waiting marks c as waiting for a request (idle) or not; it reports
// false when okserver is draining, and c should close.
func (d *drain) waiting(c net.Conn, idle bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if idle {
		d.idle[c] = true
	} else {
		delete(d.idle, c)
	}
	return !d.draining
}

// A request is what okserver reads of a request head.
type request struct {
	method, target string
	length         int64 // -1: none given
	chunked        bool
	close          bool // the client asked to close after the response
	expect         bool // Expect: 100-continue
}

func serve(c net.Conn, d *drain) {
	defer c.Close()
	defer d.waiting(c, false)
	r := bufio.NewReaderSize(c, 4<<10)
	for {
		// A request already buffered is answered even while draining.
		if r.Buffered() == 0 && !d.waiting(c, true) {
			return
		}
		req, err := readHead(r)
		d.waiting(c, false)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			}
			return
		}
		if req.expect {
			if _, err := c.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
				return
			}
		}
		path, query, _ := bytes.Cut([]byte(req.target), []byte("?"))
		switch {
		case req.method == "POST" && string(path) == "/upload":
			err = upload(c, r, req)
		case req.method == "GET" && string(path) == "/download":
			err = download(c, string(query))
		default:
			if err = discardBody(r, req); err == nil {
				_, err = c.Write(okResponse)
			}
		}
		if err != nil || req.close {
			return
		}
	}
}

// readHead reads a request head up to its empty line.
func readHead(r *bufio.Reader) (request, error) {
	req := request{length: -1}
	n := 0
	for first := true; ; first = false {
		line, err := r.ReadSlice('\n')
		n += len(line)
		if err != nil {
			if first && len(line) == 0 && errors.Is(err, io.EOF) {
				return req, io.EOF
			}
			return req, fmt.Errorf("read head: %w", err)
		}
		if n > maxHead {
			return req, errors.New("head too long")
		}
		line = bytes.TrimRight(line, "\r\n")
		if first {
			f := bytes.Fields(line)
			if len(f) != 3 {
				return req, fmt.Errorf("bad request line %q", line)
			}
			req.method, req.target = string(f[0]), string(f[1])
			req.close = string(f[2]) == "HTTP/1.0"
			continue
		}
		if len(line) == 0 {
			return req, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return req, fmt.Errorf("bad header %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			req.length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || req.length < 0 {
				return req, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			req.chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				req.close = true
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				req.close = false
			}
		case bytes.EqualFold(name, []byte("Expect")):
			req.expect = bytes.EqualFold(value, []byte("100-continue"))
		}
	}
}

// body is the request's body as a reader.
func body(r *bufio.Reader, req request) io.Reader {
	switch {
	case req.chunked:
		return &chunkedReader{r: r}
	case req.length > 0:
		return io.LimitReader(r, req.length)
	}
	return bytes.NewReader(nil)
}

func discardBody(r *bufio.Reader, req request) error {
	_, err := io.Copy(io.Discard, body(r, req))
	return err
}

func upload(c net.Conn, r *bufio.Reader, req request) error {
	h := sha256.New()
	n, err := io.CopyBuffer(h, body(r, req), make([]byte, 256<<10))
	if err != nil {
		return err
	}
	if req.length >= 0 && n != req.length {
		return io.ErrUnexpectedEOF
	}
	msg := strconv.FormatInt(n, 10) + " " + hex.EncodeToString(h.Sum(nil)) + "\n"
	_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
	return err
}

func download(c net.Conn, query string) error {
	v, ok := bytes.CutPrefix([]byte(query), []byte("bytes="))
	n, err := strconv.ParseInt(string(v), 10, 64)
	if !ok || err != nil || n < 0 {
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		return nil
	}
	if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", n); err != nil {
		return err
	}
	zeros := make([]byte, 256<<10)
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := c.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// A chunkedReader decodes a chunked body (RFC 9112 §7.1), ignoring chunk
// extensions and trailers.
type chunkedReader struct {
	r    *bufio.Reader
	left int64 // bytes left in the current chunk
	done bool
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("read chunk size: %w", err)
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		c.left, err = strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || c.left < 0 {
			return 0, fmt.Errorf("bad chunk size %q", line)
		}
		if c.left == 0 {
			// Trailers, if any, up to the empty line.
			for {
				line, err := c.r.ReadSlice('\n')
				if err != nil {
					return 0, fmt.Errorf("read trailer: %w", err)
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					break
				}
			}
			c.done = true
			return 0, io.EOF
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		var crlf [2]byte
		if _, err = io.ReadFull(c.r, crlf[:]); err == nil && string(crlf[:]) != "\r\n" {
			err = errors.New("chunk not followed by CRLF")
		}
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
