package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Who runs an app in a terminal. dyno start -a runs an app's dynos in
// the foreground and follows its ledger, as the daemon does; the
// commands that change the ledger say "restarting" only when something
// will. start -a holds a read lock on apps/APP/foreground.lock while it
// runs (several may), and a look asks the kernel whether a write lock
// would conflict (F_OFD_GETLK), which takes nothing: two looks at once
// cannot see each other as a holder, as two flock(2) tries would. Open
// file description locks (fcntl(2)) go with the last descriptor, so a
// killed process leaves no stale mark.

func (a *App) foregroundPath() string { return filepath.Join(a.Dir, "foreground.lock") }

// HoldForeground marks the app as run in the foreground until the
// returned Closer is closed.
func (a *App) HoldForeground() (io.Closer, error) {
	f, err := os.OpenFile(a.foregroundPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mark %s as running: %w", a.Name, err)
	}
	lock := unix.Flock_t{Type: unix.F_RDLCK}
	if err := fcntlLock(f, unix.F_OFD_SETLKW, &lock); err != nil {
		f.Close()
		return nil, fmt.Errorf("mark %s as running: lock %s: %w", a.Name, a.foregroundPath(), err)
	}
	return f, nil
}

// InForeground says whether a dyno start -a runs the app now.
func (a *App) InForeground() (bool, error) {
	f, err := os.Open(a.foregroundPath())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", a.foregroundPath(), err)
	}
	defer f.Close()
	lock := unix.Flock_t{Type: unix.F_WRLCK}
	if err := fcntlLock(f, unix.F_OFD_GETLK, &lock); err != nil {
		return false, fmt.Errorf("lock %s: %w", a.foregroundPath(), err)
	}
	return lock.Type != unix.F_UNLCK, nil
}

// fcntlLock is fcntl(2)'s lock command cmd on the whole of f, tried
// again when a signal interrupts it.
func fcntlLock(f *os.File, cmd int, lock *unix.Flock_t) error {
	lock.Whence, lock.Start, lock.Len = 0, 0, 0
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, lock)
		if err != unix.EINTR {
			return err
		}
	}
}
