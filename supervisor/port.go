package supervisor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
)

// Listening reports whether something on this host listens on TCP port,
// for choosing a port nothing holds; an unreadable /proc counts as no.
func Listening(port int) bool {
	ok, _ := listening(port)
	return ok
}

// listening reports whether some socket on this host listens on TCP port
// (IPv4 or IPv6). It reads /proc/net/tcp{,6} (proc(5)) instead of
// connecting, so the app never sees a probe connection in its logs.
func listening(port int) (bool, error) {
	want := []byte(fmt.Sprintf(":%04X", port))
	found := false
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
			// st 0A is TCP_LISTEN.
			if string(f[3]) == "0A" && bytes.HasSuffix(f[1], want) {
				found = true
			}
		}
		if found {
			return true, nil
		}
	}
	return false, firstErr
}
