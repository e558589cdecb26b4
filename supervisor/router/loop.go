package router

import (
	"context"
	"net"
	"sync"
)

// loopSet is the event-loop servers a Router runs, one per listener
// served with loops, for Shutdown.
type loopSet struct {
	mu sync.Mutex
	m  map[*loopServer]struct{}
}

func (r *Router) addLoops(s *loopServer) {
	r.loops.mu.Lock()
	defer r.loops.mu.Unlock()
	if r.loops.m == nil {
		r.loops.m = map[*loopServer]struct{}{}
	}
	r.loops.m[s] = struct{}{}
	if r.shutdown.Load() {
		s.stop()
	}
}

func (r *Router) removeLoops(s *loopServer) {
	r.loops.mu.Lock()
	defer r.loops.mu.Unlock()
	delete(r.loops.m, s)
}

// stopLoops begins Shutdown in every loop: no new connections, and those
// between requests closed.
func (r *Router) stopLoops() {
	r.loops.mu.Lock()
	defer r.loops.mu.Unlock()
	for s := range r.loops.m {
		s.stop()
	}
}

// waitLoops waits for every loop to end, closing what is left when ctx
// ends first.
func (r *Router) waitLoops(ctx context.Context) error {
	r.loops.mu.Lock()
	var servers []*loopServer
	for s := range r.loops.m {
		servers = append(servers, s)
	}
	r.loops.mu.Unlock()
	var err error
	for _, s := range servers {
		if e := s.wait(ctx); e != nil {
			err = e
		}
	}
	return err
}

// serveHandedOff serves, on the goroutine path, a client connection the
// event loop gave up: pending is a response the loop had not finished
// writing, buffered what the client sent that the loop read and did not
// serve (a request the loop does not handle, and what follows it).
func (r *Router) serveHandedOff(nc net.Conn, proto, port string, pending, buffered []byte) {
	c := r.newConn(nc, proto, port)
	if !r.trackConn(c, true) {
		nc.Close()
		return
	}
	go func() {
		if len(pending) > 0 {
			if _, err := nc.Write(pending); err != nil {
				nc.Close()
				r.trackConn(c, false)
				return
			}
		}
		if len(buffered) > 0 {
			if len(buffered) <= bufSize {
				c.borrowIn()
			} else {
				c.in = make([]byte, len(buffered))
			}
			c.r0, c.r1 = 0, copy(c.in, buffered)
		}
		c.serve()
	}()
}
