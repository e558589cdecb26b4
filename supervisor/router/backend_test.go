package router

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestPools(t *testing.T) {
	closed := make(chan struct{})
	defer close(closed)
	var p pools
	p.init(4*time.Second, closed)
	conns := make([]*backendConn, maxIdlePerBackend+1)
	for i := range conns {
		a, b := net.Pipe()
		defer b.Close()
		conns[i] = &backendConn{nc: a, addr: "127.0.0.1:1"}
		p.put(conns[i])
	}
	// Capped: the one over the cap was closed, not kept.
	if _, err := conns[maxIdlePerBackend].nc.Write([]byte("x")); err == nil {
		t.Errorf("a connection over the cap of %d was kept open", maxIdlePerBackend)
	}
	// LIFO: the last one kept comes first.
	if got := p.get("127.0.0.1:1"); got != conns[maxIdlePerBackend-1] || got.fresh {
		t.Errorf("get returned %p, want the newest %p", got, conns[maxIdlePerBackend-1])
	}
	if got := p.get("127.0.0.2:1"); got != nil {
		t.Errorf("another dyno's address got %p", got)
	}
	// Expired: one idle for BackendIdle is closed, not handed out.
	p.mu.RLock()
	pl := p.m["127.0.0.1:1"]
	p.mu.RUnlock()
	pl.mu.Lock()
	for _, bc := range pl.idle {
		bc.since = time.Now().Add(-5 * time.Second)
	}
	pl.mu.Unlock()
	if got := p.get("127.0.0.1:1"); got != nil {
		t.Errorf("an expired connection was handed out")
	}
	if _, err := conns[0].nc.Write([]byte("x")); err == nil {
		t.Errorf("an expired connection was left open")
	}
}

// TestDialFailure: only the dyno's refusal or reset, or an unreachable
// host, blames the dyno; the router's own shortages do not.
func TestDialFailure(t *testing.T) {
	op := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	for _, tc := range []struct {
		err  error
		want dialOutcome
	}{
		{op(syscall.ECONNREFUSED), dialRefused},
		{op(syscall.ECONNRESET), dialRefused},
		{op(syscall.EHOSTUNREACH), dialRefused},
		{op(syscall.ETIMEDOUT), dialTimeout},
		{context.DeadlineExceeded, dialTimeout},
		{op(syscall.EMFILE), dialLocal},
		{op(syscall.ENFILE), dialLocal},
		{op(syscall.ENOBUFS), dialLocal},
		{op(syscall.EADDRNOTAVAIL), dialLocal},
	} {
		if got := dialFailure(tc.err); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestDialLocalFailure: a connect the router cannot make (out of file
// descriptors) answers H99 with the errno as cause, and leaves the dyno
// out of quarantine: the next request goes to it.
func TestDialLocalFailure(t *testing.T) {
	var emfile atomic.Bool
	emfile.Store(true)
	e := newEnv(t, func(t *testing.T, r *Router, ln net.Listener) {
		r.pools.dialer.Control = func(string, string, syscall.RawConn) error {
			if emfile.Load() {
				return syscall.EMFILE
			}
			return nil
		}
		serveGoroutines(t, r, ln)
	}, Config{})
	b, _ := httpBackend(t, "web.1", http.HandlerFunc(echoPath))
	e.app.Update(Running, []Backend{b})
	c := e.dial()
	c.send(get("/a"))
	if resp, body := c.response("GET"); resp.StatusCode != 503 || !strings.Contains(body, "H99") {
		t.Errorf("got %d %q, want the H99 page", resp.StatusCode, body)
	}
	e.line(`at=error code=H99 desc="Platform error" cause="too many open files" method=GET`, "status=503")
	emfile.Store(false)
	c.send(get("/b"))
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "/b" {
		t.Errorf("after the shortage: %d %q, want the dyno's answer at once", resp.StatusCode, body)
	}
	e.line("dyno=web.1", "status=200")
}
