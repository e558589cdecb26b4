package fsutil

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ReadRegular reads the file name in root, which must be a regular file
// of at most limit bytes. It is for files that code dyno did not write
// has left (a build's Procfile, a source's .buildpacks), which may be
// anything: a fifo, whose open blocks until a writer comes and which no
// signal then interrupts, or a sparse file of 100 GB, which os.ReadFile
// would allocate whole. The root keeps symlinks from leading out of it.
//
// Errors are *fs.PathError naming name: one for a file that is not
// regular says what it is, one for a file over limit names the limit.
// A missing file's error wraps fs.ErrNotExist.
func ReadRegular(root *os.Root, name string, limit int64) ([]byte, error) {
	// O_NONBLOCK: open(2) of a fifo for reading then returns at once
	// instead of waiting for a writer (fifo(7)); on a regular file it
	// changes nothing ("O_NONBLOCK ... has no effect for regular files",
	// open(2)). fstat then tells what was opened.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("is %s, not a regular file", typeName(fi.Mode()))}
	}
	// One byte more than the limit tells "at" from "over" without
	// trusting the size fstat gave: the file can grow meanwhile.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if int64(len(data)) > limit {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("larger than %s, the most dyno reads of it", SizeText(limit))}
	}
	return data, nil
}

// typeName is what a file of mode m is, for messages.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (fifo)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	}
	return "of type " + m.Type().String()
}

// SizeText is a byte count as people write a limit: "1 MiB", "64 KiB".
func SizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
