package router

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// maxAttempts is how many dynos a request tries when connections are
// refused, as Heroku's router retries before giving H21.
const maxAttempts = 10

// copyStep is the most of a large body that moves between two deadline
// renewals: io.CopyN between two *net.TCPConn is splice(2), which cannot
// renew a deadline per read (see copyN).
const copyStep = 1 << 20

// conn is one client connection and the request in flight on it. All of
// a request's state lives here, so a keep-alive request allocates nothing.
type conn struct {
	r    *Router
	nc   net.Conn
	raw  syscall.RawConn // nil when nc is no socket: then reads hold a buffer while waiting
	idle atomic.Bool     // waiting for a request, holding no buffer: Shutdown may close it
	fwd  Forward         // the client's address, the listener's proto and port

	// in holds what the client sent and the router has not yet handled:
	// in[r0:r1]. It is borrowed (inBuf) while a request is in flight and
	// given back when the connection waits for the next, so that an idle
	// connection holds no buffer.
	inBuf  *[]byte
	in     []byte
	r0, r1 int
	outBuf *[]byte // the rewritten head for the dyno, then for the client; the log line
	out    []byte
	resBuf *[]byte // the dyno's response
	res    []byte

	req       Request
	streaming bool        // the request body is still being sent: the dyno connection cannot be pooled
	bodyStop  atomic.Bool // the body's send must end where it stands (see streamed)
	whole     bool        // the request's body is all in in
	bodyInBuf int64       // bytes of the body in in, after the head
	resp      Response
	meta      []byte // the request id, then fwd, of the request in flight
	metaID    int    // the request id's length in meta
	line      LogLine

	// The request in flight.
	app     *App
	backend Backend
	code    Code
	cause   string
	status  int
	bytes   int64
	connect time.Duration
	start   time.Time
	sent    time.Time // when the head went to the dyno

	readFn  func(fd uintptr) bool // c.rawRead, bound once
	peekFn  func(fd uintptr) bool // c.peek, bound once
	rn      int
	rerr    error
	peekEOF bool
}

func (r *Router) newConn(nc net.Conn, proto, port string) *conn {
	c := &conn{r: r, nc: nc}
	c.fwd.Proto, c.fwd.Port = proto, port
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		c.fwd.ClientIP = a.IP.String()
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	c.readFn, c.peekFn = c.rawRead, c.peek
	return c
}

func (c *conn) serve() {
	defer func() {
		c.nc.Close()
		c.release()
		c.r.trackConn(c, false)
	}()
	for {
		if c.r0 == c.r1 {
			c.r0, c.r1 = 0, 0
			c.release()
			c.idle.Store(true)
			if c.r.shutdown.Load() {
				return
			}
			c.nc.SetReadDeadline(time.Now().Add(c.r.cfg.ClientIdle))
			err := c.readIdle()
			c.idle.Store(false)
			if err != nil {
				return
			}
		}
		if !c.request() || c.r.shutdown.Load() && c.r0 == c.r1 {
			return
		}
	}
}

// release gives the buffers back while the connection waits.
func (c *conn) release() {
	if c.r0 == c.r1 {
		c.r.putBuf(c.inBuf)
		c.inBuf, c.in = nil, nil
	}
	c.r.putBuf(c.outBuf)
	c.r.putBuf(c.resBuf)
	c.outBuf, c.out, c.resBuf, c.res = nil, nil, nil, nil
}

// readIdle waits for the next request's first bytes. With a socket it
// waits holding no buffer: rawRead borrows one only when the kernel has
// bytes for it, so 10,000 idle connections cost their goroutines and
// sockets, not 10,000 buffers.
func (c *conn) readIdle() error {
	if c.raw == nil {
		c.borrowIn()
		n, err := c.nc.Read(c.in)
		c.r1 = n
		if n > 0 {
			return nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	c.rn, c.rerr = 0, nil
	if err := c.raw.Read(c.readFn); err != nil {
		return err
	}
	if c.rn <= 0 {
		c.release()
		if c.rerr != nil {
			return c.rerr
		}
		return io.EOF
	}
	c.r0, c.r1 = 0, c.rn
	return nil
}

// rawRead is called by the poller with the socket: a read that finds
// nothing gives the buffer back and asks to wait (false).
func (c *conn) rawRead(fd uintptr) bool {
	c.borrowIn()
	for {
		n, err := syscall.Read(int(fd), c.in)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			c.r.putBuf(c.inBuf)
			c.inBuf, c.in = nil, nil
			return false
		}
		c.rn, c.rerr = n, err
		return true
	}
}

// peek notices a client that hung up while its request waits for a dyno:
// a peek reads 0 at end of file, or ECONNRESET. Bytes that wait (a body,
// a pipelined request) end the watch: they stay for the request.
func (c *conn) peek(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return false
	}
	c.peekEOF = n == 0 && err == nil || err == syscall.ECONNRESET
	return true
}

func (c *conn) borrowIn() {
	if c.in == nil {
		c.inBuf = c.r.getBuf()
		c.in = *c.inBuf
	}
}

// fill reads more of a request head into in, making room first: moving
// the unread bytes to the front, or a bigger buffer up to the head limit.
func (c *conn) fill() error {
	c.borrowIn()
	if c.r1 == len(c.in) {
		if c.r0 > 0 {
			c.r1 = copy(c.in, c.in[c.r0:c.r1])
			c.r0 = 0
		} else {
			if c.r1 >= MaxHead+MaxHeaderLine {
				return errHeadLimit
			}
			b := make([]byte, 2*len(c.in))
			copy(b, c.in[:c.r1])
			c.r.putBuf(c.inBuf)
			c.inBuf, c.in = nil, b
		}
	}
	for {
		n, err := c.nc.Read(c.in[c.r1:])
		c.r1 += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (c *conn) borrowOut() {
	if c.out == nil {
		c.outBuf = c.r.getBuf()
		c.out = (*c.outBuf)[:0]
	}
	if c.res == nil {
		c.resBuf = c.r.getBuf()
		c.res = *c.resBuf
	}
}

// str is b as a string without a copy, for values that live in a
// connection's buffers only while a request is in flight: a table lookup
// and the log line, neither of which keeps it.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// request serves the request whose first bytes are in in[r0:r1]. It
// reports whether the connection may serve another.
func (c *conn) request() bool {
	c.start = time.Now()
	c.whole, c.bodyInBuf = true, 0
	c.app, c.backend, c.code, c.cause, c.status, c.bytes, c.connect = nil, Backend{}, OK, "", 0, -1, -1
	c.meta = c.meta[:0]
	n, err := c.req.Parse(c.in[c.r0:c.r1])
	if n == 0 && err == nil {
		c.nc.SetReadDeadline(c.start.Add(c.r.cfg.HeadTimeout))
		for n == 0 && err == nil {
			if err = c.fill(); err != nil {
				if err != errHeadLimit {
					return false // a client that went quiet or away mid-head: close quietly
				}
				break
			}
			n, err = c.req.Parse(c.in[c.r0:c.r1])
		}
	}
	c.borrowOut()
	if err != nil {
		var he *HeadError
		if !errors.As(err, &he) {
			he = errBadRequestLine
		}
		c.refuse(he)
		return false
	}
	src := c.in[c.r0:c.r1]
	head := src[:n]
	// The part of the body already read, sent with the head when it is
	// the whole body.
	c.bodyInBuf = 0
	if c.req.ContentLength > 0 {
		c.bodyInBuf = min(c.req.ContentLength, int64(len(src)-n))
	}
	c.whole = !c.req.Chunked && c.bodyInBuf == max(c.req.ContentLength, 0)
	host := c.req.Host.In(head)
	app, ok := c.r.table.Load().Lookup(str(host))
	if !ok {
		c.noSuchApp(host)
		return c.keep(n, c.bodyIfWhole())
	}
	c.app = app
	f := c.fwd
	f.Start = c.start
	var fw Forwarded
	c.out, fw = c.req.AppendForward(c.out[:0], head, &f)
	c.meta = append(c.meta, fw.RequestID.In(c.out)...)
	c.metaID = len(c.meta)
	c.meta = append(c.meta, fw.Fwd.In(c.out)...)
	if c.req.Expect == ExpectOther {
		c.fail(errBadExpect.Code, errBadExpect.Status, errBadExpect.Cause, false)
		return false
	}
	return c.proxy(src, n)
}

// keep ends a request that used n bytes of in (head and body) and reports
// whether the connection goes on.
func (c *conn) keep(n int, body int64) bool {
	if c.req.Close || body < 0 {
		return false
	}
	c.r0 += n + int(body)
	return true
}

// proxy sends the request, whose head is src[:n], to a dyno of c.app and
// relays the response.
func (c *conn) proxy(src []byte, n int) bool {
	r := c.r
	head := src[:n]
	deadline := c.start.Add(r.cfg.BootWait)
	buffered := src[n:]
	bodyInBuf, whole := c.bodyInBuf, c.whole
	retryable := whole && c.req.Idempotent(head)
	headLen := len(c.out)
	if whole && bodyInBuf > 0 && headLen+int(bodyInBuf) <= cap(c.out) {
		c.out = append(c.out, buffered[:bodyInBuf]...)
	}

	refused, redial, redialed := false, false, false
	var bc *backendConn
	for attempt := 0; ; attempt++ {
		if !redial {
			b, code := c.app.Pick(r.done, deadline, refused)
			if code == H27 {
				b, code = c.waitPick(deadline, refused)
			}
			if code != OK {
				c.fail(code, code.Status(), "", c.whole)
				return code != H27 && c.keep(n, c.bodyIfWhole())
			}
			c.backend = b
		}
		t0 := time.Now()
		bc = nil
		if !redial {
			bc = r.pools.get(c.backend.Addr)
		}
		redial = false
		if bc == nil {
			var how dialOutcome
			var derr error
			bc, how, derr = r.pools.dialErr(context.Background(), c.backend.Addr, r.cfg.Connect)
			switch how {
			case dialLocal:
				c.fail(H99, H99.Status(), localCause(derr), c.whole)
				return c.keep(n, c.bodyIfWhole())
			case dialTimeout:
				c.connect = time.Since(t0)
				c.fail(H19, H19.Status(), "", c.whole)
				return c.keep(n, c.bodyIfWhole())
			case dialRefused:
				c.app.Quarantine(c.backend)
				refused = true
				if attempt+1 >= maxAttempts {
					c.backend = Backend{}
					c.fail(H21, H21.Status(), "", c.whole)
					return c.keep(n, c.bodyIfWhole())
				}
				continue
			}
		}
		c.connect = time.Since(t0)
		c.sent = time.Now()
		_, err := bc.nc.Write(c.out)
		if err != nil {
			bc.nc.Close()
			if bc.fresh && isReset(err) && attempt+1 < maxAttempts {
				// Reset before any byte was taken: as a refusal.
				c.app.Quarantine(c.backend)
				refused = true
				continue
			}
			if !bc.fresh && retryable && !redialed {
				redial, redialed = true, true
				continue
			}
			c.fail(H13, H13.Status(), "", false)
			return false
		}
		if len(c.out) == headLen && bodyInBuf > 0 {
			if _, err := bc.nc.Write(buffered[:bodyInBuf]); err != nil {
				bc.nc.Close()
				c.fail(H13, H13.Status(), "", false)
				return false
			}
		}
		if !whole {
			// The rest of the body, from the socket.
			return c.streamed(bc, n, buffered)
		}
		hn, got, err := c.readResponseHead(bc, r.cfg.FirstByte)
		if deadEarly(err) && !bc.fresh && retryable && !redialed {
			// A pooled connection the dyno had closed: send it again,
			// once, on a fresh one, as Go's Transport does.
			bc.nc.Close()
			redial, redialed = true, true
			continue
		}
		if err == errReset && bc.fresh && retryable && attempt+1 < maxAttempts {
			// A fresh connection reset unanswered: as a refusal.
			bc.nc.Close()
			c.app.Quarantine(c.backend)
			refused = true
			continue
		}
		if err != nil {
			bc.nc.Close()
			code := responseCode(err)
			c.fail(code, code.Status(), "", false)
			return false
		}
		return c.relay(bc, n, bodyInBuf, hn, got) && c.keep(n, bodyInBuf)
	}
}

// streamed sends the rest of a request body from the socket while it
// waits for the response: a dyno may answer before it has read the whole
// body (a 413 to a big upload), or while it reads it (an echo), and the
// answer reaches the client either way. Heroku's 30 s for the first byte
// count from when the whole body is sent.
func (c *conn) streamed(bc *backendConn, n int, buffered []byte) bool {
	if c.req.Expect == ExpectContinue && c.req.Minor == 1 {
		// Heroku's router and nginx answer 100 Continue themselves, once
		// they commit to reading the body; the dyno sees no Expect.
		if _, err := c.write(continue100); err != nil {
			bc.nc.Close()
			c.fail(H27, H27.Status(), "", false)
			return false
		}
	}
	sent := make(chan bodyResult, 1)
	bc.nc.SetReadDeadline(time.Time{})
	c.streaming = true
	defer func() { c.streaming = false }()
	chunked, length := c.req.Chunked, c.req.ContentLength
	go func() {
		res := c.sendBody(bc, buffered, chunked, length)
		if res.code == OK {
			bc.nc.SetReadDeadline(time.Now().Add(c.r.cfg.FirstByte))
		}
		sent <- res
		if res.code != OK {
			// No response is coming: stop waiting for one. After the
			// send, so that the wait it ends finds why.
			bc.nc.SetReadDeadline(time.Unix(1, 0))
		}
	}()
	// stop ends a body still on its way and waits for it: the dyno's
	// end closes, and a read of the client's wakes (sendBody checks
	// bodyStop after each deadline it sets, so it cannot set a later one
	// over this).
	stop := func() bodyResult {
		bc.nc.Close()
		c.bodyStop.Store(true)
		c.nc.SetReadDeadline(time.Unix(1, 0))
		res := <-sent
		c.bodyStop.Store(false)
		c.nc.SetReadDeadline(time.Time{})
		return res
	}
	hn, got, err := c.readResponseHead(bc, 0)
	var res bodyResult
	finished := false
	select {
	case res = <-sent:
		finished = true
	default:
	}
	if err != nil {
		if !finished {
			stop() // the dyno failed first: its failure is the request's
		}
		bc.nc.Close()
		code, cause := res.code, res.cause
		if !finished || code == OK {
			code, cause = responseCode(err), ""
		}
		c.fail(code, code.Status(), cause, false)
		return false
	}
	if finished && res.code != OK {
		// The body failed, and the dyno answered anyway: the client
		// connection ends with this response.
		c.req.Close = true
		c.relay(bc, n, -1, hn, got)
		return false
	}
	if !finished {
		// The response came before the send said the body was all sent:
		// either the dyno answers without the rest of it (a 413 to a big
		// upload, an echo that streams as it reads), or it has it all and
		// the send has yet to return. Which one cannot be told now, so
		// the response goes to the client as it comes (the dyno's
		// connection is closed after it: it is never pooled while a body
		// is being sent), and then the send is stopped where it stands.
		// A body that was all sent ends the send with OK and the
		// connection goes on; one still coming ends it.
		keep := c.relay(bc, n, -1, hn, got)
		res = stop()
		if !keep || res.code != OK {
			return false
		}
		if len(res.extra) > 0 {
			c.unread(res.extra)
		}
		return c.keep(n, res.used)
	}
	if len(res.extra) > 0 {
		c.unread(res.extra)
	}
	return c.relay(bc, n, res.used, hn, got) && c.keep(n, res.used)
}

// responseCode is the H code for a response head that did not come.
func responseCode(err error) Code {
	var he *HeadError
	switch {
	case errors.As(err, &he):
		return he.Code
	case isTimeout(err):
		return H12
	}
	return H13
}

// bodyIfWhole is how much of in the request's body takes when all of it
// is there, and -1 when it is not: the connection cannot go on without
// reading the rest.
func (c *conn) bodyIfWhole() int64 {
	if c.whole {
		return c.bodyInBuf
	}
	return -1
}

// waitPick is App.Pick for a request that must wait (the app's dynos are
// booting, or all quarantined), watching for the client to hang up so
// the wait ends with H27.
func (c *conn) waitPick(deadline time.Time, refused bool) (Backend, Code) {
	if c.r.onWait != nil {
		c.r.onWait()
	}
	if c.raw == nil {
		return c.app.Pick(context.Background(), deadline, refused)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The head's deadline (HeadTimeout), or ClientIdle's from before it,
	// would end the watch long before the wait: a client that left then
	// would hold the request for the whole BootWait instead of H27.
	c.nc.SetReadDeadline(time.Time{})
	c.peekEOF = false
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		c.raw.Read(c.peekFn)
		if c.peekEOF {
			cancel()
		}
	}()
	b, code := c.app.Pick(ctx, deadline, refused)
	c.nc.SetReadDeadline(time.Unix(1, 0)) // ends the watch
	<-watched
	c.nc.SetReadDeadline(time.Time{})
	return b, code
}

// bodyResult is how sending a request body from the socket went.
type bodyResult struct {
	used  int64  // bytes of in the body took
	code  Code   // OK, or why it failed: H26 (bad chunk), H27, H28, H13
	cause string // H26's
	extra []byte // bytes read past the body's end: the next request's
}

// sendBody sends the part of the request body not yet sent: the rest of
// a Content-Length body, or a chunked body as it comes, framing and all.
// It runs beside the response's reading, so it touches no state of the
// connection but its own scratch buffer.
func (c *conn) sendBody(bc *backendConn, buffered []byte, chunked bool, length int64) bodyResult {
	r := c.r
	if !chunked {
		// The buffered part went with or after the head.
		inBuf := min(length, int64(len(buffered)))
		if _, side, err := r.copyN(bc.nc, c.nc, length-inBuf, &c.bodyStop); err != nil {
			return bodyResult{code: bodyFailed(side, err)}
		}
		return bodyResult{used: inBuf}
	}
	var sc ChunkScanner
	k, done, err := sc.Scan(buffered)
	if err != nil {
		return bodyResult{code: H26, cause: errBadChunk.Cause}
	}
	if k > 0 {
		if _, err := bc.nc.Write(buffered[:k]); err != nil {
			return bodyResult{code: H13}
		}
	}
	res := bodyResult{used: int64(k)}
	if done {
		return res
	}
	// From here the body comes from the socket, through a scratch buffer.
	bp := r.getBuf()
	defer r.putBuf(bp)
	scratch := *bp
	for !done {
		if left := sc.DataLeft(); left > 4096 {
			if _, side, err := r.copyN(bc.nc, c.nc, left, &c.bodyStop); err != nil {
				return bodyResult{code: bodyFailed(side, err)}
			}
			sc.Skip(left)
			continue
		}
		c.nc.SetReadDeadline(time.Now().Add(r.cfg.Idle))
		if c.bodyStop.Load() {
			return bodyResult{code: H27}
		}
		m, rerr := c.nc.Read(scratch)
		if m > 0 {
			k, d, err := sc.Scan(scratch[:m])
			if err != nil {
				return bodyResult{code: H26, cause: errBadChunk.Cause}
			}
			if _, err := bc.nc.Write(scratch[:k]); err != nil {
				return bodyResult{code: H13}
			}
			done = d
			if done && k < m {
				res.extra = append([]byte(nil), scratch[k:m]...)
			}
			continue
		}
		if rerr != nil {
			return bodyResult{code: bodyFailed(sideSrc, rerr)}
		}
	}
	return res
}

// unread puts bytes read past a request's body back after in's unread
// bytes, for the next request. A bigger buffer keeps every offset.
func (c *conn) unread(b []byte) {
	if c.r1+len(b) > len(c.in) {
		nb := make([]byte, max(2*len(c.in), c.r1+len(b)))
		copy(nb, c.in[:c.r1])
		c.inBuf, c.in = nil, nb // the old buffer may still be in use by the caller: not pooled
	}
	c.r1 += copy(c.in[c.r1:], b)
}

// bodyFailed is the code of a request whose body did not get through:
// the client went quiet (H28) or away (H27), or the dyno closed before
// answering (H13: Heroku keeps H18 for a response cut short).
func bodyFailed(side copySide, err error) Code {
	switch {
	case side == sideSrc && isTimeout(err):
		return H28
	case side == sideSrc:
		return H27
	}
	return H13
}

var errDead = errors.New("router: keep-alive connection closed before a response byte")

// errReset is errDead by a reset rather than an orderly close. On a
// connection just made it means the dyno never took the request: a
// listener closed with the connection still in its accept queue resets
// it (tcp(7); a dyno's server shutting down at SIGTERM does that), so a
// request that may be sent again is treated as a refusal.
var errReset = errors.New("router: connection reset before a response byte")

// deadEarly says whether err is a connection lost before any byte of
// the response.
func deadEarly(err error) bool { return err == errDead || err == errReset }

// readResponseHead reads the dyno's response head into res, within
// firstByte (0: under the deadline bc has).
func (c *conn) readResponseHead(bc *backendConn, firstByte time.Duration) (hn, got int, err error) {
	buf, hn, got, err := readResponseHead(bc.nc, c.res, &c.resp, firstByte)
	if len(buf) != len(c.res) {
		c.r.putBuf(c.resBuf)
		c.resBuf, c.res = nil, buf
	}
	return hn, got, err
}

// readResponseHead reads a response head from nc into buf, within
// firstByte, skipping interim 1xx responses other than 101 (the client
// had its 100 Continue from the router). It returns the buffer (a bigger
// one for a big head), the head's length and how many bytes of buf hold
// data; errDead when nc closed before sending anything.
func readResponseHead(nc net.Conn, buf []byte, h *Response, firstByte time.Duration) ([]byte, int, int, error) {
	if firstByte > 0 {
		nc.SetReadDeadline(time.Now().Add(firstByte))
	}
	seen := false
	got := 0
	for {
		m, rerr := nc.Read(buf[got:])
		got += m
		if m > 0 {
			seen = true
		}
		for got > 0 {
			hn, perr := h.Parse(buf[:got])
			if perr != nil {
				return buf, 0, 0, perr
			}
			if hn == 0 {
				break
			}
			if h.Status >= 200 || h.Status == 101 {
				return buf, hn, got, nil
			}
			got = copy(buf, buf[hn:got])
		}
		if rerr != nil {
			if !seen && isReset(rerr) {
				return buf, 0, 0, errReset
			}
			if !seen && rerr == io.EOF {
				return buf, 0, 0, errDead
			}
			return buf, 0, 0, rerr
		}
		if got == len(buf) {
			if got >= MaxHead+MaxHeaderLine {
				return buf, 0, 0, errBadResponse
			}
			b := make([]byte, 2*len(buf))
			copy(b, buf[:got])
			buf = b
		}
	}
}

// relay sends the response, whose head is res[:hn] and got bytes of which
// are read, to the client, and ends the request. body is how many bytes
// of in the request's body took (-1 when they were taken from in as it
// was relayed). It reports whether the response lets the connection go
// on; the caller moves past the request (keep).
func (c *conn) relay(bc *backendConn, n int, body int64, hn, got int) bool {
	r := c.r
	head := c.in[c.r0 : c.r0+n]
	isHead := c.req.IsHead(head)
	upgrade := c.resp.Status == 101
	if upgrade && !c.req.Upgrade {
		bc.nc.Close()
		c.fail(H25, H25.Status(), "", false)
		return false
	}
	c.status = c.resp.Status
	keep := !c.req.Close && !r.shutdown.Load()
	framing := ClientFraming{Minor: c.req.Minor, Upgrade: upgrade}
	bodiless := upgrade || c.resp.Bodiless(isHead)
	switch {
	case bodiless:
	case c.resp.Chunked && c.req.Minor == 1:
		framing.Chunked = true
	case c.resp.Chunked:
		keep = false // a 1.0 client gets the body decoded, ended by the close
	case c.resp.ContentLength >= 0:
	default:
		keep = false // until the dyno closes: so does the client connection
	}
	framing.KeepAlive = keep && !upgrade
	c.out = c.resp.AppendForward(c.out[:0], c.res[:hn], framing)
	rest := c.res[hn:got]
	reuse := !c.resp.Close && !upgrade && !c.streaming

	// What of the body is already here goes with the head.
	var sc ChunkScanner
	var now []byte
	complete := bodiless
	switch {
	case bodiless:
		if len(rest) > 0 && !upgrade {
			reuse = false
		}
		if upgrade {
			now = rest
		}
	case c.resp.Chunked && framing.Chunked:
		k, done, err := sc.Scan(rest)
		if err != nil {
			bc.nc.Close()
			c.fail(H25, H25.Status(), "", false)
			return false
		}
		now, complete = rest[:k], done
		if k < len(rest) {
			reuse = false
		}
	case c.resp.Chunked:
	case c.resp.ContentLength >= 0:
		m := min(c.resp.ContentLength, int64(len(rest)))
		now, complete = rest[:m], m == c.resp.ContentLength
		if int64(len(rest)) > c.resp.ContentLength {
			reuse = false
		}
	default:
		now = rest
	}
	headLen := len(c.out)
	if len(c.out)+len(now) <= cap(c.out) {
		c.out = append(c.out, now...)
		now = nil
	}
	w, err := c.write(c.out)
	c.bytes = int64(w)
	if err == nil && len(now) > 0 {
		w, err = c.write(now)
		c.bytes += int64(w)
	}
	if err != nil {
		bc.nc.Close()
		if c.bytes < int64(headLen) {
			c.bytes = -1
			c.fail(H27, H27.Status(), "", false)
		} else {
			c.done()
		}
		return false
	}
	if upgrade {
		c.done()
		// What followed the head in in, less a body the dyno already has
		// (sent with the head): the first bytes of the tunnel.
		pending := c.in[c.r0+n : c.r1]
		if body > 0 {
			pending = pending[body:]
		}
		c.tunnel(bc, pending)
		c.r0 = c.r1
		return false
	}
	if !complete {
		var ok bool
		switch {
		case c.resp.Chunked && framing.Chunked:
			var clean bool
			ok, clean = c.relayChunked(bc, &sc)
			reuse = reuse && clean
		case c.resp.Chunked:
			ok = c.relayDechunked(bc, rest)
			// The decoder stops at the last chunk: a trailer or the
			// final CRLF may still come, and would be read as the next
			// response.
			reuse = false
		case c.resp.ContentLength >= 0:
			ok = c.relayLength(bc, c.resp.ContentLength-int64(len(rest)))
		default:
			ok = c.relayUntilClose(bc)
			reuse = false
		}
		if !ok {
			bc.nc.Close()
			return false
		}
	}
	if reuse {
		r.pools.put(bc)
	} else {
		bc.nc.Close()
	}
	c.done()
	return keep
}

// relayLength copies the rest of a Content-Length body.
func (c *conn) relayLength(bc *backendConn, rest int64) bool {
	w, side, err := c.r.copyN(c.nc, bc.nc, rest, nil)
	c.bytes += w
	if err != nil {
		c.responseFailed(side, err)
		return false
	}
	return true
}

// relayChunked relays a chunked body verbatim, each read as it arrives:
// Server-Sent Events and long polls reach the client at once.
// clean says the dyno sent nothing after the body, so the connection can
// serve another request.
func (c *conn) relayChunked(bc *backendConn, sc *ChunkScanner) (ok, clean bool) {
	for {
		if left := sc.DataLeft(); left > 4096 {
			w, side, err := c.r.copyN(c.nc, bc.nc, left, nil)
			c.bytes += w
			if err != nil {
				c.responseFailed(side, err)
				return false, false
			}
			sc.Skip(left)
			continue
		}
		bc.nc.SetReadDeadline(time.Now().Add(c.r.cfg.Idle))
		m, rerr := bc.nc.Read(c.res)
		if m > 0 {
			k, done, err := sc.Scan(c.res[:m])
			if err != nil {
				c.fail(H18, H18.Status(), "", false)
				return false, false
			}
			w, werr := c.write(c.res[:k])
			c.bytes += int64(w)
			if werr != nil {
				c.done()
				return false, false
			}
			if done {
				return true, k == m
			}
			continue
		}
		if rerr != nil {
			c.responseFailed(sideSrc, rerr)
			return false, false
		}
	}
}

// relayDechunked sends a chunked body decoded, to an HTTP/1.0 client.
func (c *conn) relayDechunked(bc *backendConn, rest []byte) bool {
	src := io.MultiReader(bytesReader(rest), &deadlineReader{bc.nc, c.r.cfg.Idle})
	w, err := io.Copy(&deadlineWriter{c.nc, c.r.cfg.Idle}, newChunkedReader(src))
	c.bytes += w
	if err != nil {
		c.responseFailed(sideSrc, err)
		return false
	}
	return true
}

// relayUntilClose copies a body that ends when the dyno closes.
func (c *conn) relayUntilClose(bc *backendConn) bool {
	for {
		w, side, err := c.r.copyN(c.nc, bc.nc, copyStep, nil)
		c.bytes += w
		if err == io.EOF && side == sideSrc {
			return true
		}
		if err != nil {
			c.responseFailed(side, err)
			return false
		}
	}
}

// responseFailed logs a response cut short: the dyno went quiet (H15) or
// closed (H18); a client that went away mid-response is logged as served.
func (c *conn) responseFailed(side copySide, err error) {
	switch {
	case side == sideSrc && isTimeout(err):
		c.fail(H15, H15.Status(), "", false)
	case side == sideSrc:
		c.fail(H18, H18.Status(), "", false)
	default:
		c.done()
	}
}

// tunnel joins client and dyno after a 101 until either closes or both
// are silent for Idle: Heroku counts a WebSocket idle only when nothing
// moves either way, so a dyno that pushes to a silent client keeps it.
func (c *conn) tunnel(bc *backendConn, pending []byte) {
	defer bc.nc.Close()
	if len(pending) > 0 {
		if _, err := bc.nc.Write(pending); err != nil {
			return
		}
	}
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.pipe(bc.nc, c.nc, &last)
		bc.nc.Close()
		c.nc.Close()
	}()
	c.pipe(c.nc, bc.nc, &last)
	bc.nc.Close()
	c.nc.Close()
	<-done
}

func (c *conn) pipe(dst, src net.Conn, last *atomic.Int64) {
	idle := c.r.cfg.Idle
	bp := c.r.getBuf()
	defer c.r.putBuf(bp)
	buf := *bp
	src.SetReadDeadline(time.Now().Add(idle))
	for {
		n, err := src.Read(buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			src.SetReadDeadline(time.Now().Add(idle))
			// A side that stops reading is cut after idle: a pushing
			// dyno must not hold the tunnel forever.
			dst.SetWriteDeadline(time.Now().Add(idle))
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if isTimeout(err) {
				if quiet := time.Since(time.Unix(0, last.Load())); quiet < idle {
					src.SetReadDeadline(time.Now().Add(idle - quiet))
					continue
				}
			}
			return
		}
	}
}

// fail ends the request with an H code: the error page (none for H27,
// whose client is gone) and the log line. keepAlive says the page may
// leave the connection open.
func (c *conn) fail(code Code, status int, cause string, keepAlive bool) {
	c.code, c.status, c.cause = code, status, cause
	if code != H27 && code != H28 && c.bytes <= 0 {
		c.writePage(status, c.app.Page(code), keepAlive && !c.req.Close)
	}
	c.done()
}

// refuse answers a head that could not be parsed, logging it to the app
// its Host names when that can be found.
func (c *conn) refuse(he *HeadError) {
	if host := sniffHost(c.in[c.r0:c.r1]); host != nil {
		c.app, _ = c.r.table.Load().Lookup(str(host))
	}
	c.req.Method, c.req.Target, c.req.Host = Span{}, Span{}, Span{}
	c.code, c.status, c.cause = he.Code, he.Status, he.Cause
	c.writePage(he.Status, he.Code.Page(), false)
	c.done()
}

// noSuchApp answers a request for a host no app has: 404 and no log line,
// there being no app to log to.
func (c *conn) noSuchApp(host []byte) {
	c.writePage(http.StatusNotFound, NoSuchAppPage(string(host)), !c.req.Close && c.whole)
}

// NoSuchAppPage is the 404 page for a request whose host no app has.
func NoSuchAppPage(host string) string {
	return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>No such app</title></head>\n" +
		"<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">\n<h1>No such app</h1>\n<p>There is no app at " +
		html.EscapeString(host) + ".</p>\n</body></html>\n"
}

func (c *conn) writePage(status int, page string, keepAlive bool) {
	c.out = AppendPage(c.out[:0], status, page, keepAlive, c.req.Minor, c.req.IsHead(c.in[c.r0:c.r1]))
	c.write(c.out)
}

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// write writes to the client within Idle, renewed at each write: a
// client that stops reading (a stream it no longer wants, pipelined
// requests whose answers it never reads) would otherwise hold this
// goroutine and a dyno connection forever.
func (c *conn) write(b []byte) (int, error) {
	c.nc.SetWriteDeadline(time.Now().Add(c.r.cfg.Idle))
	return c.nc.Write(b)
}

// AppendPage appends to dst a whole response of status with the HTML page
// as its body (none for a HEAD request), as the router answers errors.
// keepAlive says the connection stays open (said outright to an HTTP/1.0
// client); else the response says it closes.
func AppendPage(dst []byte, status int, page string, keepAlive bool, minor int, head bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(status)...)
	dst = append(dst, "\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache, no-store\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(page)), 10)
	switch {
	case !keepAlive:
		dst = append(dst, "\r\nConnection: close"...)
	case minor == 0:
		dst = append(dst, "\r\nConnection: keep-alive"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	if !head {
		dst = append(dst, page...)
	}
	return dst
}

func statusText(status int) string {
	if status == 499 {
		return "Client Closed Request"
	}
	return http.StatusText(status)
}

// done writes the request's log line.
func (c *conn) done() {
	if c.app == nil {
		return
	}
	service := time.Duration(-1)
	if !c.sent.IsZero() && c.backend.Dyno != "" {
		service = time.Since(c.sent)
	}
	c.app.traffic.count(0, c.code, c.status, service)
	if c.r.cfg.Journal == nil {
		c.sent = time.Time{}
		return
	}
	head := c.in[c.r0:c.r1]
	l := &c.line
	*l = LogLine{Code: c.code, Cause: c.cause, Method: str(c.req.Method.In(head)), Path: str(c.req.Target.In(head)),
		Host: str(c.req.Host.In(head)), Dyno: c.backend.Dyno, Connect: c.connect,
		Status: c.status, Bytes: c.bytes, Protocol: c.fwd.Proto}
	if len(c.meta) > 0 {
		l.RequestID, l.Fwd = str(c.meta[:c.metaID]), str(c.meta[c.metaID:])
	}
	l.Service = service
	c.out = c.r.log(c.app, l, c.out)
	c.sent = time.Time{}
}

// sniffHost finds the Host value in a head that did not parse, to log the
// refusal to its app.
func sniffHost(b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		b = b[i+1:]
		if len(b) >= 5 && equalFold(b[:5], "host:") {
			v := b[5:]
			if j := bytes.IndexAny(v, "\r\n"); j >= 0 {
				v = v[:j]
			}
			return bytes.TrimSpace(v)
		}
		if len(b) >= 2 && b[0] == '\r' && b[1] == '\n' {
			return nil
		}
	}
	return nil
}
