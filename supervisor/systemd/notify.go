package systemd

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// sendTimeout bounds one notification. systemd reads its socket at once,
// but a manager that is stuck (or a socket whose queue is full) must not
// also stop the daemon: a message that cannot be sent in this time is
// reported as an error, and the daemon carries on.
const sendTimeout = 5 * time.Second

// A Notifier tells systemd about the daemon's state with the sd_notify
// protocol (sd_notify(3)): each message is one datagram of newline-separated
// VARIABLE=value assignments, sent to the unix datagram socket that
// systemd names in $NOTIFY_SOCKET. A name starting with '@' is in the
// abstract namespace.
//
// The zero Notifier, like one made without NOTIFY_SOCKET (dyno daemon not
// run by systemd, or by a unit without Type=notify), sends nothing: every
// method returns nil, and WatchdogInterval is 0.
type Notifier struct {
	socket   string        // $NOTIFY_SOCKET; "" when not run by systemd
	watchdog time.Duration // $WATCHDOG_USEC, when it addresses this process
}

// NewNotifier returns the Notifier that environ, a list of "KEY=value"
// strings as os.Environ returns, asks for. It reads NOTIFY_SOCKET,
// WATCHDOG_USEC and WATCHDOG_PID; as with os.Getenv, the first of
// duplicate keys counts.
func NewNotifier(environ []string) *Notifier {
	n := &Notifier{socket: lookup(environ, "NOTIFY_SOCKET")}
	if n.socket == "" {
		return n
	}
	n.watchdog = watchdogTimeout(environ, os.Getpid())
	return n
}

// watchdogTimeout returns the watchdog timeout that environ gives the
// process pid, 0 when none. systemd sets WATCHDOG_USEC for the service's
// main process and WATCHDOG_PID to that process's pid, so that a child
// that inherits the environment does not take the watchdog for its own;
// an unset WATCHDOG_PID (systemd before 209) means this process
// (sd_watchdog_enabled(3)).
func watchdogTimeout(environ []string, pid int) time.Duration {
	usec, err := strconv.ParseUint(lookup(environ, "WATCHDOG_USEC"), 10, 64)
	// 0 disables the watchdog (systemd.service(5), WatchdogSec=); a
	// timeout too long for a Duration is as good as none.
	if err != nil || usec == 0 || usec > math.MaxInt64/uint64(time.Microsecond) {
		return 0
	}
	if s := lookup(environ, "WATCHDOG_PID"); s != "" {
		if p, err := strconv.Atoi(s); err != nil || p != pid {
			return 0
		}
	}
	return time.Duration(usec) * time.Microsecond
}

// lookup returns the value of the first "key=value" in environ, or "".
func lookup(environ []string, key string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// Ready tells systemd that the daemon has started (READY=1), which ends
// the start-up of a Type=notify unit: `systemctl start` returns, and
// units ordered after dyno start (systemd.service(5), Type=). Status can
// say more.
func (n *Notifier) Ready() error {
	return n.notify("READY=1")
}

// Stopping tells systemd that the daemon has begun to stop its dynos
// (STOPPING=1). The unit then shows as deactivating for the up to 30
// seconds the dynos may take, also when the daemon stops of its own
// accord rather than on `systemctl stop`.
func (n *Notifier) Stopping() error {
	return n.notify("STOPPING=1")
}

// Status sets the line that `systemctl status dyno` shows under
// "Status:", for example "3 apps, 7 dynos up".
func (n *Notifier) Status(s string) error {
	return n.notify("STATUS=" + oneLine(s))
}

// Watchdog tells systemd that the daemon is alive (WATCHDOG=1). With
// WatchdogSec= set, systemd kills and restarts a daemon that stays silent
// longer than that (systemd.service(5)). RunWatchdog calls it.
func (n *Notifier) Watchdog() error {
	return n.notify("WATCHDOG=1")
}

// WatchdogInterval returns how often to call Watchdog: half the timeout
// in WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, so that one late
// tick is not yet fatal. It returns 0 when systemd expects no pings from
// this process: no NOTIFY_SOCKET, no WATCHDOG_USEC, or a WATCHDOG_PID
// naming another process.
func (n *Notifier) WatchdogInterval() time.Duration {
	return n.watchdog / 2
}

// RunWatchdog calls Watchdog every WatchdogInterval until ctx is done,
// starting at once; it returns at once when the interval is 0. Before
// each ping it asks healthy, the daemon's own check (say, that its main
// loop answered recently), and sends nothing while healthy says false: a
// daemon that is running but hung then stops pinging, and systemd
// restarts it. A goroutine that merely exists proves nothing; the ping
// must vouch for the work.
func (n *Notifier) RunWatchdog(ctx context.Context, healthy func() bool) {
	interval := n.WatchdogInterval()
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if healthy() {
			// A ping that fails to send is, to systemd, a ping not
			// sent; the next tick tries again and nobody else could
			// act on the error.
			_ = n.Watchdog()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// notify sends state as one datagram to NOTIFY_SOCKET.
func (n *Notifier) notify(state string) error {
	if n.socket == "" {
		return nil
	}
	// sd_notify(3) allows an absolute path, an abstract name written
	// with a leading '@' (the socket layer turns it into the leading NUL
	// of an abstract address, unix(7)), and, since systemd 254, vsock
	// addresses for virtual machines, which dyno does not run in as a
	// service.
	if n.socket[0] != '/' && n.socket[0] != '@' {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET=%q is not a unix socket path or @name", n.socket)
	}
	// A fresh socket per message, as sd_notify(3) itself does: a socket
	// kept connected would keep talking to the old inode after systemd
	// re-executes itself (systemctl daemon-reexec) and binds the path
	// anew. Messages are rare (a ping every 15 s), so the cost is nil.
	// The socket is not bound: systemd identifies the sender by the
	// credentials the kernel attaches (SO_PASSCRED, unix(7)), which is
	// what NotifyAccess=main checks.
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", strings.ReplaceAll(state, "\n", " "), err)
	}
	return nil
}

// oneLine replaces the line breaks in s with spaces. A message is a list
// of assignments, one per line (sd_notify(3)): a newline in a status would
// end it and start another assignment, so that a status quoting, say, an
// app's output could send READY=1 or MAINPID= on its own.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
