package router

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// okBackend answers every request on a connection with a small body,
// allocating nothing per request.
func okBackend(tb testing.TB) Backend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
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
			}()
		}
	}()
	return Backend{Dyno: "web.1", Addr: ln.Addr().String()}
}

func benchRouter(tb testing.TB, cfg Config) (*Router, string) {
	r := New(cfg)
	hosts, _ := NewHosts("localhost")
	hosts.AddApp("app")
	app := NewApp("app", time.Now)
	app.Update(Running, []Backend{okBackend(tb)})
	r.SetTable(NewTable(hosts, map[string]*App{"app": app}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go r.Serve(ln, "http")
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return r, ln.Addr().String()
}

// BenchmarkKeepAliveRequest is one keep-alive request through the router,
// its log line included: allocs/op is the engine's allocations per
// request (the client and the dyno here allocate nothing per request).
func BenchmarkKeepAliveRequest(b *testing.B) {
	j := NewJournal(discard{}, 0)
	defer j.Close()
	_, addr := benchRouter(b, Config{Journal: j})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /hello HTTP/1.1\r\nHost: app.localhost\r\nUser-Agent: bench\r\n\r\n")
	buf := make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n := 0
		for !bytes.HasSuffix(buf[:n], []byte("Hello, world!")) {
			m, err := c.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += m
		}
	}
	for range 100 { // warm the pools
		roundTrip()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		roundTrip()
	}
}

// TestIdleConnectionsMemory: 10,000 idle keep-alive client connections,
// each having made a request, cost the router under 100 MB, goroutine
// stacks included: an idle connection holds no buffer.
func TestIdleConnectionsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 20,000 sockets")
	}
	if raceEnabled {
		t.Skip("the race detector's memory is not the router's")
	}
	// Both ends live in this process, so 10,000 connections take 20,000
	// descriptors; where the limit is lower, fewer connections must each
	// stay under the same 10,485 bytes (100 MB / 10,000).
	n := 10000
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur < uint64(2*n+500) {
		want := lim
		want.Cur = min(lim.Max, uint64(2*n+500))
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
			lim.Cur = want.Cur
		}
		n = min(n, int(lim.Cur-500)/2)
	}
	if n < 1000 {
		t.Skipf("only %d file descriptors", lim.Cur)
	}
	_, addr := benchRouter(t, Config{})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	req := []byte("GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	buf := make([]byte, 4096)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		c.Write(req)
		got := 0
		for !bytes.HasSuffix(buf[:got], []byte("Hello, world!")) {
			m, err := c.Read(buf[got:])
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			got += m
		}
	}
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Both ends are in this process: the client's sockets count against
	// the router here, which only makes the bound stricter.
	used := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	t.Logf("%d idle connections: %d MB (heap %d MB, stacks %d MB), %d bytes each",
		n, used>>20, (int64(after.HeapInuse)-int64(before.HeapInuse))>>20,
		(int64(after.StackInuse)-int64(before.StackInuse))>>20, used/int64(n))
	if perConn := used / int64(n); perConn > (100<<20)/10000 {
		t.Errorf("%d idle connections cost %d bytes each, want under %d (100 MB for 10,000)", n, perConn, (100<<20)/10000)
	}
}

// TestLargeBodiesMemoryFlat: a 1 GB upload and a 1 GB download go through
// with the router's memory flat: bodies move by splice(2) between the
// sockets, never into the router's heap.
func TestLargeBodiesMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GB")
	}
	const size = 1 << 30
	// The dyno: counts an upload, or sends size bytes from one buffer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.Method == "POST" {
						n, _ := io.Copy(io.Discard, req.Body)
						fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(strconv.FormatInt(n, 10)), n)
						continue
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
					for sent := 0; sent < size; sent += len(chunk) {
						if _, err := c.Write(chunk); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	r := New(Config{})
	hosts, _ := NewHosts("localhost")
	hosts.AddApp("app")
	app := NewApp("app", time.Now)
	app.Update(Running, []Backend{{Dyno: "web.1", Addr: ln.Addr().String()}})
	r.SetTable(NewTable(hosts, map[string]*App{"app": app}))
	rl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(rl, "http")
	defer r.Shutdown(context.Background())

	c, err := net.Dial("tcp", rl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	go func() {
		fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: %d\r\n\r\n", size)
		chunk := make([]byte, 1<<20)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != strconv.Itoa(size) {
		t.Fatalf("the dyno got %s bytes of %d", body, size)
	}
	io.WriteString(c, "GET /down HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("downloaded %d of %d bytes: %v", n, size, err)
	}
	runtime.ReadMemStats(&after)
	// Everything in this process, the test's own client and dyno
	// included, allocated under 8 MB while 2 GB went through.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("moving 2 GB allocated %d MB, want the router's memory flat", alloc>>20)
	} else {
		t.Logf("moving 2 GB allocated %d KB in all", alloc>>10)
	}
}
