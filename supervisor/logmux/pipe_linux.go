package logmux

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSizes are tried in turn: a bigger pipe lets a dyno write ahead while
// the supervisor is busy, and lets each read take more lines. The kernel
// refuses sizes above /proc/sys/fs/pipe-max-size, or any growth once the
// user's pipes hold too much, so fall back and in the end keep the
// default.
var pipeSizes = [...]int{1 << 20, 256 << 10}

// growPipe enlarges the pipe whose end is f, if the kernel allows.
func growPipe(f *os.File) {
	// SyscallConn, not Fd: Fd would put the file in blocking mode and
	// disable read deadlines.
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		for _, size := range pipeSizes {
			if _, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size); err == nil {
				return
			}
		}
	})
}
