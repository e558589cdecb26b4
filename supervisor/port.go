package supervisor

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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
//
// The files hold a line per socket on the host, TIME_WAIT ones included:
// megabytes on a busy router, read several times a second while a dyno
// boots. So it streams them through one small buffer and parses in place,
// allocating nothing per line: the daemon's garbage would otherwise come
// from here rather than from the requests it routes.
func scanPorts(port int, state func(st []byte) bool) (bool, error) {
	// ":1F90" for 8080: the local address ends with the port, in hex.
	var want [5]byte
	want[0] = ':'
	const hex = "0123456789ABCDEF"
	for i := 0; i < 4; i++ {
		want[4-i] = hex[(port>>(4*i))&0xf]
	}
	var firstErr error
	var br *bufio.Reader
	for _, path := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(path)
		if err != nil {
			if firstErr == nil && !os.IsNotExist(err) {
				firstErr = err
			}
			continue
		}
		if br == nil {
			br = bufio.NewReaderSize(f, 4096)
		} else {
			br.Reset(f)
		}
		found, err := scanPortLines(br, want[:], state)
		f.Close()
		if found {
			return true, nil
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("read %s: %w", path, err)
		}
	}
	return false, firstErr
}

// scanPortLines reads the lines of one /proc/net/tcp file from br:
//
//	sl  local_address rem_address   st tx_queue ...
//	0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 ...
func scanPortLines(br *bufio.Reader, want []byte, state func(st []byte) bool) (bool, error) {
	header := true
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// No socket's line is this long; skip to the next one.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			line = nil
		}
		if err != nil && err != io.EOF {
			return false, err
		}
		if header {
			header = false
		} else if len(line) > 0 {
			var f [4][]byte
			if fields(line, f[:]) == len(f) && bytes.HasSuffix(f[1], want) && state(f[3]) {
				return true, nil
			}
		}
		if err == io.EOF {
			return false, nil
		}
	}
}

// fields fills f with the first len(f) space-separated fields of line,
// slices of it, and returns how many it found.
func fields(line []byte, f [][]byte) int {
	n := 0
	for i := 0; i < len(line) && n < len(f); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\n') {
			i++
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\n' {
			i++
		}
		if i > start {
			f[n] = line[start:i]
			n++
		}
	}
	return n
}
