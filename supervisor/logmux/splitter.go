package logmux

import "bytes"

// MaxLineBytes is the longest line written out, Logplex's limit. Longer
// lines are cut into consecutive pieces of at most this many bytes.
const MaxLineBytes = 10000

// A Splitter cuts a byte stream into lines. It holds the partial line left
// at the end of a chunk until the next chunk completes it.
//
// A line is the bytes before a '\n', exactly as written: '\r' and invalid
// UTF-8 are kept. A line of n bytes is emitted as ceil(n/MaxLineBytes)
// pieces (one empty line when n is 0), so joining the pieces of each line
// and ending each line with '\n' reproduces the stream.
//
// The zero Splitter is ready to use.
type Splitter struct {
	partial []byte // start of the current line; at most MaxLineBytes
}

// Write splits chunk and calls emit for every complete line and for every
// full MaxLineBytes piece of an overlong line. The slice passed to emit is
// only valid during the call: it usually points into chunk, which saves
// copying every line; only the unfinished tail is copied.
func (s *Splitter) Write(chunk []byte, emit func(line []byte)) {
	if len(s.partial) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			s.hold(chunk, emit)
			return
		}
		s.hold(chunk[:i], emit)
		emit(s.partial)
		s.partial = s.partial[:0]
		chunk = chunk[i+1:]
	}
	for {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			break
		}
		line := chunk[:i]
		for len(line) > MaxLineBytes {
			emit(line[:MaxLineBytes])
			line = line[MaxLineBytes:]
		}
		emit(line)
		chunk = chunk[i+1:]
	}
	s.hold(chunk, emit)
}

// hold appends b to the partial line. A piece is emitted only once more
// than MaxLineBytes are pending, not when exactly MaxLineBytes are: the
// next byte may be the newline, and a line of exactly MaxLineBytes must
// come out as one line, not as that line and an empty one.
func (s *Splitter) hold(b []byte, emit func(line []byte)) {
	for len(s.partial)+len(b) > MaxLineBytes {
		n := MaxLineBytes - len(s.partial)
		if len(s.partial) == 0 {
			emit(b[:n])
		} else {
			s.partial = append(s.partial, b[:n]...)
			emit(s.partial)
			s.partial = s.partial[:0]
		}
		b = b[n:]
	}
	s.partial = append(s.partial, b...)
}

// Flush emits the partial line, if any, as a line of its own, and forgets
// it: bytes written afterwards start a new line.
func (s *Splitter) Flush(emit func(line []byte)) {
	if len(s.partial) == 0 {
		return
	}
	emit(s.partial)
	s.partial = s.partial[:0]
}

// Buffered reports how many bytes of an unfinished line s holds.
func (s *Splitter) Buffered() int { return len(s.partial) }

// splitText calls emit for each line of text, a complete text handed to
// Mux.Line or Mux.System: one trailing newline is dropped, the rest is
// split like a stream, and an empty text is one empty line.
func splitText(text []byte, emit func(line []byte)) {
	text = bytes.TrimSuffix(text, []byte{'\n'})
	for {
		line := text
		i := bytes.IndexByte(text, '\n')
		if i >= 0 {
			line = text[:i]
		}
		for len(line) > MaxLineBytes {
			emit(line[:MaxLineBytes])
			line = line[MaxLineBytes:]
		}
		emit(line)
		if i < 0 {
			return
		}
		text = text[i+1:]
	}
}
