package router

import (
	"net"
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
