package router

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"syscall"
	"time"
)

// copySide says which end of a copy failed.
type copySide uint8

const (
	sideSrc copySide = iota // the reading end: it closed, reset or went quiet
	sideDst                 // the writing end
)

// copyN copies n bytes from src to dst in steps of copyStep, renewing the
// deadlines at each: src must send within Idle, dst take within Idle. When
// both are *net.TCPConn, io.CopyN is splice(2): the bytes never enter the
// router's memory. It returns the bytes copied and, on failure, which end
// failed; io.EOF from src when it ended early.
func (r *Router) copyN(dst, src net.Conn, n int64) (int64, copySide, error) {
	var total int64
	idle := r.cfg.Idle
	// dst's deadline comes a second after src's, so that a timeout before
	// it can only be src's.
	const grace = time.Second
	for n > 0 {
		step := min(n, copyStep)
		start := time.Now()
		src.SetReadDeadline(start.Add(idle))
		dst.SetWriteDeadline(start.Add(idle + grace))
		w, err := io.CopyN(dst, src, step)
		total += w
		n -= w
		if err != nil {
			dst.SetWriteDeadline(time.Time{})
			return total, failedSide(err, src, start.Add(idle)), err
		}
	}
	dst.SetWriteDeadline(time.Time{})
	return total, sideSrc, nil
}

// failedSide tells which end made a copy fail.
func failedSide(err error, src net.Conn, srcDeadline time.Time) copySide {
	switch {
	case err == io.EOF:
		return sideSrc
	case isTimeout(err):
		if time.Now().Before(srcDeadline.Add(500 * time.Millisecond)) {
			return sideSrc
		}
		return sideDst
	case errors.Is(err, syscall.EPIPE):
		return sideDst
	}
	// A reset: whichever end has gone.
	if gone(src) {
		return sideSrc
	}
	return sideDst
}

// gone reports whether the peer of c closed or reset the connection,
// without consuming anything.
func gone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	dead := false
	raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		dead = n == 0 && err == nil || err != nil && err != syscall.EAGAIN
		return true
	})
	return dead
}

// deadlineWriter renews a write deadline at each write: a client that
// stops reading is cut after idle, one that reads slowly is not.
type deadlineWriter struct {
	c    net.Conn
	idle time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.c.SetWriteDeadline(time.Now().Add(d.idle))
	return d.c.Write(p)
}

// deadlineReader renews a read deadline at each read.
type deadlineReader struct {
	c    net.Conn
	idle time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	d.c.SetReadDeadline(time.Now().Add(d.idle))
	return d.c.Read(p)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func newChunkedReader(r io.Reader) io.Reader { return httputil.NewChunkedReader(r) }
