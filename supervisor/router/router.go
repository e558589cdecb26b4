package router

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config is how a Router behaves. Zero fields take Heroku's values.
type Config struct {
	Journal *Journal // router lines go here: Journal.Add(app.Name(), line); nil: none
	// Timeouts; zero means Heroku's: Connect 5 s (H19), FirstByte 30 s
	// (H12), Idle 55 s (H15 backend / H28 client mid-request), BootWait
	// 75 s (H20, passed to App.Pick as deadline = request start +
	// BootWait).
	Connect, FirstByte, Idle, BootWait time.Duration
	// ClientIdle: how long a keep-alive client connection may sit between
	// requests (default 60 s, then closed quietly). HeadTimeout: first
	// byte to end of a request head (slowloris bound; default 30 s).
	// BackendIdle: pooled backend connections are dropped after this idle
	// time (default 4 s, under Node's 5 s keep-alive).
	ClientIdle, HeadTimeout, BackendIdle time.Duration
	// EventLoops is how many epoll event loops serve a plain TCP
	// listener on Linux: 0 means one per core, a negative number none
	// (one goroutine per connection, as on other systems).
	EventLoops int
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&c.Connect, 5*time.Second)
	set(&c.FirstByte, 30*time.Second)
	set(&c.Idle, 55*time.Second)
	set(&c.BootWait, BootWait)
	set(&c.ClientIdle, 60*time.Second)
	set(&c.HeadTimeout, 30*time.Second)
	set(&c.BackendIdle, 4*time.Second)
}

// Router is dyno's HTTP router: it takes every request on its listeners,
// finds the app by Host, picks one of its web dynos and relays the
// request and the response, as Heroku's router does. One goroutine serves
// each client connection, on raw connections (no net/http on the plain
// HTTP path: its server and Transport cost 2–3× the CPU per request).
type Router struct {
	cfg   Config
	table atomic.Pointer[Table]
	pools pools
	bufs  sync.Pool // *[]byte of bufSize

	// done is an ended context: App.Pick with it answers at once, H27
	// standing for "it would have waited", so the common request costs no
	// context of its own.
	done context.Context

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	shutdown  atomic.Bool
	closed    chan struct{} // closed by Shutdown

	onWait    func()        // tests: a request starts waiting for a dyno to come up
	connsDone chan struct{} // signalled when a connection ends during Shutdown
	loops     loopSet
}

// bufSize is the size of the buffers a connection borrows while a request
// is in flight: a request head, a response head and a small body each fit.
const bufSize = 16 << 10

// New returns a router with no table: every host is unknown until
// SetTable.
func New(cfg Config) *Router {
	cfg.defaults()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	r := &Router{cfg: cfg, done: done, listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{},
		closed: make(chan struct{}), connsDone: make(chan struct{}, 1)}
	r.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	r.pools.init(cfg.BackendIdle, r.closed)
	return r
}

// SetTable swaps in the table requests are routed by, at once for new
// requests; it is safe at any time.
func (r *Router) SetTable(t *Table) { r.table.Store(t) }

// ErrRouterClosed is what Serve returns after Shutdown.
var ErrRouterClosed = errors.New("router: shut down")

// Serve serves plain HTTP/1.x on ln until ln is closed or Shutdown. proto
// is the X-Forwarded-Proto the dynos see and the log line's protocol=:
// "http".
func (r *Router) Serve(ln net.Listener, proto string) error {
	if !r.track(ln, true) {
		ln.Close()
		return ErrRouterClosed
	}
	defer r.track(ln, false)
	port := ""
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	if r.cfg.EventLoops >= 0 {
		if err, ok := r.serveLoops(ln, proto, port); ok {
			return err
		}
	}
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if r.shutdown.Load() {
				return ErrRouterClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of descriptors (EMFILE) or a transient failure: back
				// off as net/http does rather than spin.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := r.newConn(nc, proto, port)
		if !r.trackConn(c, true) {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

func (r *Router) track(ln net.Listener, add bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if add {
		if r.shutdown.Load() {
			return false
		}
		r.listeners[ln] = struct{}{}
	} else {
		delete(r.listeners, ln)
	}
	return true
}

func (r *Router) trackConn(c *conn, add bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if add {
		if r.shutdown.Load() {
			return false
		}
		r.conns[c] = struct{}{}
		return true
	}
	delete(r.conns, c)
	if r.shutdown.Load() {
		select {
		case r.connsDone <- struct{}{}:
		default:
		}
	}
	return true
}

// Shutdown stops accepting, closes client connections that wait between
// requests, and lets requests in flight finish until ctx ends; then it
// closes what is left and returns ctx's error.
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if !r.shutdown.Swap(true) {
		close(r.closed)
	}
	for ln := range r.listeners {
		ln.Close()
	}
	r.mu.Unlock()
	r.stopLoops()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		n := len(r.conns)
		for c := range r.conns {
			if c.idle.Load() {
				c.nc.Close()
			}
		}
		r.mu.Unlock()
		if n == 0 {
			r.pools.closeAll()
			return r.waitLoops(ctx)
		}
		select {
		case <-ctx.Done():
			r.mu.Lock()
			for c := range r.conns {
				c.nc.Close()
			}
			r.mu.Unlock()
			r.pools.closeAll()
			r.waitLoops(ctx)
			return ctx.Err()
		case <-r.connsDone:
		case <-tick.C:
		}
	}
}

// getBuf borrows a buffer of bufSize; putBuf gives it back. Pointers
// travel, so that neither allocates.
func (r *Router) getBuf() *[]byte { return r.bufs.Get().(*[]byte) }

func (r *Router) putBuf(b *[]byte) {
	if b != nil {
		r.bufs.Put(b)
	}
}

// log writes one router line for app through the Journal.
func (r *Router) log(app *App, l *LogLine, buf []byte) []byte {
	if r.cfg.Journal == nil || app == nil {
		return buf
	}
	buf = l.Append(buf[:0])
	r.cfg.Journal.Add(app.Name(), buf)
	return buf
}
