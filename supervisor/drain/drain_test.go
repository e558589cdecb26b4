package drain

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
)

// fast are options for tests: back-off in milliseconds, reports in the
// test's log.
func fast(t *testing.T, buffer int) Options {
	return Options{Buffer: buffer, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Logf: t.Logf}
}

// readFrames reads octet-counted frames from r and sends each to out.
func readFrames(r io.Reader, out chan<- string) {
	br := bufio.NewReader(r)
	for {
		s, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(s, " "))
		if err != nil {
			out <- "bad length " + s
			return
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return
		}
		out <- string(b)
	}
}

// serveSyslog accepts connections on ln and reads frames from each.
func serveSyslog(t *testing.T, ln net.Listener) <-chan string {
	out := make(chan string, 100000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go readFrames(c, out)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return out
}

func send(d *Drain, from, to int) {
	for i := from; i <= to; i++ {
		d.Send(Line{Time: stamp(time.Now()), Source: "app", Proc: "web.1", Msg: "line " + strconv.Itoa(i)})
	}
}

var (
	lineMsg = regexp.MustCompile(` app web\.1 -( -)? line (\d+)$`)
	l10Msg  = regexp.MustCompile(` heroku logplex -( -)? Error L10 \(output buffer overflow\): (\d+) messages dropped since \S+\.$`)
)

// collect reads frames until line last arrives and returns the line
// numbers in the order they came and the L10 counts.
func collect(t *testing.T, frames <-chan string, last int) (nums, l10 []int) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case f := <-frames:
			if m := lineMsg.FindStringSubmatch(f); m != nil {
				n, _ := strconv.Atoi(m[2])
				nums = append(nums, n)
				if n == last {
					return nums, l10
				}
			} else if m := l10Msg.FindStringSubmatch(f); m != nil {
				n, _ := strconv.Atoi(m[2])
				l10 = append(l10, n)
			} else {
				t.Fatalf("unexpected frame %q", f)
			}
		case <-timeout:
			t.Fatalf("line %d never arrived; got %d lines, last %v", last, len(nums), nums[max(0, len(nums)-3):])
		}
	}
}

// inOrder fails unless nums are ascending without repeats.
func inOrder(t *testing.T, nums []int) {
	t.Helper()
	for i := 1; i < len(nums); i++ {
		if nums[i] <= nums[i-1] {
			t.Fatalf("line %d after line %d: out of order or repeated", nums[i], nums[i-1])
		}
	}
}

// While the drain is up, every line arrives once and in order.
func TestSyslogEveryLineInOrder(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	frames := serveSyslog(t, ln)
	d, err := New("syslog://"+ln.Addr().String(), "d.test", fast(t, 10000))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(t.Context())
	const n = 5000
	send(d, 1, n)
	nums, l10 := collect(t, frames, n)
	inOrder(t, nums)
	if len(nums) != n || len(l10) != 0 {
		t.Errorf("got %d lines and L10s %v; want all %d and no L10", len(nums), l10, n)
	}
}

// unusedAddr is a loopback address nothing listens on, yet.
func unusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A drain that is down keeps its newest lines; once up it gets the L10
// with the count of the dropped ones, then the kept lines in order.
func TestSyslogDownThenUp(t *testing.T) {
	t.Parallel()
	addr := unusedAddr(t)
	d, err := New("syslog://"+addr, "d.test", fast(t, 100))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(t.Context())
	send(d, 1, 250)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	frames := serveSyslog(t, ln)
	first := <-frames
	if m := l10Msg.FindStringSubmatch(first); m == nil || m[2] != "150" {
		t.Fatalf("first frame %q; want L10 with 150 dropped", first)
	}
	if !strings.Contains(first, " d.test heroku logplex - - ") {
		t.Errorf("L10 frame %q: want the token as host and heroku[logplex] as its source", first)
	}
	nums, _ := collect(t, frames, 250)
	inOrder(t, nums)
	if len(nums) != 100 || nums[0] != 151 {
		t.Errorf("got %d lines from %d; want 151..250", len(nums), nums[0])
	}
}

// syslog+tls verifies the collector's certificate: against the test's
// own CA it delivers, without it the drain stays down.
func TestSyslogTLS(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM := testutil.SelfSigned(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "localhost")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	frames := serveSyslog(t, ln)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	u := "syslog+tls://localhost:" + port

	untrusted := make(chan string, 10)
	opts := fast(t, 100)
	opts.Logf = func(format string, args ...any) { untrusted <- fmt.Sprintf(format, args...) }
	bad, err := New(u, "d.bad", opts)
	if err != nil {
		t.Fatal(err)
	}
	send(bad, 1, 1)
	if msg := <-untrusted; !strings.Contains(msg, "certificate") {
		t.Errorf("untrusted drain reported %q; want a certificate error", msg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	bad.Close(ctx) // down: its line is given up when ctx ends
	cancel()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	opts = fast(t, 1000)
	opts.RootCAs = pool
	d, err := New(u, "d.good", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(t.Context())
	send(d, 1, 500)
	nums, l10 := collect(t, frames, 500)
	inOrder(t, nums)
	if len(nums) != 500 || len(l10) != 0 {
		t.Errorf("got %d lines, L10s %v; want 500 and none", len(nums), l10)
	}
}

// An HTTPS drain gets POSTs of octet-counted frames with Logplex's
// headers. While it answers 503 its batch is kept and sent again with
// the same frame id; lines past the buffer are dropped and counted, so
// that what arrives and what the L10 says add up to what was sent.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		down     = true
		failedID string
		frames   = make(chan string, 100000)
	)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Logplex-Frame-Id")
		mu.Lock()
		defer mu.Unlock()
		if down {
			failedID = id
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if failedID != "" && id != failedID {
			t.Errorf("batch retried with frame id %q, first sent with %q", id, failedID)
		}
		failedID = ""
		for h, want := range map[string]string{"Content-Type": "application/logplex-1", "Logplex-Drain-Token": "d.https", "User-Agent": "Logplex/dyno"} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
		ch := make(chan string, 1000)
		readFrames(r.Body, ch)
		close(ch)
		count := 0
		for f := range ch {
			if !strings.Contains(f, " host ") {
				t.Errorf("frame %q: want host as HOSTNAME", f)
			}
			frames <- f
			count++
		}
		if n := r.Header.Get("Logplex-Msg-Count"); n != strconv.Itoa(count) {
			t.Errorf("Logplex-Msg-Count %s, body %d frames", n, count)
		}
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	opts := fast(t, 100)
	opts.RootCAs = pool
	d, err := New(srv.URL+"/logs", "d.https", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(t.Context())
	send(d, 1, 300)
	mu.Lock()
	down = false
	mu.Unlock()
	nums, l10 := collect(t, frames, 300)
	inOrder(t, nums)
	dropped := 0
	for _, n := range l10 {
		dropped += n
	}
	if len(nums)+dropped != 300 || len(l10) > 1 {
		t.Errorf("%d lines arrived, L10s %v; want one L10 with the other %d", len(nums), l10, 300-len(nums))
	}
	// Up, with room in the buffer: the next lines all arrive.
	send(d, 301, 400)
	more, l10 := collect(t, frames, 400)
	inOrder(t, more)
	if len(more) != 100 || len(l10) != 0 {
		t.Errorf("while up: %d lines, L10s %v; want 100, none", len(more), l10)
	}
}
