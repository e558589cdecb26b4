package isolate

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// OpenPTY returns a new pseudo-terminal pair. The slave goes to the dyno
// as its stdin, stdout and stderr (Spec.TTY); the caller keeps the master
// and closes its copy of the slave once the dyno has started, so that
// reading the master ends (EIO, pty(7)) when the dyno is gone.
func OpenPTY() (master, slave *os.File, err error) {
	master, slave, err = pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	return master, slave, nil
}

// Attachment joins the user's terminal to a dyno's PTY: the terminal in
// raw mode, so that Ctrl-C and friends travel as bytes and the PTY's own
// line discipline turns them into signals for the dyno's foreground
// process group, not for dyno; the window size follows the terminal.
type Attachment struct {
	master *os.File
	in     *os.File
	state  *term.State
	winch  chan os.Signal
	done   chan struct{} // closed when the master's output is drained

	restoreOnce sync.Once
}

// Attach sets the terminal in raw mode, sizes the PTY like it and starts
// copying in both directions. Call Restore on every exit path.
func Attach(master, in, out *os.File) (*Attachment, error) {
	a := &Attachment{master: master, in: in, winch: make(chan os.Signal, 1), done: make(chan struct{})}
	if err := a.resize(); err != nil {
		return nil, err
	}
	st, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, fmt.Errorf("set terminal %s raw: %w", in.Name(), err)
	}
	a.state = st
	signal.Notify(a.winch, unix.SIGWINCH)
	go func() {
		for range a.winch {
			a.resize()
		}
	}()
	go io.Copy(master, in)
	go func() {
		// Ends with EIO once every slave descriptor is closed.
		io.Copy(out, master)
		close(a.done)
	}()
	return a, nil
}

// resize copies the terminal's window size to the PTY; the kernel then
// sends SIGWINCH to the PTY's foreground process group (tty_ioctl(4)).
func (a *Attachment) resize() error {
	ws, err := unix.IoctlGetWinsize(int(a.in.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return fmt.Errorf("read window size of %s: %w", a.in.Name(), err)
	}
	if err := unix.IoctlSetWinsize(int(a.master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("set window size of pty: %w", err)
	}
	return nil
}

// Done is closed once the dyno's output has all been copied out.
func (a *Attachment) Done() <-chan struct{} { return a.done }

// Restore puts the terminal back as it was. It is safe to call more than
// once and from a signal path.
func (a *Attachment) Restore() {
	a.restoreOnce.Do(func() {
		signal.Stop(a.winch)
		close(a.winch)
		if a.state != nil {
			term.Restore(int(a.in.Fd()), a.state)
		}
	})
}
