package supervisor

import (
	"net"
	"strconv"
	"testing"
)

// A port a client connection's local end holds is taken, as a listener's
// is: a dyno told to listen on it would fail with EADDRINUSE.
func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lport := ln.Addr().(*net.TCPAddr).Port
	if !PortTaken(lport) || !Listening(lport) {
		t.Fatalf("listener's port %d: taken %v, listening %v", lport, PortTaken(lport), Listening(lport))
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cport := c.LocalAddr().(*net.TCPAddr).Port
	if !PortTaken(cport) {
		t.Errorf("client's local port %d is not taken", cport)
	}
	if Listening(cport) {
		t.Errorf("client's local port %d counts as listening", cport)
	}
	// The check is what a bind finds.
	if l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(cport)); err == nil {
		l2.Close()
		t.Errorf("a listener bound %d, a client socket's port", cport)
	}
	c.Close()
	ln.Close()
	if PortTaken(lport) {
		t.Errorf("closed listener's port %d still taken", lport)
	}
}
