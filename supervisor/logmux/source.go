package logmux

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// readBufSize is large enough that a dyno writing flat out is
	// drained in big reads (some 800 lines of 80 bytes each), which keeps
	// the supervisor's CPU per line low (64 KiB is also a pipe's
	// default). A source holds one only while it reads and formats: an
	// idle dyno's costs nothing (see run).
	readBufSize = 64 << 10

	// keepOut is the most formatted-output capacity a source keeps
	// between reads; a burst's larger buffer goes back to the GC.
	keepOut = 128 << 10

	// maxPending bounds the formatted output a source collects before it
	// writes: a chunk of empty lines grows many times when formatted.
	// Writing early still writes whole lines only.
	maxPending = 1 << 20
)

// A Source is the pipe carrying one dyno's stdout and stderr into a Mux.
type Source struct {
	m    *Mux
	name string
	r, w *os.File
	lf   lineFormat
	done chan struct{}

	closeR, closeW sync.Once
	errR, errW     error

	// Used only by the reading goroutine.
	buf   *[]byte // the read buffer, from readBufs; nil while the pipe is empty
	split Splitter
	stamp stamp
	out   []byte
	now   time.Time // time of the lines being formatted
	emit  func(line []byte)
}

// Source makes the pipe for the dyno name. Hand Writer to the child as
// both stdout and stderr, then call CloseWriter in the parent: Done closes
// only after every copy of the write end is closed. Lines read from the
// pipe are written as app lines of name.
func (m *Mux) Source(name string) (*Source, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("logmux: create pipe for %s: %w", name, err)
	}
	growPipe(r)
	s := &Source{
		m:    m,
		name: name,
		r:    r,
		w:    w,
		lf:   m.appFormat(name),
		done: make(chan struct{}),
	}
	s.stamp.format = m.format
	s.emit = s.appendLine // bound once, not per read
	go s.run()
	return s, nil
}

// Writer returns the write end of the pipe.
func (s *Source) Writer() *os.File { return s.w }

// CloseWriter closes the parent's copy of the write end. Call it once the
// child has been started with its own copy.
func (s *Source) CloseWriter() error {
	s.closeW.Do(func() {
		if err := s.w.Close(); err != nil {
			s.errW = fmt.Errorf("logmux: close write end of %s: %w", s.name, err)
		}
	})
	return s.errW
}

// Done returns a channel closed after the write end has been closed
// everywhere and every line read has been written out, or after Close.
func (s *Source) Done() <-chan struct{} { return s.done }

// Close abandons the source: it closes both ends of the pipe, so a dyno
// still writing gets EPIPE. Lines already read are written out; Done
// closes soon after.
func (s *Source) Close() error {
	return errors.Join(s.closeReader(), s.CloseWriter())
}

func (s *Source) closeReader() error {
	s.closeR.Do(func() {
		if err := s.r.Close(); err != nil {
			s.errR = fmt.Errorf("logmux: close read end of %s: %w", s.name, err)
		}
	})
	return s.errR
}

// readBufs are the sources' read buffers. Most dynos are idle most of
// the time, and a reader blocked in read(2) would hold its buffer all
// that time: 50 idle dynos held 3.2 MB, most of what dyno start kept. A
// source gives its buffer back once its dyno has been quiet for
// idleRelease, not at each empty pipe: 200 dynos writing in bursts then
// churned 64 KiB buffers through the pool and the collector, and the
// stalls cut lines at FlushDelay.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// idleRelease is how long a source keeps its read buffer after its
// dyno's last output.
const idleRelease = time.Second

// errEOF is read's end of file, kept apart from the poller's errors.
var errEOF = errors.New("EOF")

// read waits until the pipe has data and reads it into s.buf, taken
// from readBufs when the source has none. It waits through the runtime
// poller (os.Pipe's read end is registered there), which honours the
// read deadline, and takes a buffer only once there is data to read, so
// a source that gave its buffer back waits on an idle dyno with none.
func (s *Source) read(rc syscall.RawConn) (int, error) {
	var n int
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		n, rerr = s.readFD(fd)
		return rerr != unix.EAGAIN // else wait for data
	})
	return s.result(n, rerr, err)
}

// readNow reads what the pipe holds now, without waiting: 0 and EAGAIN
// when it is empty.
func (s *Source) readNow(rc syscall.RawConn) (int, error) {
	var n int
	var rerr error
	err := rc.Control(func(fd uintptr) { n, rerr = s.readFD(fd) })
	return s.result(n, rerr, err)
}

// readFD is one read(2) of the pipe into s.buf.
func (s *Source) readFD(fd uintptr) (int, error) {
	taken := s.buf == nil
	if taken {
		s.buf = readBufs.Get().(*[]byte)
	}
	for {
		n, err := unix.Read(int(fd), *s.buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN && taken {
			// Nothing: a buffer taken for this read goes back; one
			// kept since the last data stays until idleRelease.
			s.release()
		}
		return n, err
	}
}

// result turns a read's outcome into read's: the poller's error (the
// deadline, or Close), read(2)'s, or errEOF.
func (s *Source) result(n int, rerr, err error) (int, error) {
	switch {
	case err != nil:
		return 0, err
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, errEOF
	}
	return n, nil
}

// release gives the read buffer back to readBufs.
func (s *Source) release() {
	if s.buf != nil {
		readBufs.Put(s.buf)
		s.buf = nil
	}
}

// run reads the pipe until EOF or Close. It is the source's only
// goroutine: the read deadline, not a timer goroutine, tells it when a
// partial line has waited FlushDelay and when its dyno has been quiet
// for idleRelease. Deadlines work because os.Pipe's read end is
// registered with the runtime poller.
func (s *Source) run() {
	defer close(s.done)
	defer s.closeReader()
	defer s.release()
	rc, err := s.r.SyscallConn()
	if err != nil {
		return
	}
	armed := false // a read deadline is set
	for {
		n, err := s.read(rc)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Quiet since the last read by the clock. But a reader run
			// late (a loaded machine, a collection) may find the rest of
			// the line already in the pipe: the dyno did not stall, so
			// the line is not cut.
			n, err = s.readNow(rc)
			if err == unix.EAGAIN {
				// It did stall: the partial line goes out as it is,
				// and, quiet for FlushDelay or for idleRelease, the
				// source gives its buffer back.
				s.flushPartial()
				s.release()
				s.r.SetReadDeadline(time.Time{})
				armed = false
				continue
			}
		}
		if n > 0 {
			s.consume((*s.buf)[:n])
		}
		if err != nil {
			// errEOF: every write end is closed. os.ErrClosed: Close.
			// Anything else cannot be retried usefully either.
			break
		}
		// Each read restarts the wait: the delays count from the last
		// data, not from the start of the line.
		switch {
		case s.split.Buffered() > 0:
			s.r.SetReadDeadline(time.Now().Add(s.m.flushDelay))
			armed = true
		case s.buf != nil:
			s.r.SetReadDeadline(time.Now().Add(idleRelease))
			armed = true
		case armed:
			s.r.SetReadDeadline(time.Time{})
			armed = false
		}
	}
	s.flushPartial()
}

// consume formats the complete lines of chunk and writes them in one Write.
func (s *Source) consume(chunk []byte) {
	if s.m.failed.Load() {
		s.split = Splitter{} // only drain
		return
	}
	if s.m.stamped {
		s.now = s.m.now()
	}
	s.split.Write(chunk, s.emit)
	s.writeOut()
}

func (s *Source) flushPartial() {
	if s.split.Buffered() == 0 || s.m.failed.Load() {
		return
	}
	if s.m.stamped {
		s.now = s.m.now()
	}
	s.split.Flush(s.emit)
	s.writeOut()
}

func (s *Source) appendLine(line []byte) {
	s.out = s.m.appendLine(s.out, &s.lf, &s.stamp, s.now, line)
	if len(s.out) >= maxPending {
		s.writeOut()
	}
}

func (s *Source) writeOut() {
	if len(s.out) == 0 {
		return
	}
	s.m.write(s.out)
	if cap(s.out) > keepOut {
		s.out = nil
	} else {
		s.out = s.out[:0]
	}
}
