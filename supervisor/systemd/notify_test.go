package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listen binds a unix datagram socket at name, as systemd binds
// NOTIFY_SOCKET, and closes it when the test ends.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recv returns the next datagram on c, waiting at most wait; ok is false
// when none came.
func recv(t *testing.T, c *net.UnixConn, wait time.Duration) (msg string, ok bool) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n]), true
}

// expect reads the next datagram on c and checks that it is want.
func expect(t *testing.T, c *net.UnixConn, want string) {
	t.Helper()
	got, ok := recv(t, c, 5*time.Second)
	if !ok {
		t.Fatalf("no datagram in 5s, want %q", want)
	}
	if got != want {
		t.Fatalf("datagram %q, want %q", got, want)
	}
}

// expectNone checks that no datagram is waiting on c.
func expectNone(t *testing.T, c *net.UnixConn) {
	t.Helper()
	if got, ok := recv(t, c, 20*time.Millisecond); ok {
		t.Fatalf("unexpected datagram %q", got)
	}
}

func TestNotifierMessages(t *testing.T) {
	sockets := map[string]string{
		"path":     filepath.Join(t.TempDir(), "notify"),
		"abstract": fmt.Sprintf("@dyno-systemd-test-%d", os.Getpid()),
	}
	for kind, addr := range sockets {
		t.Run(kind, func(t *testing.T) {
			c := listen(t, addr)
			n := NewNotifier([]string{"HOME=/root", "NOTIFY_SOCKET=" + addr})
			steps := []struct {
				send func() error
				want string
			}{
				{n.Ready, "READY=1"},
				{func() error { return n.Status("2 apps, 5 dynos up") }, "STATUS=2 apps, 5 dynos up"},
				// A status cannot smuggle in an assignment of its own.
				{func() error { return n.Status("a\nREADY=1\r\nb") }, "STATUS=a READY=1 b"},
				{n.Watchdog, "WATCHDOG=1"},
				{n.Stopping, "STOPPING=1"},
			}
			for _, s := range steps {
				if err := s.send(); err != nil {
					t.Fatalf("sending %q: %v", s.want, err)
				}
				expect(t, c, s.want)
			}
			expectNone(t, c)
		})
	}
}

func TestNotifierWithoutSystemd(t *testing.T) {
	for name, n := range map[string]*Notifier{
		"no NOTIFY_SOCKET": NewNotifier([]string{"WATCHDOG_USEC=30000000", "WATCHDOG_PID=" + strconv.Itoa(os.Getpid())}),
		"empty":            NewNotifier([]string{"NOTIFY_SOCKET="}),
		"zero":             new(Notifier),
	} {
		t.Run(name, func(t *testing.T) {
			for _, err := range []error{n.Ready(), n.Status("up"), n.Watchdog(), n.Stopping()} {
				if err != nil {
					t.Errorf("got %v, want a no-op", err)
				}
			}
			if d := n.WatchdogInterval(); d != 0 {
				t.Errorf("WatchdogInterval = %v, want 0", d)
			}
			// Returns at once, without asking: nobody listens.
			n.RunWatchdog(context.Background(), func() bool {
				t.Error("healthy called without a watchdog")
				return true
			})
		})
	}
}

func TestNotifierErrors(t *testing.T) {
	for name, addr := range map[string]string{
		"vsock":    "vsock:2:1234",
		"relative": "notify.sock",
		"missing":  filepath.Join(t.TempDir(), "gone"),
	} {
		t.Run(name, func(t *testing.T) {
			n := NewNotifier([]string{"NOTIFY_SOCKET=" + addr})
			if err := n.Ready(); err == nil {
				t.Errorf("Ready to %q: no error", addr)
			}
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	const sock = "NOTIFY_SOCKET=@dyno-unused"
	own := strconv.Itoa(os.Getpid())
	other := strconv.Itoa(os.Getpid() + 1)
	for _, tc := range []struct {
		name    string
		environ []string
		want    time.Duration
	}{
		{"pid unset", []string{sock, "WATCHDOG_USEC=30000000"}, 15 * time.Second},
		{"own pid", []string{sock, "WATCHDOG_USEC=30000000", "WATCHDOG_PID=" + own}, 15 * time.Second},
		{"other pid", []string{sock, "WATCHDOG_USEC=30000000", "WATCHDOG_PID=" + other}, 0},
		{"bad pid", []string{sock, "WATCHDOG_USEC=30000000", "WATCHDOG_PID=x"}, 0},
		{"tiny", []string{sock, "WATCHDOG_USEC=20000", "WATCHDOG_PID=" + own}, 10 * time.Millisecond},
		{"first wins", []string{sock, "WATCHDOG_USEC=4000000", "WATCHDOG_USEC=8000000"}, 2 * time.Second},
		{"usec unset", []string{sock, "WATCHDOG_PID=" + own}, 0},
		{"usec zero", []string{sock, "WATCHDOG_USEC=0"}, 0},
		{"usec bad", []string{sock, "WATCHDOG_USEC=30s"}, 0},
		{"usec negative", []string{sock, "WATCHDOG_USEC=-5"}, 0},
		{"usec infinity", []string{sock, "WATCHDOG_USEC=18446744073709551615"}, 0},
		{"no socket", []string{"WATCHDOG_USEC=30000000", "WATCHDOG_PID=" + own}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewNotifier(tc.environ).WatchdogInterval(); got != tc.want {
				t.Errorf("WatchdogInterval = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRunWatchdog(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "notify")
	c := listen(t, addr)
	n := NewNotifier([]string{
		"NOTIFY_SOCKET=" + addr,
		"WATCHDOG_USEC=20000", // a ping every 10 ms
		"WATCHDOG_PID=" + strconv.Itoa(os.Getpid()),
	})

	var ok atomic.Bool
	ok.Store(true)
	// refused receives when healthy has said false: the ticks that
	// must not have sent a ping.
	refused := make(chan struct{}, 1)
	healthy := func() bool {
		if ok.Load() {
			return true
		}
		select {
		case refused <- struct{}{}:
		default:
		}
		return false
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		n.RunWatchdog(ctx, healthy)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()

	for range 3 {
		expect(t, c, "WATCHDOG=1")
	}

	ok.Store(false)
	<-refused
	// Every ping sent before healthy first said false is queued by now,
	// since a datagram is queued when sent: drain them.
	for {
		msg, got := recv(t, c, 20*time.Millisecond)
		if !got {
			break
		}
		if msg != "WATCHDOG=1" {
			t.Fatalf("datagram %q, want WATCHDOG=1", msg)
		}
	}
	// Three more ticks that found the daemon unhealthy, and no ping.
	for range 3 {
		<-refused
	}
	expectNone(t, c)

	// Healthy again: the pings resume.
	ok.Store(true)
	expect(t, c, "WATCHDOG=1")

	cancel()
	<-done
}

func TestRunWatchdogOtherPid(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "notify")
	c := listen(t, addr)
	n := NewNotifier([]string{
		"NOTIFY_SOCKET=" + addr,
		"WATCHDOG_USEC=20000",
		"WATCHDOG_PID=" + strconv.Itoa(os.Getpid()+1),
	})
	// The watchdog is another process's: return at once, ping nothing.
	n.RunWatchdog(context.Background(), func() bool { return true })
	expectNone(t, c)
}
