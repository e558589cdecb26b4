package logmux

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

const (
	// readBufSize is large enough that a dyno writing flat out is
	// drained in big reads (some 800 lines of 80 bytes each), which keeps
	// the supervisor's CPU per line low, and small enough that 200 dynos'
	// buffers cost the daemon little (64 KiB is also a pipe's default).
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

// run reads the pipe until EOF or Close. It is the source's only
// goroutine: the read deadline, not a timer goroutine, tells it when a
// partial line has waited FlushDelay. Deadlines work because os.Pipe's
// read end is registered with the runtime poller.
func (s *Source) run() {
	defer close(s.done)
	defer s.closeReader()
	buf := make([]byte, readBufSize)
	armed := false // a read deadline is set
	for {
		n, err := s.r.Read(buf)
		if n > 0 {
			s.consume(buf[:n])
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.flushPartial()
			s.r.SetReadDeadline(time.Time{})
			armed = false
			continue
		}
		if err != nil {
			// io.EOF: every write end is closed. os.ErrClosed: Close.
			// Anything else cannot be retried usefully either.
			break
		}
		if s.split.Buffered() > 0 {
			// Each read restarts the wait: the delay counts from the
			// last data, not from the start of the line.
			s.r.SetReadDeadline(time.Now().Add(s.m.flushDelay))
			armed = true
		} else if armed {
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
