package router

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"sync/atomic"
	"syscall"
	"time"
)

// copySide says which end of a copy failed.
type copySide uint8

const (
	sideSrc copySide = iota // the reading end: it closed, reset or went quiet
	sideDst                 // the writing end
)

// copyN copies n bytes from src to dst in steps, renewing the deadlines at
// each: src must send within Idle, dst take within Idle (and a grace).
// When both are *net.TCPConn, io.CopyN is splice(2): the bytes never enter
// the router's memory, and a deadline cannot be renewed per read, so the
// steps are sized to the pace of the transfer: each should take about a
// quarter of Idle, from minCopyStep for a slow but steady peer up to
// copyStep for a fast one. A src that times out after sending within its
// step goes on: a read that times out leaves nothing half-copied. It
// returns the bytes copied and, on failure, which end failed; io.EOF from
// src when it ended early. stop, when not nil, ends the copy early: whoever
// sets it then sets a past read deadline on src, and copyN checks it after
// each deadline it sets, so that one cannot override the other.
func (r *Router) copyN(dst, src net.Conn, n int64, stop *atomic.Bool) (int64, copySide, error) {
	var total int64
	idle := r.cfg.Idle
	// dst's deadline comes a second (Idle, when shorter) after src's, so
	// that a timeout before it can only be src's.
	grace := min(time.Second, idle)
	step := int64(minCopyStep)
	for n > 0 {
		start := time.Now()
		src.SetReadDeadline(start.Add(idle))
		dst.SetWriteDeadline(start.Add(idle + grace))
		if stop != nil && stop.Load() {
			dst.SetWriteDeadline(time.Time{})
			return total, sideSrc, errCopyStopped
		}
		w, err := io.CopyN(dst, src, min(n, step))
		total += w
		n -= w
		if err != nil {
			side := failedSide(err, src, start.Add(idle), grace)
			if w > 0 && side == sideSrc && isTimeout(err) && (stop == nil || !stop.Load()) {
				continue // progress within the step: not idle
			}
			dst.SetWriteDeadline(time.Time{})
			return total, side, err
		}
		if took := time.Since(start); took > 0 {
			step = min(max(w*int64(idle/4)/int64(took), minCopyStep), copyStep)
		}
	}
	dst.SetWriteDeadline(time.Time{})
	return total, sideSrc, nil
}

var errCopyStopped = errors.New("router: copy stopped")

// minCopyStep is the smallest step of copyN: a peer that moves less than
// this within Idle is, near enough, idle.
const minCopyStep = 64 << 10

// failedSide tells which end made a copy fail.
func failedSide(err error, src net.Conn, srcDeadline time.Time, grace time.Duration) copySide {
	switch {
	case err == io.EOF:
		return sideSrc
	case isTimeout(err):
		if time.Now().Before(srcDeadline.Add(grace / 2)) {
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
