package router

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// maxIdlePerBackend caps the keep-alive connections kept open to one dyno.
const maxIdlePerBackend = 64

var errTooManyFiles = syscall.EMFILE

// backendConn is one connection to a dyno. Between requests it sits in
// its dyno's pool and holds no buffer: a dyno sends nothing unasked, and
// a connection over which it did is not pooled.
type backendConn struct {
	nc    net.Conn
	addr  string
	since time.Time // when it went back to the pool
	fresh bool      // dialled for this request, never used before

	raw    syscall.RawConn       // nc's socket, for usable's peek; nil when nc is none
	peekFn func(fd uintptr) bool // bc.peek, bound once
	spoilt bool                  // the last peek found bytes, end of file or an error
}

// usable reports whether a pooled connection can carry a request: the
// dyno sent nothing since its last response and has not closed. Bytes
// waiting (a late second response, the CRLF that ends a chunked body)
// would be read as the next request's response; end of file would cost
// the request a retry, or an H13 when it cannot be retried. A peek
// (MSG_PEEK|MSG_DONTWAIT) finds either without consuming or waiting.
func (bc *backendConn) usable() bool {
	if bc.raw == nil {
		return true
	}
	// A deadline left from the last response would fail the Read before
	// the peek is made.
	bc.nc.SetReadDeadline(time.Time{})
	bc.spoilt = true
	if err := bc.raw.Read(bc.peekFn); err != nil {
		return false
	}
	return !bc.spoilt
}

func (bc *backendConn) peek(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		// EAGAIN: nothing waits, the connection is clean; any byte, end
		// of file (0) or another error spoils it.
		bc.spoilt = errno != syscall.EAGAIN
		return true
	}
}

func newBackendConn(nc net.Conn, addr string) *backendConn {
	bc := &backendConn{nc: nc, addr: addr, fresh: true}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			bc.raw = raw
			bc.peekFn = bc.peek
		}
	}
	return bc
}

type pool struct {
	mu   sync.Mutex
	idle []*backendConn // oldest first; taken from the end (LIFO)
}

// pools holds the idle keep-alive connections to each dyno, by address.
// LIFO keeps the hottest connections in use and lets the others age out
// after maxIdle, before the dyno's own keep-alive timeout closes them
// (Node's is 5 s, gunicorn's 2 s).
type pools struct {
	maxIdle time.Duration
	closed  <-chan struct{}
	dialer  net.Dialer

	mu      sync.RWMutex
	m       map[string]*pool
	janitor sync.Once
}

func (p *pools) init(maxIdle time.Duration, closed <-chan struct{}) {
	p.maxIdle, p.closed, p.m = maxIdle, closed, map[string]*pool{}
	// Loopback or a local network: the router's own timeouts bound a
	// silent dyno, TCP keep-alive probes would only add timers.
	p.dialer.KeepAlive = -1
}

// get returns an idle connection to addr that has not outlived maxIdle,
// or nil.
func (p *pools) get(addr string) *backendConn {
	p.mu.RLock()
	pl := p.m[addr]
	p.mu.RUnlock()
	if pl == nil {
		return nil
	}
	now := time.Now()
	pl.mu.Lock()
	for n := len(pl.idle); n > 0; n = len(pl.idle) {
		bc := pl.idle[n-1]
		pl.idle[n-1] = nil
		pl.idle = pl.idle[:n-1]
		if now.Sub(bc.since) < p.maxIdle {
			pl.mu.Unlock()
			if !bc.usable() {
				bc.nc.Close()
				pl.mu.Lock()
				continue
			}
			bc.fresh = false
			return bc
		}
		bc.nc.Close()
	}
	pl.mu.Unlock()
	return nil
}

// put keeps bc for the next request to its dyno, or closes it when the
// pool is full or the router is shutting down.
func (p *pools) put(bc *backendConn) {
	select {
	case <-p.closed:
		bc.nc.Close()
		return
	default:
	}
	p.mu.RLock()
	pl := p.m[bc.addr]
	p.mu.RUnlock()
	if pl == nil {
		p.mu.Lock()
		if pl = p.m[bc.addr]; pl == nil {
			pl = &pool{}
			p.m[bc.addr] = pl
		}
		p.mu.Unlock()
		p.janitor.Do(func() { go p.sweep() })
	}
	bc.since = time.Now()
	pl.mu.Lock()
	if len(pl.idle) >= maxIdlePerBackend {
		pl.mu.Unlock()
		bc.nc.Close()
		return
	}
	pl.idle = append(pl.idle, bc)
	pl.mu.Unlock()
}

// sweep closes connections idle longer than maxIdle, so that a pool does
// not keep sockets the dyno has closed (CLOSE_WAIT) or a dyno that is gone.
func (p *pools) sweep() {
	t := time.NewTicker(max(p.maxIdle/2, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.closed:
			return
		case <-t.C:
		}
		now := time.Now()
		p.mu.Lock()
		for addr, pl := range p.m {
			pl.mu.Lock()
			k := 0
			for k < len(pl.idle) && now.Sub(pl.idle[k].since) >= p.maxIdle {
				pl.idle[k].nc.Close()
				k++
			}
			pl.idle = append(pl.idle[:0], pl.idle[k:]...)
			clear(pl.idle[len(pl.idle):cap(pl.idle)])
			empty := len(pl.idle) == 0
			pl.mu.Unlock()
			if empty {
				delete(p.m, addr)
			}
		}
		p.mu.Unlock()
	}
}

func (p *pools) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, pl := range p.m {
		pl.mu.Lock()
		for _, bc := range pl.idle {
			bc.nc.Close()
		}
		pl.idle = nil
		pl.mu.Unlock()
		delete(p.m, addr)
	}
}

// dialOutcome is how connecting to a dyno went.
type dialOutcome uint8

const (
	dialOK      dialOutcome = iota
	dialRefused             // refused or reset: quarantine the dyno, try another
	dialTimeout             // H19
	dialLocal               // the router could not make a connection at all: H99, no dyno blamed
)

// dial connects to a dyno within timeout.
func (p *pools) dial(ctx context.Context, addr string, timeout time.Duration) (*backendConn, dialOutcome) {
	bc, how, _ := p.dialErr(ctx, addr, timeout)
	return bc, how
}

// dialErr is dial, with the error a failed dial had: the cause H99 logs.
func (p *pools) dialErr(ctx context.Context, addr string, timeout time.Duration) (*backendConn, dialOutcome, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, dialFailure(err), err
	}
	return newBackendConn(nc, addr), dialOK, nil
}

// dialFailure says whose fault a failed connect is. Only the dyno's
// answer (ECONNREFUSED, ECONNRESET) or the network's (EHOSTUNREACH) puts
// a dyno in quarantine; a connect that took too long is H19. Anything
// else is the router's own trouble (EMFILE, ENFILE, ENOBUFS, EADDRNOTAVAIL
// when out of ephemeral ports): quarantining a healthy dyno for it would
// turn a passing shortage into H21s for every request of the app.
func dialFailure(err error) dialOutcome {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return dialTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EHOSTUNREACH):
		return dialRefused
	}
	return dialLocal
}

// localCause is the cause= of an H99 for a connect the router could not
// make: the errno's text, "too many open files".
func localCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return "connect failed"
}

// isReset reports whether err says the peer reset or had closed the
// connection: a write to a dead keep-alive connection.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
