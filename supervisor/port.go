package supervisor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
)

// Listening reports whether something on this host listens on TCP port;
// an unreadable /proc counts as no.
func Listening(port int) bool {
	ok, _ := listening(port)
	return ok
}

// PortTaken reports whether a socket on this host holds TCP port, for
// choosing a port a dyno can listen on: a listener, or a connection whose
// local end has it, as a client socket's ephemeral port does when the
// ephemeral range (ip_local_port_range) overlaps the dynos' ports. A
// socket in TIME_WAIT does not count: Go's listeners set SO_REUSEADDR,
// which binds over it. An unreadable /proc counts as no.
func PortTaken(port int) bool {
	ok, _ := scanPorts(port, func(st []byte) bool { return string(st) != "06" && string(st) != "07" })
	return ok
}

// listening reports whether some socket on this host listens on TCP port
// (IPv4 or IPv6). It reads /proc/net/tcp{,6} (proc(5)) instead of
// connecting, so the app never sees a probe connection in its logs.
func listening(port int) (bool, error) {
	// st 0A is TCP_LISTEN.
	return scanPorts(port, func(st []byte) bool { return string(st) == "0A" })
}

// scanPorts reports whether a socket whose local port is port, in a state
// (st, in hex as /proc/net/tcp writes it: 01 ESTABLISHED, 06 TIME_WAIT,
// 07 CLOSE, 0A LISTEN) that state accepts, is in /proc/net/tcp{,6}.
func scanPorts(port int, state func(st []byte) bool) (bool, error) {
	want := []byte(fmt.Sprintf(":%04X", port))
	var firstErr error
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(path)
		if err != nil {
			if firstErr == nil && !os.IsNotExist(err) {
				firstErr = err
			}
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Scan() // header
		for sc.Scan() {
			// "  sl  local_address rem_address   st ..."
			f := bytes.Fields(sc.Bytes())
			if len(f) < 4 {
				continue
			}
			if bytes.HasSuffix(f[1], want) && state(f[3]) {
				return true, nil
			}
		}
	}
	return false, firstErr
}
