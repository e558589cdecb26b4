package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Follow returns the last n lines of the store in dir that match f, as
// Read does (none when n <= 0), and a Cursor at the end of the files they
// were read from, whose Next returns the lines written after them: none
// is missed or repeated between the two. Like Read it needs no Store, so
// a tail follows every line that reaches the files, those a Store writes
// and those other processes Append, whether a Store is open or not.
func Follow(dir string, f Filter, n int) ([]Line, *Cursor, error) {
	files, err := snapshot(dir)
	c := &Cursor{dir: dir, filter: f}
	if err == nil && len(files) > 0 {
		// The newest file, current.log unless a rotation failed to
		// make a new one, is where the cursor goes on.
		last := files[len(files)-1]
		c.f = last.f
		// Where the last whole line ends: the history leaves out a line
		// still being written (a writer between two writes, or one
		// killed mid-line), and the cursor must return it once whole.
		c.off, err = lineStart(last.f, last.size)
	}
	defer func() {
		for _, sf := range files {
			if sf.f != c.f {
				sf.f.Close()
			}
		}
	}()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if n <= 0 {
		return nil, c, nil
	}
	lines, err := readFiles(files, f, n)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return lines, c, nil
}

// A Cursor reads a store's lines from a point on, across rotations. It
// polls: Next returns what was written since it was last called.
type Cursor struct {
	dir    string
	filter Filter
	f      *os.File // the file being read; nil until the store has one
	off    int64    // where the first line not yet returned starts in f
	buf    []byte
}

// Next returns the lines that match the cursor's filter written since
// the last call, oldest first, and never waits. A line still being
// written is returned once it is whole. When the file being read was
// rotated, Next finishes it and goes on with the next one; lines that
// retention deleted before they could be read are gone.
func (c *Cursor) Next() ([]Line, error) {
	var out []Line
	cur := filepath.Join(c.dir, currentName)
	for {
		// Which file is current.log is looked at before reading to the
		// end of ours: when ours is current.log still, everything written
		// before the look is read now; when it was renamed, what its
		// writers wrote before the rename is read before moving on.
		curInfo, curErr := os.Stat(cur)
		if c.f == nil {
			f, err := os.Open(cur)
			if errors.Is(err, fs.ErrNotExist) {
				return out, nil
			}
			if err != nil {
				return out, fmt.Errorf("logstore: follow: %w", err)
			}
			c.f, c.off = f, 0
			continue
		}
		if err := c.readRest(&out); err != nil {
			return out, err
		}
		if curErr == nil {
			if fi, err := c.f.Stat(); err == nil && os.SameFile(fi, curInfo) {
				return out, nil
			}
		}
		next, err := c.successor()
		if err != nil || next == nil {
			return out, err
		}
		c.f.Close()
		c.f, c.off = next, 0
	}
}

// successor opens the file that follows the cursor's once a rotation
// renamed it: the next numbered file, or current.log when it was the
// last one renamed. It returns nil when there is none yet (between the
// rename and the new current.log).
func (c *Cursor) successor() (*os.File, error) {
	fi, err := c.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("logstore: follow: %w", err)
	}
	seqs, err := rotated(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Newest first: the file is almost always the newest rotated one.
	// If retention deleted it, every file left is newer, and the oldest
	// of them comes next.
	next := -1
	if len(seqs) > 0 {
		next = 0
	}
	for i := len(seqs) - 1; i >= 0; i-- {
		if si, err := os.Stat(filepath.Join(c.dir, rotatedName(seqs[i]))); err == nil && os.SameFile(fi, si) {
			next = i + 1
			break
		}
	}
	name := currentName
	if next >= 0 && next < len(seqs) {
		name = rotatedName(seqs[next])
	}
	f, err := os.Open(filepath.Join(c.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logstore: follow: %w", err)
	}
	return f, nil
}

// readRest adds the whole lines of c.f from c.off on that match the
// filter to out, and moves c.off past them.
func (c *Cursor) readRest(out *[]Line) error {
	if c.buf == nil {
		c.buf = make([]byte, chunkSize)
	}
	for {
		n, err := c.f.ReadAt(c.buf, c.off)
		if err != nil && err != io.EOF {
			return fmt.Errorf("logstore: follow %s: %w", c.f.Name(), err)
		}
		data := c.buf[:n]
		end := bytes.LastIndexByte(data, '\n')
		if end < 0 {
			if n == len(c.buf) && len(c.buf) < maxFollowLine {
				// A line longer than the buffer: read it whole.
				c.buf = make([]byte, 2*len(c.buf))
				continue
			}
			if n == len(c.buf) {
				// No line is this long: bytes no writer of the
				// store wrote. Skip them rather than grow without end.
				c.off += int64(n)
				continue
			}
			return nil
		}
		for rest := data[:end+1]; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			raw := rest[:i]
			rest = rest[i+1:]
			fl, ok := split(raw)
			if !ok || !c.filter.matchFields(&fl) {
				continue
			}
			if l, ok := fl.line(raw); ok {
				*out = append(*out, l)
			}
		}
		c.off += int64(end + 1)
		if n < len(c.buf) {
			return nil
		}
	}
}

// maxFollowLine bounds the buffer a cursor grows for one line: stored
// lines are at most Logplex's 10,000 bytes and a prefix.
const maxFollowLine = 1 << 20

// lineStart is where the line that holds offset size-1 of f starts: size
// itself when that byte ends a line. A line that began more than a chunk
// back is no line a store writes; it is skipped.
func lineStart(f *os.File, size int64) (int64, error) {
	from := max(size-chunkSize, 0)
	buf := make([]byte, size-from)
	if _, err := f.ReadAt(buf, from); err != nil && err != io.EOF {
		return 0, fmt.Errorf("logstore: follow %s: %w", f.Name(), err)
	}
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		return from + int64(i) + 1, nil
	}
	if from == 0 {
		return 0, nil
	}
	return size, nil
}

// Close releases the file the cursor reads.
func (c *Cursor) Close() error {
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
