package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Read returns the last n lines of the store in dir that match f, oldest
// first, or all the lines it keeps when n <= 0. It needs no Store: the
// CLI reads the files while the daemon writes them. Lines that do not
// parse as Logplex lines are skipped, and so is the end of a file that
// has no newline yet, a write still in progress. A dir that does not
// exist holds no lines.
func Read(dir string, f Filter, n int) ([]Line, error) {
	files, err := snapshot(dir)
	defer func() {
		for _, sf := range files {
			sf.f.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	return readFiles(files, f, n)
}

// readFiles is Read over the files of a snapshot.
func readFiles(files []snapFile, f Filter, n int) ([]Line, error) {
	// Collect newest first, so that reading stops once n lines are found.
	var lines []Line
	for _, sf := range slices.Backward(files) {
		err := scanBackward(sf.f, sf.size, func(raw []byte) bool {
			fl, ok := split(raw)
			if !ok || !f.matchFields(&fl) {
				return true
			}
			if l, ok := fl.line(raw); ok {
				lines = append(lines, l)
			}
			return n <= 0 || len(lines) < n
		})
		if err != nil {
			return nil, fmt.Errorf("logstore: read %s: %w", sf.f.Name(), err)
		}
		if n > 0 && len(lines) >= n {
			break
		}
	}
	slices.Reverse(lines)
	return lines, nil
}

// snapFile is a file of a snapshot and its size when it was taken.
type snapFile struct {
	f    *os.File
	size int64
}

// snapshot opens the files of dir, oldest first, so that they can be read
// while a Store rotates and deletes them.
//
// current.log is opened first. A rotation after that turns it into a
// numbered file, which the listing then also holds: the listing is cut at
// the file that is the same as the open current.log, and any files after
// it are newer than the snapshot. Files deleted before they could be
// opened were the oldest and are skipped.
func snapshot(dir string) ([]snapFile, error) {
	var files []snapFile
	cur, err := os.Open(filepath.Join(dir, currentName))
	var curInfo fs.FileInfo
	switch {
	case err == nil:
		if curInfo, err = cur.Stat(); err != nil {
			cur.Close()
			return nil, fmt.Errorf("logstore: read: %w", err)
		}
	case errors.Is(err, fs.ErrNotExist):
		cur = nil
	default:
		return nil, fmt.Errorf("logstore: read: %w", err)
	}
	closeCur := func() {
		if cur != nil {
			cur.Close()
		}
	}
	seqs, err := rotated(dir)
	if errors.Is(err, fs.ErrNotExist) {
		closeCur()
		return nil, nil
	}
	if err != nil {
		closeCur()
		return nil, err
	}
	for _, q := range seqs {
		f, err := os.Open(filepath.Join(dir, rotatedName(q)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			closeCur()
			return files, fmt.Errorf("logstore: read: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			closeCur()
			return files, fmt.Errorf("logstore: read: %w", err)
		}
		if cur != nil && os.SameFile(fi, curInfo) {
			f.Close()
			break
		}
		files = append(files, snapFile{f, fi.Size()})
	}
	if cur != nil {
		files = append(files, snapFile{cur, curInfo.Size()})
	}
	return files, nil
}

// chunkSize is how much scanBackward and countLines read at a time.
const chunkSize = 64 << 10

// scanBackward calls yield with each line of the first size bytes of r,
// without its newline, last line first, until yield returns false. The
// slice is only valid during the call. Bytes after the last newline are
// skipped: they are a line still being written.
func scanBackward(r io.ReaderAt, size int64, yield func([]byte) bool) error {
	buf := make([]byte, chunkSize)
	pos := size     // file offset of data[0]
	var data []byte // the bytes from pos on that are not yet yielded
	started := false
	for {
		if !started {
			// Drop the unterminated tail, reading back until a newline.
			if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
				data = data[:i+1]
				started = true
				continue
			}
		} else if len(data) > 0 {
			// data ends with a newline; the line before it starts after
			// the newline before that.
			body := data[:len(data)-1]
			if i := bytes.LastIndexByte(body, '\n'); i >= 0 {
				if !yield(body[i+1:]) {
					return nil
				}
				data = data[:i+1]
				continue
			}
			if pos == 0 {
				yield(body)
				return nil
			}
		}
		if pos == 0 {
			return nil
		}
		// Read the chunk before data, keeping data after it: a line may
		// span chunks, and one longer than a chunk grows the buffer.
		k := int(min(int64(chunkSize), pos))
		if need := k + len(data); need > len(buf) {
			buf = slices.Grow(buf[:0], need)[:need]
		}
		copy(buf[k:], data)
		if _, err := r.ReadAt(buf[:k], pos-int64(k)); err != nil {
			return err
		}
		pos -= int64(k)
		data = buf[:k+len(data)]
	}
}

// countLines returns the size of the file at path and how many lines it
// holds, counting back from its end and stopping at limit, which is all
// retention needs to know.
func countLines(path string, limit int) (int64, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size := fi.Size()
	buf := make([]byte, chunkSize)
	lines := 0
	for end := size; end > 0 && lines < limit; {
		k := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:k], end-k); err != nil {
			return 0, 0, err
		}
		lines += bytes.Count(buf[:k], []byte{'\n'})
		end -= k
	}
	return size, min(lines, max(limit, 0)), nil
}
