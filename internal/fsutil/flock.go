package fsutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// Flock is flock(2) on f with how (unix.LOCK_SH, LOCK_EX, LOCK_UN, maybe
// with LOCK_NB). flock(2) is restarted after a signal handler installed
// with SA_RESTART, as Go's are, but is documented to fail with EINTR
// otherwise: Flock tries again then.
func Flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}
