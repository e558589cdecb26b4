package supervisor

import (
	"bufio"
	"net"
	"strconv"
	"strings"
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

// The parser finds a port by its local address and state, skips the
// header, a line too long for its buffer and a line cut short, and
// allocates nothing per line.
func TestScanPortLines(t *testing.T) {
	file := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n" +
		"   1: 0100007F:8A3C 0100007F:1F90 06 00000000:00000000 03:00000ADC 00000000     0        0 0 3\n" +
		"   2: 0100007F:1F91 " + strings.Repeat("x", 5000) + " 0A\n" +
		"   3: 0100007F:1F92\n" +
		"   4: 0100007F:1F93 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 5 1"
	listen := func(st []byte) bool { return string(st) == "0A" }
	taken := func(st []byte) bool { return string(st) != "06" && string(st) != "07" }
	for _, c := range []struct {
		port  string
		state func([]byte) bool
		want  bool
	}{
		{":1F90", listen, true},
		{":8A3C", taken, false},  // TIME_WAIT only
		{":1F91", listen, false}, // on the overlong line
		{":1F92", taken, false},  // no state field
		{":1F93", taken, true},   // the last line, without a newline
		{":1F93", listen, false},
		{":0000", taken, false}, // remote addresses do not count
	} {
		br := bufio.NewReaderSize(strings.NewReader(file), 4096)
		got, err := scanPortLines(br, []byte(c.port), c.state)
		if err != nil || got != c.want {
			t.Errorf("port %s: got %v, %v; want %v", c.port, got, err, c.want)
		}
	}
	r := strings.NewReader(file)
	br := bufio.NewReaderSize(r, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(file)
		br.Reset(r)
		scanPortLines(br, []byte(":1F93"), taken)
	})
	if allocs != 0 {
		t.Errorf("scanPortLines allocates %v times a scan, want 0", allocs)
	}
}
