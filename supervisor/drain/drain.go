package drain

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"
)

// Options configure a drain. The zero value is Logplex's behaviour.
type Options struct {
	// Buffer is how many lines wait for the drain before the oldest is
	// dropped; 0 means 1024, Logplex's.
	Buffer int
	// MinBackoff and MaxBackoff bound the wait between tries to reach
	// a drain that is down: it doubles from MinBackoff up to
	// MaxBackoff, with jitter. 0 means 1 s and 60 s.
	MinBackoff, MaxBackoff time.Duration
	// RootCAs are the CAs trusted for syslog+tls and https drains; nil
	// means the system's. Verification is never turned off.
	RootCAs *x509.CertPool
	// Logf gets the drain's own reports (down, up again); nil drops them.
	Logf func(format string, args ...any)
	// Now returns the time; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 60 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// batchLines is the most lines one write or POST carries. Logplex's
// HTTPS batches are about 100 KB; with the buffer at 1024 lines, a
// batch of 100 keeps a POST near that for typical lines.
const batchLines = 100

// A Drain sends lines to one drain URL.
type Drain struct {
	url   string
	token string
	opts  Options
	tr    transport

	mu      sync.Mutex
	q       *queue
	closing bool
	wake    chan struct{} // a line arrived, or Close was called

	cancel context.CancelFunc
	done   chan struct{}
}

// A transport delivers batches to a drain.
type transport interface {
	// connect readies the transport to send (a syslog connection);
	// it is called before each batch is taken from the buffer, so
	// lines stay there, and count towards drops, while the drain is
	// down.
	connect(ctx context.Context) error
	// send delivers lines; on error none may be taken as delivered,
	// and the same lines are sent again.
	send(ctx context.Context, lines []Line) error
	close()
}

// New starts a drain to rawURL, whose syslog frames carry token. rawURL
// must be syslog://, syslog+tls://, https:// or http://.
func New(rawURL, token string, opts Options) (*Drain, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("drain %s: %w", rawURL, err)
	}
	opts = opts.withDefaults()
	d := &Drain{url: rawURL, token: token, opts: opts, q: newQueue(opts.Buffer), wake: make(chan struct{}, 1), done: make(chan struct{})}
	switch u.Scheme {
	case "syslog", "syslog+tls":
		d.tr = &syslogTransport{addr: u.Host, tls: u.Scheme == "syslog+tls", host: u.Hostname(), token: token, roots: opts.RootCAs}
	case "https", "http":
		d.tr = newHTTPTransport(u, token, opts.RootCAs)
	default:
		return nil, fmt.Errorf("drain %s: scheme %q is not a drain's", rawURL, u.Scheme)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go d.run(ctx)
	return d, nil
}

// URL returns the drain's URL.
func (d *Drain) URL() string { return d.url }

// Send queues l for the drain. It never blocks on the drain: when the
// buffer is full the oldest line is dropped instead.
func (d *Drain) Send(l Line) { d.sendAt(l, d.opts.Now()) }

// sendAt is Send at now, which a Manager reads once for a whole write.
// The sender is woken only when the queue was empty: it takes every
// line there is before it waits again (run), so one wake a batch, not
// one a line, which would cost the writer a goroutine switch a line.
func (d *Drain) sendAt(l Line, now time.Time) {
	d.mu.Lock()
	wake := d.q.empty()
	if !d.closing {
		d.q.push(l, now)
	}
	d.mu.Unlock()
	if wake {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// Close stops the drain once what it holds is delivered, or when ctx
// ends, whichever is first, and returns when its goroutine has ended.
func (d *Drain) Close(ctx context.Context) {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	stop := context.AfterFunc(ctx, d.cancel)
	defer stop()
	<-d.done
	d.cancel()
}

// run sends batches until the drain is closed and empty, or ctx ends.
func (d *Drain) run(ctx context.Context) {
	defer close(d.done)
	defer d.tr.close()
	var held []Line // taken but not yet delivered
	fails := 0
	for {
		if held == nil {
			d.mu.Lock()
			empty, closing := d.q.empty(), d.closing
			d.mu.Unlock()
			if empty {
				if closing {
					return
				}
				select {
				case <-d.wake:
					continue
				case <-ctx.Done():
					return
				}
			}
		}
		err := d.tr.connect(ctx)
		if err == nil {
			if held == nil {
				d.mu.Lock()
				held = d.q.take(batchLines, d.opts.Now())
				d.mu.Unlock()
			}
			err = d.tr.send(ctx, held)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fails++
			wait := d.backoff(fails)
			if fails == 1 {
				d.opts.Logf("drain %s: %v; retrying with back-off, lines kept (up to %d)", d.url, err, d.opts.Buffer)
			}
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		if fails > 0 {
			d.opts.Logf("drain %s: delivering again after %d failed tries", d.url, fails)
		}
		fails, held = 0, nil
	}
}

// backoff is the wait after the fails-th failure in a row: MinBackoff
// doubling up to MaxBackoff, less up to a fifth at random so that many
// drains to one collector do not retry in step.
func (d *Drain) backoff(fails int) time.Duration {
	w := d.opts.MinBackoff
	for i := 1; i < fails && w < d.opts.MaxBackoff; i++ {
		w *= 2
	}
	w = min(w, d.opts.MaxBackoff)
	return w - time.Duration(rand.Int64N(int64(w)/5+1))
}
