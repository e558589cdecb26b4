//go:build linux

package router

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loop is the router's fast path on Linux: nginx's architecture
// in Go. Each loop is one goroutine locked to its thread with its own
// edge-triggered epoll; a client connection and the dyno connection
// serving it live in the same loop, so a request never crosses a thread,
// and an ordinary request costs four socket system calls (read the
// client, write the dyno, read the dyno, write the client) and no
// allocation. Whatever the loop does not handle itself (an upgrade,
// Expect, a chunked or large request body, a head over 8 KiB, an
// HTTP/1.0 client, a malformed request, an app that is not running) it
// hands, with the bytes already read, to the goroutine path, which
// handles everything.

const (
	// loopMaxHead is the largest request head the loop reads itself:
	// Heroku's 8 KiB line limit. Larger heads go to the goroutine path,
	// which reads up to MaxHead.
	loopMaxHead = 8 << 10
	// loopMaxBody bounds the request body the loop buffers before it
	// writes the request to the dyno in one go; in practice the body must
	// also fit, with its head, in the buffer the head came in (smallBuf).
	loopMaxBody = 64 << 10

	smallBuf = 16 << 10                          // a head, a small body, a read from a dyno
	bigBuf   = loopMaxHead + loopMaxBody + 8<<10 // a head with the largest body the loop buffers

	// outHigh is how much response the loop holds for a client that
	// reads slowly before it stops reading the dyno (back-pressure); it
	// reads again once the client has taken it all.
	outHigh = 32 << 10

	loopMaxIdlePerBackend = 64
	loopEvents            = 256
	logFlushEvery         = 100 * time.Millisecond
	logFlushSize          = 64 << 10
)

// loopServer runs the event loops of one listener.
type loopServer struct {
	r     *Router
	proto string
	port  string
	lnfd  int
	loops []*evloop
	made  atomic.Int32 // loops made, for their traffic shards

	stopping atomic.Bool // Shutdown began: no new connections, no keep-alive
	forced   atomic.Bool // Shutdown's context ended: close everything
	done     sync.WaitGroup

	mu    sync.Mutex
	ended bool // the loops' descriptors are closed: nothing to wake

	lnUsers atomic.Int32 // loops still using lnfd; the last to leave closes it
}

// loopCount is how many loops Serve runs: one per core, since a loop
// keeps a core busy on its own. Go's runtime then runs best with one P
// more than loops (GOMAXPROCS = loops+1): with every P blocked in
// epoll_wait, sysmon keeps waking up to retake them. That is the
// daemon's setting, not the router's; on a 2-core box 2 loops under the
// default GOMAXPROCS=2 measured within noise of GOMAXPROCS=3.
func loopCount() int {
	return max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0)))
}

// spareProc makes GOMAXPROCS at least one more than the loops. A loop
// sleeps in epoll_wait holding its P, as a goroutine in a system call
// does; while no other P is idle, Go's sysmon takes the P of a goroutine
// in a system call after 20 µs and hands it to another thread, and the
// loop must get one back when epoll_wait returns: a futex wake-up and a
// thread switch each time a loop sleeps and wakes (perf counted them at
// a third of a futex per request with 2 loops on 2 Ps). With a P to spare
// sysmon leaves the loops' Ps alone (runtime.retake skips a P in a
// system call for 10 ms while another is idle and its run queue empty),
// and the rest of the process runs on the spare one. Measured with wrk
// through the daemon: 40 µs of CPU per request instead of 51.
func spareProc(loops int) {
	if runtime.GOMAXPROCS(0) < loops+1 {
		runtime.GOMAXPROCS(loops + 1)
	}
}

// serveLoops serves ln with event loops until Shutdown. ok is false when
// ln is not a TCP listener the loops can take, and the caller serves it
// with goroutines.
func (r *Router) serveLoops(ln net.Listener, proto, port string) (err error, ok bool) {
	tl, isTCP := ln.(*net.TCPListener)
	if !isTCP {
		return nil, false
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, false
	}
	lnfd := -1
	var dupErr error
	// A dup of the listener's descriptor: it shares the open file, which
	// Go made non-blocking, and closing ln does not close it.
	rc.Control(func(fd uintptr) { lnfd, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	if dupErr != nil {
		return nil, false
	}
	s := &loopServer{r: r, proto: proto, port: port, lnfd: lnfd}
	n := r.cfg.EventLoops
	if n <= 0 {
		n = loopCount()
	}
	spareProc(n)
	for i := 0; i < n; i++ {
		l, err := s.newLoop()
		if err != nil {
			for _, l := range s.loops {
				l.close()
			}
			unix.Close(lnfd)
			return err, true
		}
		s.loops = append(s.loops, l)
	}
	s.lnUsers.Store(int32(len(s.loops)))
	r.addLoops(s)
	defer r.removeLoops(s)
	for _, l := range s.loops {
		s.done.Add(1)
		go l.run()
	}
	// Serve ends when ln is closed, as the goroutine path's Accept ends.
	// The loops accept on a duplicate, which closing ln leaves open, so
	// ln is looked at once a second (Control fails once it is closed).
	ended := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ended:
				return
			case <-tick.C:
			}
			if rc.Control(func(uintptr) {}) != nil {
				s.stop()
				return
			}
		}
	}()
	s.done.Wait()
	close(ended)
	<-watched
	s.mu.Lock()
	s.ended = true
	for _, l := range s.loops {
		l.close()
	}
	s.mu.Unlock()
	if r.shutdown.Load() {
		return ErrRouterClosed, true
	}
	return net.ErrClosed, true
}

// stop begins a shutdown: the loops stop accepting, close connections
// between requests, and end once the requests in flight are done.
func (s *loopServer) stop() {
	s.stopping.Store(true)
	s.wake()
}

// kill ends the loops now, closing every connection.
func (s *loopServer) kill() {
	s.forced.Store(true)
	s.wake()
}

func (s *loopServer) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	one := [8]byte{1}
	for _, l := range s.loops {
		unix.Write(l.wakefd, one[:])
	}
}

// wait blocks until the loops have ended or ctx ends.
func (s *loopServer) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.done.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.kill()
		<-done
		return ctx.Err()
	}
}

// fdEntry is what a descriptor in a loop's table is, with the generation
// its epoll events carry: a descriptor closed earlier in a batch of
// events may be reused by accept or socket in the same batch, and its
// stale events must not reach the new connection.
type fdEntry struct {
	gen uint32
	c   *lclient
	b   *lbackend
}

// evloop is one event loop, owned by one locked goroutine: nothing in it
// is shared, so nothing in it is locked.
type evloop struct {
	s      *loopServer
	shard  int // which of each app's traffic counters it adds to
	epfd   int
	wakefd int
	fds    []fdEntry
	gen    uint32
	events []unix.EpollEvent
	now    time.Time

	pools   map[string]*lpool
	clients int

	small, big [][]byte // free buffers
	freeC      []*lclient
	freeB      []*lbackend

	logBuf     []byte
	logs       []loopLog
	lastFlush  time.Time
	lastSweep  time.Time
	line       LogLine
	stopNoted  bool
	listenerIn bool
	// acceptPaused: accept failed for want of descriptors or memory, so
	// the listener is out of this loop's epoll until the next sweep;
	// level-triggered, it would wake the loop again at once, for ever.
	acceptPaused bool
}

type loopLog struct {
	app       string
	off, size int
}

func (s *loopServer) newLoop() (*evloop, error) {
	l, err := s.newBareLoop()
	if err != nil {
		return nil, err
	}
	// The listener is level-triggered and exclusive: a new connection
	// wakes one loop that sleeps rather than all of them, and one that
	// is busy leaves it to another; each wake-up accepts a few, so that
	// a burst of connections spreads over the loops.
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.lnfd,
		&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(s.lnfd)}); err != nil {
		l.close()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l.listenerIn = true
	return l, nil
}

// newBareLoop is a loop with its epoll and wake-up descriptor, not yet
// on the listener.
func (s *loopServer) newBareLoop() (*evloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	l := &evloop{s: s, shard: 1 + int(s.made.Add(1)), epfd: epfd, wakefd: wakefd, events: make([]unix.EpollEvent, loopEvents),
		pools: map[string]*lpool{}, now: time.Now(),
		// Sized for a flush's worth of lines, so that a busier second
		// than any before does not grow them (and start a GC cycle).
		logBuf: make([]byte, 0, logFlushSize+4<<10), logs: make([]loopLog, 0, 1024)}
	l.lastFlush, l.lastSweep = l.now, l.now
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd,
		&unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		l.close()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return l, nil
}

func (l *evloop) close() {
	unix.Close(l.epfd)
	unix.Close(l.wakefd)
}

func (l *evloop) run() {
	runtime.LockOSThread()
	defer l.s.done.Done()
	for {
		n, err := unix.EpollWait(l.epfd, l.events, 100) // ms: paces the sweep and the log flush
		if err != nil && err != unix.EINTR {
			n = 0
		}
		l.now = time.Now()
		for i := 0; i < n; i++ {
			l.handle(l.events[i])
		}
		if l.s.forced.Load() {
			l.closeAll()
			l.flushLogs()
			return
		}
		if l.s.stopping.Load() {
			if !l.stopNoted {
				l.stopNoted = true
				l.beginStop()
			}
			if l.clients == 0 {
				l.closeAll()
				l.flushLogs()
				return
			}
		}
		if l.now.Sub(l.lastSweep) >= time.Second {
			l.lastSweep = l.now
			l.sweep()
		}
		if len(l.logs) > 0 && (l.now.Sub(l.lastFlush) >= logFlushEvery || len(l.logBuf) >= logFlushSize) {
			l.flushLogs()
		}
	}
}

// handle is one event of a batch.
func (l *evloop) handle(ev unix.EpollEvent) {
	fd := int(ev.Fd)
	switch {
	case fd == l.s.lnfd:
		l.accept()
		return
	case fd == l.wakefd:
		var b [8]byte
		unix.Read(l.wakefd, b[:])
		return
	}
	// A descriptor closed earlier in this batch, or closed and reused
	// by a new connection: the event is not the new one's.
	if fd >= len(l.fds) || l.fds[fd].gen != uint32(ev.Pad) {
		return
	}
	if c := l.fds[fd].c; c != nil {
		l.clientEvent(c, ev.Events)
	} else if b := l.fds[fd].b; b != nil {
		l.backendEvent(b, ev.Events)
	}
}

// register adds fd to the loop's table and epoll, edge-triggered for
// reading and writing: the loop reads and writes until the kernel says
// EAGAIN (or a read comes back short, which on a stream socket means it
// is drained), so it never needs an event repeated.
func (l *evloop) register(fd int, c *lclient, b *lbackend) (uint32, error) {
	for fd >= len(l.fds) {
		l.fds = append(l.fds, fdEntry{})
	}
	l.gen++
	l.fds[fd] = fdEntry{gen: l.gen, c: c, b: b}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd), Pad: int32(l.gen)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.fds[fd] = fdEntry{}
		return 0, err
	}
	return l.gen, nil
}

// forget removes fd from the table; closing it removes it from epoll.
func (l *evloop) forget(fd int) { l.fds[fd] = fdEntry{} }

func (l *evloop) accept() {
	if l.s.stopping.Load() || !l.listenerIn {
		return
	}
	for i := 0; i < 8; i++ {
		fd, sa, err := unix.Accept4(l.s.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			// EAGAIN: another loop took it. Out of descriptors or
			// memory (accept(2)): the connection stays queued, and the
			// level-triggered listener would report it again at once;
			// leave it until the next sweep, when some may be free.
			switch err {
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.s.lnfd, nil)
				l.acceptPaused = true
			}
			return
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := l.newClient(fd, sa)
		gen, err := l.register(fd, c, nil)
		if err != nil {
			unix.Close(fd)
			l.freeC = append(l.freeC, c)
			continue
		}
		c.gen = gen
		l.clients++
	}
}

// Buffers come from the loop's free lists, so a steady state allocates
// none, and a connection between requests holds none.
func (l *evloop) getBuf(size int) []byte {
	if size <= smallBuf {
		if n := len(l.small); n > 0 {
			b := l.small[n-1]
			l.small = l.small[:n-1]
			return b[:0]
		}
		return make([]byte, 0, smallBuf)
	}
	if n := len(l.big); n > 0 {
		b := l.big[n-1]
		l.big = l.big[:n-1]
		return b[:0]
	}
	return make([]byte, 0, max(size, bigBuf))
}

func (l *evloop) putBuf(b []byte) {
	switch {
	case b == nil:
	case cap(b) == smallBuf:
		if len(l.small) < 1024 {
			l.small = append(l.small, b[:0])
		}
	case cap(b) == bigBuf:
		if len(l.big) < 64 {
			l.big = append(l.big, b[:0])
		}
	}
}

// grow returns b with room for n more bytes, moving it to a bigger buffer
// when it has not.
func (l *evloop) grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := l.getBuf(len(b) + n)
	if cap(nb) < len(b)+n {
		nb = make([]byte, 0, len(b)+n)
	}
	nb = append(nb, b...)
	l.putBuf(b)
	return nb
}

// outRoom makes room for n more bytes of output to c: first by dropping
// what the client has taken already, so that a slow reader of a long
// response holds at most outHigh and a read's worth.
func (l *evloop) outRoom(c *lclient, n int) {
	if cap(c.out)-len(c.out) >= n {
		return
	}
	if c.outOff > 0 {
		c.out = c.out[:copy(c.out, c.out[c.outOff:])]
		c.outOff = 0
	}
	c.out = l.grow(c.out, n)
}

// flushLogs hands the loop's router lines to the Journal: a few times a
// second rather than per request, so that the Journal's goroutine is not
// woken, on another thread, for every request.
func (l *evloop) flushLogs() {
	j := l.s.r.cfg.Journal
	for _, e := range l.logs {
		if j != nil {
			j.Add(e.app, l.logBuf[e.off:e.off+e.size])
		}
	}
	clear(l.logs)
	l.logs = l.logs[:0]
	l.logBuf = l.logBuf[:0]
	l.lastFlush = l.now
}

func (l *evloop) log(app *App, line *LogLine) {
	if app == nil {
		return
	}
	app.traffic.count(l.shard, line.Code, line.Status, line.Service)
	if l.s.r.cfg.Journal == nil {
		return
	}
	off := len(l.logBuf)
	l.logBuf = line.Append(l.logBuf)
	l.logs = append(l.logs, loopLog{app: app.Name(), off: off, size: len(l.logBuf) - off})
}

// beginStop closes the client connections that wait between requests and
// the idle dyno connections; the others close after their response.
func (l *evloop) beginStop() {
	l.leaveListener()
	for fd := range l.fds {
		e := l.fds[fd]
		if c := e.c; c != nil && c.state == csIdle && c.outOff == len(c.out) {
			l.closeClient(c)
		}
	}
	l.closePools()
}

// leaveListener stops accepting. Connections the kernel has queued are
// accepted and closed, as the goroutine path closes idle ones, and the
// last loop to leave closes the listening descriptor, so that the kernel
// refuses new ones rather than queue them for no one.
func (l *evloop) leaveListener() {
	if !l.listenerIn {
		return
	}
	l.listenerIn = false
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.s.lnfd, nil)
	for {
		fd, _, err := unix.Accept4(l.s.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			break
		}
		unix.Close(fd)
	}
	if l.s.lnUsers.Add(-1) == 0 {
		unix.Close(l.s.lnfd)
	}
}

func (l *evloop) closeAll() {
	l.leaveListener()
	for fd := range l.fds {
		e := l.fds[fd]
		if e.c != nil {
			l.closeClient(e.c)
		}
	}
	l.closePools()
}

func (l *evloop) closePools() {
	for _, p := range l.pools {
		for _, b := range p.idle {
			l.closeBackend(b)
		}
		clear(p.idle)
		p.idle = p.idle[:0]
	}
}

// unsafeString is b as a string without a copy, for a lookup or a log
// line that does not keep it.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// lpool is a loop's idle keep-alive connections to one dyno.
type lpool struct {
	addr string
	sa   unix.Sockaddr // nil: not an IP address the loop can connect to
	idle []*lbackend   // LIFO
}

// remove takes be out of the idle list, keeping the others' order.
func (p *lpool) remove(be *lbackend) {
	for i, b := range p.idle {
		if b == be {
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[len(p.idle)-1] = nil
			p.idle = p.idle[:len(p.idle)-1]
			return
		}
	}
}

func (l *evloop) pool(addr string) *lpool {
	if p, ok := l.pools[addr]; ok {
		return p
	}
	p := &lpool{addr: addr}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		if a := ap.Addr().Unmap(); a.Is4() {
			p.sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
		} else {
			sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
			p.sa = sa
		}
	}
	l.pools[addr] = p
	return p
}

// ---- clients ----

type clientState uint8

const (
	csIdle    clientState = iota // between requests, nothing of the next one read
	csHead                       // part of a head read
	csBody                       // a head read, waiting for the rest of its body
	csBusy                       // the request is with a dyno, or its response is being relayed
	csClosing                    // the last response is being written, then close
)

// lclient is one client connection in a loop.
type lclient struct {
	fd    int
	gen   uint32
	ip    string
	state clientState

	in      []byte // read from the client, not yet consumed
	inReady bool   // the socket may hold more than was read
	hup     bool   // the client shut down its side: read on to the end of file
	start   time.Time
	last    time.Time // the last byte read or written

	out    []byte // to write to the client
	outOff int

	req      Request
	reqLen   int // head and body of the request in flight, at the start of in
	fw       Forward
	fwd      []byte // the request as the dyno gets it
	fwdOff   int
	fwdMeta  Forwarded
	app      *App
	dyno     Backend
	refused  bool // a dyno refused this request
	attempts int  // dynos tried
	retried  bool // the request was sent again on a fresh connection
	be       *lbackend
	sent     time.Time // the request was sent (service= starts)
	connect  time.Duration

	resp      Response
	mode      bodyMode
	remain    int64
	chunks    ChunkScanner
	keepAlive bool // the client connection stays open after this response
	status    int
	bytes     int64
	replied   bool // a response head went to the client
}

type bodyMode uint8

const (
	bodyNone   bodyMode = iota
	bodyLength          // Content-Length: remain more bytes
	bodyChunks          // chunked, relayed verbatim
	bodyClose           // until the dyno closes
)

func (l *evloop) newClient(fd int, sa unix.Sockaddr) *lclient {
	var c *lclient
	if n := len(l.freeC); n > 0 {
		c = l.freeC[n-1]
		l.freeC = l.freeC[:n-1]
	} else {
		c = &lclient{}
	}
	fields := c.req.Fields[:0]
	rfields := c.resp.Fields[:0]
	*c = lclient{fd: fd, state: csIdle, last: l.now}
	c.req.Fields, c.resp.Fields = fields, rfields
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		c.ip = netip.AddrFrom4(sa.Addr).String()
	case *unix.SockaddrInet6:
		c.ip = netip.AddrFrom16(sa.Addr).Unmap().String()
	}
	return c
}

func (l *evloop) clientEvent(c *lclient, ev uint32) {
	if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		l.clientGone(c)
		return
	}
	if ev&unix.EPOLLOUT != 0 && c.outOff < len(c.out) {
		if !l.flush(c) {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0 {
		if ev&unix.EPOLLRDHUP != 0 {
			c.hup = true
		}
		if c.state == csBusy || c.state == csClosing {
			// One request at a time: the bytes stay in the socket
			// until this one is done. A client that hung up is seen
			// now, though, so that its request stops (H27).
			c.inReady = true
			if ev&unix.EPOLLRDHUP != 0 && c.state == csBusy {
				l.clientGone(c)
			}
			return
		}
		l.readClient(c)
	}
}

// readClient reads what the client sent and serves it.
func (l *evloop) readClient(c *lclient) {
	for {
		if c.state == csBusy || c.state == csClosing {
			c.inReady = true
			return
		}
		if c.in == nil {
			c.in = l.getBuf(smallBuf)
		}
		room := cap(c.in) - len(c.in)
		if room == 0 {
			// A full buffer that serve left: a head over the loop's
			// limit, which serve hands off; nothing to read into.
			c.inReady = true
			return
		}
		n, err := unix.Read(c.fd, c.in[len(c.in):cap(c.in)])
		if n > 0 {
			if c.state == csIdle && len(c.in) == 0 {
				c.start = l.now
			}
			c.in = c.in[:len(c.in)+n]
			c.last = l.now
			// A short read drains a stream socket, and new bytes would
			// raise a new edge; but an end of file that came with the
			// bytes raised its edge already.
			c.inReady = n == room || c.hup
			if !l.serve(c) || !c.inReady {
				return
			}
			continue
		}
		if err == unix.EAGAIN {
			c.inReady = false
			if len(c.in) == 0 {
				l.putBuf(c.in)
				c.in = nil
			}
			return
		}
		// EOF or an error: the client is gone, mid-head or between
		// requests; there is no request to log.
		l.closeClient(c)
		return
	}
}

// serve parses and starts the requests in c.in, one at a time. It returns
// false when c is no longer the loop's (closed or handed off).
func (l *evloop) serve(c *lclient) bool {
	for c.state == csIdle || c.state == csHead || c.state == csBody {
		if len(c.in) == 0 {
			c.state = csIdle
			return true
		}
		n, err := c.req.Parse(c.in)
		if err != nil {
			return l.handOff(c) // its error page and log line are the goroutine path's
		}
		if n == 0 {
			if len(c.in) > loopMaxHead {
				return l.handOff(c)
			}
			if c.state == csIdle {
				c.state = csHead
			}
			return true
		}
		r := &c.req
		if r.Upgrade || r.Expect != ExpectNone || r.Chunked || r.ContentLength > loopMaxBody || r.Minor == 0 {
			return l.handOff(c)
		}
		total := n + int(max(r.ContentLength, 0))
		if total > cap(c.in) {
			// A body larger than the buffer the head came in: growing
			// the buffer to hold it whole would let a client that sends
			// a head and then a byte a minute hold 80 KiB per
			// connection, for an app it may not even name. The
			// goroutine path streams it to the dyno as it comes.
			return l.handOff(c)
		}
		if total > len(c.in) {
			c.state = csBody
			return true
		}
		c.reqLen = total
		if !l.dispatch(c, n) {
			return false
		}
	}
	return c.state != csClosed
}

// dispatch routes the request at the start of c.in, whose head is n bytes.
func (l *evloop) dispatch(c *lclient, n int) bool {
	t := l.s.r.table.Load()
	app, ok := t.Lookup(unsafeString(c.req.Host.In(c.in)))
	if !ok {
		return l.handOff(c)
	}
	c.state = csBusy
	c.app = app
	c.refused, c.retried, c.replied, c.attempts = false, false, false, 0
	c.status, c.bytes, c.connect = 0, 0, -1
	c.keepAlive = !c.req.Close
	c.fw = Forward{ClientIP: c.ip, Proto: l.s.proto, Port: l.s.port, Version: "1.1", Start: c.start}
	c.fwd = l.getBuf(c.reqLen + 1024)
	c.fwd, c.fwdMeta = c.req.AppendForward(c.fwd, c.in, &c.fw)
	c.fwd = append(c.fwd, c.in[n:c.reqLen]...)
	return l.pickAndSend(c)
}

// tryPick is App.Pick for the loop, which must never wait: ok is false
// when Pick would (the app is not running, or every dyno is quarantined
// and none has refused this request), and the request then goes to the
// goroutine path, which waits.
func (a *App) tryPick(refused bool) (b Backend, code Code, ok bool) {
	a.requested()
	if a.maintenance.Load() != nil {
		return Backend{}, H80, true
	}
	if a.State() != Running {
		return Backend{}, OK, false
	}
	b, err := a.picker.Pick()
	if err == nil {
		return b, OK, true
	}
	if refused && errors.Is(err, ErrAllQuarantined) {
		return Backend{}, H21, true
	}
	return Backend{}, OK, false
}

// pickAndSend picks a dyno and sends the request to it, on a pooled
// connection when the loop has one.
func (l *evloop) pickAndSend(c *lclient) bool {
	b, code, ok := c.app.tryPick(c.refused)
	if !ok {
		return l.handOff(c)
	}
	c.attempts++
	if code == OK && c.attempts > maxAttempts {
		code = H21
	}
	if code != OK {
		l.fail(c, code, !c.req.HasBody()) // H21 names the last dyno that refused, as Heroku's line does
		return c.state != csClosed
	}
	c.dyno = b
	p := l.pool(b.Addr)
	if p.sa == nil {
		return l.handOff(c) // a name, not an address: the goroutine path dials it
	}
	for n := len(p.idle); n > 0; n = len(p.idle) {
		be := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if l.now.Sub(be.last) >= l.s.r.cfg.BackendIdle {
			l.closeBackend(be)
			continue
		}
		be.reused = true
		l.attach(c, be)
		c.connect = 0
		return l.sendRequest(be)
	}
	return l.connect(c, p)
}

// attach makes be serve c's request.
func (l *evloop) attach(c *lclient, be *lbackend) {
	c.be, be.client = be, c
	be.state = bsWriting
	be.since = l.now
	be.gotBytes = false
	c.fwdOff = 0
}

// connect opens a new connection to c's dyno.
func (l *evloop) connect(c *lclient, p *lpool) bool {
	domain := unix.AF_INET
	if _, ok := p.sa.(*unix.SockaddrInet6); ok {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		// Out of descriptors or memory: the router's trouble, not the
		// dyno's. A hand-off would need a descriptor too (it dups the
		// client's), so the loop answers H99 itself.
		l.fail(c, H99, false)
		return c.state != csClosed
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	be := l.newBackend(fd, p)
	gen, err := l.register(fd, nil, be)
	if err != nil {
		unix.Close(fd)
		l.freeB = append(l.freeB, be)
		return l.handOff(c)
	}
	be.gen = gen
	l.attach(c, be)
	be.state = bsConnecting
	be.connStart = l.now
	err = unix.Connect(fd, p.sa)
	switch err {
	case nil:
		c.connect = 0
		return l.sendRequest(be)
	case unix.EINPROGRESS:
		return true // EPOLLOUT says when it is done
	}
	return l.connectFailed(be, err)
}

// connectFailed handles a connection the dyno did not take: refused (or
// reset), so the dyno is quarantined and the request tries another. A
// failure of the router's own (dialFailure: out of ephemeral ports, say)
// is H99, and the dyno stays in the rotation.
func (l *evloop) connectFailed(be *lbackend, err error) bool {
	c := be.client
	if dialFailure(err) == dialLocal {
		l.fail(c, H99, false)
		return c.state != csClosed
	}
	be.client, c.be = nil, nil
	l.closeBackend(be)
	c.app.Quarantine(c.dyno)
	c.refused = true
	return l.pickAndSend(c)
}

// sendRequest writes the request to the dyno.
func (l *evloop) sendRequest(be *lbackend) bool {
	c := be.client
	for c.fwdOff < len(c.fwd) {
		n, err := unix.Write(be.fd, c.fwd[c.fwdOff:])
		if n > 0 {
			c.fwdOff += n
			if c.fwdOff < len(c.fwd) {
				return true // the socket is full: EPOLLOUT
			}
			break
		}
		if err == unix.EAGAIN {
			return true
		}
		return l.backendLost(be, err)
	}
	be.state = bsWaiting
	be.since = l.now
	c.sent = l.now
	return true
}

// ---- dynos ----

type backendState uint8

const (
	bsIdle       backendState = iota // in its pool
	bsConnecting                     // connect in progress
	bsWriting                        // the request is being written
	bsWaiting                        // the request is written; no response byte yet
	bsHead                           // part of the response head read
	bsBody                           // the response body is being relayed
)

// lbackend is one connection to a dyno in a loop.
type lbackend struct {
	fd        int
	gen       uint32
	pool      *lpool
	state     backendState
	client    *lclient
	in        []byte
	reused    bool // it served a request before this one
	gotBytes  bool // the dyno sent a byte of this response
	paused    bool // back-pressure: the client has not taken what was read
	hup       bool // the dyno shut down its side: read on to the end of file
	since     time.Time
	connStart time.Time
	last      time.Time // the last byte from the dyno, or when it was pooled
}

func (l *evloop) newBackend(fd int, p *lpool) *lbackend {
	var b *lbackend
	if n := len(l.freeB); n > 0 {
		b = l.freeB[n-1]
		l.freeB = l.freeB[:n-1]
	} else {
		b = &lbackend{}
	}
	*b = lbackend{fd: fd, pool: p, last: l.now}
	return b
}

func (l *evloop) backendEvent(be *lbackend, ev uint32) {
	switch be.state {
	case bsIdle:
		// A pooled connection the dyno closed (or wrote to unasked):
		// it is no good for a request.
		if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			be.pool.remove(be)
			l.closeBackend(be)
		}
	case bsConnecting:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		soerr, err := unix.GetsockoptInt(be.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = unix.Errno(soerr)
		}
		if err != nil {
			l.connectFailed(be, err)
			return
		}
		be.client.connect = l.now.Sub(be.connStart)
		be.state = bsWriting
		l.sendRequest(be)
	case bsWriting:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			gen := be.gen
			l.sendRequest(be)
			// be may be closed, or serving another connection, when the
			// write failed and the request went elsewhere.
			if be.gen != gen || be.state == bsWriting {
				return
			}
		}
		if ev&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0 {
			be.hup = be.hup || ev&unix.EPOLLRDHUP != 0
			l.readBackend(be)
		}
	default:
		if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			be.hup = true
		}
		if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.readBackend(be)
		}
	}
}

// readBackend reads the dyno's response and relays it to the client.
func (l *evloop) readBackend(be *lbackend) {
	c := be.client
	for {
		if len(c.out)-c.outOff >= outHigh {
			be.paused = true // resumed by flush once the client took it
			return
		}
		if be.in == nil {
			be.in = l.getBuf(smallBuf)
		}
		room := cap(be.in) - len(be.in)
		n, err := unix.Read(be.fd, be.in[len(be.in):cap(be.in)])
		if n > 0 {
			be.in = be.in[:len(be.in)+n]
			be.last = l.now
			be.gotBytes = true
			if !l.relay(be) {
				return // the request is over; be may serve another already
			}
			if n < room && !be.hup { // see readClient on short reads
				l.flush(c)
				return
			}
			if len(c.out)-c.outOff >= smallBuf && !l.flush(c) {
				return
			}
			continue
		}
		if err == unix.EAGAIN {
			l.flush(c)
			return
		}
		l.backendEOF(be, err)
		return
	}
}

// relay moves what was read from the dyno to the client's buffer. It
// returns false once the request is over.
func (l *evloop) relay(be *lbackend) bool {
	c := be.client
	if be.state == bsWaiting || be.state == bsHead {
		be.state = bsHead
		for {
			n, err := c.resp.Parse(be.in)
			if err != nil {
				l.backendBroke(be, H25)
				return false
			}
			if n == 0 {
				if len(be.in) == cap(be.in) {
					if cap(be.in) >= bigBuf {
						l.backendBroke(be, H25)
						return false
					}
					be.in = l.grow(be.in, bigBuf-len(be.in))
				}
				return true
			}
			if c.resp.Status == 101 {
				l.backendBroke(be, H25) // the loop sends no upgrade
				return false
			}
			if c.resp.Status >= 200 {
				return l.startResponse(be, n)
			}
			// 1xx: the router answers 100 Continue itself; drop others.
			be.in = be.in[:copy(be.in, be.in[n:])]
			if len(be.in) == 0 {
				return true
			}
		}
	}
	return l.relayBody(be, be.in)
}

// startResponse writes the client the response head parsed from the
// first n bytes of be.in, and relays the body bytes that came with it.
func (l *evloop) startResponse(be *lbackend, n int) bool {
	c := be.client
	r := &c.resp
	head := c.req.IsHead(c.in)
	switch {
	case r.Bodiless(head):
		c.mode = bodyNone
	case r.Chunked:
		c.mode = bodyChunks
		c.chunks = ChunkScanner{}
	case r.ContentLength >= 0:
		c.mode, c.remain = bodyLength, r.ContentLength
	default:
		c.mode = bodyClose
		c.keepAlive = false
	}
	if l.s.stopping.Load() || l.s.r.shutdown.Load() {
		c.keepAlive = false
	}
	c.status = r.Status
	l.outRoom(c, n+256)
	before := len(c.out)
	c.out = r.AppendForward(c.out, be.in, ClientFraming{Chunked: c.mode == bodyChunks, KeepAlive: c.keepAlive, Minor: c.req.Minor})
	c.bytes = int64(len(c.out) - before) // bytes= counts the head, as the goroutine path's does
	c.replied = true
	be.state = bsBody
	return l.relayBody(be, be.in[n:])
}

// relayBody appends body bytes b from the dyno to the client's output
// and finishes the request at the body's end. It returns false once the
// request is over.
func (l *evloop) relayBody(be *lbackend, b []byte) bool {
	c := be.client
	extra := false
	switch c.mode {
	case bodyNone:
		extra = len(b) > 0
	case bodyLength:
		k := int(min(int64(len(b)), c.remain))
		l.outRoom(c, k)
		c.out = append(c.out, b[:k]...)
		c.remain -= int64(k)
		c.bytes += int64(k)
		extra = k < len(b)
	case bodyChunks:
		k, _, err := c.chunks.Scan(b)
		if err != nil {
			be.in = be.in[:0]
			l.backendBroke(be, H18)
			return false
		}
		l.outRoom(c, k)
		c.out = append(c.out, b[:k]...)
		c.bytes += int64(k)
		extra = k < len(b)
	case bodyClose:
		l.outRoom(c, len(b))
		c.out = append(c.out, b...)
		c.bytes += int64(len(b))
	}
	be.in = be.in[:0]
	var over bool
	switch c.mode {
	case bodyNone:
		over = true
	case bodyLength:
		over = c.remain == 0
	case bodyChunks:
		over = c.chunks.state == chunkDone
	}
	if !over {
		return true
	}
	// A dyno that sent more than its response, or asked to close, does
	// not get the connection back.
	l.finish(c, OK, !extra && !c.resp.Close && !be.hup && c.fwdOff == len(c.fwd))
	return false
}

// backendEOF handles the dyno closing the connection, or an error
// reading it.
func (l *evloop) backendEOF(be *lbackend, err error) {
	c := be.client
	switch be.state {
	case bsBody:
		if c.mode == bodyClose && err == nil {
			l.finish(c, OK, false)
			return
		}
		l.backendBroke(be, H18)
	case bsHead:
		l.backendBroke(be, H13)
	default:
		l.backendLost(be, err)
	}
}

// backendLost handles a connection that died before any byte of the
// response, as the goroutine path does: a fresh one reset or refused is
// a refusal (quarantine, another dyno); a pooled one the dyno had closed
// gets the request again, once, on a fresh connection, when the method
// allows it (as Go's Transport does); otherwise H13.
func (l *evloop) backendLost(be *lbackend, err error) bool {
	c := be.client
	be.client, c.be = nil, nil
	reused, writing := be.reused, be.state == bsWriting
	l.closeBackend(be)
	if !reused && writing && (err == unix.ECONNRESET || err == unix.EPIPE || err == unix.ECONNREFUSED) {
		c.app.Quarantine(c.dyno)
		c.refused = true
		return l.pickAndSend(c)
	}
	if !reused && err == unix.ECONNRESET && !c.retried && c.req.Idempotent(c.in) {
		// Reset unanswered after the request went out, on a connection
		// just made: the dyno never took it (errReset says when), so
		// as a refusal, once.
		c.retried = true
		c.app.Quarantine(c.dyno)
		c.refused = true
		return l.pickAndSend(c)
	}
	if reused && !c.retried && c.req.Idempotent(c.in) {
		c.retried = true
		c.fwdOff = 0
		return l.connect(c, l.pool(c.dyno.Addr))
	}
	l.fail(c, H13, false)
	return c.state != csClosed
}

// backendBroke ends a request whose dyno broke the exchange (code H13,
// H18 or H25): the connection is closed and the client gets an error
// page, or, when part of the response went out already, is cut off.
func (l *evloop) backendBroke(be *lbackend, code Code) {
	c := be.client
	be.client, c.be = nil, nil
	l.closeBackend(be)
	l.fail(c, code, false)
}

// fail ends c's request with an error code, as the goroutine path's
// fail: the error page when no response has started (keepAlive says the
// connection may stay open after it), else the connection is cut after
// what was sent; the log line has the code's status either way.
func (l *evloop) fail(c *lclient, code Code, keepAlive bool) {
	if be := c.be; be != nil {
		be.client, c.be = nil, nil
		l.closeBackend(be)
	}
	c.status = code.Status()
	if c.replied {
		c.keepAlive = false
	} else {
		c.keepAlive = keepAlive && c.keepAlive
		l.outRoom(c, 2048)
		c.out = AppendPage(c.out, code.Status(), c.app.Page(code), c.keepAlive, c.req.Minor, c.req.IsHead(c.in))
	}
	l.finish(c, code, false)
}

// clientGone ends c: the client hung up or its socket failed. A request
// in flight is logged H27 when no response had started, else as served,
// as the goroutine path logs it.
func (l *evloop) clientGone(c *lclient) {
	if c.state != csBusy {
		l.closeClient(c)
		return
	}
	if be := c.be; be != nil {
		be.client, c.be = nil, nil
		l.closeBackend(be)
	}
	code := OK
	if !c.replied {
		code, c.status = H27, H27.Status()
	}
	l.logRequest(c, code)
	l.closeClient(c)
}

func (l *evloop) logRequest(c *lclient, code Code) {
	ln := &l.line
	*ln = LogLine{
		Code:      code,
		Method:    unsafeString(c.req.Method.In(c.in)),
		Path:      unsafeString(c.req.Target.In(c.in)),
		Host:      unsafeString(c.req.Host.In(c.in)),
		RequestID: unsafeString(c.fwdMeta.RequestID.In(c.fwd)),
		Fwd:       unsafeString(c.fwdMeta.Fwd.In(c.fwd)),
		Dyno:      c.dyno.Dyno,
		Connect:   c.connect,
		Service:   -1,
		Status:    c.status,
		Bytes:     -1,
		Protocol:  l.s.proto,
	}
	if !c.sent.IsZero() && c.dyno.Dyno != "" {
		ln.Service = l.now.Sub(c.sent)
	}
	if c.replied {
		ln.Bytes = c.bytes
	}
	l.log(c.app, ln)
}

// finish ends c's request: the log line, the dyno connection back to its
// pool (reuse) or closed, and the client on to its next request, or
// closed once the response is out.
func (l *evloop) finish(c *lclient, code Code, reuse bool) {
	l.logRequest(c, code)
	if be := c.be; be != nil {
		be.client, c.be = nil, nil
		if reuse && !l.s.stopping.Load() && len(be.pool.idle) < loopMaxIdlePerBackend {
			be.state = bsIdle
			be.last = l.now
			be.paused = false
			l.putBuf(be.in)
			be.in = nil
			be.pool.idle = append(be.pool.idle, be)
		} else {
			l.closeBackend(be)
		}
	}
	l.putBuf(c.fwd)
	c.fwd = nil
	c.sent = time.Time{}
	c.dyno = Backend{}
	c.app = nil
	c.in = c.in[:copy(c.in, c.in[c.reqLen:])]
	c.reqLen = 0
	if !c.keepAlive || l.s.stopping.Load() {
		c.state = csClosing
		l.flush(c)
		return
	}
	c.state = csIdle
	c.start = l.now
	if !l.flush(c) {
		return
	}
	if len(c.in) > 0 {
		if !l.serve(c) {
			return
		}
	}
	if c.inReady && c.state != csBusy {
		l.readClient(c)
	} else if len(c.in) == 0 && c.in != nil {
		l.putBuf(c.in)
		c.in = nil
	}
}

// flush writes the client what is waiting for it. It returns false when c
// was closed.
func (l *evloop) flush(c *lclient) bool {
	for c.outOff < len(c.out) {
		n, err := unix.Write(c.fd, c.out[c.outOff:])
		if n > 0 {
			c.outOff += n
			c.last = l.now
			if c.outOff < len(c.out) {
				return true // the socket is full: EPOLLOUT resumes
			}
			break
		}
		if err == unix.EAGAIN {
			return true
		}
		l.clientGone(c)
		return false
	}
	if c.out != nil {
		l.putBuf(c.out)
		c.out, c.outOff = nil, 0
	}
	if c.state == csClosing {
		l.closeClient(c)
		return false
	}
	if be := c.be; be != nil && be.paused {
		be.paused = false
		l.readBackend(be)
		return c.state != csClosed
	}
	return true
}

const csClosed clientState = 255

func (l *evloop) closeClient(c *lclient) {
	if c.state == csClosed {
		return
	}
	if be := c.be; be != nil {
		be.client, c.be = nil, nil
		l.closeBackend(be)
	}
	l.forget(c.fd)
	unix.Close(c.fd)
	l.clients--
	l.releaseClient(c)
}

func (l *evloop) releaseClient(c *lclient) {
	l.putBuf(c.in)
	l.putBuf(c.out)
	l.putBuf(c.fwd)
	c.in, c.out, c.fwd = nil, nil, nil
	c.app = nil
	c.state = csClosed
	l.freeC = append(l.freeC, c)
}

func (l *evloop) closeBackend(be *lbackend) {
	be.gen = 0 // no event matches it any more
	l.forget(be.fd)
	unix.Close(be.fd)
	l.putBuf(be.in)
	be.in = nil
	be.client = nil
	l.freeB = append(l.freeB, be)
}

// handOff gives c, with the bytes it sent that the loop read, to the
// goroutine path: the loop leaves it (EPOLL_CTL_DEL), net.FileConn
// duplicates the descriptor onto Go's poller, and the original is
// closed. It returns false: c is no longer the loop's.
func (l *evloop) handOff(c *lclient) bool {
	if be := c.be; be != nil {
		be.client, c.be = nil, nil
		l.closeBackend(be)
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.forget(c.fd)
	l.clients--
	var pending, buffered []byte
	if c.outOff < len(c.out) {
		// A response the loop has not finished writing goes first, from
		// the goroutine: the loop never blocks on a client.
		pending = append([]byte(nil), c.out[c.outOff:]...)
	}
	if len(c.in) > 0 {
		buffered = append([]byte(nil), c.in...)
	}
	f := os.NewFile(uintptr(c.fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	l.releaseClient(c)
	if err != nil {
		return false
	}
	l.s.r.serveHandedOff(nc, l.s.proto, l.s.port, pending, buffered)
	return false
}

// sweep enforces the timeouts, once a second, by each connection's
// state: a request still connecting is not waiting for its first byte.
func (l *evloop) sweep() {
	cfg := &l.s.r.cfg
	if l.acceptPaused && l.listenerIn && !l.s.stopping.Load() {
		l.acceptPaused = false
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.s.lnfd,
			&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.s.lnfd)})
	}
	for fd := range l.fds {
		e := l.fds[fd]
		if c := e.c; c != nil {
			switch c.state {
			case csIdle:
				if c.outOff == len(c.out) && l.now.Sub(c.last) >= cfg.ClientIdle {
					l.closeClient(c)
				}
			case csHead:
				if l.now.Sub(c.start) >= cfg.HeadTimeout {
					l.closeClient(c) // quietly, as the goroutine path closes a slow head
				}
			case csBody:
				if l.now.Sub(c.last) >= cfg.Idle {
					// The goroutine path sends the head and reads the rest
					// of the body, H28 when it stops coming.
					l.handOff(c)
				}
			case csBusy, csClosing:
				if c.outOff < len(c.out) && l.now.Sub(c.last) >= cfg.Idle {
					l.clientGone(c) // the client stopped reading
				}
			}
			continue
		}
		be := e.b
		if be == nil {
			continue
		}
		switch be.state {
		case bsIdle:
			if l.now.Sub(be.last) >= cfg.BackendIdle {
				be.pool.remove(be)
				l.closeBackend(be)
			}
		case bsConnecting:
			if l.now.Sub(be.connStart) >= cfg.Connect {
				be.client.connect = l.now.Sub(be.connStart)
				l.fail(be.client, H19, !be.client.req.HasBody())
			}
		case bsWriting, bsWaiting, bsHead:
			if l.now.Sub(be.since) >= cfg.FirstByte {
				l.fail(be.client, H12, false)
			}
		case bsBody:
			if !be.paused && l.now.Sub(be.last) >= cfg.Idle {
				l.fail(be.client, H15, false)
			}
		}
	}
}
