//go:build !linux

package router

import (
	"context"
	"net"
)

// loopServer has no event loop outside Linux: Serve uses goroutines.
type loopServer struct{}

func (s *loopServer) stop()                          {}
func (s *loopServer) wait(ctx context.Context) error { return nil }

func (r *Router) serveLoops(ln net.Listener, proto, port string) (err error, ok bool) {
	return nil, false
}
