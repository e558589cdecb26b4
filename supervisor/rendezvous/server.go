package rendezvous

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HandshakeLine is what the server sends once the client's secret is
// accepted, alone in the first chunk the client receives.
const HandshakeLine = "rendezvous\r\n"

// EOT is what a client without a terminal sends when its stdin ends
// (0x04, Ctrl-D): end of file for the dyno.
const EOT = 0x04

// Sniff tells a rendezvous from anything else on a connection whose
// first bytes br reads, waiting for them as long as the connection's
// read deadline allows. A first byte that is a lower-case hex digit is
// a rendezvous: the line up to "\r\n" (SecretLen+2 bytes at most) is
// consumed, and its secret returned, or "" when the line is not one of
// a secret's shape (a secret that no Claim can match). Anything else is
// left unread in br for the protocol it belongs to: an HTTP request
// begins with an upper-case method, or a CR LF (RFC 9112, 2.2).
func Sniff(br *bufio.Reader) (secret string, ok bool, err error) {
	first, err := br.Peek(1)
	if err != nil {
		return "", false, fmt.Errorf("rendezvous: sniff: %w", err)
	}
	if !isHex(first[0]) {
		return "", false, nil
	}
	var line []byte
	for len(line) < SecretLen+2 {
		c, err := br.ReadByte()
		if err != nil {
			return "", true, fmt.Errorf("rendezvous: read secret: %w", err)
		}
		line = append(line, c)
		if c == '\n' {
			break
		}
	}
	s, crlf := line[:max(len(line)-2, 0)], len(line) >= 2 && string(line[len(line)-2:]) == "\r\n"
	if !crlf || len(s) != SecretLen {
		return "", true, nil
	}
	for _, c := range s {
		if !isHex(c) {
			return "", true, nil
		}
	}
	return string(s), true, nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// handshakeGrace is how long the server waits, after the client's
// kernel has acknowledged the handshake line, before any output. The
// Heroku CLI drops the whole first "data" event it gets (dyno.js, "discard
// first line"): output that reached its socket before Node read the line
// could come in the same event and be lost. The acknowledgement says
// the line is in the client's kernel; the grace gives its event loop
// time to read it on its own.
const handshakeGrace = 100 * time.Millisecond

// Handshake sends the handshake line on conn and returns once the peer
// has acknowledged it and the grace has passed, or timeout has.
func Handshake(conn net.Conn, timeout time.Duration) error {
	if _, err := io.WriteString(conn, HandshakeLine); err != nil {
		return fmt.Errorf("rendezvous: handshake: %w", err)
	}
	if err := waitAcked(conn, timeout); err != nil {
		return err
	}
	time.Sleep(handshakeGrace)
	return nil
}

// waitAcked waits until conn's TCP socket holds nothing unacknowledged:
// SIOCOUTQ on a TCP socket is the bytes written and not yet acknowledged
// by the peer, sent or not (tcp(7); write_seq - snd_una in Linux's
// tcp_ioctl). There is no event for it, so it is polled, every
// millisecond: on loopback it is 0 at the first look, over a tunnel
// within a round trip. A conn that is not over TCP (a test's pipe) has
// nothing to wait for.
func waitAcked(conn net.Conn, timeout time.Duration) error {
	for {
		nc, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		conn = nc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("rendezvous: handshake: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		var n int
		var ierr error
		if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
			return fmt.Errorf("rendezvous: handshake: %w", err)
		}
		if ierr != nil {
			return fmt.Errorf("rendezvous: handshake: ioctl SIOCOUTQ: %w", ierr)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rendezvous: handshake: the client acknowledged nothing within %v (%d bytes outstanding)", timeout, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Stream is a dyno's terminal as Bridge joins it to the client.
type Stream struct {
	// In is the dyno's stdin and Out its output: the PTY's master for
	// both, or a pipe each.
	In  io.Writer
	Out io.Reader
	// TTY says In is a terminal: the client's bytes go to it unchanged
	// and the PTY's line discipline makes Ctrl-C and Ctrl-D what they
	// are. Without one, the client's EOT ends the dyno's stdin.
	TTY bool
	// CloseIn closes the dyno's stdin (pipes only).
	CloseIn func() error
	// Hangup is called, once, when the client goes while the dyno still
	// has output to give: its connection ended or refused a write.
	Hangup func()
}

// Bridge joins conn to s: the client's bytes to s.In, s.Out's to the
// client, until s.Out ends (EOF, or EIO from a PTY's master once no
// slave is open: pty(7)). After a hangup s.Out is still read to its
// end, and dropped, so that no writer in the dyno blocks on a full
// buffer while it is stopped. Bridge returns then; the caller closes
// conn, and whatever Bridge's reader of conn gets after that is no
// hangup.
func Bridge(conn net.Conn, s Stream) {
	var over atomic.Bool
	var once sync.Once
	hangup := func() {
		if !over.Load() && s.Hangup != nil {
			once.Do(s.Hangup)
		}
	}
	go func() {
		err := copyIn(s, conn)
		if errors.Is(err, errStdinEnded) {
			// The client has no more input, and waits for output: its
			// connection still open says nothing of its state.
			io.Copy(io.Discard, conn)
		}
		hangup()
	}()
	buf := make([]byte, 32<<10)
	gone := false
	for {
		n, rerr := s.Out.Read(buf)
		if n > 0 && !gone {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				gone = true
				hangup()
			}
		}
		if rerr != nil {
			break
		}
	}
	over.Store(true)
}

var errStdinEnded = errors.New("stdin ended")

// copyIn copies the client's bytes to the dyno's stdin until the
// client's connection ends (its error, io.EOF included) or, without a
// terminal, until its EOT (errStdinEnded).
func copyIn(s Stream, conn net.Conn) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := conn.Read(buf)
		b := buf[:n]
		eot := -1
		if !s.TTY {
			for i, c := range b {
				if c == EOT {
					eot = i
					break
				}
			}
			if eot >= 0 {
				b = b[:eot]
			}
		}
		if len(b) > 0 {
			// A dyno that stopped reading (or exited) refuses the
			// write; what the client types then goes nowhere, as on
			// a terminal whose program has ended.
			s.In.Write(b)
		}
		if eot >= 0 {
			if s.CloseIn != nil {
				s.CloseIn()
			}
			return errStdinEnded
		}
		if err != nil {
			if !s.TTY && s.CloseIn != nil {
				s.CloseIn()
			}
			return err
		}
	}
}
